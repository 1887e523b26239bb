#include <cmath>
#include <opencv2/imgproc.hpp>
#include <sstream>

#include "slidestream/core.hpp"
#include "slidestream/tiling.hpp"

namespace slidestream {

namespace {

// Output tiles needed along one axis so that the last one reaches the slide's far edge.
std::int64_t tile_count(double extent_out_px, std::int64_t size, std::int64_t stride) {
  if (extent_out_px <= static_cast<double>(size)) {
    return 1;
  }
  return static_cast<std::int64_t>(
             std::ceil((extent_out_px - static_cast<double>(size)) / static_cast<double>(stride))) +
         1;
}

RectF centred(double center_x, double center_y, const BranchGeometry& branch, Spacing spacing) {
  const double width = branch.fov_um_x() / spacing.x_um;
  const double height = branch.fov_um_y() / spacing.y_um;
  return RectF{center_x - width / 2.0, center_y - height / 2.0, width, height};
}

bool overlaps(const RectF& a, const Rect& b) {
  return a.x < static_cast<double>(b.right()) && a.x + a.width > static_cast<double>(b.x) &&
         a.y < static_cast<double>(b.bottom()) && a.y + a.height > static_cast<double>(b.y);
}

bool inside_any(const std::vector<std::vector<cv::Point2d>>& polygons, double x, double y) {
  for (const auto& polygon : polygons) {
    std::vector<cv::Point2f> contour(polygon.begin(), polygon.end());
    if (contour.size() >= 3 &&
        cv::pointPolygonTest(contour, cv::Point2f(static_cast<float>(x), static_cast<float>(y)),
                             false) >= 0) {
      return true;
    }
  }
  return false;
}

}  // namespace

TilePlanner::TilePlanner(const SlideInfo& slide, const TissueMask* mask,
                         const ModelGeometry& geometry, PlanOptions options)
    : slide_(&slide), mask_(mask), geometry_(&geometry), options_(std::move(options)) {
  geometry.validate();
  const BranchGeometry& output = geometry.output;
  stride_ = options_.stride_px.value_or(output.size_px);
  if (stride_.width <= 0 || stride_.height <= 0) {
    throw Error(ErrorCode::kInvalidConfig, "the tile stride must be positive");
  }
  out_per_l0_x_ = slide.spacing.x_um / output.spacing_um;
  out_per_l0_y_ = slide.spacing.y_um / output.spacing_um;
  columns_ = tile_count(static_cast<double>(slide.size().width) * out_per_l0_x_,
                        output.size_px.width, stride_.width);
  rows_ = tile_count(static_cast<double>(slide.size().height) * out_per_l0_y_,
                     output.size_px.height, stride_.height);
}

std::optional<TileSpec> TilePlanner::tile_at(std::int64_t column, std::int64_t row) const {
  const BranchGeometry& output = geometry_->output;
  TileSpec spec;
  spec.index = static_cast<std::uint64_t>(row * columns_ + column);
  spec.column = column;
  spec.row = row;
  spec.output_l0 = RectF{static_cast<double>(column * stride_.width) / out_per_l0_x_,
                         static_cast<double>(row * stride_.height) / out_per_l0_y_,
                         static_cast<double>(output.size_px.width) / out_per_l0_x_,
                         static_cast<double>(output.size_px.height) / out_per_l0_y_};
  const double center_x = spec.output_l0.x + spec.output_l0.width / 2.0;
  const double center_y = spec.output_l0.y + spec.output_l0.height / 2.0;
  if (options_.region_l0 && !overlaps(spec.output_l0, *options_.region_l0)) {
    return std::nullopt;
  }
  if (!options_.restrict_to_polygons_l0.empty() &&
      !inside_any(options_.restrict_to_polygons_l0, center_x, center_y)) {
    return std::nullopt;
  }
  spec.tissue_fraction =
      mask_ != nullptr ? static_cast<float>(mask_->fraction_in(spec.output_l0)) : 1.0f;
  if (spec.tissue_fraction < options_.min_tissue_fraction) {
    return std::nullopt;
  }
  for (const BranchGeometry& branch : geometry_->branches) {
    spec.branch_l0.push_back(centred(center_x, center_y, branch, slide_->spacing));
  }
  return spec;
}

std::optional<TileSpec> TilePlanner::next() {
  while (cursor_ < columns_ * rows_) {
    const std::int64_t cell = cursor_++;
    if (auto tile = tile_at(cell % columns_, cell / columns_)) {
      return tile;
    }
  }
  return std::nullopt;
}

std::uint64_t TilePlanner::count() const {
  std::uint64_t kept = 0;
  for (std::int64_t cell = 0; cell < columns_ * rows_; ++cell) {
    kept += tile_at(cell % columns_, cell / columns_).has_value() ? 1 : 0;
  }
  return kept;
}

std::vector<TileSpec> plan_tiles(const SlideInfo& slide, const TissueMask* mask,
                                 const ModelGeometry& geometry, const PlanOptions& options) {
  TilePlanner planner(slide, mask, geometry, options);
  std::vector<TileSpec> tiles;
  while (auto tile = planner.next()) {
    tiles.push_back(std::move(*tile));
  }
  return tiles;
}

PatchSet read_patch_set(const SlideReader& slide, const TileSpec& spec,
                        const ModelGeometry& geometry) {
  PatchSet patches;
  patches.spec = spec;
  for (size_t b = 0; b < geometry.branches.size(); ++b) {
    Patch patch = slide.read_fov(spec.branch_l0.at(b), geometry.branches[b].size_px);
    patches.branches.push_back(std::move(patch.rgb));
    patches.valid.push_back(std::move(patch.valid));
    patches.levels.push_back(patch.level);
  }
  return patches;
}

}  // namespace slidestream
