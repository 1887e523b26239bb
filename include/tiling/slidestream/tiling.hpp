// slidestream tiling: plan output tiles over a slide at a physical resolution and read the
// concentric patch sets (target + context branches) that a multi-resolution model consumes.
//
// A tile is defined by its output field of view (FoV) in level-0 pixels; every branch is
// centred on the same level-0 point, at its own spacing and size, so its FoV in microns is
// size_px * spacing_um exactly. Tile order is deterministic (row-major over the output grid).
#pragma once

#include <cstdint>
#include <opencv2/core.hpp>
#include <optional>
#include <string>
#include <vector>

#include "slidestream/io.hpp"
#include "slidestream/model_geometry.hpp"
#include "slidestream/patch_set.hpp"
#include "slidestream/tissue.hpp"

namespace slidestream {

struct PlanOptions {
  /// Output pixels between tile origins; default (nullopt) = output size, so tiles abut.
  std::optional<Size> stride_px;
  /// Keep tiles whose tissue fraction under the output FoV is at least this (0 keeps all).
  double min_tissue_fraction = 0.5;
  /// Only tiles whose output FoV intersects this level-0 rectangle.
  std::optional<Rect> region_l0;
  /// Only tiles whose output centre lies inside one of these level-0 polygons (outer rings).
  std::vector<std::vector<cv::Point2d>> restrict_to_polygons_l0;
};

/// Walks the output grid over the whole slide at the output spacing, row-major, yielding the
/// tiles that pass the filters one at a time, so planning a slide of any size takes constant
/// memory. `mask` may be null (every tile counts as tissue, fraction 1). The slide info, mask
/// and geometry must outlive the planner.
class TilePlanner {
 public:
  TilePlanner(const SlideInfo& slide, const TissueMask* mask, const ModelGeometry& geometry,
              PlanOptions options = {});
  /// The next tile of the plan, nullopt after the last.
  std::optional<TileSpec> next();
  /// How many tiles the whole plan yields (a pass over the grid that stores nothing).
  std::uint64_t count() const;
  std::int64_t columns() const { return columns_; }
  std::int64_t rows() const { return rows_; }

 private:
  std::optional<TileSpec> tile_at(std::int64_t column, std::int64_t row) const;

  const SlideInfo* slide_;
  const TissueMask* mask_;
  const ModelGeometry* geometry_;
  PlanOptions options_;
  Size stride_;
  double out_per_l0_x_ = 1;
  double out_per_l0_y_ = 1;
  std::int64_t columns_ = 0;
  std::int64_t rows_ = 0;
  std::int64_t cursor_ = 0;  // next grid cell, row-major
};

/// The whole plan as a vector (for tests and small slides; jobs stream a TilePlanner).
std::vector<TileSpec> plan_tiles(const SlideInfo& slide, const TissueMask* mask,
                                 const ModelGeometry& geometry, const PlanOptions& options = {});

/// Reads every branch of `spec` at its own spacing (context branches from coarse levels).
PatchSet read_patch_set(const SlideReader& slide, const TileSpec& spec,
                        const ModelGeometry& geometry);

}  // namespace slidestream
