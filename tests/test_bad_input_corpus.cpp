// Every case of the bad-input corpus (tests/bad_inputs/*.yaml): the command exits with its
// documented code and a message that names the file and the fix, leaves every input as it was,
// and leaves no output or temporary file it was not meant to write.
#include <gtest/gtest.h>

#include <array>
#include <cctype>
#include <fstream>
#include <map>
#include <regex>

#include "bad_input_corpus.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;

namespace slidestream {
namespace {

using testing::CorpusCase;

// Text that must never reach a user: the catch-all, raw library diagnostics, crash reports.
constexpr std::array<const char*, 8> kNeverShown{
    "internal error",     "HDF5-DIAG",        "terminate called", "Exception raised from",
    "Segmentation fault", "AddressSanitizer", "runtime error:",   "what():"};

}  // namespace
}  // namespace slidestream

namespace slidestream::testing {
// gtest prints a case by its id, not as bytes.
void PrintTo(const CorpusCase& corpus_case, std::ostream* out) {
  *out << corpus_case.id;
}
}  // namespace slidestream::testing

namespace slidestream {
namespace {

class Corpus : public ::testing::TestWithParam<CorpusCase> {};

std::string command_for(const CorpusCase& corpus_case, const fs::path& dir) {
  std::string command = "cd '" + dir.string() + "' && env";
  for (const auto& [key, value] : corpus_case.env) {
    command.append(" '").append(key).append("=").append(value).append("'");
  }
  // A hang is a finding too: the case is killed after a minute.
  return command + " timeout -s KILL 60 " + SLIDESTREAM_CLI_PATH + " " + corpus_case.run +
         " < /dev/null 2>&1";
}

bool is_allowed(const std::string& path, const std::vector<std::string>& patterns) {
  for (const std::string& pattern : patterns) {
    const bool tree = !pattern.empty() && pattern.back() == '/';
    if (path == pattern || (tree && path.rfind(pattern, 0) == 0)) {
      return true;
    }
  }
  return false;
}

void expect_files_as_promised(const CorpusCase& corpus_case,
                              const std::map<std::string, std::string>& before,
                              const std::map<std::string, std::string>& after,
                              const std::string& output) {
  for (const auto& [path, content] : before) {
    const auto found = after.find(path);
    if (is_allowed(path, corpus_case.changes)) {
      continue;
    }
    EXPECT_TRUE(found != after.end()) << "input removed: " << path << "\n" << output;
    if (found != after.end()) {
      EXPECT_EQ(found->second, content) << "input changed: " << path << "\n" << output;
    }
  }
  for (const auto& [path, content] : after) {
    if (before.count(path) == 0) {
      EXPECT_TRUE(is_allowed(path, corpus_case.creates))
          << "left behind: " << path << " (add it to expect.creates if it is promised)\n"
          << output;
    }
  }
  for (const std::string& promised : corpus_case.creates) {
    EXPECT_TRUE(after.count(promised) != 0) << "not written: " << promised << "\n" << output;
  }
}

TEST_P(Corpus, FailsCleanly) {
  const CorpusCase& corpus_case = GetParam();
  ASSERT_TRUE(corpus_case.load_error.empty()) << corpus_case.load_error;
  testing::TempDir dir;
  ASSERT_NO_THROW(make_given(corpus_case, dir.path())) << corpus_case.id;
  const auto before = testing::snapshot(dir.path());

  const auto result = testing::run_shell(command_for(corpus_case, dir.path()));
  SCOPED_TRACE("slidestream " + corpus_case.run);
  EXPECT_EQ(result.exit_code, corpus_case.exit_code) << result.output;
  if (!corpus_case.message.empty()) {
    EXPECT_TRUE(std::regex_search(result.output, std::regex(corpus_case.message)))
        << "message does not match /" << corpus_case.message << "/:\n"
        << result.output;
  }
  for (const char* text : kNeverShown) {
    EXPECT_EQ(result.output.find(text), std::string::npos)
        << "shown to the user: '" << text << "'\n"
        << result.output;
  }
  expect_files_as_promised(corpus_case, before, testing::snapshot(dir.path()), result.output);
}

std::vector<CorpusCase> all_cases() {
  return testing::load_corpus(fs::path(SLIDESTREAM_SOURCE_DIR) / "tests" / "bad_inputs");
}

std::string case_name(const ::testing::TestParamInfo<CorpusCase>& info) {
  std::string name = info.param.id;
  for (char& c : name) {
    if (std::isalnum(static_cast<unsigned char>(c)) == 0) {
      c = '_';
    }
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(BadInput, Corpus, ::testing::ValuesIn(all_cases()), case_name);

// The corpus' own schema is strict, so a misspelt expectation cannot pass unchecked.
TEST(CorpusSchema, AnUnknownExpectKeyIsAnError) {
  testing::TempDir dir;
  std::ofstream(dir / "typo.yaml") << "cases:\n  - name: a\n    problem: usage\n    run: info\n"
                                      "    expect: {exit: 2, mesage: x}\n";
  const auto cases = testing::load_corpus(dir.path());
  ASSERT_EQ(cases.size(), 1u);
  EXPECT_NE(cases[0].load_error.find("unknown key 'mesage'"), std::string::npos)
      << cases[0].load_error;
}

TEST(CorpusSchema, AnUnknownStepOrProblemIsAnError) {
  testing::TempDir dir;
  std::ofstream(dir / "a.yaml") << "cases:\n  - name: a\n    problem: usage\n    run: info\n"
                                   "    given: [{copy: x}]\n    expect: {exit: 0}\n";
  std::ofstream(dir / "b.yaml") << "cases:\n  - name: b\n    problem: weather\n    run: info\n"
                                   "    expect: {exit: 0}\n";
  const auto cases = testing::load_corpus(dir.path());
  ASSERT_EQ(cases.size(), 2u);
  EXPECT_NE(cases[0].load_error.find("no action"), std::string::npos) << cases[0].load_error;
  EXPECT_NE(cases[1].load_error.find("unknown problem"), std::string::npos) << cases[1].load_error;
}

TEST(CorpusSchema, TheCorpusCoversEveryClassWithAtLeastAHundredCases) {
  std::map<std::string, int> per_problem;
  for (const CorpusCase& corpus_case : all_cases()) {
    ++per_problem[corpus_case.problem];
  }
  int total = 0;
  for (const char* problem :
       {"batch", "library", "overwrite", "numbers", "claims", "unbounded", "messages"}) {
    EXPECT_GE(per_problem[problem], 3) << problem;
    total += per_problem[problem];
  }
  EXPECT_GE(total + per_problem["usage"], 100);
}

}  // namespace
}  // namespace slidestream
