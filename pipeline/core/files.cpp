#include <unistd.h>

#include <fstream>
#include <random>
#include <system_error>

#include "slidestream/core.hpp"

namespace fs = std::filesystem;

namespace slidestream {

void require_readable_file(const fs::path& path) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (!fs::exists(status)) {
    throw Error(ErrorCode::kNotFound, "'" + path.string() +
                                          "' does not exist; check the path (relative paths are " +
                                          "taken from " + fs::current_path().string() + ")");
  }
  if (fs::is_directory(status)) {
    throw Error(ErrorCode::kNotFound,
                "'" + path.string() + "' is a folder, not a slide file; pass the file inside it");
  }
  if (::access(path.c_str(), R_OK) != 0) {
    throw Error(ErrorCode::kNotFound, "'" + path.string() +
                                          "' cannot be read (permission denied); fix its " +
                                          "permissions or run as a user who can read it");
  }
}

void require_writable_output(const fs::path& path) {
  const fs::path folder = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::error_code ec;
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
