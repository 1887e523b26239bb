// Stain normalization inside the pipeline: slide-level fits, the StainStage used by the
// extract job (and later segment), and `stain normalize-slide`.
#include "slidestream/jobs/stain_stage.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <cmath>

#include "slidestream/core.hpp"
#include "slidestream/enum_names.hpp"
#include "slidestream/jobs/stain.hpp"
#include "slidestream/raster.hpp"

namespace slidestream {

namespace {

/// Level-0 field of view of grid cell (column, row) of `tile_px` tiles at `spacing_um`.
RectF cell_fov(const SlideInfo& info, std::int64_t column, std::int64_t row, int tile_px,
               double spacing_um) {
  const Size size{tile_px, tile_px};
  const double step_x = tile_px * spacing_um / info.spacing.x_um;
  const double step_y = tile_px * spacing_um / info.spacing.y_um;
  return fov_from_origin(Point{static_cast<std::int64_t>(std::floor(column * step_x)),
                               static_cast<std::int64_t>(std::floor(row * step_y))},
                         size, spacing_um, info.spacing);
}

}  // namespace

constexpr EnumNames<StainFitScope, 2> kStainFitScopeNames{
    {{StainFitScope::kSlide, "slide"}, {StainFitScope::kTile, "tile"}}};

std::string stain_fit_scope_name(StainFitScope scope) {
  return std::string(enum_name(kStainFitScopeNames, scope));
}

StainFitScope parse_stain_fit_scope(const std::string& name, const std::string& what,
                                    ErrorCode code) {
  return parse_enum(kStainFitScopeNames, name, what, code);
}

void SlideStainFitOptions::validate() const {
  fit.validate();
  if (!is_within(spacing_um, 1e-3, 1e3)) {
    throw Error(ErrorCode::kInvalidConfig,
                "slide stain fit: the fit spacing (--fit-spacing, stain.fit_spacing_um) must be "
                "in (0, 1000] um/px, e.g. 2");
  }
  if (tile_px < 16 || tile_px > 4096 || max_tiles < 1 || max_tiles > 100000 ||
      !is_within(min_tissue_fraction, 0, 1)) {
    throw Error(ErrorCode::kInvalidConfig,
                "slide stain fit: the tile size must be 16..4096 px, the tile count "
                "(--fit-tiles) 1..100000 and the tissue fraction in [0, 1]");
  }
}

StainParams fit_stain_on_slide(const SlideReader& slide, const TissueMask& mask, StainMethod method,
                               const SlideStainFitOptions& options) {
  options.validate();
  const SlideInfo& info = slide.info();
  const double fov_x = options.tile_px * options.spacing_um / info.spacing.x_um;
  const double fov_y = options.tile_px * options.spacing_um / info.spacing.y_um;
  const auto columns = static_cast<std::int64_t>(std::ceil(info.size().width / fov_x));
  const auto rows = static_cast<std::int64_t>(std::ceil(info.size().height / fov_y));
  // Two passes over the grid (count, then pick every k-th) store nothing per tile.
  double threshold = options.min_tissue_fraction;
  const auto qualifies = [&](std::int64_t column, std::int64_t row) {
    const double fraction =
        mask.fraction_in(cell_fov(info, column, row, options.tile_px, options.spacing_um));
    return fraction > 0 && fraction >= threshold;
  };
  const auto count = [&] {
    std::int64_t found = 0;
    for (std::int64_t row = 0; row < rows; ++row) {
      for (std::int64_t column = 0; column < columns; ++column) {
        found += qualifies(column, row) ? 1 : 0;
      }
    }
    return found;
  };
  std::int64_t candidates = count();
  if (candidates == 0) {
    threshold = 0;  // small or sparse tissue: every tile with some tissue
    candidates = count();
  }
  if (candidates == 0) {
    throw Error(ErrorCode::kInvalidArgument,
                "cannot fit stains on '" + info.path.string() + "': no " +
                    std::to_string(options.tile_px) + " px tile at " +
                    std::to_string(options.spacing_um) + " um/px has tissue under its mask");
  }
  const std::int64_t picked = std::min<std::int64_t>(candidates, options.max_tiles);
  const int per_row = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(picked))));
  const int mosaic_rows = static_cast<int>((picked + per_row - 1) / per_row);
  cv::Mat mosaic(mosaic_rows * options.tile_px, per_row * options.tile_px, CV_8UC3,
                 cv::Scalar(255, 255, 255));
  std::int64_t seen = 0;
  std::int64_t placed = 0;
  for (std::int64_t row = 0; row < rows && placed < picked; ++row) {
    for (std::int64_t column = 0; column < columns && placed < picked; ++column) {
      if (!qualifies(column, row)) {
        continue;
      }
      // Candidate `seen` is taken when it is the first at or after placed * candidates / picked.
      if (seen++ != placed * candidates / picked) {
        continue;
      }
      const Patch patch =
          slide.read_fov(cell_fov(info, column, row, options.tile_px, options.spacing_um),
                         Size{options.tile_px, options.tile_px});
      const int x = static_cast<int>(placed % per_row) * options.tile_px;
      const int y = static_cast<int>(placed / per_row) * options.tile_px;
      patch.rgb.copyTo(mosaic(cv::Rect(x, y, options.tile_px, options.tile_px)));
      ++placed;
    }
  }
  StainFitOptions fit = options.fit;
  if (fit.fitted_on.empty()) {
    fit.fitted_on = info.path.filename().string();
  }
  spdlog::info("{}: fitting {} stains on {} of {} tissue tiles ({} px at {} um/px)",
               info.path.filename().string(), stain_method_name(method), placed, candidates,
               options.tile_px, options.spacing_um);
  return fit_stain(mosaic, method, fit);
}

