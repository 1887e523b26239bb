// `slidestream train`. Torch-free on purpose: the training loop lives in models/training/
// behind run_train, so callers (the CLI, tests) compile without LibTorch headers.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "slidestream/training/config.hpp"
#include "slidestream/training/log.hpp"

namespace slidestream {

/// `slidestream train`.
struct TrainJob {
  TrainConfig config;
  std::vector<std::filesystem::path> data;      ///< patch datasets (HDF5)
  std::vector<std::filesystem::path> val_data;  ///< optional: validation-only datasets
  std::filesystem::path output;                 ///< model directory
  bool resume = false;  ///< continue from output/checkpoint (optimizer included)
  bool progress = true;
  void validate() const;
};

struct TrainResult {
  std::vector<EpochRecord> epochs;
  int best_epoch = 0;
  double best_mean_dice = 0;
  std::vector<std::string> train_slides;
  std::vector<std::string> validation_slides;
};

/// Trains and writes the model directory (model.yaml + weights of the best epoch by mean Dice),
/// training_log.csv, training_plot.png and checkpoint/ (last epoch, for --resume). Throws
/// kNotFound / kInvalidConfig (classes or geometry disagree with the dataset) / kModelError.
TrainResult run_train(const TrainJob& job);

}  // namespace slidestream
