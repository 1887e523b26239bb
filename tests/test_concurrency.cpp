// Two processes and many threads on one segmentation (issue 11): a second `segment` on an output
// folder that another process is writing is refused with exit 8 ("locked") and disturbs nothing,
// and `--threads 1..8` give byte-identical outputs.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "test_support.hpp"

namespace fs = std::filesystem;

namespace slidestream {
namespace {

#define REQUIRE_COLOUR_MODEL()                                                        \
  if (testing::torchscript_exports().empty()) {                                       \
    GTEST_SKIP() << "needs " SLIDESTREAM_TORCH_PYTHON                                 \
                    " with torch (Debian: python3-torch) "                            \
                    "to export the colour model with examples/export_torchscript.py"; \
  }

const char* const kOutputs[] = {"labels.tif", "predictions.h5", "annotations.geojson",
                                "annotations.xml", "overlay.png"};

fs::path slide() {
  SynthOptions options;
  options.size = {2048, 1536};
  options.compression = "deflate";
  options.seed = 11;
  return testing::synthetic_slide("concurrency-2048", options);
}

std::string segment_arguments(const fs::path& out, int threads) {
  return "segment " + slide().string() + " --model " +
         (testing::torchscript_exports() / "colour").string() + " -o " + out.string() +
         " -q --threads " + std::to_string(threads) + " --set tiling.min_tissue_fraction=0";
}

std::map<std::string, std::string> outputs_of(const fs::path& out) {
  std::map<std::string, std::string> bytes;
  for (const char* name : kOutputs) {
    std::ifstream stream(out / "concurrency-2048" / name, std::ios::binary);
    std::ostringstream content;
    content << stream.rdbuf();
    bytes[name] = content.str();
  }
  return bytes;
}

void expect_same_outputs(const std::map<std::string, std::string>& expected,
                         const std::map<std::string, std::string>& actual,
                         const std::string& what) {
  for (const auto& [name, content] : expected) {
    ASSERT_FALSE(content.empty()) << name << " was not written";
    EXPECT_TRUE(actual.at(name) == content) << name << " differs " << what;
  }
}

TEST(Concurrency, EveryThreadCountFromOneToEightGivesByteIdenticalOutputs) {
  REQUIRE_COLOUR_MODEL();
  testing::TempDir work;
  const auto one = testing::run_cli(segment_arguments(work / "threads-1", 1));
  ASSERT_EQ(one.exit_code, 0) << one.output;
  const auto reference = outputs_of(work / "threads-1");
  for (int threads = 2; threads <= 8; ++threads) {
    const fs::path out = work / ("threads-" + std::to_string(threads));
    const auto run = testing::run_cli(segment_arguments(out, threads));
    ASSERT_EQ(run.exit_code, 0) << run.output;
    expect_same_outputs(reference, outputs_of(out),
                        "with --threads " + std::to_string(threads) + " from --threads 1");
  }
}

// The first process is stopped (tests/concurrency/lock_pause_shim.cpp) right after it takes the
// slide's lock; the second must be refused, and the first must then finish as if alone.
TEST(Concurrency, ASecondSegmentOnAFolderBeingWrittenIsRefusedAndDisturbsNothing) {
  REQUIRE_COLOUR_MODEL();
  testing::TempDir work;
  const auto alone = testing::run_cli(segment_arguments(work / "alone", 2));
  ASSERT_EQ(alone.exit_code, 0) << alone.output;

  const fs::path shared = work / "shared";
  const pid_t first = fork();
  ASSERT_GE(first, 0);
  if (first == 0) {
    const char* asan = std::getenv("ASAN_OPTIONS");
    // The shim is not instrumented; under ASan it comes before the runtime on purpose.
    const std::string asan_options =
        std::string(asan != nullptr ? asan : "") + ":verify_asan_link_order=0";
    setenv("ASAN_OPTIONS", asan_options.c_str(), 1);
    setenv("LD_PRELOAD", SLIDESTREAM_LOCK_PAUSE_SHIM, 1);
    const std::string command = "exec " + std::string(SLIDESTREAM_CLI_PATH) + " " +
                                segment_arguments(shared, 2) + " > /dev/null 2>&1";
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  ASSERT_EQ(waitpid(first, &status, WUNTRACED), first);
  ASSERT_TRUE(WIFSTOPPED(status)) << "the first process ended before it took the lock";

  const auto second = testing::run_cli(segment_arguments(shared, 2));
  EXPECT_EQ(second.exit_code, 8) << second.output;
  EXPECT_NE(second.output.find("locked"), std::string::npos) << second.output;
  EXPECT_NE(second.output.find("concurrency-2048"), std::string::npos)
      << "the message names the slide's folder: " << second.output;

  ASSERT_EQ(kill(first, SIGCONT), 0);
  ASSERT_EQ(waitpid(first, &status, 0), first);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the first process failed after the second was refused";
  expect_same_outputs(outputs_of(work / "alone"), outputs_of(shared),
                      "after a second process was refused, from a run alone");
}

}  // namespace
}  // namespace slidestream
