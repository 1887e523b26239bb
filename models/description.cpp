// model.yaml (ModelDescription) reading, writing and validation, the weights' sha256 and the
// inference options: everything of the models module that needs no torch.
#include "slidestream/models/description.hpp"

#include <openssl/evp.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <iomanip>
#include <set>
#include <sstream>

#include "config_reader.hpp"
#include "native_network_keys.hpp"
#include "slidestream/core.hpp"
#include "slidestream/enum_names.hpp"
#include "slidestream/models/model.hpp"
#include "slidestream/models/shapes.hpp"

namespace slidestream {

namespace fs = std::filesystem;

constexpr EnumNames<Precision, 3> kPrecisionNames{
    {{Precision::kFp32, "fp32"}, {Precision::kFp16, "fp16"}, {Precision::kBf16, "bf16"}}};

std::string precision_name(Precision precision) {
  return std::string(enum_name(kPrecisionNames, precision));
}

Precision parse_precision(const std::string& name) {
  return parse_enum(kPrecisionNames, name, "--precision", ErrorCode::kInvalidArgument);
}

void InferenceOptions::validate() const {
  const bool cuda = device.rfind("cuda", 0) == 0;
  if (device != "auto" && device != "cpu" && !cuda) {
    throw Error(ErrorCode::kInvalidArgument,
                "--device '" + device + "' is not one of auto, cpu, cuda, cuda:N");
  }
  require_thread_count(intra_op_threads, "torch intra-op threads");
}

std::vector<std::vector<float>> SegmentationModel::embed(const std::vector<const PatchSet*>&) {
  throw Error(ErrorCode::kModelError,
              architecture() + " models expose no embedding; use a native HookNet or U-Net");
}

void SegmentationModel::use_geometry(const ModelGeometry&) {
  throw Error(ErrorCode::kModelError, "a " + architecture() +
                                          " model runs at its model.yaml geometry only (its "
                                          "graph may fix the input sizes)");
}

void SegmentationModel::save(const fs::path& dir) const {
  throw Error(ErrorCode::kModelError, "cannot save a " + architecture() + " model to '" +
                                          dir.string() +
                                          "': TorchScript models are exported from PyTorch");
}

std::string sha256_file(const fs::path& path) {
  require_readable_file(path);
  std::ifstream in(path, std::ios::binary);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(EVP_MD_CTX_new(),
                                                                  &EVP_MD_CTX_free);
  if (!context || EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr) != 1) {
    throw Error(ErrorCode::kInternal, "OpenSSL could not start a sha256 digest");
  }
  std::array<char, 1 << 16> buffer{};
  while (in) {
    in.read(buffer.data(), buffer.size());
    if (in.gcount() > 0 &&
        EVP_DigestUpdate(context.get(), buffer.data(), static_cast<size_t>(in.gcount())) != 1) {
      throw Error(ErrorCode::kInternal, "OpenSSL sha256 update failed");
    }
  }
  if (in.bad()) {
    throw Error(ErrorCode::kCorruptData, "cannot read '" + path.string() + "'");
  }
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(context.get(), digest.data(), &length) != 1) {
    throw Error(ErrorCode::kInternal, "OpenSSL sha256 final failed");
  }
  std::ostringstream hex;
  for (unsigned int i = 0; i < length; ++i) {
    hex << std::hex << std::setw(2) << std::setfill('0') << static_cast<int>(digest[i]);
  }
  return hex.str();
}

namespace {

constexpr const char* kFormat = "slidestream.model/1";

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw Error(ErrorCode::kInvalidConfig, "model.yaml " + where + ": " + what);
}

using config::Node;

std::vector<double> read_triplet(const Node& node) {
  auto values = node.as<std::vector<double>>();
  if (values.size() != 3) {
    node.fail("needs 3 values (R, G, B on 0..1 RGB)");
  }
  return values;
}

