#include "fuzz_support.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <typeinfo>

namespace fs = std::filesystem;

namespace slidestream::fuzz {

namespace {

// The folder is per process, so several fuzzers (or ctest -j) never share a file; it is removed
// when the process exits normally (a crashing input leaves it behind, which is harmless).
class ScratchFolder {
 public:
  ScratchFolder()
      : path_(fs::temp_directory_path() / ("slidestream-fuzz-" + std::to_string(::getpid()))) {
    fs::create_directories(path_);
  }
  ~ScratchFolder() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  ScratchFolder(const ScratchFolder&) = delete;
  ScratchFolder& operator=(const ScratchFolder&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// SLIDESTREAM_FUZZ_VERBOSE=1 keeps the library's logs and prints every clean error, to see
// what a corpus file exercises (the replay of a seed that should parse, a crash's neighbours).
bool verbose() {
  static const bool enabled = [] {
    const char* value = std::getenv("SLIDESTREAM_FUZZ_VERBOSE");
    if (value == nullptr || std::string(value) != "1") {
      spdlog::set_level(spdlog::level::off);
      return false;
    }
    return true;
  }();
  return enabled;
}

}  // namespace

void finding(const std::string& what) {
  std::fprintf(stderr, "\n==== slidestream fuzz finding: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

void expect_clean(const std::function<void()>& parse, std::initializer_list<ErrorCode> allowed) {
  const bool show = verbose();
  try {
    parse();
  } catch (const Error& error) {
    if (show) {
      std::fprintf(stderr, "clean error (%s): %s\n",
                   std::string(error_code_name(error.code())).c_str(), error.what());
    }
    if (std::find(allowed.begin(), allowed.end(), error.code()) == allowed.end()) {
      finding("slidestream::Error with undocumented code " +
              std::string(error_code_name(error.code())) + ": " + error.what());
    }
  } catch (const std::exception& error) {
    finding(std::string("escaped ") + typeid(error).name() + ": " + error.what());
  } catch (...) {
    finding("escaped an exception that is not a std::exception");
  }
}

std::string as_text(const std::uint8_t* data, std::size_t size) {
  return size == 0 ? std::string() : std::string(reinterpret_cast<const char*>(data), size);
}

fs::path scratch_file(const std::string& name, const std::string& bytes) {
  static const ScratchFolder folder;
  fs::path path = folder.path() / name;
  std::ofstream stream(path, std::ios::binary | std::ios::trunc);
  stream.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!stream.flush()) {
    finding("cannot write the scratch file " + path.string());
  }
  return path;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t begin = 0;
  while (begin < text.size()) {
    const std::size_t end = std::min(text.find('\n', begin), text.size());
    lines.push_back(text.substr(begin, end - begin));
    begin = end + 1;
  }
  return lines;
}

std::vector<std::string> split_sections(const std::string& text, const std::string& separator) {
  std::vector<std::string> sections(1);
  for (const std::string& line : split_lines(text)) {
    if (line == separator) {
      sections.emplace_back();
    } else {
      sections.back().append(line).append("\n");
    }
  }
  return sections;
}

ConfigInput config_input(const std::uint8_t* data, std::size_t size) {
  const std::string text = as_text(data, size);
  const std::string separator = "#--set\n";
  std::size_t split = std::string::npos;
  if (text.compare(0, separator.size(), separator) == 0) {
    split = 0;
  } else if (const std::size_t found = text.find("\n" + separator); found != std::string::npos) {
    split = found + 1;
  }
  ConfigInput input;
  if (split != 0) {
    input.yaml_path = scratch_file("config.yaml", text.substr(0, split));
  }
  if (split != std::string::npos) {
    input.overrides = split_lines(text.substr(split + separator.size()));
  }
  return input;
}

}  // namespace slidestream::fuzz
