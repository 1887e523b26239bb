// Label raster to polygons: cv::findContours (RETR_CCOMP) finds each region's border pixels and
// its holes; each border chain is then turned into the pixel-corner (crack) boundary, so the
// unsimplified polygons cover exactly the region's pixels, and simplified with approxPolyDP.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <opencv2/imgproc.hpp>
#include <set>

#include "slidestream/core.hpp"
#include "slidestream/export.hpp"

namespace slidestream {

namespace {

using CornerRing = std::vector<cv::Point>;  // raster pixel corners

/// Corners of a pixel clockwise on screen (y down): top-left, top-right, bottom-right,
/// bottom-left.
constexpr std::array<int, 4> kCornerDx{{0, 1, 1, 0}};
constexpr std::array<int, 4> kCornerDy{{0, 0, 1, 1}};

cv::Point corner_of(const cv::Point& pixel, int corner) {
  return {pixel.x + kCornerDx[corner], pixel.y + kCornerDy[corner]};
}

/// Index (0..8) of a step between 8-neighbours, dx and dy in -1..1.
int step_index(const cv::Point& step) {
  return (step.y + 1) * 3 + (step.x + 1);
}

// Walking a border with the region on the right (clockwise on screen), the crack boundary
// passes from pixel to pixel through one corner that depends only on the step direction:
// E or NE -> top-right of the pixel left, S or SE -> bottom-right, W or SW -> bottom-left,
// N or NW -> top-left. Tables indexed by step_index (row: dy = -1, 0, 1; column: dx).
constexpr std::array<int, 9> kExitCorner{{0, 0, 1, 3, -1, 1, 3, 2, 2}};
// The same corner seen from the pixel entered.
constexpr std::array<int, 9> kEntryCorner{{2, 3, 3, 2, -1, 0, 1, 1, 0}};

/// The crack boundary of a findContours border chain (CHAIN_APPROX_NONE, 8-connected steps).
/// OpenCV walks both outer and hole borders with the region on the left, so the chain is
/// walked backwards. Corners where the direction does not change are left out.
CornerRing crack_ring(const std::vector<cv::Point>& chain) {
  CornerRing corners;
  const std::size_t count = chain.size();
  if (count == 1) {
    for (int corner = 0; corner < 4; ++corner) {
      corners.push_back(corner_of(chain[0], corner));
    }
    return corners;
  }
  corners.reserve(count * 2);
  // Reversed chain: pixel k is chain[count - 1 - k].
  const auto pixel = [&](std::size_t k) { return chain[count - 1 - (k % count)]; };
  for (std::size_t k = 0; k < count; ++k) {
    const cv::Point current = pixel(k);
    const cv::Point step_in = current - pixel(k + count - 1);
    const cv::Point step_out = pixel(k + 1) - current;
    const int entry = kEntryCorner[step_index(step_in)];
    const int exit = kExitCorner[step_index(step_out)];
    // Turning back diagonally (a pixel hanging on by one corner) goes all around it.
    int edges = (exit - entry + 4) % 4;
    if (edges == 0 && step_out == -step_in) {
      edges = 4;
    }
    for (int corner = entry; edges > 0; --edges) {
      corner = (corner + 1) % 4;
      corners.push_back(corner_of(current, corner));
    }
  }
  // Merge collinear runs: keep a corner only where the direction changes.
  CornerRing turns;
  const std::size_t size = corners.size();
  for (std::size_t i = 0; i < size; ++i) {
    const cv::Point before = corners[i] - corners[(i + size - 1) % size];
    const cv::Point after = corners[(i + 1) % size] - corners[i];
    if (before.cross(after) != 0 || before.dot(after) < 0) {
      turns.push_back(corners[i]);
    }
  }
  return turns;
}

/// Twice the signed shoelace area (y down: positive when clockwise on screen), exact.
std::int64_t twice_signed_area(const CornerRing& ring) {
  std::int64_t sum = 0;
  for (std::size_t i = 0; i < ring.size(); ++i) {
    const cv::Point& a = ring[i];
    const cv::Point& b = ring[(i + 1) % ring.size()];
    sum += static_cast<std::int64_t>(a.x) * b.y - static_cast<std::int64_t>(b.x) * a.y;
  }
  return sum;
}

/// Douglas-Peucker simplification; a ring that would fall below 3 vertices stays as it was.
/// The result starts at its top-left-most vertex, whatever approxPolyDP kept.
CornerRing simplify(const CornerRing& ring, double tolerance_px) {
  CornerRing simplified;
  if (tolerance_px > 0.0) {
    cv::approxPolyDP(ring, simplified, tolerance_px, true);
  }
  if (simplified.size() < 3) {
    simplified = ring;
  }
  const auto first = std::min_element(
      simplified.begin(), simplified.end(),
      [](const cv::Point& a, const cv::Point& b) { return a.y != b.y ? a.y < b.y : a.x < b.x; });
  std::rotate(simplified.begin(), first, simplified.end());
  return simplified;
}

class RegionTracer {
 public:
  explicit RegionTracer(const TraceOptions& options)
      : options_(options),
        um2_per_pixel_(options.downsample_x * options.level0_spacing.x_um * options.downsample_y *
                       options.level0_spacing.y_um) {}

