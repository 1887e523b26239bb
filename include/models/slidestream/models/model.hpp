// A segmentation model behind a torch-free interface. A model directory holds `model.yaml`
// (slidestream/models/description.hpp) and the weights: native HookNet / U-Net weights written
// by `slidestream train`, or a TorchScript file exported from PyTorch. `load_model` returns a
// model that reports its own `ModelGeometry`, so the tiler plans from the model itself. No
// LibTorch type appears here: only models/ compiles against torch.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "slidestream/label_class.hpp"
#include "slidestream/model_geometry.hpp"
#include "slidestream/models/description.hpp"
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

/// A loaded segmentation model. `predict` is not thread-safe: one thread (the pipeline's
/// inference stage) calls it; the model parallelises internally.
class SegmentationModel {
 public:
  virtual ~SegmentationModel() = default;
  SegmentationModel() = default;
  SegmentationModel(const SegmentationModel&) = delete;
  SegmentationModel& operator=(const SegmentationModel&) = delete;

  /// Input branches (0 = target) and output, each {spacing_um, size_px}, as predict() runs
  /// them: model.yaml's training geometry until use_geometry() is called.
  virtual const ModelGeometry& geometry() const = 0;
  /// Whether the network runs at other sizes than its training geometry (native HookNet and
  /// U-Net: yes; TorchScript: no, its graph may fix them).
  virtual bool fully_convolutional() const { return false; }
  /// Runs at `geometry` from now on (from inference_geometry(), slidestream/models/shapes.hpp).
  /// kModelError when the model is not fully convolutional or the sizes are illegal for it.
  virtual void use_geometry(const ModelGeometry& geometry);
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
