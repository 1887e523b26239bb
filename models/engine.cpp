// The inference engine: load_model for native (HookNet, U-Net) and TorchScript model
// directories, and batched prediction (device, precision, InferenceMode, softmax, entropy).
// The only translation unit besides networks.cpp that includes torch.
#include <spdlog/spdlog.h>
#include <torch/cuda.h>
#include <torch/script.h>

#include <cstring>
#include <sstream>

#include "networks.hpp"
#include "slidestream/core.hpp"
#include "slidestream/models/description.hpp"
#include "slidestream/models/model.hpp"
#include "slidestream/models/shapes.hpp"

namespace slidestream {

namespace fs = std::filesystem;

namespace {

torch::Device resolve_device(const std::string& name) {
  if (name == "cpu" || (name == "auto" && !torch::cuda::is_available())) {
    return torch::kCPU;
  }
  if (!torch::cuda::is_available()) {
    throw Error(ErrorCode::kInvalidArgument,
                "--device " + name +
                    ": no CUDA device is available (no GPU, or a CPU-only LibTorch); use "
                    "--device cpu or auto");
  }
  int index = 0;
  if (name.size() > 5 && name.rfind("cuda:", 0) == 0) {
    try {
      index = std::stoi(name.substr(5));
    } catch (const std::exception&) {
      throw Error(ErrorCode::kInvalidArgument, "--device '" + name +
                                                   "': N of cuda:N must be a "
                                                   "number");
    }
  }
  const auto count = static_cast<int>(torch::cuda::device_count());
  if (index < 0 || index >= count) {
    throw Error(ErrorCode::kInvalidArgument,
                "--device " + name + ": only " + std::to_string(count) + " CUDA device(s)");
  }
  return {torch::kCUDA, static_cast<c10::DeviceIndex>(index)};
}

// Shared by native and TorchScript models: input tensors, precision, outputs.
class TorchModel : public SegmentationModel {
 public:
  TorchModel(ModelDescription description, const InferenceOptions& options)
      : description_(std::move(description)),
        geometry_(description_.geometry),
        options_(options),
        device_(resolve_device(options.device)) {
    options_.validate();
    if (options.intra_op_threads > 0) {
      torch::set_num_threads(options.intra_op_threads);
    }
    dtype_ = torch::kFloat;
    if (options.precision != Precision::kFp32) {
      if (device_.is_cuda()) {
        dtype_ = options.precision == Precision::kFp16 ? torch::kHalf : torch::kBFloat16;
      } else {
        spdlog::info("precision {} requested; the CPU runs fp32",
                     precision_name(options.precision));
      }
    }
    const auto& norm = description_.normalisation;
    mean_ = torch::tensor({norm.mean[0], norm.mean[1], norm.mean[2]}, torch::kFloat)
                .view({1, 3, 1, 1})
                .to(device_);
    std_ = torch::tensor({norm.std[0], norm.std[1], norm.std[2]}, torch::kFloat)
               .view({1, 3, 1, 1})
               .to(device_);
  }

  const ModelGeometry& geometry() const override { return geometry_; }
  const std::vector<LabelClass>& classes() const override { return description_.classes; }
  bool valid_convolutions() const override {
    return description_.network.padding == Padding::kValid;
  }
  std::string architecture() const override { return description_.architecture; }
  std::string weights_sha256() const override { return description_.weights_sha256; }
  std::string device() const override { return device_.str(); }
  const ModelDescription& description() const override { return description_; }

  std::vector<ModelOutput> predict(const std::vector<const PatchSet*>& batch) override {
    if (batch.empty()) {
      return {};
    }
    c10::InferenceMode guard;
    const auto inputs = input_tensors(batch);
    const torch::Tensor probs = torch::softmax(checked_logits(inputs).to(torch::kFloat), 1);
    torch::Tensor entropy;
    if (options_.entropy) {
      entropy = -(probs * torch::log(probs.clamp_min(1e-12))).sum(1);
    }
    return to_outputs(probs, entropy);
  }

 protected:
  /// Target logits N x C x h x w for normalised inputs (one tensor per branch).
  virtual torch::Tensor logits(const std::vector<torch::Tensor>& inputs) = 0;

  /// A forward pass on zeros (batch of 1): checks the output shape and warms caches up.
  void warm_up() {
    c10::InferenceMode guard;
    checked_logits(zero_inputs());
  }