ModelDescription parse_description(const Node& root) {
  std::set<std::string> known{"format",  "architecture", "branches",  "output",       "classes",
                              "weights", "training",     "embedding", "normalisation"};
  known.insert(native_network_keys().begin(), native_network_keys().end());
  root.require_keys(known);
  if (root["format"].present() && root["format"].as<std::string>() != kFormat) {
    root["format"].fail("'" + root["format"].as<std::string>() + "' is not " + kFormat);
  }
  ModelDescription description;
  for (const char* key : {"architecture", "branches", "output", "classes"}) {
    if (!root[key].present()) {
      root[key].fail("is required (architecture, branches, output and classes are)");
    }
  }
  root.read("architecture", description.architecture);
  for (const Node& branch : root["branches"].items("{spacing_um, size_px}")) {
    description.geometry.branches.push_back(config::branch_of(branch, "size_px"));
  }
  description.geometry.output = config::branch_of(root["output"], "size_px");
  description.classes = config::label_classes(root["classes"], 0, 255, "must be 0..255");
  if (const Node norm = root["normalisation"]; norm.present()) {
    norm.require_keys({"mean", "std"});
    description.normalisation.mean = read_triplet(norm["mean"]);
    description.normalisation.std = read_triplet(norm["std"]);
  }
  // A model.yaml without batch_norm predates that key; its networks had none.
  description.network.batch_norm = false;
  read_native_network(root, description.network);
  const Node weights = root["weights"];
  weights.require_keys({"file", "sha256"});
  weights.read("file", description.weights_file);
  weights.read("sha256", description.weights_sha256);
  const Node embedding = root["embedding"];
  embedding.require_keys({"method", "output"});
  embedding.read("method", description.embedding_method);
  embedding.read("output", description.embedding_output);
  if (root["training"].present()) {
    YAML::Emitter out;
    out << root["training"].yaml();
    description.training_yaml = out.c_str();
  }
  return description;
}

void emit_branch(YAML::Emitter& out, const BranchGeometry& branch) {
  out << YAML::Flow << YAML::BeginMap << YAML::Key << "spacing_um" << YAML::Value
      << branch.spacing_um << YAML::Key << "size_px" << YAML::Value;
  if (branch.size_px.width == branch.size_px.height) {
    out << branch.size_px.width;
  } else {
    out << YAML::Flow << YAML::BeginSeq << branch.size_px.width << branch.size_px.height
        << YAML::EndSeq;
  }
  out << YAML::EndMap;
}

}  // namespace

ModelDescription load_model_description(const fs::path& path) {
  if (!fs::exists(path)) {
    throw Error(ErrorCode::kNotFound, "no model.yaml at '" + path.string() +
                                          "': --model must be a model directory (written by "
                                          "`slidestream train` or examples/export_torchscript.py)");
  }
  try {
    const config::Document document(path, {}, "");
    return document.read(parse_description);
  } catch (const Error& error) {
    if (error.code() != ErrorCode::kInvalidConfig) {
      throw;
    }
    // The message names the file and the key; a model that cannot be read is a model error.
    throw Error(ErrorCode::kModelError,
                std::string(error.what()) + " (see docs/FORMATS.md, model directory)");
  }
}

void save_model_description(const ModelDescription& description, const fs::path& path) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "format" << YAML::Value << kFormat;
  out << YAML::Key << "architecture" << YAML::Value << description.architecture;
  out << YAML::Key << "branches" << YAML::Value << YAML::BeginSeq;
  for (const auto& branch : description.geometry.branches) {
    emit_branch(out, branch);
  }
  out << YAML::EndSeq << YAML::Key << "output" << YAML::Value;
  emit_branch(out, description.geometry.output);
  out << YAML::Key << "classes" << YAML::Value << YAML::BeginSeq;
  for (const auto& label : description.classes) {
    out << YAML::Flow << YAML::BeginMap << YAML::Key << "name" << YAML::Value << label.name
        << YAML::Key << "value" << YAML::Value << static_cast<int>(label.value) << YAML::Key
        << "colour" << YAML::Value << YAML::Flow << YAML::BeginSeq
        << static_cast<int>(label.colour[0]) << static_cast<int>(label.colour[1])
        << static_cast<int>(label.colour[2]) << YAML::EndSeq << YAML::EndMap;
  }
  out << YAML::EndSeq;
  out << YAML::Key << "normalisation" << YAML::Value << YAML::BeginMap << YAML::Key << "mean"
      << YAML::Value << YAML::Flow << description.normalisation.mean << YAML::Key << "std"
      << YAML::Value << YAML::Flow << description.normalisation.std << YAML::EndMap;
  out << YAML::Key << "filters" << YAML::Value << description.network.filters;
  out << YAML::Key << "depth" << YAML::Value << description.network.depth;
  out << YAML::Key << "batch_norm" << YAML::Value << description.network.batch_norm;
  out << YAML::Key << "padding" << YAML::Value << padding_name(description.network.padding);
  out << YAML::Key << "dropout" << YAML::Value << description.network.dropout;
  out << YAML::Key << "weights" << YAML::Value << YAML::BeginMap << YAML::Key << "file"
      << YAML::Value << description.weights_file << YAML::Key << "sha256" << YAML::Value
      << description.weights_sha256 << YAML::EndMap;
  if (description.declares_embedding()) {
    out << YAML::Key << "embedding" << YAML::Value << YAML::Flow << YAML::BeginMap;
    if (!description.embedding_method.empty()) {
      out << YAML::Key << "method" << YAML::Value << description.embedding_method;
    }
    if (description.embedding_output >= 0) {
      out << YAML::Key << "output" << YAML::Value << description.embedding_output;
    }
    out << YAML::EndMap;
  }
  if (!description.training_yaml.empty()) {
    out << YAML::Key << "training" << YAML::Value << YAML::Load(description.training_yaml);
  }
  out << YAML::EndMap;
  write_text_atomically(path, std::string(out.c_str()) + "\n");
}

