// slidestream models: segmentation models behind a torch-free interface.
//
// A model directory holds `model.yaml` (architecture, branch geometry, classes, input
// normalisation, provenance, weights sha256) and the weights: native HookNet / U-Net weights
// written by `slidestream train`, or a TorchScript file exported from PyTorch. `load_model`
// returns a `SegmentationModel` that reports its own `ModelGeometry`, so the tiler plans from the
// model itself. No LibTorch type appears in this header: only models/ compiles against torch.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <opencv2/core.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "slidestream/label_class.hpp"
#include "slidestream/model_geometry.hpp"
#include "slidestream/patch_set.hpp"

namespace slidestream {

/// Arithmetic used for inference. fp16 / bf16 run under autocast on CUDA; CPU always uses fp32.
enum class Precision { kFp32, kFp16, kBf16 };

/// "fp32", "fp16" or "bf16"; parse throws kInvalidArgument for anything else.
std::string precision_name(Precision precision);
Precision parse_precision(const std::string& name);

/// How a loaded model runs.
struct InferenceOptions {
  /// "auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N".
  std::string device = "auto";
  Precision precision = Precision::kFp32;
  /// Intra-op threads of the torch CPU backend; 0 = leave torch's default.
  int intra_op_threads = 0;
  /// Compute the per-pixel softmax entropy (ModelOutput::entropy).
  bool entropy = false;

  /// Throws kInvalidArgument naming the bad option.
  void validate() const;
};

/// One tile's model output at the output geometry (size = geometry().output.size_px).
struct ModelOutput {
  cv::Mat probs;    ///< CV_32FC(n_classes): softmax probabilities, channel k = classes()[k]
  cv::Mat entropy;  ///< CV_32FC1 in nats when InferenceOptions::entropy, else empty
};

struct ModelDescription;

/// A loaded segmentation model. `predict` is not thread-safe: one thread (the pipeline's
/// inference stage) calls it; the model parallelises internally.
class SegmentationModel {
 public:
  virtual ~SegmentationModel() = default;
  SegmentationModel() = default;
  SegmentationModel(const SegmentationModel&) = delete;
  SegmentationModel& operator=(const SegmentationModel&) = delete;

  /// Input branches (0 = target) and output, each {spacing_um, size_px}.
  virtual const ModelGeometry& geometry() const = 0;
  /// Output classes in channel order; `value` is what labels.tif stores for the class.
  virtual const std::vector<LabelClass>& classes() const = 0;
  /// Whether outputs tile the plane exactly when stride = output size (valid convolutions);
  /// false for same-padded models, whose tiles overlap and are blended.
  virtual bool valid_convolutions() const = 0;
  /// "hooknet", "unet" or "torchscript".
  virtual std::string architecture() const = 0;
  /// sha256 of the weights file (hex), as recorded in model.yaml and checked on load.
  virtual std::string weights_sha256() const = 0;
  /// The device it runs on after "auto" is resolved ("cpu", "cuda:0").
  virtual std::string device() const = 0;

  /// One output per patch set, in order. Every patch set has one RGB8 patch per branch of
  /// geometry(), at that branch's size. Throws kModelError for inputs of the wrong shape.
  virtual std::vector<ModelOutput> predict(const std::vector<const PatchSet*>& batch) = 0;

  // Added for `features` and `train` (defaults keep other implementations free of them).

  /// One embedding per patch set (N x D, D = embedding_size()): a native model's pooled
  /// bottleneck of the target branch, or a TorchScript model's declared embedding (model.yaml
  /// `embedding:`). Throws kModelError for models that declare none.
  virtual std::vector<std::vector<float>> embed(const std::vector<const PatchSet*>& batch);
  /// D of embed(); 0 when embed() is not supported.
  virtual int embedding_size() const { return 0; }
  /// The model.yaml it was loaded from (or will be saved with).
  virtual const ModelDescription& description() const = 0;
  /// Writes a model directory (model.yaml + weights, sha256 filled in) at `dir`, atomically per
  /// file. Throws kModelError for TorchScript models (they are exported from PyTorch).
  virtual void save(const std::filesystem::path& dir) const;
};

/// Input normalisation applied to 0..1 RGB: x' = (x - mean[c]) / std[c].
struct Normalisation {
  std::vector<double> mean{0.0, 0.0, 0.0};
  std::vector<double> std{1.0, 1.0, 1.0};
};

/// The content of a model directory's `model.yaml` (schema in docs/FORMATS.md,
/// "Model directory"). Sizes are px, spacings um/px.
struct ModelDescription {
  std::string architecture = "hooknet";  ///< "hooknet", "unet" or "torchscript"
  ModelGeometry geometry;                ///< branches (0 = target) and output
  std::vector<LabelClass> classes;       ///< channel order of the logits
  Normalisation normalisation;
  // Native networks only (ignored for TorchScript):
  int filters = 16;               ///< f: a level d of the U-Net has f * 2^d channels
  int depth = 4;                  ///< poolings per branch
  bool batch_norm = false;        ///< BatchNorm after every 3x3 convolution (after its ReLU)
  std::string padding = "valid";  ///< "valid" (HookNet, U-Net) or "same" (U-Net only)
  double dropout = 0.0;           ///< dropout probability after each bottleneck (training only)
  std::string weights_file = "weights.pt";
  std::string weights_sha256;  ///< hex, lower case
  /// `training:` as YAML text (a free map: data, config, epochs, Dice...); empty when absent.
  std::string training_yaml;
  /// TorchScript only, for `features`: the embedding is what the module's exported method of
  /// this name returns for the branch inputs (`embedding: {method: embed}`) ...
  std::string embedding_method;
  /// ... or element k of the tuple its forward returns (`embedding: {output: 1}`); -1 = none.
  /// Either way N x D, or N x D x h x w (average-pooled over h, w to N x D).
  int embedding_output = -1;
  /// Whether model.yaml has an `embedding:` (method or output).
  bool declares_embedding() const { return !embedding_method.empty() || embedding_output >= 0; }