  /// One all-zero input per branch, batch 1.
  std::vector<torch::Tensor> zero_inputs() const {
    std::vector<torch::Tensor> inputs;
    for (const auto& branch : geometry_.branches) {
      inputs.push_back(torch::zeros({1, 3, branch.size_px.height, branch.size_px.width},
                                    torch::TensorOptions().device(device_).dtype(dtype_)));
    }
    return inputs;
  }

  /// The rows of an N x D fp32 CPU tensor.
  static std::vector<std::vector<float>> rows_of(const torch::Tensor& features) {
    std::vector<std::vector<float>> rows;
    rows.reserve(static_cast<std::size_t>(features.size(0)));
    for (std::int64_t n = 0; n < features.size(0); ++n) {
      const float* begin = features[n].data_ptr<float>();
      rows.emplace_back(begin, begin + features.size(1));
    }
    return rows;
  }

  torch::Tensor checked_logits(const std::vector<torch::Tensor>& inputs) {
    torch::Tensor out = logits(inputs);
    const Size size = geometry_.output.size_px;
    const auto classes = static_cast<std::int64_t>(description_.classes.size());
    if (out.dim() != 4 || out.size(1) != classes || out.size(2) != size.height ||
        out.size(3) != size.width) {
      std::ostringstream text;
      text << "the model outputs logits of shape " << out.sizes() << " but model.yaml declares "
           << classes << " classes at " << size.width << "x" << size.height
           << " px (N x C x h x w); fix classes: or output.size_px in model.yaml";
      throw Error(ErrorCode::kModelError, text.str());
    }
    return out;
  }

  std::vector<torch::Tensor> input_tensors(const std::vector<const PatchSet*>& batch) const {
    std::vector<torch::Tensor> inputs;
    const auto count = static_cast<std::int64_t>(batch.size());
    for (size_t b = 0; b < geometry_.branches.size(); ++b) {
      const Size size = geometry_.branches[b].size_px;
      torch::Tensor pixels = torch::empty({count, size.height, size.width, 3}, torch::kUInt8);
      for (std::int64_t n = 0; n < count; ++n) {
        const PatchSet& set = *batch[static_cast<size_t>(n)];
        if (set.branches.size() <= b || set.branches[b].type() != CV_8UC3 ||
            set.branches[b].cols != size.width || set.branches[b].rows != size.height) {
          throw Error(ErrorCode::kModelError,
                      "patch set " + std::to_string(n) + " branch " + std::to_string(b) +
                          " is not an RGB8 patch of " + std::to_string(size.width) + "x" +
                          std::to_string(size.height) + " px (the model's geometry)");
        }
        auto* row_out = pixels[n].data_ptr<std::uint8_t>();
        const size_t row_bytes = static_cast<size_t>(size.width) * 3;
        for (int y = 0; y < set.branches[b].rows; ++y) {
          std::memcpy(row_out + static_cast<size_t>(y) * row_bytes, set.branches[b].ptr(y),
                      row_bytes);
        }
      }
      torch::Tensor x = pixels.to(device_).permute({0, 3, 1, 2}).to(torch::kFloat).div(255.0);
      x = (x - mean_) / std_;
      if (device_.is_cuda()) {
        x = x.contiguous(torch::MemoryFormat::ChannelsLast);
      }
      inputs.push_back(x.to(dtype_));
    }
    return inputs;
  }

  static std::vector<ModelOutput> to_outputs(const torch::Tensor& probs,
                                             const torch::Tensor& entropy) {
    const torch::Tensor p = probs.to(torch::kCPU).permute({0, 2, 3, 1}).contiguous();
    const auto classes = static_cast<int>(p.size(3));
    const auto height = static_cast<int>(p.size(1));
    const auto width = static_cast<int>(p.size(2));
    const auto copy_plane = [&](const torch::Tensor& planes, std::int64_t n) {
      const torch::Tensor plane = planes[n].to(torch::kCPU).to(torch::kFloat).contiguous();
      cv::Mat mat(height, width, CV_32FC1);
      std::memcpy(mat.data, plane.data_ptr<float>(), mat.total() * sizeof(float));
      return mat;
    };
    std::vector<ModelOutput> outputs(static_cast<size_t>(p.size(0)));
    for (std::int64_t n = 0; n < p.size(0); ++n) {
      ModelOutput& out = outputs[static_cast<size_t>(n)];
      out.probs.create(height, width, CV_32FC(classes));
      std::memcpy(out.probs.data, p[n].data_ptr<float>(), out.probs.total() * out.probs.elemSize());
      if (entropy.defined()) {
        out.entropy = copy_plane(entropy, n);
      }
    }
    return outputs;
  }

