// `slidestream predict`: a model over one image or slide region (models/predict.cpp).
#include <iostream>
#include <memory>
#include <sstream>

#include "checks.hpp"
#include "commands.hpp"
#include "slidestream/core.hpp"
#include "slidestream/jobs/predict.hpp"
#include "slidestream/models/model.hpp"

namespace slidestream::cli {

namespace {

Rect parse_region(const std::string& text) {
  std::vector<std::int64_t> values;
  std::stringstream list(text);
  try {
    for (std::string item; std::getline(list, item, ',');) {
      size_t used = 0;
      values.push_back(std::stoll(item, &used));
      if (used != item.size()) {
        throw std::invalid_argument(item);
      }
    }
  } catch (const std::exception&) {
    values.clear();
  }
  if (values.size() != 4 || values[2] <= 0 || values[3] <= 0) {
    throw Error(ErrorCode::kInvalidArgument,
                "--region '" + text +
                    "' needs x,y,width,height in level-0 px, with a positive width and height");
  }
  return Rect{values[0], values[1], values[2], values[3]};
}

}  // namespace

void define_predict(CLI::App& app) {
  struct Options {
    PredictJob job;
    std::string model;
    std::string image;
    std::string labels;
    std::string probs;
    std::string region;
    std::string precision = "fp32";
    SlideOptions slide;
  };
  auto options = std::make_shared<Options>();
  app.add_option("--model", options->model,
                 "Model directory (model.yaml + weights: native HookNet/U-Net or TorchScript)")
      ->required();
  app.add_option("IMAGE", options->image, "Image or slide to segment")->required();
  app.add_option("-o,--output", options->labels,
                 "Label PNG: one 8-bit class value per pixel at the model's output spacing")
      ->required();
  app.add_option("--probs", options->probs,
                 "Also write probabilities: a multi-page TIFF, one uint8 page (0-255) per class "
                 "in model.yaml order");
  app.add_option("--region", options->region,
                 "Only this level-0 rectangle x,y,width,height (px); default: the whole image");
  app.add_option("--device", options->job.inference.device, "auto, cpu, cuda or cuda:N")
      ->check(device_name())
      ->capture_default_str();
  app.add_option("--precision", options->precision,
                 "fp32, fp16 or bf16 (fp16/bf16 on CUDA only; the CPU always runs fp32)")
      ->capture_default_str()
      ->check(CLI::IsMember({"fp32", "fp16", "bf16"}));
  app.add_option("--batch-size", options->job.batch_size, "Patch sets per forward pass")
      ->capture_default_str()
      ->check(integer_in(1, 4096));
  app.add_option("--threads", options->job.scheduler.threads,
                 "Threads reading tiles (0 = all cores)")
      ->capture_default_str()
      ->check(thread_count());
  app.add_option("--torch-threads", options->job.inference.intra_op_threads,
                 "Torch intra-op CPU threads of the model (0 = torch's default)")
      ->capture_default_str()
      ->check(thread_count());
  options->slide.add_to(app);
  app.callback([=] {
    PredictJob& job = options->job;
    job.model_dir = options->model;
    job.image = options->image;
    job.labels_output = options->labels;
    if (!options->probs.empty()) {
      job.probs_output = std::filesystem::path(options->probs);
    }
    if (!options->region.empty()) {
      job.region_l0 = parse_region(options->region);
    }
    job.inference.precision = parse_precision(options->precision);
    job.open = options->slide.to_open_options();
    job.scheduler.progress = ProgressBar::globally_enabled();
    const PredictResult result = run_predict(job);
    std::cout << "labels " << result.labels_size_px.width << "x" << result.labels_size_px.height
              << " px at " << result.output_spacing_um << " um/px from " << result.tiles
              << " tiles on " << result.device << "\n";
  });
}

}  // namespace slidestream::cli