  /// Throws kInvalidConfig naming the field: unknown architecture or padding, no classes,
  /// duplicate class values, branch count (hooknet >= 2, unet 1), illegal sizes for the
  /// architecture (suggesting the nearest legal ones), no hook depth for the branch spacings,
  /// normalisation not 3 + 3 positive std.
  void validate() const;
};

/// Reads `path` (a model.yaml). kNotFound when missing, kModelError for bad YAML or fields
/// (naming the file, the field and the fix). Does not validate geometry (see validate()).
ModelDescription load_model_description(const std::filesystem::path& path);
/// Writes `description` as YAML to `path` atomically.
void save_model_description(const ModelDescription& description, const std::filesystem::path& path);

/// sha256 of a file's bytes as lower-case hex (OpenSSL EVP). kNotFound when unreadable.
std::string sha256_file(const std::filesystem::path& path);

/// Output size (px, one axis) of a native branch for `input_px` input pixels: valid padding
/// loses 4 px per conv block and 2 px per upsampling conv; nullopt when the input is illegal
/// (odd size before a pooling, or a feature map that shrinks to nothing). For depth 4, valid:
/// legal inputs are 32k + 124 (k >= 3) and output = input - 214.
std::optional<std::int64_t> unet_output_size(std::int64_t input_px, int depth, bool valid);
/// Size (px) of the decoder map at `level` (0 = last decoder block, `depth` = bottleneck) for
/// `input_px` input pixels; nullopt when illegal.
std::optional<std::int64_t> unet_level_size(std::int64_t input_px, int depth, bool valid,
                                            int level);
/// The legal input sizes nearest to `input_px` (the largest below and the smallest above).
std::pair<std::int64_t, std::int64_t> nearest_legal_sizes(std::int64_t input_px, int depth,
                                                          bool valid);

/// Where a context branch hooks into a finer one: the context decoder map at level
/// `context_level` (spacing r_ctx * 2^context_level) is centre-cropped and concatenated to the
/// target decoder map at `target_level` (r_tgt * 2^target_level, the same spacing) before that
/// level's upsampling. target_level == depth is the bottleneck.
struct HookSpec {
  int context_level = 0;
  int target_level = 0;
  double spacing_um = 0;  ///< of both hooked maps
};

/// The hook for branch spacings `target_um` < `context_um` (um/px): the smallest context level
/// (the most decoded context) with r_ctx * 2^d_ctx == r_tgt * 2^d_tgt for some
/// 1 <= d_tgt <= depth (1e-6 relative tolerance). kInvalidConfig when the ratio is not a power
/// of two reachable within the depth, naming the spacings and the legal ratios.
HookSpec hooknet_hook(double target_um, double context_um, int depth);

/// A freshly initialised native model (HookNet or U-Net) for `description` (seeded, so equal
/// seeds give equal weights); for `slidestream train` and tests. kInvalidConfig when the
/// description is invalid, kInvalidArgument for an unavailable device.
std::unique_ptr<SegmentationModel> create_native_model(const ModelDescription& description,
                                                       const InferenceOptions& options = {},
                                                       std::uint64_t seed = 0);

/// Whether LibTorch sees a CUDA device (false for CPU-only builds).
bool cuda_available();

/// Loads `dir` (a folder with model.yaml). Throws kModelError naming the file and the fix for a
/// missing or corrupt model.yaml or weights, a sha256 mismatch, or a class count that disagrees
/// with the weights; kInvalidArgument for a device that is not available.
std::unique_ptr<SegmentationModel> load_model(const std::filesystem::path& dir,
                                              const InferenceOptions& options = {});

}  // namespace slidestream
