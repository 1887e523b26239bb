// The tissue layout of a synthetic slide: star-shaped tissue regions with tumour regions inside,
// the pixel-centre class rule, row rasterisation with the same rule, and the GeoJSON export.
#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "slidestream/core.hpp"
#include "synth_internal.hpp"

namespace slidestream {

namespace synth_detail {

double edge_crossing_x(double x0, double y0, double x1, double y1, double py) {
  return x0 + (py - y0) * (x1 - x0) / (y1 - y0);
}

}  // namespace synth_detail

using synth_detail::edge_crossing_x;
using synth_detail::edge_straddles;

namespace {

using Ring = std::vector<std::pair<double, double>>;

constexpr double kPi = 3.14159265358979323846;
constexpr int kVerticesPerRing = 96;
constexpr int kGridLong = 3;   // tissue cells along the slide's longer side
constexpr int kGridShort = 2;  // ... and along its shorter side
constexpr double kTissueProbability = 0.8;
constexpr int kMinTissueRegions = 2;
// Sum of the harmonic amplitudes: a star's radius stays within R * (1 +- this).
constexpr double kMaxAmplitudeSum = 0.2;

// Draws from mt19937_64 with a fixed raw-bits -> double conversion, so a seed gives the same
// layout with every standard library (std::uniform_real_distribution does not).
class LayoutRandom {
 public:
  explicit LayoutRandom(std::uint64_t seed) : engine_(seed) {}
  /// Uniform in [0, 1) from the top 53 bits.
  double unit() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
  double uniform(double low, double high) { return low + (high - low) * unit(); }

 private:
  std::mt19937_64 engine_;
};

// r(theta) = radius * (1 + sum_k a_k sin(k theta + phi_k)), k = 2..5.
struct StarShape {
  double center_x = 0;
  double center_y = 0;
  double radius = 0;
  std::array<double, 4> amplitudes{};
  std::array<double, 4> phases{};

