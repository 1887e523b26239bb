// Exports drawn from predictions.h5: pyramidal TIFFs (streamed tile by tile in Morton order),
// the overlay PNG and the vector annotations (from a label map sampled at a coarse spacing).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

#include "segment_internal.hpp"
#include "slidestream/core.hpp"
#include "slidestream/export.hpp"
#include "slidestream/raster.hpp"

namespace fs = std::filesystem;

namespace slidestream::detail {

namespace {

// A raster read as region -> CV_8UC1 (labels, a probability plane, entropy).
using RegionReader = std::function<cv::Mat(const Rect&)>;

fs::path write_pyramid(const fs::path& path, Size size, double spacing_um,
                       PyramidTiffOptions::Downsample downsample, int tile_size,
                       const RegionReader& read, const std::string& description) {
  PyramidTiffOptions options;
  options.tile_size = tile_size;
  options.compression = TiffCompression::kDeflate;
  options.spacing = Spacing{spacing_um, spacing_um};
  options.downsample = downsample;
  options.description = description;
  PyramidTiffWriter writer(path, size, 1, options);
  MortonWalker walker(writer.grid());
  for (Point cell; walker.next(cell);) {
    writer.write_tile(cell.x, cell.y, read(writer.tile_rect(cell.x, cell.y)));
  }
  writer.commit();
  return path;
}

// `read` sampled at `out_size` pixels, each taking the value at its centre (nearest): rows of
// the source are read in bands of `band_rows`, so memory is one band plus the result.
cv::Mat sample_nearest(const RegionReader& read, Size source, Size out_size,
                       std::int64_t band_rows) {
  cv::Mat out(static_cast<int>(out_size.height), static_cast<int>(out_size.width), CV_8UC1);
  const double fx = static_cast<double>(source.width) / static_cast<double>(out_size.width);
  const double fy = static_cast<double>(source.height) / static_cast<double>(out_size.height);
  std::vector<int> columns(static_cast<std::size_t>(out_size.width));
  for (std::int64_t i = 0; i < out_size.width; ++i) {
    columns[static_cast<std::size_t>(i)] = static_cast<int>(std::min<std::int64_t>(
        static_cast<std::int64_t>((static_cast<double>(i) + 0.5) * fx), source.width - 1));
  }
  std::int64_t band_start = -1;
  cv::Mat band;
  for (std::int64_t j = 0; j < out_size.height; ++j) {
    const auto row = std::min<std::int64_t>(
        static_cast<std::int64_t>((static_cast<double>(j) + 0.5) * fy), source.height - 1);
    if (band_start < 0 || row >= band_start + band.rows) {
      band_start = row / band_rows * band_rows;
      band = read(Rect{0, band_start, source.width, band_rows});
    }
    const auto* in = band.ptr<std::uint8_t>(static_cast<int>(row - band_start));
    auto* dst = out.ptr<std::uint8_t>(static_cast<int>(j));
    for (std::int64_t i = 0; i < out_size.width; ++i) {
      dst[i] = in[columns[static_cast<std::size_t>(i)]];
    }
  }
  return out;
}

// The size of a whole-slide raster at `spacing_um`, for a slide of `slide_um` microns.
Size size_at(double slide_w_um, double slide_h_um, double spacing_um) {
  return Size{std::max<std::int64_t>(1, std::llround(slide_w_um / spacing_um)),
              std::max<std::int64_t>(1, std::llround(slide_h_um / spacing_um))};
}

std::string file_safe(const std::string& name) {
  std::string safe;
  for (const char c : name) {
    safe += std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' ? c : '_';
  }
  return safe;
}

struct SlideExtent {
  double width_um = 0;
  double height_um = 0;
};

SlideExtent extent_of(const PredictionRecord& record) {
  return {static_cast<double>(record.slide.size().width) * record.slide.spacing.x_um,
          static_cast<double>(record.slide.size().height) * record.slide.spacing.y_um};
}

double overlay_spacing(const SegmentOutputs& settings, const SlideExtent& extent,
                       double output_spacing_um) {
  if (settings.overlay_spacing_um > 0) {
    return settings.overlay_spacing_um;
  }
  const double long_side_um = std::max(extent.width_um, extent.height_um);
  return std::max(output_spacing_um, long_side_um / settings.overlay_max_px);
}

double vector_spacing(const SegmentOutputs& settings, const SlideExtent& extent,
                      double output_spacing_um) {
  double spacing =
      settings.vector_spacing_um > 0 ? settings.vector_spacing_um : 2.0 * output_spacing_um;
  const double megapixels = extent.width_um * extent.height_um / (spacing * spacing) / 1e6;
  if (megapixels > settings.max_vector_megapixels) {
    spacing *= std::sqrt(megapixels / settings.max_vector_megapixels);
  }
  return spacing;
}

fs::path write_overlay(const ExportJob& job, const PredictionCache& cache, double spacing_um,
                       std::int64_t band_rows) {
  const PredictionLayout& layout = cache.layout();
  const PredictionRecord& record = cache.record();
  OpenOptions open = job.open;
  open.mpp_override_um = record.slide.spacing.x_um;  // the spacing the predictions were made at
  std::unique_ptr<SlideReader> reader;
  try {
    reader = open_slide(record.slide.path, open);
  } catch (const Error& error) {
    throw Error(error.code(),
                "the overlay needs the slide at its recorded path: " + std::string(error.what()));
  }
  const SlideExtent extent = extent_of(record);
  const Size size = size_at(extent.width_um, extent.height_um, spacing_um);
  const Size slide_size = reader->info().size();
  const Patch thumbnail = reader->read_fov(
      RectF{0, 0, static_cast<double>(slide_size.width), static_cast<double>(slide_size.height)},
      size);
  OverlayOptions options;
  options.alpha = job.settings.overlay_alpha;
  cv::Mat values;
  if (job.heatmap_class) {
    const auto found =
        std::find_if(layout.classes.begin(), layout.classes.end(),
                     [&](const LabelClass& c) { return c.name == *job.heatmap_class; });
    if (found == layout.classes.end()) {
      throw Error(ErrorCode::kInvalidArgument,
                  "--heatmap-class '" + *job.heatmap_class + "' is not a class of the model");
    }
    const int index = static_cast<int>(found - layout.classes.begin());
    options.mode = OverlayMode::kHeatmap;
    options.colormap = parse_colormap(job.colormap);
    options.heatmap_title = "P(" + found->name + ")";
    values =
        sample_nearest([&](const Rect& region) { return cache.read_probability(index, region); },
                       cache.heatmap_px(), size, band_rows);
  } else {
    options.classes = layout.classes;
    const double mm2_per_px = layout.spacing_um * layout.spacing_um * 1e-6;
    for (const LabelClass& label : layout.classes) {
      options.legend_values.push_back(static_cast<double>(cache.stats().label_pixels[label.value]) *
                                      mm2_per_px);
    }
    values = sample_nearest([&](const Rect& region) { return cache.read_labels(region); },
                            layout.raster_px, size, band_rows);
  }
  fs::path path = job.slide_dir / "overlay.png";
  write_png_atomically(render_overlay(thumbnail.rgb, values, options), path);
  return path;
}

}  // namespace

std::vector<fs::path> export_from_cache(const ExportJob& job, const PredictionCache& cache) {
  const PredictionLayout& layout = cache.layout();
  const PredictionRecord& record = cache.record();
  const SegmentOutputs& settings = job.settings;
  const int tile = settings.tiff_tile_size;
  const std::string description = "slidestream " + std::string(kVersion) + " " +
                                  record.model_architecture + " " + record.model_sha256;
  std::vector<fs::path> written;
  const RegionReader labels = [&](const Rect& region) { return cache.read_labels(region); };
  if (job.labels) {
    written.push_back(write_pyramid(job.slide_dir / "labels.tif", layout.raster_px,
                                    layout.spacing_um, PyramidTiffOptions::Downsample::kMode, tile,
                                    labels, description + " labels"));
  }
  const double heat_spacing = layout.spacing_um * layout.heatmap_downsample;
  if (job.heatmaps) {
    for (std::size_t c = 0; c < layout.classes.size(); ++c) {
      const int index = static_cast<int>(c);
      written.push_back(write_pyramid(
          job.slide_dir / ("prob_" + file_safe(layout.classes[c].name) + ".tif"),
          cache.heatmap_px(), heat_spacing, PyramidTiffOptions::Downsample::kMean, tile,
          [&](const Rect& region) { return cache.read_probability(index, region); },
          description + " probability of " + layout.classes[c].name));
    }
  }
  if (job.uncertainty) {
    written.push_back(write_pyramid(
        job.slide_dir / "uncertainty.tif", layout.raster_px, layout.spacing_um,
        PyramidTiffOptions::Downsample::kMean, tile,
        [&](const Rect& region) { return cache.read_entropy(region); },
        description + " softmax entropy (255 = ln(classes))"));
  }
  const SlideExtent extent = extent_of(record);
  const std::int64_t band_rows = std::max<std::int64_t>(layout.stride_px.height, 64);
  if (job.overlay) {
    const double spacing = overlay_spacing(settings, extent, layout.spacing_um);
    written.push_back(write_overlay(job, cache, spacing, band_rows));
  }
  if (job.geojson || job.asap) {
    const double spacing = vector_spacing(settings, extent, layout.spacing_um);
    const Size size = size_at(extent.width_um, extent.height_um, spacing);
    const cv::Mat coarse = sample_nearest(labels, layout.raster_px, size, band_rows);
    TraceOptions trace;
    trace.downsample_x =
        static_cast<double>(record.slide.size().width) / static_cast<double>(size.width);
    trace.downsample_y =
        static_cast<double>(record.slide.size().height) / static_cast<double>(size.height);
    trace.level0_spacing = record.slide.spacing;
    trace.min_area_um2 = settings.min_region_area_um2;
    trace.simplify_tolerance_px = settings.simplify_px;
    const std::vector<TracedRegion> regions = trace_regions(coarse, layout.classes, trace);
    if (job.geojson) {
      written.push_back(job.slide_dir / "annotations.geojson");
      write_geojson(regions, written.back());
    }
    if (job.asap) {
      written.push_back(job.slide_dir / "annotations.xml");
      write_asap_xml(regions, written.back());
    }
  }
  for (const fs::path& path : written) {
    spdlog::debug("wrote {}", path.string());
  }
  return written;
}

std::vector<fs::path> run_export(const ExportJob& job) {
  const PredictionCache cache(job.slide_dir / "predictions.h5");
  return export_from_cache(job, cache);
}

}  // namespace slidestream::detail

namespace slidestream {

std::vector<fs::path> run_export(const ExportJob& job) {
  return detail::run_export(job);
}

}  // namespace slidestream