  void trace_class(const cv::Mat& labels, const LabelClass& label_class,
                   std::vector<TracedRegion>& out) const {
    cv::Mat mask;
    cv::compare(labels, label_class.value, mask, cv::CMP_EQ);
    std::vector<std::vector<cv::Point>> borders;
    std::vector<cv::Vec4i> hierarchy;  // next, previous, first child, parent
    cv::findContours(mask, borders, hierarchy, cv::RETR_CCOMP, cv::CHAIN_APPROX_NONE);
    mask.release();
    for (std::size_t i = 0; i < borders.size(); ++i) {
      if (hierarchy[i][3] >= 0) {
        continue;  // a hole, handled with its outer border
      }
      TracedRegion region = trace_region(borders, hierarchy, static_cast<int>(i), label_class);
      if (region.area_um2 >= options_.min_area_um2) {
        out.push_back(std::move(region));
      }
    }
  }

 private:
  TracedRegion trace_region(const std::vector<std::vector<cv::Point>>& borders,
                            const std::vector<cv::Vec4i>& hierarchy, int outer_index,
                            const LabelClass& label_class) const {
    TracedRegion region;
    region.class_name = label_class.name;
    region.class_value = label_class.value;
    region.colour = label_class.colour;
    const std::vector<cv::Point>& outer_chain = borders[outer_index];
    // The region's top-left-most pixel lies on its outer border.
    const cv::Point first = *std::min_element(
        outer_chain.begin(), outer_chain.end(),
        [](const cv::Point& a, const cv::Point& b) { return a.y != b.y ? a.y < b.y : a.x < b.x; });
    region.first_corner_l0 = to_level0(first);
    const CornerRing outer = crack_ring(outer_chain);
    std::int64_t twice_area = twice_signed_area(outer);
    region.rings.push_back(to_level0(simplify(outer, options_.simplify_tolerance_px)));
    for (int child = hierarchy[outer_index][2]; child >= 0; child = hierarchy[child][0]) {
      const CornerRing hole = crack_ring(borders[child]);
      const std::int64_t twice_hole_area = twice_signed_area(hole);  // negative
      if (-0.5 * static_cast<double>(twice_hole_area) * um2_per_pixel_ <
          options_.min_hole_area_um2) {
        continue;  // filled
      }
      twice_area += twice_hole_area;
      region.rings.push_back(to_level0(simplify(hole, options_.simplify_tolerance_px)));
    }
    region.hole_count = static_cast<int>(region.rings.size()) - 1;
    region.area_um2 = 0.5 * static_cast<double>(twice_area) * um2_per_pixel_;
    return region;
  }

  cv::Point2d to_level0(const cv::Point& corner) const {
    return {options_.origin_l0.x + corner.x * options_.downsample_x,
            options_.origin_l0.y + corner.y * options_.downsample_y};
  }

