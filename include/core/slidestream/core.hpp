// slidestream core: the one error type, exit codes, progress reporting and atomic outputs.
//
// Every module reports failure by throwing `slidestream::Error`; the CLI maps its code to an
// exit status in one place (docs/CLI.md lists them). The library logs through spdlog's default
// logger and never installs sinks: that is the application's choice.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "slidestream/version.hpp"

namespace slidestream {

/// What went wrong, coarse enough for a script to act on. Values are the process exit codes.
enum class ErrorCode : int {
  kInternal = 1,           ///< a bug or an unexpected library failure
  kInvalidArgument = 2,    ///< a bad option value or command line
  kNotFound = 3,           ///< an input path that does not exist, is a folder or cannot be read
  kUnsupportedFormat = 4,  ///< a file no backend can open
  kCorruptData = 5,        ///< a file that opened but failed while reading (truncated, damaged)
  kMissingMetadata = 6,    ///< e.g. no pixel spacing (MPP) and no --mpp
  kInvalidConfig = 7,      ///< a config file or --set value that fails validation
  kOutputError = 8,        ///< an output that cannot be written
  kModelError = 9,         ///< a model that cannot be loaded or does not fit the job
  kPartialFailure = 10,    ///< a batch where some inputs failed
};

/// Stable lower-case name of a code, for JSON reports ("unsupported_format", ...).
std::string_view error_code_name(ErrorCode code);

/// The one exception type of the library. The message names the file and the fix.
class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

/// Exit status for an error code (its numeric value; 0 is success).
inline int exit_code(ErrorCode code) {
  return static_cast<int>(code);
}

/// Throws kNotFound unless `path` is an existing, readable regular file. FIFOs, devices and
/// sockets are refused before anything opens them (reading one could block forever), and so are
/// links that cannot be resolved (a loop).
void require_readable_file(const std::filesystem::path& path);

/// A path a command reads or writes, with the flag or role that named it ("-o", "--mask",
/// "the slide"), for messages.
struct NamedPath {
  std::string role;
  std::filesystem::path path;
};

/// Throws kInvalidArgument, before any work, when an output is the same file as an input or as
/// another output: the same path, a symlink to it or a hard link (the same inode). Inputs that
/// do not exist are ignored; outputs are compared even if they do not exist yet.
void require_distinct_files(const std::vector<NamedPath>& inputs,
                            const std::vector<NamedPath>& outputs);

/// Throws kInvalidArgument unless `path` ends in one of `extensions` (lower case, with the
/// dot; compared case-insensitively), so a name never claims another format than the one
/// written. `format` says what is written ("a pyramidal TIFF").
void require_extension(const std::filesystem::path& path,
                       const std::vector<std::string>& extensions, const std::string& role,
                       const std::string& format);
/// require_extension for .tif / .tiff.
void require_tiff_name(const std::filesystem::path& path, const std::string& role);

/// Creates `folder` (and its parents) for outputs; throws kOutputError naming it and the reason
/// (a parent that is a file, no permission, ...) instead of a filesystem_error.
void create_output_folder(const std::filesystem::path& folder);

/// Whether `value` is a finite number within [lo, hi]. NaN fails, unlike `x < lo || x > hi`.
inline bool is_within(double value, double lo, double hi) {
  return value >= lo && value <= hi;
}

/// The largest thread count any option accepts: 4 x the cores, at least 256 (beyond that a
/// thread pool only costs memory and start-up time).
int max_threads();

/// Throws kInvalidArgument unless 0 <= `threads` <= max_threads(); `what` names the option.
void require_thread_count(int threads, const std::string& what);

/// Throws kOutputError unless a file can be created at `path` (its folder exists and is writable).
void require_writable_output(const std::filesystem::path& path);

/// An output written under a temporary name beside its final path and renamed on `commit()`,
/// so a failure or a crash never leaves a partial file under the final name. The temporary
/// keeps the final extension, so writers that pick a format from it still work.
class AtomicOutput {
 public:
  explicit AtomicOutput(std::filesystem::path final_path);
  AtomicOutput(const AtomicOutput&) = delete;
  AtomicOutput& operator=(const AtomicOutput&) = delete;
  ~AtomicOutput();

  const std::filesystem::path& temp_path() const { return temp_path_; }
  const std::filesystem::path& final_path() const { return final_path_; }
  /// Renames the temporary onto the final path; throws kOutputError if that fails.
  void commit();

 private:
  std::filesystem::path final_path_;
  std::filesystem::path temp_path_;
  bool committed_ = false;
};

/// Writes `text` to `path` through an AtomicOutput; throws kOutputError if writing fails.
void write_text_atomically(const std::filesystem::path& path, const std::string& text);

/// A terminal progress bar on stderr ("label [####  ] done/total  rate/s  ETA"). Silent when
/// disabled or when stderr is not a terminal. `advance` is thread-safe and cheap; the line is
/// redrawn at most ten times a second.
class ProgressBar {
 public:
  ProgressBar(std::string label, std::uint64_t total, bool enabled);
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;
  ~ProgressBar();

  void advance(std::uint64_t count = 1);
  void set_total(std::uint64_t total);
  /// Draws the final state and ends the line (called by the destructor if not before).
  void finish();
  std::uint64_t done() const { return done_.load(); }

  /// Whether progress bars are wanted at all (the CLI turns them off with --quiet).
  static void set_globally_enabled(bool enabled);
  static bool globally_enabled();

 private:
  void draw(bool final_line);

  std::string label_;
  std::atomic<std::uint64_t> total_;
  std::atomic<std::uint64_t> done_{0};
  bool enabled_;
  bool finished_ = false;
  std::mutex draw_mutex_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace slidestream