void StainConfig::validate() const {
  if (target.empty()) {
    throw Error(ErrorCode::kInvalidConfig,
                "stain.target: give a parameters file (.json), a preset (macenko-reference) or "
                "a reference image");
  }
  if (!is_within(fit_spacing_um, 1e-3, 1e3)) {
    throw Error(ErrorCode::kInvalidConfig,
                "stain.fit_spacing_um (--fit-spacing) must be in (0, 1000] um/px, e.g. 2");
  }
}

struct StainStage::Counters {
  std::atomic<std::int64_t> tiles{0};
  std::atomic<std::int64_t> normalized{0};
  std::atomic<std::int64_t> without_tissue{0};
  std::atomic<std::int64_t> degenerate{0};
};

StainStage::StainStage(const StainConfig& config)
    : config_(config),
      target_(resolve_stain_target(config.target, config.method)),
      counters_(std::make_unique<Counters>()) {
  config_.validate();
  normalizer_ = std::make_unique<StainNormalizer>(target_);
}

StainStage::~StainStage() = default;

void StainStage::begin_slide(const SlideReader& slide, const TissueMask& mask,
                             const std::string& slide_id) {
  counters_ = std::make_unique<Counters>();
  if (config_.fit != StainFitScope::kSlide) {
    return;
  }
  SlideStainFitOptions options;
  options.spacing_um = config_.fit_spacing_um;
  options.fit.io = target_.io;
  options.fit.beta = target_.beta;
  options.fit.alpha = target_.alpha;
  options.fit.lambda = target_.lambda;
  options.fit.fitted_on = slide_id;
  StainParams source = fit_stain_on_slide(slide, mask, target_.method, options);
  normalizer_ = std::make_unique<StainNormalizer>(target_, std::move(source));
}

cv::Mat StainStage::apply(const cv::Mat& rgb) const {
  ApplyStats stats;
  cv::Mat output = normalizer_->apply(rgb, &stats);
  counters_->tiles += stats.tiles;
  counters_->without_tissue += stats.tiles_without_tissue;
  counters_->degenerate += stats.tiles_degenerate;
  counters_->normalized += stats.tiles - stats.tiles_without_tissue - stats.tiles_degenerate;
  return output;
}

StainCounts StainStage::counts() const {
  StainCounts counts;
  counts.tiles = counters_->tiles;
  counts.normalized = counters_->normalized;
  counts.without_tissue = counters_->without_tissue;
  counts.degenerate = counters_->degenerate;
  return counts;
}

