// `slidestream train` and `slidestream evaluate`: fill the job structs, call the library.
#include <iostream>
#include <memory>

#include "checks.hpp"
#include "commands.hpp"
#include "slidestream/core.hpp"
#include "slidestream/jobs/evaluate.hpp"
#include "slidestream/jobs/features.hpp"
#include "slidestream/training/config.hpp"
#include "slidestream/training/train.hpp"

namespace slidestream::cli {

void define_train(CLI::App& app) {
  struct Options {
    std::string config;
    std::vector<std::string> data;
    std::vector<std::string> val_data;
    std::string output;
    std::vector<std::string> overrides;
    bool resume = false;
    std::optional<std::uint64_t> seed;
    std::optional<int> threads;
    std::optional<std::string> old_threads;
    std::optional<int> epochs;
  };
  auto options = std::make_shared<Options>();
  app.add_option("-c,--config", options->config,
                 "Train config YAML (configs/hooknet-*.yaml, configs/unet-*.yaml): model, "
                 "geometry (um/px, px), classes, training")
      ->required();
  app.add_option("--data", options->data,
                 "Patch datasets (.h5) from 'slidestream extract' with labels; repeatable. "
                 "Slides are split into training and validation by training.validation")
      ->required();
  app.add_option("--val-data", options->val_data,
                 "Validation-only datasets (.h5): then every --data slide trains");
  app.add_option("-o,--output", options->output,
                 "Model directory: model.yaml + weights (best epoch by mean validation Dice), "
                 "training_log.csv, training_plot.png, validation_slides.csv, checkpoint/")
      ->required();
  app.add_flag("--resume", options->resume,
               "Continue from OUTPUT/checkpoint (weights, optimizer, log) up to training.epochs");
  app.add_option("--seed", options->seed,
                 "Seed of weights, data order and augmentation (= --set training.seed=N); "
                 "the same seed on CPU gives the same loss curve");
  app.add_option("--torch-threads", options->threads,
                 "Torch intra-op threads (= --set training.threads=N; 0 = torch's default)")
      ->check(thread_count());
  // --threads means slide-reading threads everywhere; train reads none, and its old --threads
  // (torch threads) is now --torch-threads. Hidden, so --help shows only the new name.
  app.add_option("--threads", options->old_threads)->group("");
  app.add_option("--epochs", options->epochs, "Epochs in total (= --set training.epochs=N)")
      ->check(integer_in(1, 100000));
  app.add_option("--set", options->overrides,
                 "Override a config value: section.key=value (repeatable), e.g. "
                 "training.learning_rate=0.0001, model.filters=8");
  app.callback([options] {
    TrainJob job;
    // The typed flags are assigned after the file and --set (they win) and recorded in
    // model.yaml as the keys they stand for.
    if (options->old_threads) {
      throw Error(ErrorCode::kInvalidArgument,
                  "train --threads is now --torch-threads (torch intra-op threads); --threads "
                  "names slide-reading threads, which train does not use");
    }
    TrainFlags flags;
    flags.seed = options->seed;
    flags.threads = options->threads;
    flags.epochs = options->epochs;
    job.config =
        load_train_config(std::filesystem::path(options->config), options->overrides, flags);
    job.data.assign(options->data.begin(), options->data.end());
    job.val_data.assign(options->val_data.begin(), options->val_data.end());
    job.output = options->output;
    job.resume = options->resume;
    job.progress = ProgressBar::globally_enabled();
    const TrainResult result = run_train(job);
    if (result.validation_slides.empty()) {
      std::cout << "trained " << result.epochs.size() << " epochs (no validation slides) -> "
                << job.output.string() << "\n";
    } else {
      std::cout << "best epoch " << result.best_epoch << ": mean validation Dice "
                << result.best_mean_dice << " -> " << job.output.string() << "\n";
    }
  });
}

void define_evaluate(CLI::App& app) {
  struct Options {
    std::string prediction;
    std::string truth;
    std::string classes;
    std::string json;
    std::optional<int> ignore;
  };
  auto options = std::make_shared<Options>();
  app.add_option("--pred", options->prediction,
                 "Predicted label image (8-bit PNG or TIFF; pyramidal TIFFs: level 0)")
      ->required();
  app.add_option("--truth", options->truth, "Truth label image of the same size")->required();
  app.add_option("--classes", options->classes,
                 "name=value pairs, e.g. background=0,nucleus=1 (default: every value present, "
                 "named by its value)");
  app.add_option("--ignore", options->ignore, "Truth value left out of every count (e.g. 255)")
      ->check(integer_in(0, 255));
  app.add_option("--json", options->json, "Also write the report as JSON (slidestream.evaluate/1)");
  app.callback([options] {
    EvaluateJob job;
    job.prediction = options->prediction;
    job.truth = options->truth;
    if (!options->classes.empty()) {
      job.classes = parse_class_list(options->classes);
    }
    job.ignore = options->ignore;
    if (!options->json.empty()) {
      job.json_output = std::filesystem::path(options->json);
    }
    std::cout << run_evaluate(job).table();
  });
}

void define_features(CLI::App& app) {
  struct Options {
    std::vector<std::string> slides;
    std::string model;
    std::string output;
    std::string device = "auto";
    int threads = 0;
    int torch_threads = 0;
    int batch_size = 16;
    double min_tissue = 0.5;
    SlideOptions slide;
  };
  auto options = std::make_shared<Options>();
  app.add_option("SLIDES", options->slides,
                 "Slide files, glob patterns, folders, or CSV manifests (path[,mpp][,id])")
      ->required();
  app.add_option("--model", options->model, "Model directory (model.yaml + weights)")->required();
  app.add_option("-o,--output", options->output,
                 "Features folder: files go to OUTPUT/<key>/<slide id>.h5, key = hash of the "
                 "model's weights and these settings (a rerun with both unchanged reuses them)")
      ->required();
  app.add_option("--device", options->device, "auto (CUDA when available), cpu, cuda or cuda:N")
      ->check(device_name());
  app.add_option("--threads", options->threads, "Threads reading tiles (0 = all cores)")
      ->check(thread_count());
  app.add_option("--torch-threads", options->torch_threads,
                 "Torch intra-op CPU threads of the model (0 = torch's default)")
      ->check(thread_count());
  app.add_option("--batch-size", options->batch_size, "Tiles per forward pass (default 16)")
      ->check(integer_in(1, 4096));
  app.add_option("--min-tissue", options->min_tissue,
                 "Keep tiles whose output field of view is at least this tissue fraction "
                 "(0..1, default 0.5)")
      ->check(number_in(0, 1));
  options->slide.add_to(app);
  app.callback([options] {
    FeaturesJob job;
    job.inputs = options->slides;
    job.model_dir = options->model;
    job.output_dir = options->output;
    job.open = options->slide.to_open_options();
    job.inference.device = options->device;
    job.inference.intra_op_threads = options->torch_threads;
    job.scheduler.threads = options->threads;
    job.scheduler.progress = ProgressBar::globally_enabled();
    job.batch_size = options->batch_size;
    job.min_tissue_fraction = options->min_tissue;
    finish_batch(run_features(job), "the table above");
  });
}

}  // namespace slidestream::cli
