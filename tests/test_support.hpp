// Shared helpers of the test suite: where the third-party data lives, synthetic slides made on
// demand, and temporary folders.
#pragma once

#include <filesystem>
#include <functional>
#include <opencv2/core.hpp>
#include <optional>
#include <string>

#include "slidestream/core.hpp"
#include "slidestream/synth.hpp"

namespace slidestream::testing {

/// ../shared/data (or $SLIDESTREAM_TEST_DATA), or nullopt when absent.
std::optional<std::filesystem::path> test_data_dir();

/// Path of a file under the test data folder, or nullopt when the folder or file is absent.
std::optional<std::filesystem::path> test_data_file(const std::string& relative);

/// A synthetic slide generated once per build folder (testdata/<name>.tif) with its truth raster
/// (<name>.truth.tif) and annotations (<name>.geojson).
std::filesystem::path synthetic_slide(const std::string& name, const SynthOptions& options);

/// The default small synthetic slide: 3000x2000 at 0.5 um/px, deflate (lossless) so pixel
/// comparisons between backends are exact.
std::filesystem::path small_lossless_slide();

/// Peak signal-to-noise ratio of two 8-bit images in dB (infinity when equal).
double psnr(const cv::Mat& a, const cv::Mat& b);

/// A fresh folder under the system temp folder, removed with its content on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

/// Runs the slidestream binary with `arguments`; returns its exit code and its output (stdout,
/// and stderr too when `with_stderr`).
struct CommandResult {
  int exit_code = -1;
  std::string output;
};
CommandResult run_cli(const std::string& arguments, bool with_stderr = true);
/// Runs any shell command; returns its exit code and combined output.
CommandResult run_shell(const std::string& command);

/// The Error `run` throws; kInternal with "nothing thrown" when it throws none, so a test that
/// compares its code fails.
Error error_of(const std::function<void()>& run);

/// Whether the error's message contains `text`.
bool mentions(const Error& error, const std::string& text);

/// Writes `text` to `dir / name` and returns the path.
std::filesystem::path write_text_file(const TempDir& dir, const std::string& name,
                                      const std::string& text);

/// The models exported by examples/export_torchscript.py (Debian's python3-torch) into the
/// build folder, once per build folder; empty when python3-torch is missing.
const std::filesystem::path& torchscript_exports();

}  // namespace slidestream::testing

/// Skips the current test, saying which data it needs, when a test data file is absent.
#define SLIDESTREAM_REQUIRE_DATA(variable, relative)                                        \
  const auto variable##_found = ::slidestream::testing::test_data_file(relative);           \
  if (!variable##_found) {                                                                  \
    GTEST_SKIP() << "needs " << (relative)                                                  \
                 << " from the shared test data; set SLIDESTREAM_TEST_DATA or place it in " \
                    "../shared/data";                                                       \
  }                                                                                         \
  const std::filesystem::path& variable = *variable##_found  // NOLINT(bugprone-macro-parentheses)
