// Annotation readers: QuPath GeoJSON (nlohmann::json), ASAP and Aperio ImageScope XML (pugixml),
// each optionally gzip-compressed. Every reader returns polygons in slidestream's continuous
// level-0 frame (pixel i spans [i, i + 1)).
#include <spdlog/spdlog.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <pugixml.hpp>
#include <sstream>

#include "slidestream/annotations.hpp"
#include "slidestream/core.hpp"

namespace fs = std::filesystem;

namespace slidestream {

namespace {

/// Added to ImageScope vertex coordinates to reach slidestream's frame. MoNuSeg's masks (MATLAB
/// poly2mask) put pixel c inside a polygon when the point c + 1 is, i.e. a pixel centre sits at
/// an integer + 1 in ImageScope's frame versus c + 0.5 in ours. Measured on the 13 MoNuSeg train
/// XMLs against their instance maps (tests/test_annotations.cpp prints Dice per offset).
constexpr double kImageScopeVertexOffsetPx = -0.5;
/// QuPath GeoJSON and ASAP XML already use pixel-corner coordinates.
constexpr double kCornerFrameOffsetPx = 0.0;
/// Vertices of the polygon that approximates an ImageScope ellipse region.
constexpr int kEllipseVertices = 64;

using Ring = std::vector<cv::Point2d>;

/// Why `ring` bounds no area (fewer than 3 distinct points, or all on one line), or "" when it
/// is a polygon. docs/FORMATS.md calls such a ring malformed.
std::string degenerate_ring(const Ring& ring) {
  Ring distinct = ring;
  std::sort(distinct.begin(), distinct.end(), [](const cv::Point2d& a, const cv::Point2d& b) {
    return a.x < b.x || (a.x == b.x && a.y < b.y);
  });
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  if (distinct.size() < 3) {
    return "has " + std::to_string(distinct.size()) +
           " distinct points; a polygon ring needs at least 3";
  }
  double twice_area = 0;  // shoelace
  for (std::size_t i = 0; i < ring.size(); ++i) {
    const cv::Point2d& a = ring[i];
    const cv::Point2d& b = ring[(i + 1) % ring.size()];
    twice_area += a.x * b.y - b.x * a.y;
  }
  return twice_area == 0 ? "encloses no area (its points lie on one line)" : "";
}

Error malformed(const fs::path& path, const std::string& where, const std::string& what) {
  return Error(ErrorCode::kInvalidConfig,
               "annotations '" + path.string() + "' " + where + ": " + what);
}

// --- bytes ---------------------------------------------------------------------------------------

std::string read_plain(const fs::path& path) {
  std::ifstream stream(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(stream)), std::istreambuf_iterator<char>());
  if (stream.bad()) {
    throw Error(ErrorCode::kNotFound, "cannot read annotations '" + path.string() + "'");
  }
  return bytes;
}

std::string read_gzip(const fs::path& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) {
    throw Error(ErrorCode::kNotFound, "cannot open annotations '" + path.string() + "'");
  }
  std::string bytes;
  std::array<char, 1 << 16> buffer{};
  int count = 0;
  while ((count = gzread(file, buffer.data(), static_cast<unsigned>(buffer.size()))) > 0) {
    bytes.append(buffer.data(), static_cast<std::size_t>(count));
  }
  int zlib_status = Z_OK;
  const std::string zlib_message = gzerror(file, &zlib_status);
  gzclose(file);
  // A truncated stream reads what it can and then reports Z_BUF_ERROR.
  if (count < 0 || (zlib_status != Z_OK && zlib_status != Z_STREAM_END)) {
    throw malformed(path, "(gzip)", "cannot decompress: " + zlib_message);
  }
  return bytes;
}

// --- GeoJSON -------------------------------------------------------------------------------------

using nlohmann::json;

/// A ring of GeoJSON positions, without the closing repeat of the first point.
Ring json_ring(const json& positions, const std::string& where) {
  if (!positions.is_array()) {
    throw std::invalid_argument(where + " is not an array of positions");
  }
  Ring ring;
  ring.reserve(positions.size());
  for (const json& position : positions) {
    if (!position.is_array() || position.size() < 2 || !position[0].is_number() ||
        !position[1].is_number()) {
      throw std::invalid_argument(where +
                                  " has a position that is not [x, y] numbers: " + position.dump());
    }
    ring.emplace_back(position[0].get<double>(), position[1].get<double>());
  }
  if (ring.size() > 1 && ring.front() == ring.back()) {
    ring.pop_back();
  }
  if (const std::string reason = degenerate_ring(ring); !reason.empty()) {
    throw std::invalid_argument(where + " " + reason);
  }
  return ring;
}

