// slidestream label classes: a class's name, its value in label rasters and its colour. Shared by
// annotations, models, stitching and exports.
#pragma once

#include <cstdint>
#include <opencv2/core.hpp>
#include <string>

namespace slidestream {

/// A class of the label map.
struct LabelClass {
  std::string name;
  std::uint8_t value = 0;
  cv::Vec3b colour{0, 0, 0};  ///< RGB, for overlays and exports
};

}  // namespace slidestream
