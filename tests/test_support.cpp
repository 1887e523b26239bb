#include "test_support.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <opencv2/core.hpp>
#include <random>
#include <string>

namespace fs = std::filesystem;

namespace slidestream::testing {

std::optional<fs::path> test_data_dir() {
  const char* env = std::getenv("SLIDESTREAM_TEST_DATA");
  const fs::path dir = env != nullptr && *env != '\0'
                           ? fs::path(env)
                           : fs::path(SLIDESTREAM_SOURCE_DIR) / ".." / "shared" / "data";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return std::nullopt;
  }
  return dir;
}

std::optional<fs::path> test_data_file(const std::string& relative) {
  const auto dir = test_data_dir();
  if (!dir || !fs::exists(*dir / relative)) {
    return std::nullopt;
  }
  return *dir / relative;
}

fs::path synthetic_slide(const std::string& name, const SynthOptions& options) {
  const fs::path dir = fs::path(SLIDESTREAM_BINARY_DIR) / "testdata";
  fs::create_directories(dir);
  fs::path slide = dir / (name + ".tif");
  SynthOptions with_outputs = options;
  with_outputs.truth_path = dir / (name + ".truth.tif");
  with_outputs.annotations_path = dir / (name + ".geojson");
  with_outputs.progress = false;
  // Outputs are renamed into place when complete, so concurrent test processes may race here
  // harmlessly: both write the same bytes.
  if (!fs::exists(slide) || !fs::exists(*with_outputs.truth_path) ||
      !fs::exists(*with_outputs.annotations_path)) {
    synthesize_slide(slide, with_outputs);
  }
  return slide;
}

fs::path small_lossless_slide() {
  SynthOptions options;
  options.size = Size{3000, 2000};
  options.mpp_um = 0.5;
  options.seed = 7;
  options.compression = "deflate";
  return synthetic_slide("small-lossless", options);
}

double psnr(const cv::Mat& a, const cv::Mat& b) {
  const double mse = cv::norm(a, b, cv::NORM_L2SQR) / static_cast<double>(a.total() * a.channels());
  return mse == 0 ? INFINITY : 10.0 * std::log10(255.0 * 255.0 / mse);
}

TempDir::TempDir() {
  std::random_device device;
  path_ = fs::temp_directory_path() / ("slidestream-test-" + std::to_string(device()));
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ignored;
  fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ignored);
  fs::remove_all(path_, ignored);
}

CommandResult run_cli(const std::string& arguments, bool with_stderr) {
  return run_shell(std::string(SLIDESTREAM_CLI_PATH) + " " + arguments +
                   (with_stderr ? " 2>&1" : " 2>/dev/null"));
}

CommandResult run_shell(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    return result;
  }
  std::array<char, 4096> buffer{};
  while (fgets(buffer.data(), buffer.size(), pipe) != nullptr) {
    result.output += buffer.data();
  }
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

const fs::path& torchscript_exports() {
  static const fs::path dir = [] {
    fs::path out = fs::path(SLIDESTREAM_BINARY_DIR) / "testdata" / "torchscript";
    const fs::path script = fs::path(SLIDESTREAM_SOURCE_DIR) / "examples/export_torchscript.py";
    // Exported once per build folder (python + torch start slowly); again when the script changes.
    const fs::path last = out / "colour" / "model.yaml";
    if (fs::exists(last) && fs::last_write_time(last) > fs::last_write_time(script)) {
      return out;
    }
    // A private folder renamed into place, so parallel test processes never see half an export.
    const fs::path temp = out.string() + ".tmp" + std::to_string(::getpid());
    const auto result = run_shell(std::string(SLIDESTREAM_TORCH_PYTHON) + " " + script.string() +
                                  " " + temp.string());
    if (result.exit_code != 0) {
      return fs::path();
    }
    std::error_code ignored;
    fs::remove_all(out, ignored);
    fs::rename(temp, out, ignored);
    return out;
  }();
  return dir;
}

Error error_of(const std::function<void()>& run) {
  try {
    run();
  } catch (const Error& error) {
    return error;
  }
  return Error(ErrorCode::kInternal, "nothing thrown");
}

bool mentions(const Error& error, const std::string& text) {
  return std::string(error.what()).find(text) != std::string::npos;
}

std::filesystem::path write_text_file(const TempDir& dir, const std::string& name,
                                      const std::string& text) {
  std::filesystem::path path = dir / name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

}  // namespace slidestream::testing