Annotation json_polygon(const json& rings, const std::string& class_name, int index) {
  if (!rings.is_array() || rings.empty()) {
    throw std::invalid_argument("Polygon coordinates are not a non-empty array of rings");
  }
  Annotation annotation;
  annotation.class_name = class_name;
  annotation.source_index = index;
  for (std::size_t r = 0; r < rings.size(); ++r) {
    annotation.rings.push_back(json_ring(rings[r], "ring " + std::to_string(r)));
  }
  return annotation;
}

std::string json_class_name(const json& feature) {
  const auto properties = feature.find("properties");
  if (properties == feature.end() || !properties->is_object()) {
    return {};
  }
  const auto classification = properties->find("classification");
  if (classification == properties->end() || !classification->is_object()) {
    return {};
  }
  const auto name = classification->find("name");
  return name != classification->end() && name->is_string() ? name->get<std::string>()
                                                            : std::string();
}

void read_json_feature(const json& feature, int index, const fs::path& path,
                       std::vector<Annotation>& out) {
  if (!feature.is_object() || feature.value("type", "") != "Feature") {
    throw std::invalid_argument("is not a GeoJSON Feature object");
  }
  const auto geometry = feature.find("geometry");
  if (geometry == feature.end() || !geometry->is_object()) {
    spdlog::warn("annotations '{}': feature {} has no geometry; skipped", path.string(), index);
    return;
  }
  const std::string type = geometry->value("type", "");
  const std::string class_name = json_class_name(feature);
  if (type == "Polygon") {
    out.push_back(json_polygon(geometry->at("coordinates"), class_name, index));
  } else if (type == "MultiPolygon") {
    const json& polygons = geometry->at("coordinates");
    if (!polygons.is_array()) {
      throw std::invalid_argument("MultiPolygon coordinates are not an array of polygons");
    }
    for (const json& rings : polygons) {
      out.push_back(json_polygon(rings, class_name, index));
    }
  } else {
    spdlog::warn("annotations '{}': feature {} has geometry type '{}', not an area; skipped",
                 path.string(), index, type);
  }
}

/// The "type" member of a GeoJSON object, or "" when it is missing or not a string.
std::string geojson_type(const json& object) {
  const auto type = object.find("type");
  return type != object.end() && type->is_string() ? type->get<std::string>() : std::string();
}

std::vector<Annotation> read_geojson(const std::string& text, const fs::path& path) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::parse_error& error) {
    throw malformed(path, "at byte " + std::to_string(error.byte),
                    std::string("invalid JSON (") + error.what() + ")");
  } catch (const json::exception& error) {  // e.g. out_of_range: a number beyond a double
    throw malformed(path, "(JSON)", std::string("invalid JSON (") + error.what() + ")");
  }
  const json* features = &root;
  json single = json::array();
  const std::string root_type = root.is_object() ? geojson_type(root) : std::string();
  if (root_type == "FeatureCollection") {
    const auto found = root.find("features");
    if (found == root.end() || !found->is_array()) {
      throw malformed(path, "(FeatureCollection)", "has no 'features' array");
    }
    features = &*found;
  } else if (root_type == "Feature") {
    single.push_back(root);
    features = &single;
  } else if (!root.is_array()) {
    throw malformed(path, "(root)",
                    "is neither a FeatureCollection, a Feature nor an array of Features");
  }
  std::vector<Annotation> annotations;
  for (std::size_t i = 0; i < features->size(); ++i) {
    const int index = static_cast<int>(i);
    try {
      read_json_feature((*features)[i], index, path, annotations);
    } catch (const std::invalid_argument& error) {
      throw malformed(path, "feature " + std::to_string(index), error.what());
    } catch (const json::exception& error) {
      throw malformed(path, "feature " + std::to_string(index), error.what());
    }
  }
  return annotations;
}

// --- XML -----------------------------------------------------------------------------------------

/// 1-based line of a byte offset into `text`.
std::size_t line_of(const std::string& text, std::ptrdiff_t offset) {
  const auto end = text.begin() + std::clamp<std::ptrdiff_t>(offset, 0, text.size());
  return 1 + static_cast<std::size_t>(std::count(text.begin(), end, '\n'));
}

struct XmlSource {
  const std::string& text;
  const fs::path& path;

