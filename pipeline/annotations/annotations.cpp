// The label map and polygon rasterization: classes are drawn in map order (later wins) at the
// output resolution with an exact pixel-centre, even-odd scanline fill.
#include "slidestream/annotations.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "slidestream/core.hpp"

namespace slidestream {

namespace {

using Ring = std::vector<cv::Point2d>;

std::string known_classes(const LabelMap& labels) {
  std::string names;
  for (const LabelClass& label_class : labels.classes) {
    names += (names.empty() ? "'" : ", '") + label_class.name + "'";
  }
  return names.empty() ? std::string("none") : names;
}

/// One polygon edge in output pixels, oriented downwards (y0 < y1).
struct Edge {
  double x0, y0, x1, y1;
  int first_row, last_row;  // rows whose centre r + 0.5 lies in [y0, y1), clipped to the output
};

/// Even-odd scanline fill with the pixel-centre rule: output pixel (c, r) is inside when its
/// centre (c + 0.5, r + 0.5) is, edges half-open, so polygons that share an edge never share
/// a pixel and a fill agrees exactly with synth's truth and MoNuSeg's poly2mask masks.
/// cv::fillPoly is not used: it also fills pixels whose centre lies up to half a pixel outside
/// (measured: a 20 x 20 px square fills 21 x 21), a bias of one pixel per row and column.
class ScanlineFill {
 public:
  ScanlineFill(cv::Mat& raster, const RectF& fov, double scale_x, double scale_y)
      : raster_(raster), fov_(fov), scale_x_(scale_x), scale_y_(scale_y) {}

  /// True when the ring's bounding box overlaps the field of view.
  bool overlaps(const Ring& outer) const {
    auto [min_x, max_x] = std::minmax_element(
        outer.begin(), outer.end(), [](const auto& a, const auto& b) { return a.x < b.x; });
    auto [min_y, max_y] = std::minmax_element(
        outer.begin(), outer.end(), [](const auto& a, const auto& b) { return a.y < b.y; });
    return max_x->x > fov_.x && min_x->x < fov_.x + fov_.width && max_y->y > fov_.y &&
           min_y->y < fov_.y + fov_.height;
  }

  void fill(const std::vector<Ring>& rings, std::uint8_t value) {
    edges_.clear();
    for (const Ring& ring : rings) {
      add_ring(ring);
    }
    std::sort(edges_.begin(), edges_.end(),
              [](const Edge& a, const Edge& b) { return a.first_row < b.first_row; });
    std::vector<const Edge*> active;
    std::size_t next = 0;
    const int first_row = edges_.empty() ? 0 : edges_.front().first_row;
    for (int row = first_row; row < raster_.rows && (next < edges_.size() || !active.empty());
         ++row) {
      while (next < edges_.size() && edges_[next].first_row <= row) {
        active.push_back(&edges_[next++]);
      }
      active.erase(std::remove_if(active.begin(), active.end(),
                                  [row](const Edge* edge) { return edge->last_row < row; }),
                   active.end());
      fill_row(active, row, value);
    }
  }

 private:
  void add_ring(const Ring& ring) {
    for (std::size_t i = 0; i < ring.size(); ++i) {
      const cv::Point2d& a = ring[i];
      const cv::Point2d& b = ring[(i + 1) % ring.size()];
      Edge edge{(a.x - fov_.x) * scale_x_,
                (a.y - fov_.y) * scale_y_,
                (b.x - fov_.x) * scale_x_,
                (b.y - fov_.y) * scale_y_,
                0,
                0};
      if (edge.y0 == edge.y1) {
        continue;  // horizontal edges cross no row centre
      }
      if (edge.y0 > edge.y1) {
        std::swap(edge.x0, edge.x1);
        std::swap(edge.y0, edge.y1);
      }
      const double first = std::max(std::ceil(edge.y0 - 0.5), 0.0);
      const double last = std::min(std::ceil(edge.y1 - 0.5) - 1, double(raster_.rows - 1));
      if (first <= last) {
        edge.first_row = static_cast<int>(first);
        edge.last_row = static_cast<int>(last);
        edges_.push_back(edge);
      }
    }
  }

  void fill_row(const std::vector<const Edge*>& active, int row, std::uint8_t value) {
    const double centre_y = row + 0.5;
    crossings_.clear();
    for (const Edge* edge : active) {
      crossings_.push_back(edge->x0 +
                           (centre_y - edge->y0) * (edge->x1 - edge->x0) / (edge->y1 - edge->y0));
    }
    std::sort(crossings_.begin(), crossings_.end());
    auto* pixels = raster_.ptr<std::uint8_t>(row);
    const double width = raster_.cols;
    for (std::size_t i = 0; i + 1 < crossings_.size(); i += 2) {
      // Centres c + 0.5 in [crossing[i], crossing[i + 1]).
      const double begin = std::clamp(std::ceil(crossings_[i] - 0.5), 0.0, width);
      const double end = std::clamp(std::ceil(crossings_[i + 1] - 0.5), 0.0, width);
      if (begin < end) {
        std::fill(pixels + static_cast<int>(begin), pixels + static_cast<int>(end), value);
      }
    }
  }

