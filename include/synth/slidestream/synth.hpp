// slidestream synth: synthetic H&E-like whole-slide images with known ground truth.
//
// The slide is a pyramidal tiled TIFF written by libvips with resolution tags, so OpenSlide
// (generic-tiff) and libvips both read it. Pixels are generated on demand, tile by tile, from a
// pure function of (x, y, seed): memory stays bounded for any size (e.g. 100000 x 100000) and
// the result is identical for a seed whatever the thread count.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "slidestream/geometry.hpp"

namespace slidestream {

/// Ground-truth classes of a synthetic slide (values in the truth raster).
enum class SynthClass : std::uint8_t { kBackground = 0, kStroma = 1, kTumour = 2 };

/// A polygon in level-0 pixels: the outer ring, then holes. Rings are closed implicitly.
struct SynthPolygon {
  SynthClass label = SynthClass::kStroma;
  std::vector<std::vector<std::pair<double, double>>> rings;
};

struct SynthOptions {
  Size size{8192, 6144};               ///< level-0 size in pixels
  std::optional<double> mpp_um = 0.5;  ///< level-0 spacing; nullopt writes no usable spacing
  std::uint64_t seed = 1;
  std::string compression = "jpeg";  ///< "jpeg", "deflate" or "lzw"
  int jpeg_quality = 90;
  int tile_size = 256;
  /// Also write the truth raster (uint8 0/1/2, tiled pyramidal TIFF, same geometry).
  std::optional<std::filesystem::path> truth_path;
  /// Also write the regions as a QuPath GeoJSON FeatureCollection (level-0 coordinates).
  std::optional<std::filesystem::path> annotations_path;
  bool progress = true;  ///< show a progress bar on a terminal
};

/// The tissue layout of a synthetic slide, a pure function of size and seed.
struct SynthLayout {
  Size size;
  std::vector<SynthPolygon> polygons;  ///< stroma regions (with tumour holes), then tumours
};

/// The layout `synthesize_slide` draws for these options.
SynthLayout make_synth_layout(const SynthOptions& options);

/// The ground-truth class of level-0 pixel (x, y): its centre (x + 0.5, y + 0.5) tested against
/// the layout's polygons (even-odd rule), tumour over stroma.
SynthClass synth_class_at(const SynthLayout& layout, std::int64_t x, std::int64_t y);

/// Writes the synthetic slide to `output` (and truth/annotations when asked), each through a
/// temporary file renamed when complete. Throws slidestream::Error on failure.
void synthesize_slide(const std::filesystem::path& output, const SynthOptions& options);

}  // namespace slidestream