  Error error_at(const pugi::xml_node& node, const std::string& what) const {
    return malformed(path, "line " + std::to_string(line_of(text, node.offset_debug())), what);
  }

  /// A required numeric attribute, strictly parsed (pugixml's as_double() returns 0 for junk).
  /// A decimal comma (ASAP in some locales) is accepted.
  double number(const pugi::xml_node& node, const char* name) const {
    const pugi::xml_attribute attribute = node.attribute(name);
    if (!attribute) {
      throw error_at(node, std::string("<") + node.name() + "> has no " + name + " attribute");
    }
    std::string value = attribute.value();
    if (value.find('.') == std::string::npos) {
      std::replace(value.begin(), value.end(), ',', '.');
    }
    char* end = nullptr;
    errno = 0;
    const double parsed = std::strtod(value.c_str(), &end);
    if (value.empty() || end != value.c_str() + value.size() || errno != 0 ||
        !std::isfinite(parsed)) {
      throw error_at(node, std::string("<") + node.name() + "> attribute " + name + "=\"" +
                               attribute.value() + "\" is not a number");
    }
    return parsed;
  }

  void require_polygon(const pugi::xml_node& node, const Ring& ring) const {
    if (ring.size() < 3) {
      throw error_at(node, std::string("<") + node.name() + "> has " + std::to_string(ring.size()) +
                               " vertices; a polygon needs at least 3");
    }
    if (const std::string reason = degenerate_ring(ring); !reason.empty()) {
      throw error_at(node, std::string("<") + node.name() + "> " + reason);
    }
  }
};

