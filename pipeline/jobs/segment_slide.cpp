// One slide of `slidestream segment`: tissue -> plan -> parallel reads -> batches -> inference ->
// journal, then predictions.h5, the exports and report.json.
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <memory>
#include <sstream>

#include "segment_internal.hpp"
#include "slide_driver.hpp"
#include "slidestream/core.hpp"

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace slidestream::detail {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The model's inputs must be servable by the slide: no branch finer than level 0.
void require_servable(const SlideReader& reader, const SegmentationModel& model) {
  const SlideInfo& info = reader.info();
  for (std::size_t b = 0; b < model.geometry().branches.size(); ++b) {
    const double spacing = model.geometry().branches[b].spacing_um;
    try {
      static_cast<void>(reader.level_for_spacing(spacing));
    } catch (const Error&) {
      std::ostringstream message;
      message << "the model's branch " << b << " needs " << spacing << " um/px but '"
              << info.path.string() << "' is scanned at " << info.spacing.x_um
              << " um/px (its finest); use a model trained for this magnification, or --mpp if "
                 "the slide's spacing metadata is wrong";
      throw Error(ErrorCode::kModelError, message.str());
    }
  }
}

Size stride_for(const SegmentationModel& model, const SegmentConfig& config) {
  const Size tile = model.geometry().output.size_px;
  if (model.valid_convolutions()) {
    return tile;  // valid convolutions: outputs abut exactly
  }
  const int k = config.outputs.heatmap_downsample;
  auto stride = [&](std::int64_t size) {
    const auto raw =
        static_cast<std::int64_t>(std::floor(static_cast<double>(size) * (1.0 - config.overlap)));
    return std::max<std::int64_t>(k, raw / k * k);
  };
  return Size{stride(tile.width), stride(tile.height)};
}

// The streaming pass: tiles after the journal's prefix -> read (+ stain) -> model -> journal.
PipelineTimes run_pipeline(const SlideReader& reader, SegmentationModel& model,
                           TilePlanner& planner, PredictionJournal& journal,
                           const SegmentConfig& config, const StainStage* stain, std::uint64_t skip,
                           const std::string& label) {
  for (std::uint64_t i = 0; i < skip; ++i) {
    static_cast<void>(planner.next());
  }
  TilePipeline stages;
  stages.source = source_of(planner);
  stages.expected_tiles = planner.count() - skip;
  stages.read = [&](const TileSpec& spec) {
    return read_tile(reader, spec, model.geometry(), stain);
  };
  stages.batch_size = static_cast<std::size_t>(config.batch_size);
  stages.infer = [&](TileBatch& batch) { predict_batch(model, batch); };
  stages.sink = [&](TileBatch&& batch) {
    for (std::size_t i = 0; i < batch.specs.size(); ++i) {
      journal.append({batch.specs[i], batch.outputs[i]});
    }
  };
  SchedulerOptions scheduler = config.scheduler;
  scheduler.label = label;
  const PipelineTimes times = run_tile_pipeline(stages, scheduler);
  journal.flush();
  return times;
}

PredictionLayout layout_for(const SlideInfo& info, const SegmentationModel& model,
                            const SegmentConfig& config, const std::string& fingerprint) {
  PredictionLayout layout =
      make_prediction_layout(info, model.geometry(), stride_for(model, config));
  layout.classes = model.classes();
  layout.blend = model.valid_convolutions() ? BlendMode::kNone : config.blend;
  if (!model.valid_convolutions() && layout.blend == BlendMode::kNone) {
    layout.stride_px = layout.tile_px;  // same-padded without blending: abut, no overlap
  }
  layout.probabilities = config.outputs.heatmaps;
  layout.heatmap_downsample = config.outputs.heatmap_downsample;
  layout.entropy = config.outputs.uncertainty;
  layout.fingerprint = fingerprint;
  layout.validate();
  return layout;
}

// A finished slide with the same fingerprint: its report says so.
bool finished_with(const fs::path& slide_dir, const std::string& fingerprint) {
  const fs::path report = slide_dir / "report.json";
  if (!fs::exists(report)) {
    return false;
  }
  try {
    std::ifstream stream(report);
    const json existing = json::parse(stream);
    return existing.value("status", "") == "ok" && existing.value("fingerprint", "") == fingerprint;
  } catch (const std::exception&) {
    return false;
  }
}

// Removes what an earlier run left, so a fresh run never mixes with it.
void clear_slide_dir(const fs::path& slide_dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(slide_dir, ec)) {
    if (entry.path().filename() != ".lock") {
      fs::remove_all(entry.path(), ec);
    }
  }
}

