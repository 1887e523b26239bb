// A model directory's `model.yaml` (docs/FORMATS.md, "Model directory") and the sha256 that
// ties it to its weights.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "slidestream/label_class.hpp"
#include "slidestream/model_geometry.hpp"

namespace slidestream {

/// Input normalisation applied to 0..1 RGB: x' = (x - mean[c]) / std[c].
struct Normalisation {
  std::vector<double> mean{0.0, 0.0, 0.0};
  std::vector<double> std{1.0, 1.0, 1.0};
};

/// A key of a YAML file and what is wrong with its value.
struct KeyProblem {
  std::string key;
  std::string problem;
};

/// A native network's shape (HookNet or U-Net): the top-level keys of model.yaml and the
/// `model:` section of a train config (docs/FORMATS.md). The defaults are a new network's; a
/// model.yaml without `batch_norm` predates that key and its network has none.
struct NativeNetwork {
  int filters = 16;                   ///< f: a level d of the U-Net has f * 2^d channels
  int depth = 4;                      ///< poolings per branch (HookNet's size rule assumes 4)
  bool batch_norm = true;             ///< BatchNorm after every 3x3 convolution (after its ReLU)
  Padding padding = Padding::kValid;  ///< same: U-Net only
  double dropout = 0.0;               ///< dropout probability after each bottleneck (training only)

  /// The first key out of range for `architecture` (filters 1..512, depth 1..6, dropout in
  /// [0, 1), valid padding for a HookNet); none when all are legal. Each file that holds these
  /// keys reports the problem its own way.
  std::optional<KeyProblem> first_problem(const std::string& architecture) const;
};

/// The content of a model directory's `model.yaml` (schema in docs/FORMATS.md,
/// "Model directory"). Sizes are px, spacings um/px.
struct ModelDescription {
  std::string architecture = "hooknet";  ///< "hooknet", "unet" or "torchscript"
  ModelGeometry geometry;                ///< branches (0 = target) and output
  std::vector<LabelClass> classes;       ///< channel order of the logits
  Normalisation normalisation;
  NativeNetwork network;  ///< native networks only (ignored for TorchScript)
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

}  // namespace slidestream
