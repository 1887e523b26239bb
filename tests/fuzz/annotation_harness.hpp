// The contract of read_annotations, shared by the GeoJSON and XML harnesses: bad input is
// kInvalidConfig; what is read has finite vertices, rings of at least 3 of them, and can be
// rasterized as extract does, with a label map of its own class names, over its bounding box
// and over a fixed field of view.
#pragma once

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "slidestream/annotations.hpp"

namespace slidestream::fuzz {

inline LabelMap label_map_of(const std::vector<Annotation>& annotations) {
  LabelMap labels;
  labels.ignore_unknown = true;  // beyond 255 distinct names
  std::set<std::string> names;
  for (const Annotation& annotation : annotations) {
    const std::string name = annotation.class_name.empty() ? "(unnamed)" : annotation.class_name;
    if (labels.classes.size() < 255 && names.insert(name).second) {
      labels.classes.push_back(
          LabelClass{name, static_cast<std::uint8_t>(labels.classes.size() + 1), {}});
    }
  }
  if (names.count("(unnamed)") != 0) {
    labels.unnamed_class = "(unnamed)";
  }
  return labels;
}

/// The level-0 bounding box of every vertex, or a fixed box when it is not finite and positive.
inline RectF bounds_of(const std::vector<Annotation>& annotations) {
  double x0 = INFINITY;
  double y0 = INFINITY;
  double x1 = -INFINITY;
  double y1 = -INFINITY;
  for (const Annotation& annotation : annotations) {
    for (const auto& ring : annotation.rings) {
      for (const cv::Point2d& point : ring) {
        x0 = std::min(x0, point.x);
        y0 = std::min(y0, point.y);
        x1 = std::max(x1, point.x);
        y1 = std::max(y1, point.y);
      }
    }
  }
  const RectF box{x0, y0, x1 - x0, y1 - y0};
  if (!std::isfinite(box.width) || !std::isfinite(box.height) || !(box.width > 0) ||
      !(box.height > 0)) {
    return RectF{0, 0, 1000, 1000};
  }
  return box;
}

inline void check_polygons(const std::vector<Annotation>& annotations) {
  for (const Annotation& annotation : annotations) {
    if (annotation.rings.empty()) {
      finding("annotation " + std::to_string(annotation.source_index) + " has no ring");
    }
    for (const auto& ring : annotation.rings) {
      if (ring.size() < 3) {
        finding("annotation " + std::to_string(annotation.source_index) + " has a ring of " +
                std::to_string(ring.size()) + " vertices");
      }
      for (const cv::Point2d& point : ring) {
        if (!std::isfinite(point.x) || !std::isfinite(point.y)) {
          finding("annotation " + std::to_string(annotation.source_index) +
                  " has a vertex that is not finite");
        }
      }
    }
  }
}

/// Reads the input as `name` (+ ".gz" when it starts with the gzip magic bytes) and checks it.
inline void check_annotation_reader(const std::uint8_t* data, std::size_t size,
                                    const std::string& name) {
  const bool gzip = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
  const auto path = scratch_file(gzip ? name + ".gz" : name, as_text(data, size));
  expect_clean(
      [&] {
        const std::vector<Annotation> annotations = read_annotations(path);
        check_polygons(annotations);
        const LabelMap labels = label_map_of(annotations);
        rasterize_annotations(annotations, labels, bounds_of(annotations), Size{48, 32});
        rasterize_annotations(annotations, labels, RectF{-0.5, 0.25, 640, 480}, Size{64, 48});
      },
      {ErrorCode::kInvalidConfig});
}

}  // namespace slidestream::fuzz