  ModelDescription description_;
  ModelGeometry geometry_;  ///< what predict() runs at: the training geometry or use_geometry()'s
  InferenceOptions options_;
  torch::Device device_;
  torch::Dtype dtype_ = torch::kFloat;
  torch::Tensor mean_;
  torch::Tensor std_;
};

class NativeModel final : public TorchModel {
 public:
  NativeModel(ModelDescription description, models::SegmentationNet net,
              const InferenceOptions& options)
      : TorchModel(std::move(description), options), net_(std::move(net)) {
    net_->eval();
    net_->to(device_, dtype_);
    warm_up();
  }

  int embedding_size() const override { return net_->embedding_size(); }

  bool fully_convolutional() const override { return true; }
  void use_geometry(const ModelGeometry& geometry) override {
    validate_inference_geometry(description_, geometry);
    geometry_ = geometry;
  }

  std::vector<std::vector<float>> embed(const std::vector<const PatchSet*>& batch) override {
    if (batch.empty()) {
      return {};
    }
    c10::InferenceMode guard;
    return rows_of(
        net_->embed(input_tensors(batch).front()).to(torch::kCPU).to(torch::kFloat).contiguous());
  }

  void save(const fs::path& dir) const override {
    // Saved in fp32 on the CPU whatever it runs on, so a model directory is portable.
    models::SegmentationNet copy = models::make_network(description_);
    {
      torch::NoGradGuard no_grad;
      const auto source = net_->named_parameters();
      for (auto& item : copy->named_parameters()) {
        item.value().copy_(source[item.key()].to(torch::kCPU).to(torch::kFloat));
      }
      const auto buffers = net_->named_buffers();
      for (auto& item : copy->named_buffers()) {
        item.value().copy_(buffers[item.key()].to(torch::kCPU));
      }
    }
    models::write_model_dir(*copy, description_, dir);
  }

 protected:
  torch::Tensor logits(const std::vector<torch::Tensor>& inputs) override {
    return net_->forward(inputs).front();
  }

 private:
  models::SegmentationNet net_;
};

class ScriptModel final : public TorchModel {
 public:
  ScriptModel(ModelDescription description, const fs::path& weights,
              const InferenceOptions& options)
      : TorchModel(std::move(description), options) {
    try {
      module_ = torch::jit::load(weights.string(), device_);
    } catch (const c10::Error& error) {
      throw Error(ErrorCode::kModelError,
                  "cannot load TorchScript '" + weights.string() +
                      "': " + error.what_without_backtrace() +
                      " (export it with torch.jit.script or torch.jit.trace and torch.jit.save)");
    }
    module_.eval();
    if (dtype_ != torch::kFloat) {
      module_.to(dtype_);
    }
    warm_up();
    if (description_.declares_embedding()) {
      c10::InferenceMode guard;
      embedding_size_ = static_cast<int>(embedding_tensor(zero_inputs()).size(1));
    }
  }

  int embedding_size() const override { return embedding_size_; }

  std::vector<std::vector<float>> embed(const std::vector<const PatchSet*>& batch) override {
    if (!description_.declares_embedding()) {
      return SegmentationModel::embed(batch);  // throws, naming the fix
    }
    if (batch.empty()) {
      return {};
    }
    c10::InferenceMode guard;
    return rows_of(embedding_tensor(input_tensors(batch)));
  }

 protected:
  torch::Tensor logits(const std::vector<torch::Tensor>& inputs) override {
    std::vector<torch::jit::IValue> values(inputs.begin(), inputs.end());
    torch::jit::IValue out;
    try {
      out = module_.forward(values);
    } catch (const c10::Error& error) {
      throw Error(ErrorCode::kModelError,
                  "the TorchScript model failed on " + std::to_string(inputs.size()) +
                      " input(s) N x 3 x H x W (one per branch of model.yaml): " +
                      error.what_without_backtrace());
    }
    if (out.isTuple() && !out.toTuple()->elements().empty()) {
      out = out.toTuple()->elements()[0];
    } else if (out.isList() && !out.toListRef().empty()) {
      out = out.toListRef()[0];
    }
    if (!out.isTensor()) {
      throw Error(ErrorCode::kModelError,
                  "the TorchScript model must return logits N x C x h x w (or a tuple whose first "
                  "element they are)");
    }
    return out.toTensor();
  }