std::vector<Annotation> read_asap(const pugi::xml_node& root, const XmlSource& source) {
  std::vector<Annotation> annotations;
  int index = 0;
  for (const pugi::xml_node& node : root.child("Annotations").children("Annotation")) {
    const int this_index = index++;
    const std::string type = node.attribute("Type").value();
    if (type != "Polygon" && type != "Rectangle") {
      spdlog::warn(
          "annotations '{}': ASAP annotation {} ('{}') has type '{}', not an area; "
          "skipped",
          source.path.string(), this_index, node.attribute("Name").value(), type);
      continue;
    }
    std::vector<std::pair<double, cv::Point2d>> ordered;
    for (const pugi::xml_node& coordinate : node.child("Coordinates").children("Coordinate")) {
      const double order = coordinate.attribute("Order") ? source.number(coordinate, "Order")
                                                         : static_cast<double>(ordered.size());
      ordered.emplace_back(order,
                           cv::Point2d(source.number(coordinate, "X") + kCornerFrameOffsetPx,
                                       source.number(coordinate, "Y") + kCornerFrameOffsetPx));
    }
    std::stable_sort(ordered.begin(), ordered.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    Ring ring;
    ring.reserve(ordered.size());
    for (const auto& entry : ordered) {
      ring.push_back(entry.second);
    }
    source.require_polygon(node, ring);
    std::string group = node.attribute("PartOfGroup").value();
    if (group == "None") {
      group.clear();  // ASAP's word for "in no group"
    }
    annotations.push_back(Annotation{group, {std::move(ring)}, this_index});
  }
  return annotations;
}

/// An ImageScope region as a ring: freehand/polygon (type 0) and rectangle (1) list their
/// vertices; an ellipse (2) gives the two corners of its bounding box.
std::optional<Ring> imagescope_ring(const pugi::xml_node& region, const XmlSource& source) {
  Ring vertices;
  for (const pugi::xml_node& vertex : region.child("Vertices").children("Vertex")) {
    vertices.emplace_back(source.number(vertex, "X") + kImageScopeVertexOffsetPx,
                          source.number(vertex, "Y") + kImageScopeVertexOffsetPx);
  }
  const int type = region.attribute("Type").as_int(0);
  if (type == 0 || type == 1) {
    if (const std::string reason = degenerate_ring(vertices); !reason.empty()) {
      // ImageScope saves stray clicks as regions of 1-2 vertices (one in MoNuSeg): no area.
      spdlog::warn("annotations '{}' line {}: ImageScope region skipped: it {}",
                   source.path.string(), line_of(source.text, region.offset_debug()), reason);
      return std::nullopt;
    }
    return vertices;
  }
  if (type == 2 && vertices.size() == 2) {
    const cv::Point2d centre = (vertices[0] + vertices[1]) * 0.5;
    const cv::Point2d radius(std::abs(vertices[1].x - vertices[0].x) * 0.5,
                             std::abs(vertices[1].y - vertices[0].y) * 0.5);
    Ring ellipse;
    for (int i = 0; i < kEllipseVertices; ++i) {
      const double angle = 2.0 * CV_PI * i / kEllipseVertices;
      ellipse.emplace_back(centre.x + radius.x * std::cos(angle),
                           centre.y + radius.y * std::sin(angle));
    }
    return ellipse;
  }
  spdlog::warn("annotations '{}' line {}: ImageScope region of type {} is not an area; skipped",
               source.path.string(), line_of(source.text, region.offset_debug()), type);
  return std::nullopt;
}

cv::Rect2d bounds(const Ring& ring) {
  double x0 = ring.front().x;
  double y0 = ring.front().y;
  double x1 = x0;
  double y1 = y0;
  for (const cv::Point2d& point : ring) {
    x0 = std::min(x0, point.x);
    y0 = std::min(y0, point.y);
    x1 = std::max(x1, point.x);
    y1 = std::max(y1, point.y);
  }
  return {x0, y0, x1 - x0, y1 - y0};
}

bool contains_box(const Ring& outer, const Ring& inner) {
  const cv::Rect2d outer_box = bounds(outer);
  const cv::Rect2d inner_box = bounds(inner);
  return (outer_box & inner_box) == inner_box;
}

std::vector<Annotation> read_imagescope(const pugi::xml_node& root, const XmlSource& source) {
  std::vector<Annotation> annotations;
  int index = 0;
  for (const pugi::xml_node& layer : root.children("Annotation")) {
    // The class is the layer's Name; a region's Text is a free-form note, not a class.
    const std::string class_name = layer.attribute("Name").value();
    const std::size_t first = annotations.size();
    std::vector<std::pair<Ring, pugi::xml_node>> negatives;
    for (const pugi::xml_node& region : layer.child("Regions").children("Region")) {
      const int this_index = index++;
      std::optional<Ring> ring = imagescope_ring(region, source);
      if (!ring) {
        continue;
      }
      if (region.attribute("NegativeROA").as_int(0) != 0) {
        negatives.emplace_back(std::move(*ring), region);
      } else {
        annotations.push_back(Annotation{class_name, {std::move(*ring)}, this_index});
      }
    }
    // A negative region cuts a hole in each positive region of its layer that encloses it.
    for (auto& [hole, region] : negatives) {
      bool used = false;
      for (std::size_t i = first; i < annotations.size(); ++i) {
        if (contains_box(annotations[i].rings.front(), hole)) {
          annotations[i].rings.push_back(hole);
          used = true;
        }
      }
      if (!used) {
        spdlog::warn("annotations '{}' line {}: negative region lies in no region; skipped",
                     source.path.string(), line_of(source.text, region.offset_debug()));
      }
    }
  }
  return annotations;
}

std::vector<Annotation> read_xml(const std::string& text, const fs::path& path) {
  pugi::xml_document document;
  const pugi::xml_parse_result result = document.load_buffer(text.data(), text.size());
  if (!result) {
    throw malformed(path, "line " + std::to_string(line_of(text, result.offset)),
                    std::string("invalid XML (") + result.description() + ")");
  }
  const pugi::xml_node root = document.document_element();
  const XmlSource source{text, path};
  const std::string root_name = root.name();
  if (root_name == "ASAP_Annotations") {
    return read_asap(root, source);
  }
  if (root_name == "Annotations") {
    return read_imagescope(root, source);
  }
  throw source.error_at(root, "root element <" + root_name +
                                  "> is neither <ASAP_Annotations> (ASAP) nor <Annotations> "
                                  "(Aperio ImageScope)");
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

}  // namespace

std::vector<Annotation> read_annotations(const fs::path& path) {
  require_readable_file(path);
  std::string extension = lower(path.extension().string());
  std::string text;
  if (extension == ".gz") {
    text = read_gzip(path);
    extension = lower(path.stem().extension().string());
  } else {
    text = read_plain(path);
  }
  if (extension == ".geojson" || extension == ".json") {
    return read_geojson(text, path);
  }
  if (extension == ".xml") {
    return read_xml(text, path);
  }
  throw Error(ErrorCode::kUnsupportedFormat,
              "annotations '" + path.string() +
                  "' have an unknown extension; use .geojson/.json (QuPath) or .xml (ASAP, "
                  "Aperio ImageScope), optionally with .gz");
}

}  // namespace slidestream
