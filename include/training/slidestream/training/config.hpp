// The `slidestream train` config (configs/hooknet-*.yaml, configs/unet-*.yaml): network,
// augmentation, validation split and optimisation, with the typed flags that stand for keys.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "slidestream/label_class.hpp"
#include "slidestream/model_geometry.hpp"
#include "slidestream/models/description.hpp"

namespace slidestream {

/// The network to build (`model:` section of a train config).
struct NetworkConfig {
  std::string architecture = "hooknet";  ///< "hooknet" or "unet"
  NativeNetwork network;                 ///< the other `model:` keys, as model.yaml has them
  void validate() const;                 ///< throws kInvalidConfig naming the key
};

/// Augmentation (`training.augment:`). The same random draw is applied to every branch of a patch
/// set and to its labels, so target, context and labels stay registered.
struct AugmentConfig {
  bool flips = true;               ///< horizontal and vertical, each with probability 1/2
  bool rotate90 = true;            ///< 0, 90, 180 or 270 degrees
  double brightness = 0.1;         ///< added intensity ~ U(-b, b) * 255 (0 = off)
  double contrast = 0.1;           ///< gain ~ U(1 - c, 1 + c) about the patch mean (0 = off)
  double hed_sigma_factor = 0.05;  ///< HED jitter (stain.hpp hed_jitter); 0 with bias 0 = off
  double hed_sigma_bias = 0.01;    ///< OD units
  double affine_rotation_deg = 0;  ///< rotation about the centre ~ U(-r, r) degrees (0 = off)
  double affine_scale = 0;         ///< scale ~ U(1 - s, 1 + s) about the centre (0 = off)
  void validate() const;
};

/// How slides are held out for validation (`training.validation:`): explicit ids win over the
/// fraction. Whole slides go to one side, so no slide's patches leak into both.
struct ValidationSplit {
  double fraction = 0.2;               ///< of the slides (at least one when > 0 and >= 2 slides)
  std::vector<std::string> slide_ids;  ///< these slides validate, all others train
  int max_patches = 0;                 ///< cap on validation patches per epoch (0 = all)
  void validate() const;
};

/// Optimisation (`training:`).
struct TrainSettings {
  int epochs = 10;
  int batch_size = 8;
  int steps_per_epoch = 0;  ///< batches per epoch; 0 = one pass over the training patches
  double learning_rate = 1e-3;
  double weight_decay = 0;
  std::string schedule = "cosine";  ///< "cosine", "step" or "constant" (per epoch)
  int step_epochs = 10;             ///< step schedule: multiply by step_gamma every N epochs
  double step_gamma = 0.5;
  double min_learning_rate = 1e-5;   ///< cosine floor
  double loss_target_weight = 0.75;  ///< HookNet: w_target * CE(target) + w_context * CE(ctx)
  double loss_context_weight = 0.25;
  std::vector<double> class_weights;  ///< one per class (empty = equal)
  int ignore_label = 255;  ///< label value never learnt from; pixels outside valid masks too
  std::uint64_t seed = 0;
  int threads = 0;  ///< torch intra-op threads; 0 = torch's default
  AugmentConfig augment;
  ValidationSplit validation;
  void validate() const;
};

/// A `slidestream train` config (configs/hooknet-*.yaml, configs/unet-*.yaml).
struct TrainConfig {
  NetworkConfig model;
  ModelGeometry geometry = ModelGeometry::hooknet_breast();
  /// Output classes in channel order; `value` is the label value in the dataset (0 = background).
  std::vector<LabelClass> classes;
  TrainSettings training;
  std::string yaml;  ///< the resolved config, recorded in model.yaml

  /// Throws kInvalidConfig naming the key and the fix (also HookNet's size rule).
  void validate() const;
  /// Branches the network reads: all for HookNet, the target only for U-Net.
  std::size_t input_branches() const;
};

/// The typed options of `slidestream train` that stand for config keys (`--seed`, `--threads`,
/// `--epochs`): assigned after the file and `--set` (they win), validated with the rest, and
/// recorded in TrainConfig::yaml as the keys they stand for.
struct TrainFlags {
  std::optional<std::uint64_t> seed;  ///< training.seed
  std::optional<int> threads;         ///< training.threads
  std::optional<int> epochs;          ///< training.epochs
};

/// Defaults, then the YAML file, then `--set section.key=value` overrides, then `flags`;
/// unknown keys are errors, a null key keeps its default. Throws kNotFound / kInvalidConfig.
TrainConfig load_train_config(const std::optional<std::filesystem::path>& path,
                              const std::vector<std::string>& overrides,
                              const TrainFlags& flags = {});

}  // namespace slidestream