  cv::Mat& raster_;
  RectF fov_;
  double scale_x_;
  double scale_y_;
  std::vector<Edge> edges_;
  std::vector<double> crossings_;
};

/// The label-map index of each annotation, or -1 for one to skip (unknown, ignored).
std::vector<int> resolve_classes(const std::vector<Annotation>& annotations,
                                 const LabelMap& labels) {
  std::vector<int> class_of(annotations.size(), -1);
  std::set<std::string> warned;
  for (std::size_t i = 0; i < annotations.size(); ++i) {
    const LabelClass* found = labels.find(annotations[i].class_name);
    if (found != nullptr) {
      class_of[i] = static_cast<int>(found - labels.classes.data());
      continue;
    }
    const std::string shown = annotations[i].class_name.empty()
                                  ? std::string("(no class name; set unnamed_class)")
                                  : "'" + annotations[i].class_name + "'";
    if (!labels.ignore_unknown) {
      throw Error(ErrorCode::kInvalidConfig,
                  "annotation " + std::to_string(annotations[i].source_index) + " has class " +
                      shown + ", which is not in the label map (known: " + known_classes(labels) +
                      "); add it or set ignore_unknown");
    }
    if (warned.insert(annotations[i].class_name).second) {
      spdlog::warn("annotations of class {} are not in the label map (known: {}); skipped", shown,
                   known_classes(labels));
    }
  }
  return class_of;
}

}  // namespace

void LabelMap::validate() const {
  std::set<std::string> names;
  std::set<int> values;
  for (const LabelClass& label_class : classes) {
    if (label_class.name.empty()) {
      throw Error(ErrorCode::kInvalidConfig, "label map: a class has an empty name");
    }
    if (label_class.value == 0) {
      throw Error(ErrorCode::kInvalidConfig, "label map: class '" + label_class.name +
                                                 "' has value 0, which is reserved for "
                                                 "background; use 1..255");
    }
    if (!names.insert(label_class.name).second) {
      throw Error(ErrorCode::kInvalidConfig,
                  "label map: class '" + label_class.name + "' is listed twice");
    }
    if (!values.insert(label_class.value).second) {
      throw Error(ErrorCode::kInvalidConfig, "label map: value " +
                                                 std::to_string(label_class.value) + " (class '" +
                                                 label_class.name + "') is used by two classes");
    }
  }
  if (unnamed_class && names.count(*unnamed_class) == 0) {
    throw Error(ErrorCode::kInvalidConfig, "label map: unnamed_class '" + *unnamed_class +
                                               "' is not one of its classes (" +
                                               known_classes(*this) + ")");
  }
}

const LabelClass* LabelMap::find(const std::string& name) const {
  const std::string& key = name.empty() && unnamed_class ? *unnamed_class : name;
  const auto found = std::find_if(classes.begin(), classes.end(),
                                  [&key](const LabelClass& entry) { return entry.name == key; });
  return found == classes.end() ? nullptr : &*found;
}

cv::Mat rasterize_annotations(const std::vector<Annotation>& annotations, const LabelMap& labels,
                              const RectF& fov_l0, Size size_px) {
  if (size_px.width <= 0 || size_px.height <= 0 || !(fov_l0.width > 0) || !(fov_l0.height > 0)) {
    std::ostringstream text;
    text << "rasterize_annotations: empty output " << size_px.width << "x" << size_px.height
         << " px or field of view " << fov_l0.width << "x" << fov_l0.height << " level-0 px";
    throw Error(ErrorCode::kInvalidArgument, text.str());
  }
  labels.validate();
  const std::vector<int> class_of = resolve_classes(annotations, labels);
  const double scale_x = static_cast<double>(size_px.width) / fov_l0.width;
  const double scale_y = static_cast<double>(size_px.height) / fov_l0.height;
  cv::Mat raster =
      cv::Mat::zeros(static_cast<int>(size_px.height), static_cast<int>(size_px.width), CV_8UC1);
  ScanlineFill fill(raster, fov_l0, scale_x, scale_y);
  for (std::size_t k = 0; k < labels.classes.size(); ++k) {
    for (std::size_t i = 0; i < annotations.size(); ++i) {
      const Annotation& annotation = annotations[i];
      if (class_of[i] == static_cast<int>(k) && !annotation.rings.empty() &&
          annotation.rings.front().size() >= 3 && fill.overlaps(annotation.rings.front())) {
        // Outer ring and holes together: even-odd leaves holes to the classes beneath.
        fill.fill(annotation.rings, labels.classes[k].value);
      }
    }
  }
  return raster;
}

}  // namespace slidestream
