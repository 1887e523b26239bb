#include "slidestream/geometry.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "slidestream/core.hpp"

namespace slidestream {

Rect intersect(const Rect& a, const Rect& b) {
  const std::int64_t left = std::max(a.x, b.x);
  const std::int64_t top = std::max(a.y, b.y);
  const std::int64_t right = std::min(a.right(), b.right());
  const std::int64_t bottom = std::min(a.bottom(), b.bottom());
  if (right <= left || bottom <= top) {
    return Rect{left, top, 0, 0};
  }
  return Rect{left, top, right - left, bottom - top};
}

Rect enclosing_rect(const RectF& rect) {
  const auto left = static_cast<std::int64_t>(std::floor(rect.x));
  const auto top = static_cast<std::int64_t>(std::floor(rect.y));
  const auto right = static_cast<std::int64_t>(std::ceil(rect.x + rect.width));
  const auto bottom = static_cast<std::int64_t>(std::ceil(rect.y + rect.height));
  return Rect{left, top, right - left, bottom - top};
}

bool Spacing::is_anisotropic(double relative_tolerance) const {
  return std::abs(x_um - y_um) > relative_tolerance * std::max(x_um, y_um);
}

namespace {

void require_valid_request(Size size_px, double spacing_um) {
  if (size_px.width <= 0 || size_px.height <= 0) {
    throw Error(ErrorCode::kInvalidArgument, "patch size " + std::to_string(size_px.width) + "x" +
                                                 std::to_string(size_px.height) +
                                                 " is not positive; give a size such as 256");
  }
  if (!(spacing_um > 0.0) || !std::isfinite(spacing_um)) {
    std::ostringstream text;
    text << "spacing " << spacing_um << " um/px is not a positive number; give e.g. 0.5";
    throw Error(ErrorCode::kInvalidArgument, text.str());
  }
}

}  // namespace

RectF fov_from_center(Point center_l0, Size size_px, double spacing_um, Spacing slide_spacing) {
  require_valid_request(size_px, spacing_um);
  const double width = static_cast<double>(size_px.width) * spacing_um / slide_spacing.x_um;
  const double height = static_cast<double>(size_px.height) * spacing_um / slide_spacing.y_um;
  return RectF{static_cast<double>(center_l0.x) - width / 2.0,
               static_cast<double>(center_l0.y) - height / 2.0, width, height};
}

RectF fov_from_origin(Point origin_l0, Size size_px, double spacing_um, Spacing slide_spacing) {
  require_valid_request(size_px, spacing_um);
  return RectF{static_cast<double>(origin_l0.x), static_cast<double>(origin_l0.y),
               static_cast<double>(size_px.width) * spacing_um / slide_spacing.x_um,
               static_cast<double>(size_px.height) * spacing_um / slide_spacing.y_um};
}

LevelChoice choose_level(const std::vector<Level>& levels, Spacing slide_spacing, double spacing_um,
                         const LevelChoiceOptions& options) {
  require_valid_request(Size{1, 1}, spacing_um);
  if (levels.empty()) {
    throw Error(ErrorCode::kInternal, "choose_level: the slide has no levels");
  }
  const double limit = spacing_um * (1.0 + options.tolerance);
  int chosen = -1;
  for (size_t level = 0; level < levels.size(); ++level) {
    const double downsample = levels[level].downsample;
    const bool fine_enough =
        downsample * slide_spacing.x_um <= limit && downsample * slide_spacing.y_um <= limit;
    if (fine_enough &&
        (chosen < 0 || downsample > levels[static_cast<size_t>(chosen)].downsample)) {
      chosen = static_cast<int>(level);
    }
  }
  if (chosen < 0) {
    if (!options.allow_upsample) {
      const double finest = std::max(slide_spacing.x_um, slide_spacing.y_um) * levels[0].downsample;
      std::ostringstream text;
      text << "spacing " << spacing_um << " um/px is finer than the slide's level 0 (" << finest
           << " um/px) by more than the " << options.tolerance * 100.0
           << " % tolerance; request at least " << finest / (1.0 + options.tolerance)
           << " um/px (slidestream does not invent detail by upsampling)";
      throw Error(ErrorCode::kInvalidArgument, text.str());
    }
    chosen = 0;
  }
  const double downsample = levels[static_cast<size_t>(chosen)].downsample;
  return LevelChoice{chosen, spacing_um / (downsample * slide_spacing.x_um),
                     spacing_um / (downsample * slide_spacing.y_um)};
}

namespace {

std::int64_t parse_integer(const std::string& text, const std::string& what) {
  size_t used = 0;
  std::int64_t value = 0;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size()) {
    throw Error(ErrorCode::kInvalidArgument,
                "'" + text + "' is not an integer " + what + "; write it as digits, e.g. 256");
  }
  return value;
}

}  // namespace

Size parse_size(const std::string& text) {
  const size_t cross = text.find('x');
  Size size;
  if (cross == std::string::npos) {
    size.width = size.height = parse_integer(text, "size");
  } else {
    size.width = parse_integer(text.substr(0, cross), "width");
    size.height = parse_integer(text.substr(cross + 1), "height");
  }
  if (size.width <= 0 || size.height <= 0) {
    throw Error(ErrorCode::kInvalidArgument,
                "size '" + text + "' must be positive, as W or WxH pixels (e.g. 512 or 512x256)");
  }
  return size;
}

Point parse_point(const std::string& text) {
  const size_t comma = text.find(',');
  if (comma == std::string::npos) {
    throw Error(ErrorCode::kInvalidArgument,
                "point '" + text + "' must be X,Y in level-0 pixels, e.g. 1000,2000");
  }
  return Point{parse_integer(text.substr(0, comma), "x coordinate"),
               parse_integer(text.substr(comma + 1), "y coordinate")};
}

}  // namespace slidestream
