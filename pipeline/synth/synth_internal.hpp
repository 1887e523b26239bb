// Private to the synth module: row rasterisation of the layout and the pixel model.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "slidestream/synth.hpp"

namespace slidestream::synth_detail {

/// The x where the edge (x0, y0)-(x1, y1) crosses the horizontal line y = py. The one
/// expression shared by `synth_class_at` and the row rasteriser, so both agree bit for bit.
double edge_crossing_x(double x0, double y0, double x1, double y1, double py);

/// Whether the edge crosses the line y = py (half-open in y, the even-odd convention).
inline bool edge_straddles(double y0, double y1, double py) {
  return (y0 > py) != (y1 > py);
}

/// A polygon prepared for row scans: its edges over all rings and its bounding box.
struct PreparedPolygon {
  struct Edge {
    double x0, y0, x1, y1;
  };
  std::uint8_t label = 0;
  double min_x = 0, min_y = 0, max_x = 0, max_y = 0;
  std::vector<Edge> edges;
};

/// The layout ready for row scans, stroma polygons before tumours (later labels win).
struct PreparedLayout {
  std::vector<PreparedPolygon> polygons;
};

PreparedLayout prepare_layout(const SynthLayout& layout);

/// Per-thread scratch of the row rasteriser (reused across rows, no allocation per row).
struct RowScratch {
  std::vector<double> crossings;
  std::vector<std::uint8_t> labels;  ///< one row of classes, for the RGB generator
};

/// Writes the class (0/1/2) of level-0 pixels [x0, x0 + width) of row y into `labels`, with the
/// pixel-centre even-odd rule of `synth_class_at`.
void label_row(const PreparedLayout& layout, std::int64_t y, std::int64_t x0, std::int64_t width,
               std::uint8_t* labels, RowScratch& scratch);

/// The pixel model: colours, stain variation and nuclei, a pure function of (x, y, seed).
struct PixelModel {
  std::uint64_t seed = 1;
  double mpp_um = 0.5;  ///< level-0 spacing used to size nuclei (0.5 when the slide has none)
};

/// Writes RGB pixels [x0, x0 + width) of row y, given their classes, into `rgb` (3 bytes each).
void render_row(const PixelModel& model, std::int64_t y, std::int64_t x0, std::int64_t width,
                const std::uint8_t* labels, std::uint8_t* rgb);

/// Writes the layout as a QuPath GeoJSON FeatureCollection to `path` (no atomic rename here).
void write_geojson(const SynthLayout& layout, const std::filesystem::path& path);

}  // namespace slidestream::synth_detail