void NormalizeSlideJob::validate() const {
  stain.validate();
  tissue.validate();
  PyramidTiffOptions tiff;
  tiff.tile_size = tile_size;
  tiff.jpeg_quality = jpeg_quality;
  tiff.validate();
  require_thread_count(scheduler.threads, "--threads");
  if (scheduler.max_inflight < 0) {
    throw Error(ErrorCode::kInvalidArgument, "max_inflight must be >= 0 (0 = 2 x threads)");
  }
}

NormalizeSlideReport run_stain_normalize_slide(const NormalizeSlideJob& job) {
  job.validate();
  require_distinct_files({{"the slide", job.input}, {"--target", job.stain.target}},
                         {{"-o", job.output}});
  require_tiff_name(job.output, "-o");
  require_writable_output(job.output);
  const auto reader = open_slide(job.input, job.open);
  const SlideInfo& info = reader->info();
  const TissueMask mask = compute_tissue_mask(*reader, job.tissue);
  StainStage stage(job.stain);
  stage.begin_slide(*reader, mask, info.path.filename().string());

  PyramidTiffOptions options;
  options.tile_size = job.tile_size;
  options.compression = TiffCompression::kJpeg;
  options.jpeg_quality = job.jpeg_quality;
  options.spacing = info.spacing;
  options.description = "slidestream stain normalize-slide " + info.path.filename().string() +
                        " (" + stain_method_name(stage.target().method) + " onto " +
                        job.stain.target + ")";
  PyramidTiffWriter writer(job.output, info.size(), 3, options);
  MortonWalker walker(writer.grid());
  const Size grid = writer.grid();
  std::uint64_t index = 0;
  std::atomic<std::int64_t> copied{0};
  // The source yields tiles in Morton order, the parallel stage reads and normalizes, the
  // serial in-order sink writes: what the writer needs, with max_inflight tiles in memory.
  const auto source = [&]() -> std::optional<TileSpec> {
    Point cell;
    if (!walker.next(cell)) {
      return std::nullopt;
    }
    const Rect rect = writer.tile_rect(cell.x, cell.y);
    TileSpec spec;
    spec.index = index++;
    spec.column = cell.x;
    spec.row = cell.y;
    spec.output_l0 = RectF{static_cast<double>(rect.x), static_cast<double>(rect.y),
                           static_cast<double>(rect.width), static_cast<double>(rect.height)};
    return spec;
  };
  const auto process = [&](const TileSpec& spec) {
    PatchSet patches;
    patches.spec = spec;
    const Rect rect{static_cast<std::int64_t>(spec.output_l0.x),
                    static_cast<std::int64_t>(spec.output_l0.y),
                    static_cast<std::int64_t>(spec.output_l0.width),
                    static_cast<std::int64_t>(spec.output_l0.height)};
    cv::Mat pixels = reader->read_level(0, rect);
    if (mask.fraction_in(spec.output_l0) > 0) {
      pixels = stage.apply(pixels);
    } else {
      ++copied;
    }
    patches.branches.push_back(std::move(pixels));
    return patches;
  };
  TilePipeline stages;
  stages.source = source;
  stages.expected_tiles = static_cast<std::uint64_t>(grid.width * grid.height);
  stages.read = process;
  stages.sink = [&](TileBatch&& batch) {
    for (const PatchSet& patches : batch.patches) {
      writer.write_tile(patches.spec.column, patches.spec.row, patches.branches.front());
    }
  };
  SchedulerOptions scheduler = job.scheduler;
  scheduler.label = info.path.filename().string();
  run_tile_pipeline(stages, scheduler);
  writer.commit();
  NormalizeSlideReport report;
  report.tiles = grid.width * grid.height;
  report.tiles_copied = copied;
  report.stain = stage.counts();
  spdlog::info(
      "wrote {}: {} tiles, {} normalized, {} without tissue copied, {} unchanged "
      "(no stain or one colour)",
      job.output.string(), report.tiles, report.stain.normalized, report.tiles_copied,
      report.stain.without_tissue + report.stain.degenerate);
  return report;
}

}  // namespace slidestream