namespace {

void validate_native_sizes(const ModelDescription& d) {
  const bool valid = d.network.padding == Padding::kValid;
  for (size_t b = 0; b < d.geometry.branches.size(); ++b) {
    const Size size = d.geometry.branches[b].size_px;
    const auto output = unet_output_size(size.width, d.network.depth, valid);
    if (size.width != size.height || !output) {
      const auto [below, above] = nearest_legal_sizes(size.width, d.network.depth, valid);
      std::ostringstream text;
      text << "branches[" << b << "].size_px " << size.width << "x" << size.height
           << " is not a legal input of a depth-" << d.network.depth << " " << d.architecture
           << " (" << padding_name(d.network.padding) << " 3x3 convolutions; square"
           << (valid && d.network.depth == 4 ? ", 32k + 124 px, output = input - 214" : "")
           << "); the nearest legal sizes are " << below << " and " << above;
      fail("branches", text.str());
    }
    if (size != d.geometry.branches.front().size_px) {
      fail("branches", "every branch needs the target's size (" +
                           std::to_string(d.geometry.branches.front().size_px.width) + " px)");
    }
    if (b == 0 && d.geometry.output.size_px != Size{*output, *output}) {
      fail("output.size_px", "must be " + std::to_string(*output) + " px for input " +
                                 std::to_string(size.width) + " px");
    }
  }
  if (std::abs(d.geometry.output.spacing_um - d.geometry.branches.front().spacing_um) >
      1e-9 * d.geometry.output.spacing_um) {
    fail("output.spacing_um", "must equal the target branch's spacing for native networks");
  }
}

void validate_hooks(const ModelDescription& d) {
  const auto& branches = d.geometry.branches;
  for (size_t b = 0; b + 1 < branches.size(); ++b) {
    const HookSpec hook =
        hooknet_hook(branches[b].spacing_um, branches[b + 1].spacing_um, d.network.depth);
    if (!hook_fits(branches[b].size_px.width, branches[b + 1].size_px.width, d.network.depth,
                   hook)) {
      fail("branches", "the hook from branch " + std::to_string(b + 1) + " into branch " +
                           std::to_string(b) +
                           " needs a context map at least as large as the "
                           "target's, with an even difference, so the crop is centred");
    }
  }
}

}  // namespace

void ModelDescription::validate() const {
  const std::set<std::string> architectures{"hooknet", "unet", "torchscript"};
  if (architectures.count(architecture) == 0) {
    fail("architecture", "'" + architecture + "' is not one of hooknet, unet, torchscript");
  }
  geometry.validate();
  if (classes.empty()) {
    fail("classes", "at least one class is needed (channel k of the logits = classes[k])");
  }
  std::set<int> values;
  std::set<std::string> names;
  for (const auto& label : classes) {
    if (!values.insert(label.value).second || !names.insert(label.name).second) {
      fail("classes", "duplicate class name or value ('" + label.name + "', " +
                          std::to_string(label.value) + ")");
    }
  }
  if (normalisation.mean.size() != 3 || normalisation.std.size() != 3 ||
      std::any_of(normalisation.std.begin(), normalisation.std.end(),
                  [](double value) { return !(value > 0); })) {
    fail("normalisation", "needs mean and std with 3 values each, std > 0");
  }
  if (weights_file.empty()) {
    fail("weights.file", "names the weights file in the model directory");
  }
  if (architecture == "torchscript") {
    if (!embedding_method.empty() && embedding_output >= 0) {
      fail("embedding",
           "give either method (an exported method of the module) or output (an "
           "element of forward's tuple), not both");
    }
    if (embedding_output == 0) {
      fail("embedding.output",
           "element 0 of forward's tuple is the logits; the embedding is "
           "a later element (1, 2, ...)");
    }
    return;
  }
  if (declares_embedding()) {
    fail("embedding", "only TorchScript models declare an embedding; native " + architecture +
                          " models embed the pooled bottleneck of their target branch");
  }
  if (const auto problem = network.first_problem(architecture)) {
    fail(problem->key, problem->problem);
  }
  if (architecture == "unet" && geometry.branches.size() != 1) {
    fail("branches", "a unet has exactly one branch");
  }
  if (architecture == "hooknet" && geometry.branches.size() < 2) {
    fail("branches", "a hooknet needs >= 2 branches (target, then coarser contexts)");
  }
  validate_native_sizes(*this);
  if (architecture == "hooknet") {
    validate_hooks(*this);
  }
}

}  // namespace slidestream
