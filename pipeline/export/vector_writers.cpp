// Traced regions as QuPath GeoJSON (text written directly, numbers in fixed notation so the
// bytes depend only on the regions) and as ASAP XML (pugixml).
#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <pugixml.hpp>
#include <sstream>

#include "format.hpp"
#include "slidestream/core.hpp"
#include "slidestream/export.hpp"

namespace fs = std::filesystem;

namespace slidestream {

namespace {

using export_detail::fixed;

std::string hex_colour(const cv::Vec3b& rgb) {
  std::array<char, 8> buffer{};
  std::snprintf(buffer.data(), buffer.size(), "#%02X%02X%02X", rgb[0], rgb[1], rgb[2]);
  return buffer.data();
}

void append_ring(std::string& text, const std::vector<cv::Point2d>& ring, int decimals) {
  text += '[';
  for (std::size_t i = 0; i <= ring.size(); ++i) {
    const cv::Point2d& vertex = ring[i % ring.size()];  // closed: the first vertex again
    text +=
        (i == 0 ? "[" : ",[") + fixed(vertex.x, decimals) + "," + fixed(vertex.y, decimals) + "]";
  }
  text += ']';
}

void append_feature(std::string& text, const TracedRegion& region,
                    const VectorWriteOptions& options) {
  text += R"({"type":"Feature","geometry":{"type":"Polygon","coordinates":[)";
  for (std::size_t r = 0; r < region.rings.size(); ++r) {
    if (r > 0) {
      text += ',';
    }
    append_ring(text, region.rings[r], options.coordinate_decimals);
  }
  text += R"(]},"properties":{"objectType":"annotation","classification":{"name":)";
  text += nlohmann::json(region.class_name).dump();
  text += ",\"color\":[" + std::to_string(region.colour[0]) + "," +
          std::to_string(region.colour[1]) + "," + std::to_string(region.colour[2]) + "]}";
  text += R"(,"isLocked":false,"measurements":{"Area um^2":)" +
          fixed(region.area_um2, options.measurement_decimals) +
          ",\"Holes\":" + std::to_string(region.hole_count) + "}}}";
}

void check_regions(const std::vector<TracedRegion>& regions, const fs::path& path) {
  for (std::size_t i = 0; i < regions.size(); ++i) {
    for (const auto& ring : regions[i].rings) {
      if (ring.size() < 3) {
        throw Error(ErrorCode::kInvalidArgument, "cannot write '" + path.string() + "': region " +
                                                     std::to_string(i) + " has a ring of " +
                                                     std::to_string(ring.size()) +
                                                     " vertices; a polygon ring needs at least 3");
      }
    }
    if (regions[i].rings.empty()) {
      throw Error(ErrorCode::kInvalidArgument, "cannot write '" + path.string() + "': region " +
                                                   std::to_string(i) + " has no rings");
    }
  }
}

void append_asap_polygon(pugi::xml_node& annotations, const std::string& name,
                         const std::string& group, const cv::Vec3b& colour,
                         const std::vector<cv::Point2d>& ring, int decimals) {
  pugi::xml_node annotation = annotations.append_child("Annotation");
  annotation.append_attribute("Name") = name.c_str();
  annotation.append_attribute("Type") = "Polygon";
  annotation.append_attribute("PartOfGroup") = group.c_str();
  annotation.append_attribute("Color") = hex_colour(colour).c_str();
  pugi::xml_node coordinates = annotation.append_child("Coordinates");
  for (std::size_t i = 0; i < ring.size(); ++i) {
    pugi::xml_node coordinate = coordinates.append_child("Coordinate");
    coordinate.append_attribute("Order") = std::to_string(i).c_str();
    coordinate.append_attribute("X") = fixed(ring[i].x, decimals).c_str();
    coordinate.append_attribute("Y") = fixed(ring[i].y, decimals).c_str();
  }
}

void append_asap_group(pugi::xml_node& groups, const std::string& name, const cv::Vec3b& colour) {
  pugi::xml_node group = groups.append_child("Group");
  group.append_attribute("Name") = name.c_str();
  group.append_attribute("PartOfGroup") = "None";
  group.append_attribute("Color") = hex_colour(colour).c_str();
  group.append_child("Attributes");
}

}  // namespace

namespace export_detail {

/// `value` with exactly `decimals` decimals, locale-independent, never "-0.00".
std::string fixed(double value, int decimals) {
  const double scale = std::pow(10.0, decimals);
  double rounded = std::round(value * scale) / scale;
  if (rounded == 0.0) {
    rounded = 0.0;  // drops the sign of -0
  }
  std::array<char, 64> buffer{};
  const auto result = std::to_chars(buffer.data(), buffer.data() + buffer.size(), rounded,
                                    std::chars_format::fixed, decimals);
  return {buffer.data(), result.ptr};
}

}  // namespace export_detail

void VectorWriteOptions::validate() const {
  if (coordinate_decimals < 0 || coordinate_decimals > 9 || measurement_decimals < 0 ||
      measurement_decimals > 9) {
    throw Error(ErrorCode::kInvalidArgument,
                "vector export: coordinate_decimals and measurement_decimals must be 0..9");
  }
}

std::string asap_hole_group(const std::string& class_name) {
  return class_name + " hole";
}

void write_geojson(const std::vector<TracedRegion>& regions, const fs::path& path,
                   const VectorWriteOptions& options) {
  options.validate();
  check_regions(regions, path);
  require_writable_output(path);
  std::string text = R"({"type":"FeatureCollection","features":[)";
  for (std::size_t i = 0; i < regions.size(); ++i) {
    text += i == 0 ? "\n" : ",\n";
    append_feature(text, regions[i], options);
  }
  text += "\n]}\n";
  write_text_atomically(path, text);
}

void write_asap_xml(const std::vector<TracedRegion>& regions, const fs::path& path,
                    const VectorWriteOptions& options) {
  options.validate();
  check_regions(regions, path);
  require_writable_output(path);
  pugi::xml_document document;
  pugi::xml_node declaration = document.append_child(pugi::node_declaration);
  declaration.append_attribute("version") = "1.0";
  pugi::xml_node root = document.append_child("ASAP_Annotations");
  pugi::xml_node annotations = root.append_child("Annotations");
  pugi::xml_node groups = root.append_child("AnnotationGroups");
  // Groups in the order their classes first appear, each followed by its hole group if used.
  std::vector<std::pair<std::string, cv::Vec3b>> group_order;
  std::vector<std::string> with_holes;
  std::map<std::string, int> count_of_class;
  for (const TracedRegion& region : regions) {
    const int number = ++count_of_class[region.class_name];
    if (number == 1) {
      group_order.emplace_back(region.class_name, region.colour);
    }
    const std::string name = region.class_name + " " + std::to_string(number);
    append_asap_polygon(annotations, name, region.class_name, region.colour, region.rings[0],
                        options.coordinate_decimals);
    for (std::size_t h = 1; h < region.rings.size(); ++h) {
      append_asap_polygon(annotations, name + " hole " + std::to_string(h),
                          asap_hole_group(region.class_name), region.colour, region.rings[h],
                          options.coordinate_decimals);
    }
    if (region.rings.size() > 1 &&
        std::find(with_holes.begin(), with_holes.end(), region.class_name) == with_holes.end()) {
      with_holes.push_back(region.class_name);
    }
  }
  for (const auto& [name, colour] : group_order) {
    append_asap_group(groups, name, colour);
    if (std::find(with_holes.begin(), with_holes.end(), name) != with_holes.end()) {
      append_asap_group(groups, asap_hole_group(name), colour);
    }
  }
  std::ostringstream text;
  document.save(text, "\t", pugi::format_default, pugi::encoding_utf8);
  write_text_atomically(path, text.str());
}

}  // namespace slidestream
