// Value checks for numeric options, applied by CLI11 before a value reaches an options struct.
// CLI11's own Range lets NaN through (it tests `x < lo || x > hi`), and our structs would only
// see numbers, not the flag that gave them; these name the flag (CLI11 prefixes it) and the
// range, and make a bad value exit 2 like any other usage error.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "slidestream/core.hpp"

namespace slidestream::cli {

/// A finite number in [lo, hi]; `unit` is appended to the description ("um/px").
CLI::Validator number_in(double lo, double hi, const std::string& unit = "");

/// A finite number > 0 and <= hi.
CLI::Validator positive_number(double hi, const std::string& unit = "");

/// An integer in [lo, hi].
CLI::Validator integer_in(long long lo, long long hi);

/// An integer that is a multiple of `step`.
CLI::Validator multiple_of(long long step);

/// A thread count: 0 (all cores) .. max_threads().
CLI::Validator thread_count();

/// A torch device name (auto, cpu, cuda, cuda:N), by the rule of InferenceOptions::validate.
CLI::Validator device_name();

/// `parse(text)`, with the flag and its value put in front of a parse error's message.
template <typename Parse>
auto parse_flag(const std::string& flag, const std::string& text, Parse parse) {
  try {
    return parse(text);
  } catch (const Error& error) {
    throw Error(error.code(), flag + " '" + text + "': " + error.what());
  }
}

}  // namespace slidestream::cli
