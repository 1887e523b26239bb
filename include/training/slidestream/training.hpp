// slidestream training: train configs, HDF5 patch-set reading, slide-wise validation splits,
// augmentation, segmentation metrics and the training job (`slidestream train`).
//
// Torch-free on purpose: the training loop itself lives in models/training/ behind
// `run_train`, so callers (the CLI, tests) compile without LibTorch headers.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <opencv2/core.hpp>
#include <optional>
#include <string>
#include <vector>

#include "slidestream/annotations.hpp"
#include "slidestream/stain.hpp"
#include "slidestream/tiling.hpp"

namespace slidestream {

/// The network to build (`model:` section of a train config).
struct NetworkConfig {
  std::string architecture = "hooknet";  ///< "hooknet" or "unet"
  int filters = 16;                      ///< filters of the first level; level d has f * 2^d
  int depth = 4;                         ///< encoder levels (HookNet's size rule assumes 4)
  bool batch_norm = true;
  std::string padding = "valid";  ///< "valid" (HookNet, U-Net) or "same" (U-Net only)
  void validate() const;          ///< throws kInvalidConfig naming the key
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

/// One slide group of a patch dataset (docs/FORMATS.md, slidestream.patches/1).
struct DatasetSlide {
  std::string id;
  std::size_t patches = 0;
  ModelGeometry geometry;           ///< branch spacing and size as written; output from the attrs
  bool with_labels = false;         ///< every branch has a `labels` dataset
  std::vector<LabelClass> classes;  ///< from the slide's extraction config (labels.classes)
};

/// Reads patch sets from a `slidestream extract` HDF5 file. Reads are serialised internally
/// (HDF5 is not thread-safe); one reader may be shared.
class PatchDatasetReader {
 public:
  /// Throws kNotFound for a missing file, kCorruptData for a file that is not a patch dataset.
  explicit PatchDatasetReader(const std::filesystem::path& path);
  ~PatchDatasetReader();
  PatchDatasetReader(const PatchDatasetReader&) = delete;
  PatchDatasetReader& operator=(const PatchDatasetReader&) = delete;

  const std::filesystem::path& path() const;
  /// Complete slides only (attr complete = 1), in file order.
  const std::vector<DatasetSlide>& slides() const;
  /// Patch `index` of slide `slide`: branches (RGB), valid masks and labels (when present) for
  /// the first `branches` branches (0 = all). spec.index is the tile index.
  PatchSet read(std::size_t slide, std::size_t index, std::size_t branches = 0) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Slide ids split into training and validation (sorted as given). With explicit ids, each must
/// exist (kInvalidConfig otherwise); with a fraction, the held-out slides are drawn with `seed`.
struct SlideSplit {
  std::vector<std::string> train;
  std::vector<std::string> validation;
};
SlideSplit split_slides(const std::vector<std::string>& slide_ids, const ValidationSplit& split,
                        std::uint64_t seed);

/// Applies one random draw of AugmentConfig to a patch set in place: every branch, valid mask and
/// label raster gets the same flips / rotation / affine (labels and masks nearest, pixels linear;
/// pixels moved in from outside become invalid and their labels `ignore_label`), and every
/// branch the same brightness / contrast / HED jitter. Deterministic for a seed.
class Augmenter {
 public:
  Augmenter(AugmentConfig config, int ignore_label, StainParams stain = macenko_reference());
  void apply(PatchSet& patches, std::uint64_t seed) const;

 private:
  AugmentConfig config_;
  int ignore_label_;
  StainParams stain_;
};

/// Confusion matrix of class indices 0..n-1 (rows truth, columns prediction).
class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(int classes);
  /// Adds two CV_8UC1 index images of the same size; pixels whose truth is `ignore` (or >= n)
  /// are skipped. Throws kInvalidArgument for a size mismatch.
  void add(const cv::Mat& truth, const cv::Mat& prediction, int ignore = 255);
  void merge(const ConfusionMatrix& other);
  /// Adds `pixels` to cell (truth, prediction).
  void add_count(int truth, int prediction, std::int64_t pixels);
  int classes() const { return classes_; }
  std::int64_t count(int truth, int prediction) const;
  std::int64_t total() const;
  /// 2 TP / (2 TP + FP + FN); NaN when the class is absent from both truth and prediction.
  double dice(int k) const;
  /// TP / (TP + FP + FN); NaN as for dice.
  double iou(int k) const;
  double accuracy() const;
  /// Mean over classes whose Dice is defined (not NaN), optionally leaving class 0 out.
  double mean_dice(bool skip_first = false) const;

 private:
  int classes_;
  std::vector<std::int64_t> counts_;
};

/// One line of training_log.csv (docs/FORMATS.md).
struct EpochRecord {
  int epoch = 0;  ///< 1-based
  double learning_rate = 0;
  double train_loss = 0;
  double val_loss = 0;
  std::vector<double> val_dice;  ///< per class, in config order
  double val_mean_dice = 0;      ///< over foreground classes (all classes when only one)
  double seconds = 0;
};

/// training_log.csv text: header `epoch,lr,train_loss,val_loss,dice_<class>...,mean_dice,seconds`.
std::string training_log_csv(const std::vector<EpochRecord>& records,
                             const std::vector<LabelClass>& classes);
/// Parses it back (for --resume); throws kCorruptData naming the file.
std::vector<EpochRecord> parse_training_log_csv(const std::string& text, const std::string& source);
/// Loss (left axis) and mean Dice (right axis, 0..1) per epoch, with axes and a legend (PNG).
void write_training_plot(const std::vector<EpochRecord>& records,
                         const std::filesystem::path& path);

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