 private:
  /// The declared embedding for `inputs`, N x D in fp32 on the CPU.
  torch::Tensor embedding_tensor(const std::vector<torch::Tensor>& inputs) {
    std::vector<torch::jit::IValue> values(inputs.begin(), inputs.end());
    const std::string& method = description_.embedding_method;
    const std::string source =
        method.empty()
            ? "element " + std::to_string(description_.embedding_output) + " of forward's output"
            : "method '" + method + "'";
    torch::jit::IValue out;
    try {
      if (!method.empty()) {
        const auto function = module_.find_method(method);
        if (!function) {
          throw Error(ErrorCode::kModelError,
                      "model.yaml declares embedding method '" + method +
                          "' but the TorchScript module has none (mark it @torch.jit.export "
                          "before scripting, or declare embedding: {output: K})");
        }
        out = (*function)(values);
      } else {
        out = module_.forward(values);
        const auto index = static_cast<std::size_t>(description_.embedding_output);
        if (!out.isTuple() || out.toTuple()->elements().size() <= index) {
          throw Error(ErrorCode::kModelError, "model.yaml declares the embedding as " + source +
                                                  ", but forward returns no tuple that long");
        }
        out = out.toTuple()->elements()[index];
      }
    } catch (const c10::Error& error) {
      throw Error(ErrorCode::kModelError, "the TorchScript embedding (" + source +
                                              ") failed: " + error.what_without_backtrace());
    }
    if (!out.isTensor() || (out.toTensor().dim() != 2 && out.toTensor().dim() != 4)) {
      throw Error(ErrorCode::kModelError,
                  "the TorchScript embedding (" + source +
                      ") must be a tensor N x D or N x D x h x w (pooled over h, w)");
    }
    torch::Tensor features = out.toTensor();
    if (features.dim() == 4) {
      features = features.mean({2, 3});
    }
    return features.to(torch::kCPU).to(torch::kFloat).contiguous();
  }

  torch::jit::Module module_;
  int embedding_size_ = 0;
};

ModelDescription validated(ModelDescription description, const fs::path& yaml) {
  try {
    description.validate();
  } catch (const Error& error) {
    throw Error(ErrorCode::kModelError, "'" + yaml.string() + "': " + error.what());
  }
  return description;
}

}  // namespace

bool cuda_available() {
  return torch::cuda::is_available();
}

std::unique_ptr<SegmentationModel> create_native_model(const ModelDescription& description,
                                                       const InferenceOptions& options,
                                                       std::uint64_t seed) {
  options.validate();
  torch::manual_seed(seed);
  auto net = models::make_network(description);
  return std::make_unique<NativeModel>(description, std::move(net), options);
}

std::unique_ptr<SegmentationModel> load_model(const fs::path& dir,
                                              const InferenceOptions& options) {
  options.validate();
  if (!fs::is_directory(dir)) {
    throw Error(ErrorCode::kModelError,
                "model directory '" + dir.string() +
                    "' does not exist or is not a folder (it "
                    "holds model.yaml and the weights; see docs/FORMATS.md)");
  }
  const fs::path yaml = dir / "model.yaml";
  ModelDescription description;
  try {
    description = validated(load_model_description(yaml), yaml);
  } catch (const Error& error) {
    throw Error(ErrorCode::kModelError, error.what());
  }
  const fs::path weights = dir / description.weights_file;
  if (!fs::is_regular_file(weights)) {
    throw Error(ErrorCode::kModelError, "weights file '" + weights.string() +
                                            "' named by model.yaml (weights.file) is missing");
  }
  const std::string sha256 = sha256_file(weights);
  if (description.weights_sha256 != sha256) {
    throw Error(ErrorCode::kModelError,
                "sha256 of '" + weights.string() + "' is " + sha256 + " but model.yaml says '" +
                    description.weights_sha256 +
                    "': the weights changed or belong to another model; restore them, or set "
                    "weights.sha256 in model.yaml if the new file is intended");
  }
  if (description.architecture == "torchscript") {
    return std::make_unique<ScriptModel>(std::move(description), weights, options);
  }
  auto net = models::make_network(description);
  models::load_weights(*net, weights, description.classes.size());
  spdlog::debug("loaded {} from {}", description.architecture, dir.string());
  return std::make_unique<NativeModel>(std::move(description), std::move(net), options);
}

}  // namespace slidestream
