// One slide of `slidestream segment`: tissue -> plan -> parallel reads -> batches -> inference ->
// journal, then predictions.h5, the exports and report.json.
#include <spdlog/spdlog.h>
#include <tbb/info.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_pipeline.h>
#include <tbb/task_arena.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>

#include "segment_internal.hpp"
#include "slidestream/core.hpp"

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace slidestream::detail {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Adds elapsed seconds to an atomic accumulator on destruction (stage times across threads).
class StageTimer {
 public:
  explicit StageTimer(std::atomic<double>& total) : total_(total), start_(Clock::now()) {}
  ~StageTimer() {
    const double elapsed = seconds_since(start_);
    double current = total_.load();
    while (!total_.compare_exchange_weak(current, current + elapsed)) {
    }
  }
  StageTimer(const StageTimer&) = delete;
  StageTimer& operator=(const StageTimer&) = delete;

 private:
  std::atomic<double>& total_;
  Clock::time_point start_;
};

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

// A batch of tiles travelling through the pipeline.
struct Batch {
  std::vector<TileSpec> specs;
  std::vector<PatchSet> patches;
  std::vector<ModelOutput> outputs;
};

struct PipelineContext {
  const SlideReader& reader;
  SegmentationModel& model;
  TilePlanner& planner;
  PredictionJournal& journal;
  const SegmentConfig& config;
  const StainStage* stain = nullptr;  // normalizes every branch patch when set
  std::uint64_t skip = 0;             // tiles of the plan already in the journal
  std::atomic<double> read_s{0};
  std::atomic<double> inference_s{0};
  std::atomic<double> write_s{0};
  std::uint64_t processed = 0;
};

void run_pipeline(PipelineContext& context, std::uint64_t expected, const std::string& label) {
  const SegmentConfig& config = context.config;
  const int threads =
      config.scheduler.threads > 0 ? config.scheduler.threads : tbb::info::default_concurrency();
  // One batch reading, one in the model and one being written keep every stage busy.
  const auto inflight = static_cast<std::size_t>(
      config.scheduler.max_inflight > 0 ? config.scheduler.max_inflight : 3);
  for (std::uint64_t i = 0; i < context.skip; ++i) {
    static_cast<void>(context.planner.next());
  }
  ProgressBar progress(label, expected, config.scheduler.progress);
  const ModelGeometry& geometry = context.model.geometry();
  using BatchPtr = Batch*;  // owned by `batches` (see InflightItems)
  InflightItems<Batch> batches;
  tbb::task_arena arena(threads);
  arena.execute([&] {
    tbb::parallel_pipeline(
        inflight,
        tbb::make_filter<void, BatchPtr>(tbb::filter_mode::serial_in_order,
                                         [&](tbb::flow_control& control) -> BatchPtr {
                                           auto batch = std::make_unique<Batch>();
                                           while (batch->specs.size() <
                                                  static_cast<std::size_t>(config.batch_size)) {
                                             std::optional<TileSpec> tile = context.planner.next();
                                             if (!tile) {
                                               break;
                                             }
                                             batch->specs.push_back(std::move(*tile));
                                           }
                                           if (batch->specs.empty()) {
                                             control.stop();
                                             return nullptr;
                                           }
                                           return batches.adopt(std::move(batch));
                                         }) &
            tbb::make_filter<BatchPtr, BatchPtr>(
                tbb::filter_mode::parallel,
                [&](BatchPtr batch) {
                  StageTimer timer(context.read_s);
                  batch->patches.resize(batch->specs.size());
                  tbb::parallel_for(std::size_t{0}, batch->specs.size(), [&](std::size_t i) {
                    PatchSet patches = read_patch_set(context.reader, batch->specs[i], geometry);
                    if (context.stain != nullptr) {
                      for (cv::Mat& branch : patches.branches) {
                        branch = context.stain->apply(branch);
                      }
                    }
                    batch->patches[i] = std::move(patches);
                  });
                  return batch;
                }) &
            tbb::make_filter<BatchPtr, BatchPtr>(
                tbb::filter_mode::serial_in_order,
                [&](BatchPtr batch) {
                  StageTimer timer(context.inference_s);
                  std::vector<const PatchSet*> inputs;
                  for (const PatchSet& patches : batch->patches) {
                    inputs.push_back(&patches);
                  }
                  batch->outputs = context.model.predict(inputs);
                  batch->patches.clear();  // the pixels are no longer needed
                  return batch;
                }) &
            tbb::make_filter<BatchPtr, void>(
                tbb::filter_mode::serial_in_order, [&](BatchPtr written) {
                  const std::unique_ptr<Batch> batch = batches.release(written);
                  StageTimer timer(context.write_s);
                  if (batch->outputs.size() != batch->specs.size()) {
                    throw Error(ErrorCode::kModelError, "the model returned " +
                                                            std::to_string(batch->outputs.size()) +
                                                            " outputs for a batch of " +
                                                            std::to_string(batch->specs.size()));
                  }
                  for (std::size_t i = 0; i < batch->specs.size(); ++i) {
                    context.journal.append({batch->specs[i], batch->outputs[i].probs});
                  }
                  context.processed += batch->specs.size();
                  progress.advance(batch->specs.size());
                }));
  });
  context.journal.flush();
  progress.finish();
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
                     {"backend", info.backend},
                     {"size_l0", {info.size().width, info.size().height}},
                     {"mpp", {info.spacing.x_um, info.spacing.y_um}},
                     {"mpp_source", info.spacing_source},
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

  OpenOptions open = job.open;
  if (input.mpp_um) {
    open.mpp_override_um = input.mpp_um;
  }
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
    PipelineContext context{*reader, model, planner, journal, config};
    context.stain = stain.get();
    context.skip = result.resumed;
    start = Clock::now();
    run_pipeline(context, result.planned - result.resumed, input.id);
    result.times.pipeline_s = seconds_since(start);
    result.times.read_s = context.read_s.load();
    result.times.inference_s = context.inference_s.load();
    result.times.write_s = context.write_s.load();
    result.processed = context.processed;

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