  double amplitude_sum() const {
    return amplitudes[0] + amplitudes[1] + amplitudes[2] + amplitudes[3];
  }
};

// Draws the harmonics; the caller sets the radius from amplitude_sum() to bound the extent.
StarShape draw_star(LayoutRandom& random, double center_x, double center_y) {
  StarShape star;
  star.center_x = center_x;
  star.center_y = center_y;
  for (std::size_t k = 0; k < star.amplitudes.size(); ++k) {
    star.amplitudes[k] = random.uniform(0.0, kMaxAmplitudeSum / 4.0);
    star.phases[k] = random.uniform(0.0, 2.0 * kPi);
  }
  return star;
}

Ring star_ring(const StarShape& star) {
  Ring ring;
  ring.reserve(kVerticesPerRing);
  for (int i = 0; i < kVerticesPerRing; ++i) {
    const double theta = 2.0 * kPi * i / kVerticesPerRing;
    double factor = 1.0;
    for (std::size_t k = 0; k < star.amplitudes.size(); ++k) {
      factor += star.amplitudes[k] * std::sin(static_cast<double>(k + 2) * theta + star.phases[k]);
    }
    const double r = star.radius * factor;
    ring.emplace_back(star.center_x + r * std::cos(theta), star.center_y + r * std::sin(theta));
  }
  return ring;
}

// A tumour star whose every point lies within `extent` of (center_x, center_y).
StarShape draw_tumour(LayoutRandom& random, double center_x, double center_y, double extent) {
  StarShape tumour = draw_star(random, center_x, center_y);
  tumour.radius = extent / (1.0 + tumour.amplitude_sum());
  return tumour;
}

// One or two tumours strictly inside `tissue`: each lies in a disk inside the disk of radius
// 0.95 * min r(theta) around the tissue centre (which the star polygon contains), and two
// tumours lie in disjoint disks.
std::vector<StarShape> draw_tumours(LayoutRandom& random, const StarShape& tissue) {
  const double safe_radius = 0.95 * tissue.radius * (1.0 - tissue.amplitude_sum());
  const bool two = random.unit() < 0.5;
  const double angle = random.uniform(0.0, 2.0 * kPi);
  std::vector<StarShape> tumours;
  if (!two) {
    const double offset = random.uniform(0.0, 0.25) * safe_radius;
    const double extent = (safe_radius - offset) * random.uniform(0.45, 0.75);
    tumours.push_back(draw_tumour(random, tissue.center_x + offset * std::cos(angle),
                                  tissue.center_y + offset * std::sin(angle), extent));
    return tumours;
  }
  const double offset = 0.45 * safe_radius;
  for (const double side : {1.0, -1.0}) {
    const double extent = std::min(safe_radius - offset, offset) * random.uniform(0.7, 0.9);
    tumours.push_back(draw_tumour(random, tissue.center_x + side * offset * std::cos(angle),
                                  tissue.center_y + side * offset * std::sin(angle), extent));
  }
  return tumours;
}

// Which grid cells get tissue: each with kTissueProbability, at least kMinTissueRegions.
std::vector<bool> draw_tissue_cells(LayoutRandom& random, int cell_count) {
  std::vector<bool> present(static_cast<std::size_t>(cell_count));
  int count = 0;
  for (int i = 0; i < cell_count; ++i) {
    present[i] = random.unit() < kTissueProbability;
    count += present[i] ? 1 : 0;
  }
  for (int i = 0; i < cell_count && count < kMinTissueRegions; ++i) {
    if (!present[i]) {
      present[i] = true;
      ++count;
    }
  }
  return present;
}

bool polygon_contains(const SynthPolygon& polygon, double px, double py) {
  bool inside = false;
  for (const Ring& ring : polygon.rings) {
    const std::size_t n = ring.size();
    for (std::size_t i = 0; i < n; ++i) {
      const auto& [x0, y0] = ring[i];
      const auto& [x1, y1] = ring[(i + 1) % n];
      if (edge_straddles(y0, y1, py) && px < edge_crossing_x(x0, y0, x1, y1, py)) {
        inside = !inside;
      }
    }
  }
  return inside;
}

}  // namespace

SynthLayout make_synth_layout(const SynthOptions& options) {
  SynthLayout layout;
  layout.size = options.size;
  const auto width = static_cast<double>(options.size.width);
  const auto height = static_cast<double>(options.size.height);
  const bool landscape = width >= height;
  const int columns = landscape ? kGridLong : kGridShort;
  const int rows = landscape ? kGridShort : kGridLong;
  const double cell_width = width / columns;
  const double cell_height = height / rows;
  const double cell_size = std::min(cell_width, cell_height);

  LayoutRandom random(options.seed);
  const std::vector<bool> present = draw_tissue_cells(random, columns * rows);
  std::vector<SynthPolygon> tumour_polygons;
  for (int cell = 0; cell < columns * rows; ++cell) {
    if (!present[cell]) {
      continue;
    }
    // Max extent 0.38 * 1.2 = 0.456 of the cell; the jitter keeps the star inside its cell.
    const double jitter_x = std::max(0.0, cell_width / 2.0 - 0.47 * cell_size);
    const double jitter_y = std::max(0.0, cell_height / 2.0 - 0.47 * cell_size);
    const int column = cell % columns;
    const int row = cell / columns;
    const double center_x = (column + 0.5) * cell_width + random.uniform(-1, 1) * jitter_x;
    const double center_y = (row + 0.5) * cell_height + random.uniform(-1, 1) * jitter_y;
    StarShape tissue = draw_star(random, center_x, center_y);
    tissue.radius = random.uniform(0.30, 0.38) * cell_size;

    SynthPolygon stroma{SynthClass::kStroma, {star_ring(tissue)}};
    for (const StarShape& tumour : draw_tumours(random, tissue)) {
      Ring ring = star_ring(tumour);
      tumour_polygons.push_back({SynthClass::kTumour, {ring}});
      std::reverse(ring.begin(), ring.end());  // holes wind the other way (GeoJSON habit)
      stroma.rings.push_back(std::move(ring));
    }
    layout.polygons.push_back(std::move(stroma));
  }
  for (SynthPolygon& tumour : tumour_polygons) {
    layout.polygons.push_back(std::move(tumour));
  }
  return layout;
}

SynthClass synth_class_at(const SynthLayout& layout, std::int64_t x, std::int64_t y) {
  const double px = static_cast<double>(x) + 0.5;
  const double py = static_cast<double>(y) + 0.5;
  bool in_stroma = false;
  for (const SynthPolygon& polygon : layout.polygons) {
    if (polygon.label == SynthClass::kTumour && polygon_contains(polygon, px, py)) {
      return SynthClass::kTumour;
    }
    if (polygon.label == SynthClass::kStroma && !in_stroma) {
      in_stroma = polygon_contains(polygon, px, py);
    }
  }
  return in_stroma ? SynthClass::kStroma : SynthClass::kBackground;
}

namespace synth_detail {

PreparedLayout prepare_layout(const SynthLayout& layout) {
  PreparedLayout prepared;
  // Stroma first, tumours last: label_row paints in order, so tumour wins over stroma.
  for (const SynthClass label : {SynthClass::kStroma, SynthClass::kTumour}) {
    for (const SynthPolygon& polygon : layout.polygons) {
      if (polygon.label != label || polygon.rings.empty()) {
        continue;
      }
      PreparedPolygon out;
      out.label = static_cast<std::uint8_t>(label);
      out.min_x = out.min_y = HUGE_VAL;
      out.max_x = out.max_y = -HUGE_VAL;
      for (const Ring& ring : polygon.rings) {
        for (std::size_t i = 0; i < ring.size(); ++i) {
          const auto& [x0, y0] = ring[i];
          const auto& [x1, y1] = ring[(i + 1) % ring.size()];
          out.edges.push_back({x0, y0, x1, y1});
          out.min_x = std::min(out.min_x, x0);
          out.max_x = std::max(out.max_x, x0);
          out.min_y = std::min(out.min_y, y0);
          out.max_y = std::max(out.max_y, y0);
        }
      }
      prepared.polygons.push_back(std::move(out));
    }
  }
  return prepared;
}

namespace {

// The smallest pixel x whose centre x + 0.5 is at or right of `crossing`, exactly as
// polygon_contains compares (the centre counts as inside when crossing <= centre).
std::int64_t first_pixel_from(double crossing, std::int64_t low, std::int64_t high) {
  if (crossing <= static_cast<double>(low) + 0.5) {
    return low;
  }
  if (crossing > static_cast<double>(high) + 0.5) {
    return high + 1;
  }
  auto x = static_cast<std::int64_t>(std::ceil(crossing - 0.5));
  while (x > low && static_cast<double>(x - 1) + 0.5 >= crossing) {
    --x;
  }
  while (static_cast<double>(x) + 0.5 < crossing) {
    ++x;
  }
  return x;
}

}  // namespace

void label_row(const PreparedLayout& layout, std::int64_t y, std::int64_t x0, std::int64_t width,
               std::uint8_t* labels, RowScratch& scratch) {
  std::fill(labels, labels + width, std::uint8_t{0});
  const double py = static_cast<double>(y) + 0.5;
  const std::int64_t x_last = x0 + width - 1;
  for (const PreparedPolygon& polygon : layout.polygons) {
    if (py < polygon.min_y || py > polygon.max_y || polygon.max_x <= static_cast<double>(x0) ||
        polygon.min_x >= static_cast<double>(x0 + width)) {
      continue;
    }
    scratch.crossings.clear();
    for (const PreparedPolygon::Edge& edge : polygon.edges) {
      if (edge_straddles(edge.y0, edge.y1, py)) {
        scratch.crossings.push_back(edge_crossing_x(edge.x0, edge.y0, edge.x1, edge.y1, py));
      }
    }
    std::sort(scratch.crossings.begin(), scratch.crossings.end());
    // Even-odd: a centre is inside when an odd number of crossings lie right of it, i.e. it
    // lies in [c[2i], c[2i+1]).
    for (std::size_t i = 0; i + 1 < scratch.crossings.size(); i += 2) {
      const std::int64_t begin = first_pixel_from(scratch.crossings[i], x0, x_last);
      const std::int64_t end = first_pixel_from(scratch.crossings[i + 1], x0, x_last);
      if (begin < end) {
        std::fill(labels + (begin - x0), labels + (end - x0), polygon.label);
      }
    }
  }
}

void write_geojson(const SynthLayout& layout, const std::filesystem::path& path) {
  nlohmann::json features = nlohmann::json::array();
  for (const SynthPolygon& polygon : layout.polygons) {
    const bool tumour = polygon.label == SynthClass::kTumour;
    nlohmann::json rings = nlohmann::json::array();
    for (const Ring& ring : polygon.rings) {
      nlohmann::json points = nlohmann::json::array();
      for (const auto& [x, y] : ring) {
        points.push_back({x, y});
      }
      if (!ring.empty()) {
        points.push_back({ring.front().first, ring.front().second});  // GeoJSON rings are closed
      }
      rings.push_back(std::move(points));
    }
    nlohmann::json classification;
    classification["name"] = tumour ? "Tumor" : "Stroma";
    classification["color"] = tumour ? std::array<int, 3>{200, 0, 0}  // QuPath's class colours
                                     : std::array<int, 3>{150, 200, 150};
    nlohmann::json feature;
    feature["type"] = "Feature";
    feature["geometry"] = {{"type", "Polygon"}, {"coordinates", std::move(rings)}};
    feature["properties"] = {{"objectType", "annotation"},
                             {"classification", std::move(classification)}};
    features.push_back(std::move(feature));
  }
  const nlohmann::json collection = {{"type", "FeatureCollection"}, {"features", features}};
  std::ofstream stream(path);
  stream << collection.dump() << '\n';
  stream.close();
  if (!stream) {
    throw Error(ErrorCode::kOutputError,
                "cannot write annotations to '" + path.string() + "'; check free disk space");
  }
}

}  // namespace synth_detail

}  // namespace slidestream
