// HookNet and U-Net modules (see networks.hpp), their weights files and model directories.
#include "networks.hpp"

#include <spdlog/spdlog.h>

#include <fstream>
#include <map>
#include <sstream>

#include "slidestream/core.hpp"

namespace slidestream::models {

namespace fs = std::filesystem;

namespace {

torch::nn::Conv2d conv3x3(int in_channels, int out_channels, bool valid) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in_channels, out_channels, 3).padding(valid ? 0 : 1));
}

// The centre of `x` at `size` px: feature maps stay aligned because both sides lose the
// same number of pixels (the difference is even by construction, see validate_hooks).
torch::Tensor centre_crop(const torch::Tensor& x, std::int64_t height, std::int64_t width) {
  const std::int64_t top = (x.size(2) - height) / 2;
  const std::int64_t left = (x.size(3) - width) / 2;
  return x.narrow(2, top, height).narrow(3, left, width);
}

torch::Tensor crop_and_concat(const torch::Tensor& extra, const torch::Tensor& x) {
  return torch::cat({centre_crop(extra, x.size(2), x.size(3)), x}, 1);
}

}  // namespace

ConvBlockImpl::ConvBlockImpl(int in_channels, int out_channels, bool valid, bool batch_norm) {
  for (int i = 0; i < 2; ++i) {
    block_->push_back(conv3x3(i == 0 ? in_channels : out_channels, out_channels, valid));
    block_->push_back(torch::nn::ReLU());
    if (batch_norm) {
      block_->push_back(torch::nn::BatchNorm2d(out_channels));
    }
  }
  register_module("block", block_);
}

torch::Tensor ConvBlockImpl::forward(const torch::Tensor& x) {
  return block_->forward(x);
}

BranchImpl::BranchImpl(const ModelDescription& description, int hook_level, int hook_channels)
    : filters_(description.network.filters),
      depth_(description.network.depth),
      valid_(description.network.padding == Padding::kValid),
      dropout_(description.network.dropout),
      hook_level_(hook_level) {
  int in_channels = 3;
  for (int d = 0; d < depth_; ++d) {
    encoder_.emplace_back(register_module(
        "encoder" + std::to_string(d),
        ConvBlock(in_channels, channels(d), valid_, description.network.batch_norm)));
    in_channels = channels(d);
  }
  bottleneck_ = register_module("bottleneck", ConvBlock(in_channels, channels(depth_), valid_,
                                                        description.network.batch_norm));
  up_.resize(static_cast<size_t>(depth_), nullptr);
  decoder_.resize(static_cast<size_t>(depth_), nullptr);
  for (int d = depth_ - 1; d >= 0; --d) {
    const int up_in = channels(d + 1) + (d + 1 == hook_level_ ? hook_channels : 0);
    up_[static_cast<size_t>(d)] =
        register_module("up" + std::to_string(d), conv3x3(up_in, channels(d), valid_));
    decoder_[static_cast<size_t>(d)] = register_module(
        "decoder" + std::to_string(d),
        ConvBlock(2 * channels(d), channels(d), valid_, description.network.batch_norm));
  }
}

std::pair<torch::Tensor, std::vector<torch::Tensor>> BranchImpl::encode(const torch::Tensor& x) {
  std::vector<torch::Tensor> skips;
  torch::Tensor net = x;
  for (int d = 0; d < depth_; ++d) {
    net = encoder_[static_cast<size_t>(d)]->forward(net);
    skips.push_back(net);
    net = torch::max_pool2d(net, {2, 2});
  }
  net = bottleneck_->forward(net);
  if (dropout_ > 0) {
    net = torch::dropout(net, dropout_, is_training());
  }
  return {net, skips};
}

std::vector<torch::Tensor> BranchImpl::decode(torch::Tensor bottleneck,
                                              const std::vector<torch::Tensor>& skips,
                                              const torch::Tensor& hook) {
  std::vector<torch::Tensor> maps(static_cast<size_t>(depth_) + 1);
  maps[static_cast<size_t>(depth_)] = bottleneck;
  torch::Tensor net = std::move(bottleneck);
  for (int d = depth_ - 1; d >= 0; --d) {
    if (d + 1 == hook_level_ && hook.defined()) {
      net = crop_and_concat(hook, net);
    }
    net = torch::nn::functional::interpolate(
        net, torch::nn::functional::InterpolateFuncOptions()
                 .size(std::vector<std::int64_t>{net.size(2) * 2, net.size(3) * 2})
                 .mode(torch::kNearest));
    net = torch::relu(up_[static_cast<size_t>(d)]->forward(net));
    net = decoder_[static_cast<size_t>(d)]->forward(
        crop_and_concat(skips[static_cast<size_t>(d)], net));
    maps[static_cast<size_t>(d)] = net;
  }
  return maps;
}

