// The names of an enum's values, kept in one table per enum, so that printing a value, parsing
// a config or flag value and listing the choices in an error all read the same table.
//
//   constexpr EnumNames<Backend, 3> kBackendNames{{
//       {Backend::kAuto, "auto"}, {Backend::kOpenSlide, "openslide"}, {Backend::kVips, "vips"}}};
//   enum_name(kBackendNames, Backend::kVips)                            -> "vips"
//   parse_enum(kBackendNames, "vip", "--backend", ErrorCode::kInvalidArgument)
//     throws "--backend 'vip' is not one of auto, openslide, vips"
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

#include "slidestream/core.hpp"

namespace slidestream {

template <typename Enum, std::size_t N>
using EnumNames = std::array<std::pair<Enum, std::string_view>, N>;

/// "a, b, c": the names in table order.
template <typename Enum, std::size_t N>
std::string enum_choices(const EnumNames<Enum, N>& names) {
  std::string text;
  for (const auto& [value, name] : names) {
    text += (text.empty() ? "" : ", ") + std::string(name);
  }
  return text;
}

/// The name of `value` (every value of the enum is in the table; a missing one is a bug).
template <typename Enum, std::size_t N>
std::string_view enum_name(const EnumNames<Enum, N>& names, Enum value) {
  for (const auto& [candidate, name] : names) {
    if (candidate == value) {
      return name;
    }
  }
  throw Error(ErrorCode::kInternal, "an enum value has no name in its table");
}

/// The value named `text`; otherwise throws `code` naming `what` (the option or config key),
/// the text and the choices.
template <typename Enum, std::size_t N>
Enum parse_enum(const EnumNames<Enum, N>& names, std::string_view text, std::string_view what,
                ErrorCode code) {
  for (const auto& [value, name] : names) {
    if (name == text) {
      return value;
    }
  }
  throw Error(code, std::string(what) + " '" + std::string(text) + "' is not one of " +
                        enum_choices(names));
}

}  // namespace slidestream
