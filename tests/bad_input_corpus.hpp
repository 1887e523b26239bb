// The bad-input corpus (tests/bad_inputs/*.yaml, schema in tests/bad_inputs/README.md): one
// case per entry, each a command run on inputs made in a fresh folder, with the exit code and
// message it must give and the files it may leave behind.
#pragma once

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace slidestream::testing {

struct CorpusCase {
  std::string id;                 ///< "<file stem>.<name>", the test's name
  std::string file;               ///< the case file it came from
  std::string problem;            ///< the class of bad input (README.md lists them)
  std::vector<YAML::Node> given;  ///< setup steps, already checked for unknown keys
  std::string run;                ///< the slidestream arguments, as a shell string
  std::map<std::string, std::string> env;
  int exit_code = 0;
  std::string message;               ///< regex the output must match (ECMAScript)
  std::vector<std::string> creates;  ///< paths that must exist afterwards ("dir/" = a tree)
  std::vector<std::string> changes;  ///< given paths the command may change
  std::string load_error;            ///< a malformed case: the test fails with this
};

/// Every case of every `*.yaml` in `dir`, sorted by id. A file or case that breaks the schema
/// (an unknown key, a missing field, a bad step) becomes a case whose `load_error` says why.
std::vector<CorpusCase> load_corpus(const std::filesystem::path& dir);

/// The folder of shared inputs (slides, model, dataset, ...), built once per build folder by
/// tests/bad_inputs/fixtures.sh under a file lock, so parallel test processes wait for it.
std::filesystem::path corpus_fixtures();

/// Makes the case's inputs in `dir`; throws std::runtime_error naming the bad step.
void make_given(const CorpusCase& corpus_case, const std::filesystem::path& dir);

/// Type and content of every entry under `dir` (not following symlinks; FIFOs are not read),
/// keyed by relative path.
std::map<std::string, std::string> snapshot(const std::filesystem::path& dir);

}  // namespace slidestream::testing