SegmentationNetImpl::SegmentationNetImpl(const ModelDescription& description)
    : description_(description) {
  const auto& geometry = description.geometry.branches;
  for (size_t b = 0; b + 1 < geometry.size(); ++b) {
    hooks_.push_back(hooknet_hook(geometry[b].spacing_um, geometry[b + 1].spacing_um,
                                  description.network.depth));
  }
  for (size_t b = 0; b < geometry.size(); ++b) {
    const bool hooked = b < hooks_.size();
    const int hook_level = hooked ? hooks_[b].target_level : -1;
    const int hook_channels = hooked ? (description.network.filters << hooks_[b].context_level) : 0;
    branches_.emplace_back(register_module("branch" + std::to_string(b),
                                           Branch(description, hook_level, hook_channels)));
    heads_.emplace_back(
        register_module("head" + std::to_string(b),
                        torch::nn::Conv2d(torch::nn::Conv2dOptions(
                            description.network.filters,
                            static_cast<std::int64_t>(description.classes.size()), 1))));
  }
  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* conv = module->as<torch::nn::Conv2d>()) {
      torch::nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanIn, torch::kReLU);
      torch::nn::init::zeros_(conv->bias);
    }
  }
}

std::vector<torch::Tensor> SegmentationNetImpl::forward(const std::vector<torch::Tensor>& inputs) {
  if (inputs.size() != branches_.size()) {
    throw Error(ErrorCode::kModelError, "the network has " + std::to_string(branches_.size()) +
                                            " branches but got " + std::to_string(inputs.size()) +
                                            " inputs");
  }
  // Coarsest first: branch b's decoder needs the maps of branch b + 1.
  std::vector<torch::Tensor> logits(branches_.size());
  std::vector<torch::Tensor> context_maps;
  for (size_t b = branches_.size(); b-- > 0;) {
    auto [bottleneck, skips] = branches_[b]->encode(inputs[b]);
    const torch::Tensor hook = b < hooks_.size()
                                   ? context_maps[static_cast<size_t>(hooks_[b].context_level)]
                                   : torch::Tensor();
    context_maps = branches_[b]->decode(std::move(bottleneck), skips, hook);
    logits[b] = heads_[b]->forward(context_maps.front());
  }
  return logits;
}

torch::Tensor SegmentationNetImpl::embed(const torch::Tensor& target_input) {
  const auto encoded = branches_.front()->encode(target_input);
  return encoded.first.mean({2, 3});
}

int SegmentationNetImpl::embedding_size() const {
  return description_.network.filters << description_.network.depth;
}

SegmentationNet make_network(const ModelDescription& description) {
  description.validate();
  if (description.architecture == "torchscript") {
    throw Error(ErrorCode::kInvalidConfig,
                "make_network builds native hooknet/unet networks, not torchscript");
  }
  return SegmentationNet(description);
}

void save_weights(SegmentationNetImpl& net, const fs::path& path) {
  AtomicOutput output(path);
  try {
    torch::serialize::OutputArchive archive;
    net.save(archive);
    // Through a stream: given a file name, torch names the archive's folder after it, and the
    // temporary name would make every saved file differ.
    std::ofstream stream(output.temp_path(), std::ios::binary);
    archive.save_to(stream);
    stream.close();
    if (!stream) {
      throw Error(ErrorCode::kOutputError, "cannot write weights '" + path.string() +
                                               "' (is the disk full or the folder read-only?)");
    }
  } catch (const c10::Error& error) {
    throw Error(ErrorCode::kOutputError,
                "cannot write weights '" + path.string() + "': " + error.what_without_backtrace());
  }
  output.commit();
}

void load_weights(SegmentationNetImpl& net, const fs::path& path, std::size_t class_count) {
  std::map<std::string, std::vector<std::int64_t>> expected;
  for (const auto& item : net.named_parameters()) {
    expected[item.key()] = item.value().sizes().vec();
  }
  for (const auto& item : net.named_buffers()) {
    expected[item.key()] = item.value().sizes().vec();
  }
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path.string());
    torch::NoGradGuard no_grad;
    net.load(archive);
  } catch (const c10::Error& error) {
    throw Error(ErrorCode::kModelError,
                "cannot load weights '" + path.string() + "': " + error.what_without_backtrace() +
                    " (a corrupt file, or weights of another architecture than model.yaml's; "
                    "retrain or re-export the model directory)");
  }
  // torch's archive loader replaces tensors whatever their shape, so shapes are checked here.
  for (const auto& item : net.named_parameters()) {
    const auto shape = item.value().sizes().vec();
    if (shape == expected[item.key()]) {
      continue;
    }
    std::ostringstream text;
    text << "weights '" << path.string() << "' do not fit model.yaml: tensor '" << item.key()
         << "' has shape " << item.value().sizes() << ", model.yaml implies "
         << c10::IntArrayRef(expected[item.key()]);
    if (item.key().rfind("head", 0) == 0 && !shape.empty()) {
      text << "; model.yaml lists " << class_count << " classes but the weights output "
           << shape.front() << " (fix classes: in model.yaml)";
    } else {
      text << " (filters, depth, batch_norm or branches differ from the trained network)";
    }
    throw Error(ErrorCode::kModelError, text.str());
  }
}

void write_model_dir(SegmentationNetImpl& net, ModelDescription description, const fs::path& dir) {
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) {
    throw Error(ErrorCode::kOutputError,
                "cannot create model directory '" + dir.string() + "': " + error.message());
  }
  const fs::path weights = dir / description.weights_file;
  save_weights(net, weights);
  description.weights_sha256 = sha256_file(weights);
  save_model_description(description, dir / "model.yaml");
  spdlog::info("wrote model directory {} ({}, weights sha256 {})", dir.string(),
               description.architecture, description.weights_sha256);
}

}  // namespace slidestream::models