void write_slide_report(const SegmentJob& job, const SegmentationModel& model,
                        const SlideInfo& info, const SlideInput& input,
                        const PredictionCache& cache, const SlideResult& result,
                        const std::string& fingerprint, const fs::path& slide_dir) {
  const PredictionLayout& layout = cache.layout();
  json report;
  report["schema"] = "slidestream.segment-report/1";
  report["status"] = "ok";
  report["slide"] = {{"id", input.id},
                     {"path", info.path.string()},
                     {"vendor", info.vendor},
                     {"backend", backend_name(info.backend)},
                     {"size_l0", {info.size().width, info.size().height}},
                     {"mpp", {info.spacing.x_um, info.spacing.y_um}},
                     {"mpp_source", spacing_source_name(info.spacing_source)},
                     {"quickhash", info.quickhash}};
  report["model"] = {{"dir", job.model_dir.string()},
                     {"architecture", model.architecture()},
                     {"sha256", model.weights_sha256()},
                     {"device", model.device()},
                     {"valid_convolutions", model.valid_convolutions()}};
  report["fingerprint"] = fingerprint;
  report["config_yaml"] = job.config.resolved_yaml();
  report["output"] = {{"spacing_um", layout.spacing_um},
                      {"raster_px", {layout.raster_px.width, layout.raster_px.height}},
                      {"tile_px", layout.tile_px.width},
                      {"stride_px", layout.stride_px.width},
                      {"blend", blend_mode_name(layout.blend)}};
  report["tiles"] = {
      {"grid", layout.grid.area()},
      {"planned", result.planned},
      {"processed", result.processed},
      {"resumed", result.resumed},
      {"skipped_without_tissue", static_cast<std::uint64_t>(layout.grid.area()) - result.planned}};
  json areas = json::object();
  const double mm2_per_px = layout.spacing_um * layout.spacing_um * 1e-6;
  for (const LabelClass& label : layout.classes) {
    areas[label.name] = static_cast<double>(cache.stats().label_pixels[label.value]) * mm2_per_px;
  }
  report["area_mm2"] = areas;
  const StageTimes& t = result.times;
  report["seconds"] = {{"tissue", t.tissue_s}, {"plan", t.plan_s},
                       {"read", t.read_s},     {"inference", t.inference_s},
                       {"write", t.write_s},   {"pipeline", t.pipeline_s},
                       {"merge", t.merge_s},   {"export", t.export_s}};
  const double out_mp =
      static_cast<double>(result.processed) * static_cast<double>(layout.tile_px.area()) / 1e6;
  report["throughput"] = {
      {"tiles_per_s", t.pipeline_s > 0 ? static_cast<double>(result.processed) / t.pipeline_s : 0},
      {"output_mp_per_s", t.pipeline_s > 0 ? out_mp / t.pipeline_s : 0},
      {"inference_busy_fraction", t.pipeline_s > 0 ? t.inference_s / t.pipeline_s : 0}};
  report["peak_rss_mib"] = peak_rss_mib();
  report["versions"] = library_versions();
  write_text_atomically(slide_dir / "report.json", report.dump(2) + "\n");
}

// What a failed slide leaves: its lock and the journal a --resume continues from, never
// outputs that look finished (a labels.tif or predictions.h5 without report.json).
void remove_unfinished_outputs(const fs::path& slide_dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(slide_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name != ".lock" && name != "journal") {
      fs::remove_all(entry.path(), ec);
    }
  }
}

SlideResult segment_slide_outputs(const SegmentJob& job, SegmentationModel& model,
                                  const SlideInput& input, const fs::path& slide_dir,
                                  const std::string& fingerprint);

}  // namespace

