// slidestream patch sets: one planned tile and the pixels of all its branches, what the tile
// pipeline carries from the reader to a model or a dataset.
#pragma once

#include <cstdint>
#include <opencv2/core.hpp>
#include <vector>

#include "slidestream/geometry.hpp"

namespace slidestream {

/// One planned tile. All rectangles are exact level-0 fields of view.
struct TileSpec {
  std::uint64_t index = 0;  ///< position in the plan (row-major), stable for a slide + options
  std::int64_t column = 0;  ///< grid column/row in output tiles
  std::int64_t row = 0;
  RectF output_l0;               ///< the output tile
  std::vector<RectF> branch_l0;  ///< one per branch, same centre as output_l0
  float tissue_fraction = 0;     ///< tissue under output_l0 (0..1)
};

/// The pixels of one tile: one RGB patch and one validity mask per branch.
struct PatchSet {
  TileSpec spec;
  std::vector<cv::Mat> branches;  ///< CV_8UC3 RGB, branch size
  std::vector<cv::Mat> valid;     ///< CV_8UC1, 255 on the slide, 0 in the padding
  std::vector<int> levels;        ///< pyramid level each branch was read from
  std::vector<cv::Mat> labels;    ///< CV_8UC1 per branch when labels are extracted, else empty
};

}  // namespace slidestream
