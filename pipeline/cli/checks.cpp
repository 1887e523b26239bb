#include "checks.hpp"

#include <cmath>
#include <sstream>

#include "slidestream/core.hpp"
#include "slidestream/models/model.hpp"

namespace slidestream::cli {

namespace {

std::string format_number(double value) {
  std::ostringstream text;
  text << value;
  return text.str();
}

// The whole text as a number, or NaN when it is not one (trailing text included).
double parse_number(const std::string& text) {
  try {
    size_t used = 0;
    const double value = std::stod(text, &used);
    return used == text.size() ? value : std::nan("");
  } catch (const std::exception&) {
    return std::nan("");
  }
}

CLI::Validator range_check(double lo, bool lo_open, double hi, const std::string& unit) {
  const std::string range = std::string(lo_open ? "(" : "[") + format_number(lo) + ", " +
                            format_number(hi) + "]" + (unit.empty() ? "" : " " + unit);
  return CLI::Validator(
      [=](std::string& input) -> std::string {
        const double value = parse_number(input);
        const bool above_lo = lo_open ? value > lo : value >= lo;
        if (std::isfinite(value) && above_lo && value <= hi) {
          return {};
        }
        return "'" + input + "' is not a number in " + range;
      },
      "in " + range);
}

}  // namespace

CLI::Validator number_in(double lo, double hi, const std::string& unit) {
  return range_check(lo, false, hi, unit);
}

CLI::Validator positive_number(double hi, const std::string& unit) {
  return range_check(0.0, true, hi, unit);
}

CLI::Validator integer_in(long long lo, long long hi) {
  const std::string range = std::to_string(lo) + ".." + std::to_string(hi);
  return CLI::Validator(
      [=](std::string& input) -> std::string {
        try {
          size_t used = 0;
          const long long value = std::stoll(input, &used);
          if (used == input.size() && value >= lo && value <= hi) {
            return {};
          }
        } catch (const std::exception&) {
        }
        return "'" + input + "' is not an integer in " + range;
      },
      range);
}

CLI::Validator multiple_of(long long step) {
  return CLI::Validator(
      [=](std::string& input) -> std::string {
        try {
          if (std::stoll(input) % step == 0) {
            return {};
          }
        } catch (const std::exception&) {
        }
        return "'" + input + "' is not a multiple of " + std::to_string(step);
      },
      "a multiple of " + std::to_string(step));
}

CLI::Validator device_name() {
  return CLI::Validator(
      [](std::string& input) -> std::string {
        InferenceOptions options;
        options.device = input;
        try {
          options.validate();
        } catch (const Error& error) {
          return error.what();
        }
        return {};
      },
      "auto, cpu, cuda or cuda:N");
}

CLI::Validator thread_count() {
  return integer_in(0, max_threads())
      .description("0 (all cores).." + std::to_string(max_threads()));
}

}  // namespace slidestream::cli
