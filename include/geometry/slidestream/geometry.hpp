// slidestream geometry: level-0 rectangles, pixel spacing and level choice.
//
// Level-0 pixel coordinates are the only frame passed between modules. A continuous level-0
// coordinate x lies in pixel floor(x); pixel i spans [i, i + 1). Spacing is in microns per
// pixel (um/px, "MPP"); a patch of `size_px` output pixels at `spacing_um` covers a field of
// view of size_px * spacing_um microns.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace slidestream {

/// A point in level-0 pixels.
struct Point {
  std::int64_t x = 0;
  std::int64_t y = 0;
  bool operator==(const Point& other) const { return x == other.x && y == other.y; }
};

/// A size in pixels (level-0 or output, as documented where it is used).
struct Size {
  std::int64_t width = 0;
  std::int64_t height = 0;
  bool operator==(const Size& other) const {
    return width == other.width && height == other.height;
  }
  bool operator!=(const Size& other) const { return !(*this == other); }
  std::int64_t area() const { return width * height; }
};

/// An integer pixel rectangle [x, x + width) x [y, y + height).
struct Rect {
  std::int64_t x = 0;
  std::int64_t y = 0;
  std::int64_t width = 0;
  std::int64_t height = 0;

  std::int64_t right() const { return x + width; }
  std::int64_t bottom() const { return y + height; }
  bool empty() const { return width <= 0 || height <= 0; }
  std::int64_t area() const { return empty() ? 0 : width * height; }
  bool operator==(const Rect& other) const {
    return x == other.x && y == other.y && width == other.width && height == other.height;
  }
};

/// The overlap of two rectangles (empty, with zero size, when they do not overlap).
Rect intersect(const Rect& a, const Rect& b);

/// A continuous rectangle, e.g. an exact field of view in level-0 pixels.
struct RectF {
  double x = 0;
  double y = 0;
  double width = 0;
  double height = 0;
};

/// The smallest integer rectangle that contains `rect`.
Rect enclosing_rect(const RectF& rect);

/// Pixel spacing in microns per pixel along x and y.
struct Spacing {
  double x_um = 0;
  double y_um = 0;
  /// True when x and y differ by more than `relative_tolerance` (default 1 %).
  bool is_anisotropic(double relative_tolerance = 0.01) const;
};

/// The level-0 field of view of a patch of `size_px` output pixels at `spacing_um`, centred on
/// the continuous level-0 point `center_l0` (integer values are pixel corners, so for even sizes
/// concentric patches at different spacings share their centre exactly).
RectF fov_from_center(Point center_l0, Size size_px, double spacing_um, Spacing slide_spacing);

/// The level-0 field of view of a patch whose top-left corner is `origin_l0`.
RectF fov_from_origin(Point origin_l0, Size size_px, double spacing_um, Spacing slide_spacing);

/// One pyramid level as stored in the file (SlideInfo::levels; choose_level reads size and
/// downsample).
struct Level {
  Size size;                ///< in this level's pixels
  double downsample = 1.0;  ///< from level 0
  Spacing spacing;          ///< um/px at this level
  Size tile_size;           ///< storage tile, {0, 0} when unknown
};

/// How a level is chosen for a requested spacing.
struct LevelChoiceOptions {
  /// A level whose spacing exceeds the requested one by at most this fraction still counts as
  /// fine enough (default 5 %), e.g. 0.499 um/px level 0 serves a 0.5 um/px request and a
  /// 0.52 um/px level serves 0.5 um/px with a 4 % upsample.
  double tolerance = 0.05;
  /// Allow requests finer than level 0 beyond the tolerance (pixels are then interpolated).
  bool allow_upsample = false;
};

/// The chosen level and how many of its pixels make one output pixel along each axis
/// (>= 1 means downsampling).
struct LevelChoice {
  int level = 0;
  double scale_x = 1.0;
  double scale_y = 1.0;
};

/// Picks the coarsest level whose spacing is at most `spacing_um` (within the tolerance), so
/// the read downsamples as little data as possible and never silently upsamples beyond the
/// tolerance. Throws kInvalidArgument for a spacing that is not positive or finer than level 0.
LevelChoice choose_level(const std::vector<Level>& levels, Spacing slide_spacing, double spacing_um,
                         const LevelChoiceOptions& options = {});

/// Parses "W" or "WxH" (pixels, positive) as used on the command line.
Size parse_size(const std::string& text);

/// Parses "X,Y" (level-0 pixels, may be negative) as used on the command line.
Point parse_point(const std::string& text);

}  // namespace slidestream
