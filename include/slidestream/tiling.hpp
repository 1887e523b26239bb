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
#include "slidestream/tissue.hpp"

namespace slidestream {

/// One input (or the output) of a model: its spacing (um/px) and size (px).
struct BranchGeometry {
  double spacing_um = 0;
  Size size_px;
  /// Field of view in microns.
  double fov_um_x() const { return static_cast<double>(size_px.width) * spacing_um; }
  double fov_um_y() const { return static_cast<double>(size_px.height) * spacing_um; }
};

/// The concentric inputs of a model and its output. Branch 0 is the target.
struct ModelGeometry {
  std::vector<BranchGeometry> branches;
  BranchGeometry output;

  /// Throws kInvalidConfig for no branches, non-positive sizes or spacings, or an output whose
  /// FoV exceeds the target's.
  void validate() const;

  /// HookNet's size rule (valid 3x3 convolutions, depth 4): every input is 32k + 124 px square
  /// and the output is input - 214 px. Throws kInvalidConfig suggesting the nearest legal sizes.
  void validate_hooknet_sizes() const;

  /// HookNet's breast geometry (van Rijthoven et al. 2021): 284 px at 0.5 and 8.0 um/px,
  /// output 70 px at 0.5 um/px.
  static ModelGeometry hooknet_breast();
};

/// One planned tile. All rectangles are exact level-0 fields of view.
struct TileSpec {
  std::uint64_t index = 0;  ///< position in the plan (row-major), stable for a slide + options
  std::int64_t column = 0;  ///< grid column/row in output tiles
  std::int64_t row = 0;
  RectF output_l0;               ///< the output tile
  std::vector<RectF> branch_l0;  ///< one per branch, same centre as output_l0
  float tissue_fraction = 0;     ///< tissue under output_l0 (0..1)
};

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

/// The pixels of one tile: one RGB patch and one validity mask per branch.
struct PatchSet {
  TileSpec spec;
  std::vector<cv::Mat> branches;  ///< CV_8UC3 RGB, branch size
  std::vector<cv::Mat> valid;     ///< CV_8UC1, 255 on the slide, 0 in the padding
  std::vector<int> levels;        ///< pyramid level each branch was read from
  std::vector<cv::Mat> labels;    ///< CV_8UC1 per branch when labels are extracted, else empty
};

/// Reads every branch of `spec` at its own spacing (context branches from coarse levels).
PatchSet read_patch_set(const SlideReader& slide, const TileSpec& spec,
                        const ModelGeometry& geometry);

}  // namespace slidestream