SlideResult segment_slide(const SegmentJob& job, SegmentationModel& model, const SlideInput& input,
                          const fs::path& slide_dir) {
  const std::string fingerprint = run_fingerprint(model, job.config);
  if (job.resume && finished_with(slide_dir, fingerprint)) {
    SlideResult result;
    result.skipped = true;
    return result;
  }
  if (!job.resume) {
    clear_slide_dir(slide_dir);
  }
  try {
    return segment_slide_outputs(job, model, input, slide_dir, fingerprint);
  } catch (...) {
    remove_unfinished_outputs(slide_dir);
    throw;
  }
}

namespace {

SlideResult segment_slide_outputs(const SegmentJob& job, SegmentationModel& model,
                                  const SlideInput& input, const fs::path& slide_dir,
                                  const std::string& fingerprint) {
  const SegmentConfig& config = job.config;
  SlideResult result;
  std::error_code ignored;
  fs::remove(slide_dir / "report.json", ignored);  // only a finished slide has one

  const OpenOptions open = open_options_for(input, job.open);
  const std::unique_ptr<SlideReader> reader = open_slide(input.path, open);
  const SlideInfo& info = reader->info();
  require_servable(*reader, model);
  const PredictionLayout layout = layout_for(info, model, config, fingerprint);

  auto start = Clock::now();
  const TissueMask mask = compute_tissue_mask(*reader, config.tissue);
  result.times.tissue_s = seconds_since(start);

  start = Clock::now();
  PlanOptions plan;
  plan.stride_px = layout.stride_px;
  plan.min_tissue_fraction = config.min_tissue_fraction;
  plan.region_l0 = config.region_l0;
  TilePlanner planner(info, &mask, model.geometry(), plan);
  result.planned = planner.count();
  result.times.plan_s = seconds_since(start);

  const fs::path predictions = slide_dir / "predictions.h5";
  const fs::path journal_dir = slide_dir / "journal";
  bool cached = false;
  if (job.resume && fs::exists(predictions)) {
    try {
      cached = PredictionCache(predictions).layout().fingerprint == fingerprint;
    } catch (const Error&) {
      cached = false;  // a damaged cache is rebuilt from the journal
    }
  }
  if (!cached) {
    PredictionJournal journal(journal_dir, layout, config.outputs.checkpoint_tiles);
    result.resumed = std::min(journal.committed_tiles(), result.planned);
    if (result.resumed > 0) {
      spdlog::info("{}: resuming after {} of {} tiles", input.id, result.resumed, result.planned);
    }
    std::unique_ptr<StainStage> stain;
    if (config.stain.enabled) {
      stain = std::make_unique<StainStage>(config.stain);
      stain->begin_slide(*reader, mask, input.id);
    }
    const PipelineTimes times = run_pipeline(*reader, model, planner, journal, config, stain.get(),
                                             result.resumed, input.id);
    result.times.pipeline_s = times.wall_s;
    result.times.read_s = times.read_s;
    result.times.inference_s = times.infer_s;
    result.times.write_s = times.sink_s;
    result.processed = times.tiles;

    start = Clock::now();
    PredictionRecord record;
    record.slide = info;
    record.slide_id = input.id;
    record.model_sha256 = model.weights_sha256();
    record.model_architecture = model.architecture();
    record.config_yaml = config.resolved_yaml();
    record.planned_tiles = result.planned;
    merge_predictions(journal_dir, layout, record, predictions);
    result.times.merge_s = seconds_since(start);
  }

  start = Clock::now();
  const PredictionCache cache(predictions);
  ExportJob exports;
  exports.slide_dir = slide_dir;
  exports.labels = true;
  exports.heatmaps = config.outputs.heatmaps;
  exports.uncertainty = config.outputs.uncertainty;
  exports.overlay = config.outputs.overlay;
  exports.geojson = config.outputs.geojson;
  exports.asap = config.outputs.asap;
  exports.settings = config.outputs;
  exports.open = open;
  export_from_cache(exports, cache);
  result.times.export_s = seconds_since(start);

  write_slide_report(job, model, info, input, cache, result, fingerprint, slide_dir);
  fs::remove_all(journal_dir, ignored);
  return result;
}

}  // namespace

}  // namespace slidestream::detail
