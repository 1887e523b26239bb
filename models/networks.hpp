// Native HookNet and U-Net as torch::nn modules (models-internal: includes torch).
//
// A branch is a U-Net with 3x3 convolutions (valid or same), depth `depth`, f * 2^d channels at
// level d, max pooling down, nearest upsampling + a 3x3 convolution up, centre-cropped skips.
// HookNet chains branches: branch b + 1 (coarser) hooks into branch b at the levels given by
// hooknet_hook(), so branch 0 (target) sees all context. Used by engine.cpp and training.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <memory>
#include <vector>

#include "slidestream/models/description.hpp"
#include "slidestream/models/shapes.hpp"

namespace slidestream::models {

/// Two 3x3 convolutions, each followed by ReLU and (optionally) BatchNorm, as in HookNet.
class ConvBlockImpl : public torch::nn::Module {
 public:
  ConvBlockImpl(int in_channels, int out_channels, bool valid, bool batch_norm);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Sequential block_;
};
TORCH_MODULE(ConvBlock);

/// One U-Net branch. `hook_level` (1..depth, or -1) is the decoder level where a hooked map of
/// `hook_channels` channels is concatenated before upsampling.
class BranchImpl : public torch::nn::Module {
 public:
  BranchImpl(const ModelDescription& description, int hook_level, int hook_channels);
  /// Encoder + bottleneck: the bottleneck map (level depth) and the skips (levels 0..depth-1).
  std::pair<torch::Tensor, std::vector<torch::Tensor>> encode(const torch::Tensor& x);
  /// Decoder maps per level: [0] the last decoder block ... [depth] the bottleneck.
  std::vector<torch::Tensor> decode(torch::Tensor bottleneck,
                                    const std::vector<torch::Tensor>& skips,
                                    const torch::Tensor& hook);
  /// Channels of the decoder map at `level` (f * 2^level).
  int channels(int level) const { return filters_ << level; }

 private:
  int filters_;
  int depth_;
  bool valid_;
  double dropout_;
  int hook_level_;
  std::vector<ConvBlock> encoder_;
  ConvBlock bottleneck_{nullptr};
  std::vector<torch::nn::Conv2d> up_;
  std::vector<ConvBlock> decoder_;
};
TORCH_MODULE(Branch);

/// HookNet (>= 2 branches) or U-Net (1 branch), whichever model.yaml says.
class SegmentationNetImpl : public torch::nn::Module {
 public:
  explicit SegmentationNetImpl(const ModelDescription& description);
  /// Inputs: one N x 3 x H x W float tensor per branch (normalised). Returns the logits of
  /// every branch's head, N x C x h x w (0 = target; the context heads serve the multi-loss
  /// w_t * CE(target) + w_c * CE(context)).
  std::vector<torch::Tensor> forward(const std::vector<torch::Tensor>& inputs);
  /// Global-average-pooled bottleneck of the target branch, N x embedding_size().
  torch::Tensor embed(const torch::Tensor& target_input);
  int embedding_size() const;
  const std::vector<HookSpec>& hooks() const { return hooks_; }

 private:
  ModelDescription description_;
  std::vector<HookSpec> hooks_;  // hooks_[b]: branch b + 1 into branch b
  std::vector<Branch> branches_;
  std::vector<torch::nn::Conv2d> heads_;
};
TORCH_MODULE(SegmentationNet);

/// A network for `description` (validated), weights He-initialised from torch's generator
/// (seed it with torch::manual_seed for reproducible weights).
SegmentationNet make_network(const ModelDescription& description);

/// Writes the module's parameters and buffers (torch::serialize archive) to `path` atomically.
void save_weights(SegmentationNetImpl& net, const std::filesystem::path& path);
/// Loads `path` into `net`; kModelError naming the file when it is corrupt or a tensor's shape
/// differs from the network model.yaml describes (e.g. a class count that disagrees).
void load_weights(SegmentationNetImpl& net, const std::filesystem::path& path,
                  std::size_t class_count);

/// Writes a model directory for a trained network: `dir`/weights file + model.yaml with the
/// weights' sha256 filled in. Creates `dir`; kOutputError when it cannot be written.
void write_model_dir(SegmentationNetImpl& net, ModelDescription description,
                     const std::filesystem::path& dir);

}  // namespace slidestream::models
