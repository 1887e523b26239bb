// synthesize_slide: validates options, builds demand-driven libvips source images (RGB slide
// and class raster) and writes them as pyramidal tiled TIFFs through atomic outputs.
#include <spdlog/spdlog.h>
#include <vips/vips.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <mutex>
#include <string>
#include <vector>
#include <vips/vips8>

#include "slidestream/core.hpp"
#include "synth_internal.hpp"

namespace slidestream {

namespace {

using synth_detail::PixelModel;
using synth_detail::PreparedLayout;
using synth_detail::RowScratch;

constexpr double kDefaultNucleusMppUm = 0.5;  // nuclei size when the slide has no spacing
constexpr double kBigTiffBytes = 2.0e9;       // classic TIFF offsets stop at 4 GB; stay clear

void init_vips_once() {
  static std::once_flag once;
  static bool failed = false;
  std::call_once(once, [] { failed = VIPS_INIT("slidestream") != 0; });
  if (failed) {
    throw Error(ErrorCode::kInternal,
                std::string("cannot initialise libvips: ") + vips_error_buffer());
  }
}

void validate(const SynthOptions& options) {
  constexpr std::int64_t kMaxSide = std::numeric_limits<std::int32_t>::max();
  const Size& size = options.size;
  if (size.width <= 0 || size.height <= 0 || size.width > kMaxSide || size.height > kMaxSide) {
    throw Error(ErrorCode::kInvalidArgument, "invalid slide size " + std::to_string(size.width) +
                                                 "x" + std::to_string(size.height) +
                                                 "; each side must be 1.." +
                                                 std::to_string(kMaxSide) + " pixels");
  }
  // The range readers accept (slidestream::kMinPlausibleSpacingUm..kMaxPlausibleSpacingUm).
  if (options.mpp_um && !(*options.mpp_um >= 0.01 && *options.mpp_um <= 200.0)) {
    throw Error(ErrorCode::kInvalidArgument,
                "invalid pixel spacing " + std::to_string(*options.mpp_um) +
                    " um/px; give a value in [0.01, 200], e.g. 0.25 or 0.5, or none");
  }
  if (options.tile_size < 16 || options.tile_size % 16 != 0) {
    throw Error(ErrorCode::kInvalidArgument,
                "invalid tile size " + std::to_string(options.tile_size) +
                    "; use a positive multiple of 16, e.g. 256 or 512");
  }
  if (options.jpeg_quality < 1 || options.jpeg_quality > 100) {
    throw Error(
        ErrorCode::kInvalidArgument,
        "invalid JPEG quality " + std::to_string(options.jpeg_quality) + "; use 1..100, e.g. 90");
  }
  const std::string& compression = options.compression;
  if (compression != "jpeg" && compression != "deflate" && compression != "lzw") {
    throw Error(ErrorCode::kInvalidArgument,
                "invalid compression '" + compression + "'; use \"jpeg\", \"deflate\" or \"lzw\"");
  }
}

/// What the generate callbacks read: shared by all libvips worker threads, never written.
struct SourceContext {
  PreparedLayout layout;
  PixelModel model;
  bool labels_only = false;  ///< the class raster instead of RGB
};

void* start_source(VipsImage* /*out*/, void* /*a*/, void* /*b*/) {
  return new RowScratch();
}

int stop_source(void* sequence, void* /*a*/, void* /*b*/) {
  delete static_cast<RowScratch*>(sequence);
  return 0;
}

int generate_source(VipsRegion* region, void* sequence, void* a, void* /*b*/, gboolean* /*stop*/) {
  auto& scratch = *static_cast<RowScratch*>(sequence);
  const auto& context = *static_cast<const SourceContext*>(a);
  const VipsRect& rect = region->valid;
  std::vector<std::uint8_t>& labels = scratch.labels;
  labels.resize(static_cast<std::size_t>(rect.width));
  for (int y = rect.top; y < rect.top + rect.height; ++y) {
    auto* row = reinterpret_cast<std::uint8_t*>(VIPS_REGION_ADDR(region, rect.left, y));
    if (context.labels_only) {
      synth_detail::label_row(context.layout, y, rect.left, rect.width, row, scratch);
    } else {
      synth_detail::label_row(context.layout, y, rect.left, rect.width, labels.data(), scratch);
      synth_detail::render_row(context.model, y, rect.left, rect.width, labels.data(), row);
    }
  }
  return 0;
}

/// A libvips image whose pixels come from `context` on demand (the context must outlive it).
vips::VImage make_source_image(const Size& size, double pixels_per_mm,
                               const SourceContext& context) {
  VipsImage* image = vips_image_new();
  const int bands = context.labels_only ? 1 : 3;
  const VipsInterpretation interpretation =
      context.labels_only ? VIPS_INTERPRETATION_B_W : VIPS_INTERPRETATION_sRGB;
  vips_image_init_fields(image, static_cast<int>(size.width), static_cast<int>(size.height), bands,
                         VIPS_FORMAT_UCHAR, VIPS_CODING_NONE, interpretation, pixels_per_mm,
                         pixels_per_mm);
  if (vips_image_pipelinev(image, VIPS_DEMAND_STYLE_SMALLTILE, nullptr) != 0 ||
      vips_image_generate(image, start_source, generate_source, stop_source,
                          const_cast<SourceContext*>(&context), nullptr) != 0) {
    g_object_unref(image);
    throw vips::VError();
  }
  return vips::VImage(image);
}

/// Forwards libvips' evaluation progress (pixels computed) to a ProgressBar.
struct ProgressLink {
  ProgressBar* bar = nullptr;
  std::atomic<std::int64_t> reported{0};
};

void on_eval(VipsImage* /*image*/, VipsProgress* progress, void* user) {
  auto& link = *static_cast<ProgressLink*>(user);
  const std::int64_t done = progress->npels;
  const std::int64_t before = link.reported.exchange(done);
  if (done > before) {
    link.bar->advance(static_cast<std::uint64_t>(done - before));
  }
}

struct TiffSettings {
  std::string compression;  ///< "jpeg", "deflate" or "lzw"
  int jpeg_quality = 90;
  int tile_size = 256;
  double pixels_per_mm = 1.0;
  bool labels = false;  ///< class raster: pyramid levels take the mode, never an average
};

void save_tiff(const vips::VImage& image, const std::filesystem::path& path,
               const TiffSettings& settings) {
  const double bytes = static_cast<double>(image.width()) * image.height() * image.bands();
  vips::VOption* options = vips::VImage::option()
                               ->set("tile", true)
                               ->set("pyramid", true)
                               ->set("tile_width", settings.tile_size)
                               ->set("tile_height", settings.tile_size)
                               ->set("compression", settings.compression.c_str())
                               ->set("bigtiff", bytes * 4.0 / 3.0 > kBigTiffBytes)
                               ->set("xres", settings.pixels_per_mm)
                               ->set("yres", settings.pixels_per_mm)
                               ->set("resunit", "cm");
  if (settings.compression == "jpeg") {
    options->set("Q", settings.jpeg_quality);
  }
  if (settings.labels) {
    options->set("region_shrink", "mode");
  }
  image.tiffsave(path.c_str(), options);
}

/// Writes one source image to `path` atomically, with progress and errors as slidestream's.
void write_source(const std::filesystem::path& path, const SourceContext& context,
                  const SynthOptions& options, const TiffSettings& settings, bool progress) {
  AtomicOutput output(path);
  ProgressBar bar("synth", static_cast<std::uint64_t>(options.size.area()), progress);
  ProgressLink link{&bar};
  try {
    vips::VImage image = make_source_image(options.size, settings.pixels_per_mm, context);
    if (progress) {
      vips_image_set_progress(image.get_image(), TRUE);
      g_signal_connect(image.get_image(), "eval", G_CALLBACK(on_eval), &link);
    }
    save_tiff(image, output.temp_path(), settings);
    if (progress) {
      g_signal_handlers_disconnect_by_data(image.get_image(), &link);
    }
  } catch (const vips::VError& error) {
    throw Error(ErrorCode::kOutputError, "cannot write '" + path.string() + "': " + error.what());
  }
  const std::uint64_t total = static_cast<std::uint64_t>(options.size.area());
  bar.advance(total - std::min(total, bar.done()));  // libvips' last eval may stop short
  bar.finish();
  output.commit();
}

}  // namespace

void synthesize_slide(const std::filesystem::path& output, const SynthOptions& options) {
  validate(options);
  std::vector<NamedPath> outputs{{"-o", output}};
  require_tiff_name(output, "-o");
  if (options.truth_path) {
    require_tiff_name(*options.truth_path, "--truth");
    outputs.push_back({"--truth", *options.truth_path});
  }
  if (options.annotations_path) {
    require_extension(*options.annotations_path, {".geojson", ".json"}, "--annotations", "GeoJSON");
    outputs.push_back({"--annotations", *options.annotations_path});
  }
  require_distinct_files({}, outputs);
  for (const NamedPath& named : outputs) {
    require_writable_output(named.path);
  }
  init_vips_once();

  const SynthLayout layout = make_synth_layout(options);
  SourceContext context;
  context.layout = synth_detail::prepare_layout(layout);
  context.model.seed = options.seed;
  context.model.mpp_um = options.mpp_um.value_or(kDefaultNucleusMppUm);
  TiffSettings settings;
  settings.compression = options.compression;
  settings.jpeg_quality = options.jpeg_quality;
  settings.tile_size = options.tile_size;
  // libvips resolution is in pixels per millimetre; 1 px/mm (its default) reads as no spacing.
  settings.pixels_per_mm = options.mpp_um ? 1000.0 / *options.mpp_um : 1.0;

  spdlog::info("synth: writing {}x{} slide (seed {}, {} regions) to '{}'", options.size.width,
               options.size.height, options.seed, layout.polygons.size(), output.string());
  write_source(output, context, options, settings, options.progress);

  if (options.truth_path) {
    SourceContext truth_context;
    truth_context.layout = context.layout;
    truth_context.labels_only = true;
    TiffSettings truth_settings = settings;
    truth_settings.compression = options.compression == "lzw" ? "lzw" : "deflate";
    truth_settings.labels = true;
    spdlog::debug("synth: writing truth raster to '{}'", options.truth_path->string());
    write_source(*options.truth_path, truth_context, options, truth_settings, false);
  }
  if (options.annotations_path) {
    AtomicOutput annotations(*options.annotations_path);
    synth_detail::write_geojson(layout, annotations.temp_path());
    annotations.commit();
    spdlog::debug("synth: wrote annotations to '{}'", options.annotations_path->string());
  }
}

}  // namespace slidestream
