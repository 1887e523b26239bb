// Shared by the fuzz harnesses of tests/fuzz (docs/RELIABILITY.md, "Fuzzing"): the contract
// every parser is held to, per-process scratch files, and the input layouts of the harnesses.
//
// The contract: any input either parses or throws slidestream::Error with one of the codes the
// target documents (never kInternal). Anything else escaping (another exception type, an Error
// with a code the target does not document), a crash, a sanitizer report or a hang is a finding;
// the harness aborts so libFuzzer records the input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "slidestream/core.hpp"

// libFuzzer's entry point; the GCC build drives it from replay_main.cpp instead.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace slidestream::fuzz {

/// Runs `parse` under the contract: returns when it succeeds or throws an Error whose code is in
/// `allowed`; otherwise prints what escaped and aborts. The first call silences the library's
/// logs (spdlog), so warnings about skipped input do not flood the fuzzer's output, unless
/// SLIDESTREAM_FUZZ_VERBOSE=1, which keeps them and prints every clean error too.
void expect_clean(const std::function<void()>& parse, std::initializer_list<ErrorCode> allowed);

/// Prints `what` as a finding and aborts (for properties a harness checks after a success).
[[noreturn]] void finding(const std::string& what);

/// The fuzz input as text (bytes unchanged; may hold NULs).
std::string as_text(const std::uint8_t* data, std::size_t size);

/// Writes `bytes` to `name` in this process's scratch folder (under the system temp folder,
/// named by the process id, removed at exit) and returns its path. The same name is
/// overwritten by the next input.
std::filesystem::path scratch_file(const std::string& name, const std::string& bytes);

/// The input split at lines that are exactly `separator` (the separator lines dropped).
std::vector<std::string> split_sections(const std::string& text, const std::string& separator);

/// The lines of `text` ('\n'; a final line without '\n' counts, an empty last line does not).
std::vector<std::string> split_lines(const std::string& text);

/// A config harness input: a YAML file, then a line `#--set`, then one `--set` assignment per
/// line. The separator is a YAML comment, so a seed is also a valid config on its own. An input
/// that starts with the separator means "no config file, only --set".
struct ConfigInput {
  std::optional<std::filesystem::path> yaml_path;
  std::vector<std::string> overrides;
};
ConfigInput config_input(const std::uint8_t* data, std::size_t size);

/// The contract of a config loader (`load(path, overrides)` returning a config whose YAML, the
/// one it records in its outputs, `record(config)` returns): bad input is kInvalidConfig; a config
/// that loads loads again from the YAML it records and records the same YAML (outputs keep it, and
/// `train` reads an extract's classes back from it).
template <typename Loader, typename Record>
void check_config_loader(const std::uint8_t* data, std::size_t size, Loader load, Record record) {
  const ConfigInput input = config_input(data, size);
  std::string recorded;
  expect_clean([&] { recorded = record(load(input.yaml_path, input.overrides)); },
               {ErrorCode::kInvalidConfig});
  if (recorded.empty()) {
    return;
  }
  const std::filesystem::path again = scratch_file("recorded.yaml", recorded);
  std::string reloaded;
  try {
    reloaded = record(load(again, {}));
  } catch (const std::exception& error) {
    finding(std::string("the recorded config does not load again: ") + error.what() +
            "\n--- recorded:\n" + recorded);
  }
  if (reloaded != recorded) {
    finding("the recorded config changes when loaded again\n--- recorded:\n" + recorded +
            "--- reloaded:\n" + reloaded);
  }
}

}  // namespace slidestream::fuzz
