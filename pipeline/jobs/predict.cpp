// `slidestream predict`: one image or slide region through a model, tiled with the model's own
// geometry, through the tile pipeline into a WindowStitcher, then a label PNG (class values) and
// optionally a probability TIFF. Torch-free: it only uses the SegmentationModel interface.
#include "slidestream/jobs/predict.hpp"

#include <spdlog/spdlog.h>

#include <cmath>
#include <opencv2/imgcodecs.hpp>

#include "slide_driver.hpp"
#include "slidestream/core.hpp"
#include "slidestream/stitch.hpp"

namespace slidestream {

namespace fs = std::filesystem;

void PredictJob::validate() const {
  inference.validate();
  require_thread_count(scheduler.threads, "--threads");
  if (batch_size < 1) {
    throw Error(ErrorCode::kInvalidArgument, "--batch-size must be >= 1");
  }
  if (labels_output.extension() != ".png") {
    throw Error(ErrorCode::kInvalidArgument,
                "-o '" + labels_output.string() + "' must be a .png (class values, 8-bit)");
  }
  if (probs_output && probs_output->extension() != ".tif" && probs_output->extension() != ".tiff") {
    throw Error(ErrorCode::kInvalidArgument,
                "--probs '" + probs_output->string() + "' must be a .tif (one page per class)");
  }
  if (region_l0 && (region_l0->width <= 0 || region_l0->height <= 0)) {
    throw Error(ErrorCode::kInvalidArgument, "--region needs a positive width and height");
  }
  std::vector<NamedPath> inputs{{"the image", image}};
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(model_dir, ec)) {
    inputs.push_back({"the model file", entry.path()});
  }
  std::vector<NamedPath> outputs{{"-o", labels_output}};
  if (probs_output) {
    outputs.push_back({"--probs", *probs_output});
  }
  require_distinct_files(inputs, outputs);
}

namespace {

constexpr double kMaxOutputMegapixels = 256;

Rect output_window(const SlideInfo& info, const std::optional<Rect>& region_l0,
                   double output_spacing_um) {
  const double ratio_x = info.spacing.x_um / output_spacing_um;
  const double ratio_y = info.spacing.y_um / output_spacing_um;
  const Rect region = region_l0.value_or(Rect{0, 0, info.size().width, info.size().height});
  const auto x0 = static_cast<std::int64_t>(std::floor(static_cast<double>(region.x) * ratio_x));
  const auto y0 = static_cast<std::int64_t>(std::floor(static_cast<double>(region.y) * ratio_y));
  const auto x1 = static_cast<std::int64_t>(
      std::ceil(static_cast<double>(std::min(region.right(), info.size().width)) * ratio_x));
  const auto y1 = static_cast<std::int64_t>(
      std::ceil(static_cast<double>(std::min(region.bottom(), info.size().height)) * ratio_y));
  if (x1 <= x0 || y1 <= y0) {
    throw Error(ErrorCode::kInvalidArgument, "--region lies outside the image");
  }
  return Rect{x0, y0, x1 - x0, y1 - y0};
}

void write_outputs(const PredictJob& job, const WindowStitcher::Stitched& stitched) {
  AtomicOutput labels_file(job.labels_output);
  if (!cv::imwrite(labels_file.temp_path().string(), stitched.labels)) {
    throw Error(ErrorCode::kOutputError, "cannot write '" + job.labels_output.string() + "'");
  }
  if (job.probs_output) {
    AtomicOutput probs_file(*job.probs_output);
    if (!cv::imwritemulti(probs_file.temp_path().string(), stitched.pages)) {
      throw Error(ErrorCode::kOutputError, "cannot write '" + job.probs_output->string() + "'");
    }
    probs_file.commit();
  }
  labels_file.commit();
}

}  // namespace

PredictResult run_predict(const PredictJob& job) {
  job.validate();
  require_writable_output(job.labels_output);
  if (job.probs_output) {
    require_writable_output(*job.probs_output);
  }
  auto model = load_model(job.model_dir, job.inference);
  const auto reader = open_slide(job.image, job.open);
  const ModelGeometry& geometry = model->geometry();
  for (const BranchGeometry& branch : geometry.branches) {
    try {
      static_cast<void>(reader->level_for_spacing(branch.spacing_um));
    } catch (const Error& error) {
      throw Error(error.code(),
                  "'" + job.image.string() + "' cannot feed this model: " + error.what());
    }
  }
  PlanOptions plan;
  plan.min_tissue_fraction = 0;
  plan.region_l0 = job.region_l0;
  // Same-padded outputs are least reliable at their borders: overlap by half and average.
  const Size stride = model->valid_convolutions()
                          ? geometry.output.size_px
                          : Size{std::max<std::int64_t>(1, geometry.output.size_px.width / 2),
                                 std::max<std::int64_t>(1, geometry.output.size_px.height / 2)};
  plan.stride_px = stride;
  TilePlanner planner(reader->info(), nullptr, geometry, plan);

  const Rect window = output_window(reader->info(), job.region_l0, geometry.output.spacing_um);
  if (static_cast<double>(window.width * window.height) / 1e6 > kMaxOutputMegapixels) {
    throw Error(ErrorCode::kInvalidArgument,
                "predict writes one in-memory image; the output would exceed 256 MP at the "
                "model's spacing: choose a smaller --region");
  }
  WindowStitcher stitcher(window, static_cast<int>(model->classes().size()));

  TilePipeline stages;
  stages.source = detail::source_of(planner);
  stages.expected_tiles = planner.count();
  stages.read = [&](const TileSpec& spec) {
    return detail::read_tile(*reader, spec, geometry, nullptr);
  };
  stages.batch_size = static_cast<std::size_t>(job.batch_size);
  stages.infer = [&](TileBatch& batch) { detail::predict_batch(*model, batch); };
  stages.sink = [&](TileBatch&& batch) {
    for (std::size_t i = 0; i < batch.specs.size(); ++i) {
      const TileSpec& spec = batch.specs[i];
      stitcher.add({spec.column * stride.width, spec.row * stride.height}, batch.outputs[i]);
    }
  };
  SchedulerOptions scheduler = job.scheduler;
  scheduler.label = "predict";
  PredictResult result;
  result.tiles = run_tile_pipeline(stages, scheduler).tiles;
  write_outputs(job, stitcher.finish(model->classes()));
  result.labels_size_px = {window.width, window.height};
  result.output_spacing_um = geometry.output.spacing_um;
  result.device = model->device();
  spdlog::info("predict: {} tiles on {}, labels {}x{} px at {} um/px -> {}", result.tiles,
               result.device, result.labels_size_px.width, result.labels_size_px.height,
               result.output_spacing_um, job.labels_output.string());
  return result;
}

}  // namespace slidestream
