#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <system_error>
#include <thread>

#include "slidestream/core.hpp"

namespace fs = std::filesystem;

namespace slidestream {

void require_readable_file(const fs::path& path) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) {
    throw Error(ErrorCode::kNotFound, "'" + path.string() + "' cannot be opened (" + ec.message() +
                                          "); check the path and its links");
  }
  if (!fs::exists(status)) {
    throw Error(ErrorCode::kNotFound, "'" + path.string() +
                                          "' does not exist; check the path (relative paths are " +
                                          "taken from " + fs::current_path().string() + ")");
  }
  if (fs::is_directory(status)) {
    throw Error(ErrorCode::kNotFound,
                "'" + path.string() + "' is a folder, not a slide file; pass the file inside it");
  }
  if (!fs::is_regular_file(status)) {
    throw Error(ErrorCode::kNotFound, "'" + path.string() +
                                          "' is not a regular file (a FIFO, device or socket); "
                                          "pass a file on disk");
  }
  if (::access(path.c_str(), R_OK) != 0) {
    throw Error(ErrorCode::kNotFound, "'" + path.string() +
                                          "' cannot be read (permission denied); fix its " +
                                          "permissions or run as a user who can read it");
  }
}

namespace {

// The path with its existing part resolved (symlinks, "..", "."), for comparing names.
fs::path resolved(const fs::path& path) {
  std::error_code ec;
  fs::path result = fs::weakly_canonical(fs::absolute(path, ec), ec);
  return ec ? fs::absolute(path, ec).lexically_normal() : result;
}

bool same_file(const fs::path& a, const fs::path& b) {
  if (resolved(a) == resolved(b)) {
    return true;
  }
  std::error_code ec;
  return fs::equivalent(a, b, ec) && !ec;  // hard links: the same inode
}

std::string describe(const NamedPath& named) {
  return named.role + " '" + named.path.string() + "'";
}

}  // namespace

void require_distinct_files(const std::vector<NamedPath>& inputs,
                            const std::vector<NamedPath>& outputs) {
  for (size_t i = 0; i < outputs.size(); ++i) {
    for (const NamedPath& input : inputs) {
      std::error_code ec;
      if (!input.path.empty() && fs::exists(input.path, ec) &&
          same_file(outputs[i].path, input.path)) {
        throw Error(ErrorCode::kInvalidArgument,
                    describe(outputs[i]) + " is the same file as " + describe(input) +
                        ": writing it would destroy the input; choose another output path");
      }
    }
    for (size_t j = 0; j < i; ++j) {
      if (same_file(outputs[i].path, outputs[j].path)) {
        throw Error(ErrorCode::kInvalidArgument, describe(outputs[i]) + " is the same file as " +
                                                     describe(outputs[j]) +
                                                     "; give each output its own path");
      }
    }
  }
}

void require_extension(const fs::path& path, const std::vector<std::string>& extensions,
                       const std::string& role, const std::string& format) {
  std::string extension = path.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (std::find(extensions.begin(), extensions.end(), extension) != extensions.end()) {
    return;
  }
  std::string list;
  for (const std::string& allowed : extensions) {
    list += (list.empty() ? "" : " or ") + allowed;
  }
  throw Error(ErrorCode::kInvalidArgument,
              role + " '" + path.string() + "' is written as " + format + ": name it " + list);
}

void require_tiff_name(const fs::path& path, const std::string& role) {
  require_extension(path, {".tif", ".tiff"}, role, "a pyramidal TIFF");
}

void create_output_folder(const fs::path& folder) {
  std::error_code ec;
  fs::create_directories(folder, ec);
  if (ec) {
    throw Error(ErrorCode::kOutputError, "cannot create the output folder '" + folder.string() +
                                             "': " + ec.message() +
                                             "; choose a folder that can be created");
  }
}

int max_threads() {
  const unsigned cores = std::thread::hardware_concurrency();
  return std::max(256, 4 * static_cast<int>(cores));
}

void require_thread_count(int threads, const std::string& what) {
  if (threads < 0 || threads > max_threads()) {
    throw Error(ErrorCode::kInvalidArgument, what + " " + std::to_string(threads) +
                                                 " is out of range: give 0 (all cores) to " +
                                                 std::to_string(max_threads()));
  }
}

void require_writable_output(const fs::path& path) {
  const fs::path folder = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::error_code ec;
  if (fs::exists(folder, ec) && !fs::is_directory(folder, ec)) {
    throw Error(ErrorCode::kOutputError, "cannot write '" + path.string() + "': '" +
                                             folder.string() +
                                             "' is a file, not a folder; choose another path");
  }
  if (!fs::is_directory(folder, ec)) {
    throw Error(ErrorCode::kOutputError, "cannot write '" + path.string() + "': the folder '" +
                                             folder.string() +
                                             "' does not exist; create it first (mkdir -p)");
  }
  if (::access(folder.c_str(), W_OK) != 0) {
    throw Error(ErrorCode::kOutputError, "cannot write '" + path.string() + "': the folder '" +
                                             folder.string() +
                                             "' is not writable; choose another output folder");
  }
  if (fs::is_directory(path, ec)) {
    throw Error(ErrorCode::kOutputError,
                "cannot write '" + path.string() + "': it is a folder; give a file name");
  }
  if (fs::exists(path, ec) && !fs::is_regular_file(path, ec)) {
    throw Error(ErrorCode::kOutputError, "cannot write '" + path.string() +
                                             "': it is not a regular file (a FIFO, device or "
                                             "socket); give a file name");
  }
}

namespace {

std::string random_suffix() {
  std::random_device device;
  std::uniform_int_distribution<unsigned> hex(0, 15);
  std::string suffix;
  for (int i = 0; i < 8; ++i) {
    suffix += "0123456789abcdef"[hex(device)];
  }
  return suffix;
}

}  // namespace

AtomicOutput::AtomicOutput(fs::path final_path) : final_path_(std::move(final_path)) {
  require_writable_output(final_path_);
  // "out.png" -> ".out.png.tmp-1a2b3c4d.png": hidden, unique, same extension.
  const std::string name = "." + final_path_.filename().string() + ".tmp-" + random_suffix() +
                           final_path_.extension().string();
  temp_path_ = final_path_.parent_path() / name;
}

AtomicOutput::~AtomicOutput() {
  if (!committed_) {
    std::error_code ignored;
    fs::remove(temp_path_, ignored);
  }
}

void write_text_atomically(const fs::path& path, const std::string& text) {
  AtomicOutput output(path);
  {
    std::ofstream file(output.temp_path());
    file << text;
    if (!file) {
      throw Error(ErrorCode::kOutputError, "cannot write '" + path.string() + "'");
    }
  }
  output.commit();
}

void AtomicOutput::commit() {
  std::error_code ec;
  fs::rename(temp_path_, final_path_, ec);
  if (ec) {
    throw Error(ErrorCode::kOutputError, "cannot move the finished output to '" +
                                             final_path_.string() + "': " + ec.message());
  }
  committed_ = true;
}

}  // namespace slidestream