  std::vector<cv::Point2d> to_level0(const CornerRing& ring) const {
    std::vector<cv::Point2d> level0;
    level0.reserve(ring.size());
    for (const cv::Point& corner : ring) {
      level0.push_back(to_level0(corner));
    }
    return level0;
  }

  const TraceOptions& options_;
  double um2_per_pixel_;
};

void warn_untraced_values(const cv::Mat& labels, const std::vector<LabelClass>& classes) {
  std::array<int, 256> histogram{};
  for (int row = 0; row < labels.rows; ++row) {
    const auto* pixels = labels.ptr<std::uint8_t>(row);
    for (int col = 0; col < labels.cols; ++col) {
      histogram[pixels[col]] = 1;
    }
  }
  std::set<int> known{0};
  for (const LabelClass& label_class : classes) {
    known.insert(label_class.value);
  }
  std::string untraced;
  for (int value = 0; value < 256; ++value) {
    if (histogram[value] != 0 && known.count(value) == 0) {
      untraced += (untraced.empty() ? "" : ", ") + std::to_string(value);
    }
  }
  if (!untraced.empty()) {
    spdlog::warn("trace_regions: label values {} are not in the class list; treated as background",
                 untraced);
  }
}

}  // namespace

void TraceOptions::validate() const {
  const auto positive = [](double value) { return std::isfinite(value) && value > 0.0; };
  if (!positive(downsample_x) || !positive(downsample_y)) {
    throw Error(ErrorCode::kInvalidArgument,
                "trace: downsample_x and downsample_y (level-0 px per raster px) must be "
                "positive, got " +
                    std::to_string(downsample_x) + " and " + std::to_string(downsample_y));
  }
  if (!positive(level0_spacing.x_um) || !positive(level0_spacing.y_um)) {
    throw Error(ErrorCode::kInvalidArgument,
                "trace: level0_spacing (um/px) must be positive on both axes, e.g. 0.25");
  }
  if (!std::isfinite(origin_l0.x) || !std::isfinite(origin_l0.y)) {
    throw Error(ErrorCode::kInvalidArgument, "trace: origin_l0 must be finite");
  }
  if (!(simplify_tolerance_px >= 0.0) || !(min_area_um2 >= 0.0) || !(min_hole_area_um2 >= 0.0)) {
    throw Error(ErrorCode::kInvalidArgument,
                "trace: simplify_tolerance_px, min_area_um2 and min_hole_area_um2 must be >= 0");
  }
}

std::vector<TracedRegion> trace_regions(const cv::Mat& labels,
                                        const std::vector<LabelClass>& classes,
                                        const TraceOptions& options) {
  options.validate();
  if (labels.type() != CV_8UC1 || labels.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                "trace_regions: the label raster must be a non-empty CV_8UC1 image of class "
                "values");
  }
  warn_untraced_values(labels, classes);
  const RegionTracer tracer(options);
  std::vector<TracedRegion> regions;
  for (const LabelClass& label_class : classes) {
    if (label_class.value == 0) {
      continue;  // background
    }
    const std::size_t class_begin = regions.size();
    tracer.trace_class(labels, label_class, regions);
    std::sort(regions.begin() + static_cast<std::ptrdiff_t>(class_begin), regions.end(),
              [](const TracedRegion& a, const TracedRegion& b) {
                return a.first_corner_l0.y != b.first_corner_l0.y
                           ? a.first_corner_l0.y < b.first_corner_l0.y
                           : a.first_corner_l0.x < b.first_corner_l0.x;
              });
  }
  return regions;
}

std::vector<Annotation> to_annotations(const std::vector<TracedRegion>& regions) {
  std::vector<Annotation> annotations;
  annotations.reserve(regions.size());
  for (std::size_t i = 0; i < regions.size(); ++i) {
    annotations.push_back(Annotation{regions[i].class_name, regions[i].rings, static_cast<int>(i)});
  }
  return annotations;
}

}  // namespace slidestream
