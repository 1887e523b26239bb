// slidestream annotations: read QuPath GeoJSON, ASAP XML and Aperio ImageScope XML polygons,
// map class names to label values, and rasterize them for any patch at any spacing.
//
// Coordinates are continuous level-0 pixels (pixel i spans [i, i + 1)).
#pragma once

#include <cstdint>
#include <filesystem>
#include <opencv2/core.hpp>
#include <optional>
#include <string>
#include <vector>

#include "slidestream/geometry.hpp"
#include "slidestream/label_class.hpp"

namespace slidestream {

/// One polygon with holes: rings[0] is the outer boundary, the rest are holes.
struct Annotation {
  std::string class_name;  ///< QuPath classification.name, ASAP PartOfGroup, ImageScope Name
  std::vector<std::vector<cv::Point2d>> rings;
  int source_index = 0;  ///< feature / annotation number in the file (for messages)
};

/// Reads annotations from a .geojson/.json (QuPath), .xml (ASAP or ImageScope, told apart by
/// the root element), optionally gzip-compressed (.gz). MultiPolygons become one Annotation per
/// polygon. Throws kInvalidConfig with the line (XML) or feature index (GeoJSON) of a malformed
/// entry, kNotFound for a missing file.
std::vector<Annotation> read_annotations(const std::filesystem::path& path);

/// Class names to label values. Drawing order is priority: where polygons of different classes
/// overlap, the class listed later wins.
struct LabelMap {
  std::vector<LabelClass> classes;
  /// Annotations whose class is not in the map are skipped (with a warning) instead of an error.
  bool ignore_unknown = false;
  /// Class given to annotations without a class name (e.g. MoNuSeg's ImageScope regions).
  std::optional<std::string> unnamed_class;

  /// Throws kInvalidConfig for duplicate names or values, or value 0 (reserved: background).
  void validate() const;
  /// The class of `name` (after unnamed_class), nullptr when unknown.
  const LabelClass* find(const std::string& name) const;
};

/// The label raster of the level-0 field of view `fov_l0` sampled at `size_px` output pixels:
/// an output pixel takes the value of the class whose polygon contains its centre (even-odd
/// rule with holes; later classes win), 0 elsewhere. Polygons are filled at the output
/// resolution with sub-pixel vertex precision, not resized from a coarse mask. Throws
/// kInvalidConfig for an unknown class unless the map ignores them.
cv::Mat rasterize_annotations(const std::vector<Annotation>& annotations, const LabelMap& labels,
                              const RectF& fov_l0, Size size_px);

/// A label image aligned with level 0 of a slide (e.g. MoNuSeg's `*_inst.png`): any 8- or
/// 16-bit single-channel image read whole; values map to labels by a rule.
class LabelRaster {
 public:
  /// `rule`: "nonzero:V" (any value > 0 becomes V, e.g. instances -> class 1) or "identity"
  /// (values are labels, 8-bit). Throws kInvalidConfig for a bad rule, kNotFound/kUnsupported
  /// for an unreadable file.
  LabelRaster(const std::filesystem::path& path, const std::string& rule);

  Size size() const;
  /// Labels of `fov_l0` at `size_px`, nearest neighbour at output pixel centres; 0 off-raster.
  cv::Mat sample(const RectF& fov_l0, Size size_px) const;

 private:
  cv::Mat labels_;  // CV_8UC1 after the rule
};

}  // namespace slidestream
