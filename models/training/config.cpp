// The train config: YAML sections -> structs, `--set` overrides, key-named errors.
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <set>

#include "slidestream/core.hpp"
#include "slidestream/training.hpp"
#include "yaml_helpers.hpp"

namespace fs = std::filesystem;

namespace slidestream {

namespace {

using config::branch_of;
using config::config_error;
using config::read_if;
using config::require_known_keys;
using config::value_of;

void read_geometry(const YAML::Node& node, ModelGeometry& geometry) {
  require_known_keys(node, "geometry", {"branches", "output", "check"});
  if (!node) {
    return;
  }
  if (node["branches"]) {
    if (!node["branches"].IsSequence()) {
      config_error("geometry.branches", "must be a list of {spacing_um, size}");
    }
    geometry.branches.clear();
    for (size_t b = 0; b < node["branches"].size(); ++b) {
      geometry.branches.push_back(
          branch_of(node["branches"][b], "geometry.branches[" + std::to_string(b) + "]"));
    }
  }
  if (node["output"]) {
    geometry.output = branch_of(node["output"], "geometry.output");
  }
}

void read_model(const YAML::Node& node, NetworkConfig& model) {
  require_known_keys(node, "model", {"architecture", "filters", "depth", "batch_norm", "padding"});
  read_if(node, "model", "architecture", model.architecture);
  read_if(node, "model", "filters", model.filters);
  read_if(node, "model", "depth", model.depth);
  read_if(node, "model", "batch_norm", model.batch_norm);
  read_if(node, "model", "padding", model.padding);
}

void read_classes(const YAML::Node& node, std::vector<LabelClass>& classes) {
  if (!node) {
    return;
  }
  if (!node.IsSequence()) {
    config_error("classes", "must be a list of {name, value, colour}");
  }
  classes.clear();
  for (size_t i = 0; i < node.size(); ++i) {
    const std::string key = "classes[" + std::to_string(i) + "]";
    require_known_keys(node[i], key, {"name", "value", "colour", "color"});
    LabelClass label;
    label.name = value_of<std::string>(node[i]["name"], key + ".name");
    const int value = value_of<int>(node[i]["value"], key + ".value");
    if (value < 0 || value > 254) {
      config_error(key + ".value", "must be 0..254 (0 is usually background, 255 ignore)");
    }
    label.value = static_cast<std::uint8_t>(value);
    const YAML::Node colour = node[i]["colour"] ? node[i]["colour"] : node[i]["color"];
    if (colour) {
      const auto rgb = value_of<std::vector<int>>(colour, key + ".colour");
      if (rgb.size() != 3) {
        config_error(key + ".colour", "must be [r, g, b]");
      }
      label.colour = cv::Vec3b(static_cast<std::uint8_t>(rgb[0]), static_cast<std::uint8_t>(rgb[1]),
                               static_cast<std::uint8_t>(rgb[2]));
    }
    classes.push_back(label);
  }
}

void read_augment(const YAML::Node& node, AugmentConfig& augment) {
  const std::string s = "training.augment";
  require_known_keys(node, s,
                     {"flips", "rotate90", "brightness", "contrast", "hed_sigma_factor",
                      "hed_sigma_bias", "affine_rotation_deg", "affine_scale"});
  read_if(node, s, "flips", augment.flips);
  read_if(node, s, "rotate90", augment.rotate90);
  read_if(node, s, "brightness", augment.brightness);
  read_if(node, s, "contrast", augment.contrast);
  read_if(node, s, "hed_sigma_factor", augment.hed_sigma_factor);
  read_if(node, s, "hed_sigma_bias", augment.hed_sigma_bias);
  read_if(node, s, "affine_rotation_deg", augment.affine_rotation_deg);
  read_if(node, s, "affine_scale", augment.affine_scale);
}

void read_training(const YAML::Node& node, TrainSettings& t) {
  const std::string s = "training";
  require_known_keys(node, s,
                     {"epochs", "batch_size", "steps_per_epoch", "learning_rate", "weight_decay",
                      "schedule", "step_epochs", "step_gamma", "min_learning_rate",
                      "loss_target_weight", "loss_context_weight", "class_weights", "ignore_label",
                      "seed", "threads", "augment", "validation"});
  if (!node) {
    return;
  }
  read_if(node, s, "epochs", t.epochs);
  read_if(node, s, "batch_size", t.batch_size);
  read_if(node, s, "steps_per_epoch", t.steps_per_epoch);
  read_if(node, s, "learning_rate", t.learning_rate);
  read_if(node, s, "weight_decay", t.weight_decay);
  read_if(node, s, "schedule", t.schedule);
  read_if(node, s, "step_epochs", t.step_epochs);
  read_if(node, s, "step_gamma", t.step_gamma);
  read_if(node, s, "min_learning_rate", t.min_learning_rate);
  read_if(node, s, "loss_target_weight", t.loss_target_weight);
  read_if(node, s, "loss_context_weight", t.loss_context_weight);
  read_if(node, s, "class_weights", t.class_weights);
  read_if(node, s, "ignore_label", t.ignore_label);
  read_if(node, s, "seed", t.seed);
  read_if(node, s, "threads", t.threads);
  read_augment(node["augment"], t.augment);
  const YAML::Node validation = node["validation"];
  require_known_keys(validation, "training.validation", {"fraction", "slide_ids", "max_patches"});
  read_if(validation, "training.validation", "fraction", t.validation.fraction);
  read_if(validation, "training.validation", "slide_ids", t.validation.slide_ids);
  read_if(validation, "training.validation", "max_patches", t.validation.max_patches);
}

void require(bool condition, const std::string& key, const std::string& problem) {
  if (!condition) {
    config_error(key, problem);
  }
}

}  // namespace

void NetworkConfig::validate() const {
  require(architecture == "hooknet" || architecture == "unet", "model.architecture",
          "'" + architecture + "' is not hooknet or unet");
  require(filters >= 1 && filters <= 512, "model.filters", "must be 1..512");
  require(depth >= 1 && depth <= 6, "model.depth", "must be 1..6");
  require(padding == "valid" || padding == "same", "model.padding", "must be valid or same");
  require(architecture == "unet" || padding == "valid", "model.padding",
          "HookNet uses valid convolutions only");
}

void AugmentConfig::validate() const {
  const std::string s = "training.augment.";
  require(brightness >= 0 && brightness <= 1, s + "brightness", "must be 0..1");
  require(contrast >= 0 && contrast < 1, s + "contrast", "must be 0..1 (exclusive)");
  require(hed_sigma_factor >= 0 && hed_sigma_factor < 1, s + "hed_sigma_factor", "must be 0..1");
  require(hed_sigma_bias >= 0 && hed_sigma_bias < 1, s + "hed_sigma_bias", "must be 0..1");
  require(affine_rotation_deg >= 0 && affine_rotation_deg <= 180, s + "affine_rotation_deg",
          "must be 0..180 degrees");
  require(affine_scale >= 0 && affine_scale < 1, s + "affine_scale", "must be 0..1 (exclusive)");
}

void ValidationSplit::validate() const {
  require(fraction >= 0 && fraction < 1, "training.validation.fraction", "must be 0..1");
  require(max_patches >= 0, "training.validation.max_patches", "must be >= 0 (0 = all)");
}

void TrainSettings::validate() const {
  require(epochs >= 1, "training.epochs", "must be >= 1");
  require(batch_size >= 1, "training.batch_size", "must be >= 1");
  require(steps_per_epoch >= 0, "training.steps_per_epoch", "must be >= 0 (0 = one pass)");
  require(learning_rate > 0 && std::isfinite(learning_rate), "training.learning_rate",
          "must be > 0");
  require(weight_decay >= 0, "training.weight_decay", "must be >= 0");
  require(schedule == "cosine" || schedule == "step" || schedule == "constant", "training.schedule",
          "'" + schedule + "' is not cosine, step or constant");
  require(step_epochs >= 1, "training.step_epochs", "must be >= 1");
  require(step_gamma > 0 && step_gamma <= 1, "training.step_gamma", "must be in (0, 1]");
  require(min_learning_rate >= 0 && min_learning_rate <= learning_rate,
          "training.min_learning_rate", "must be 0..learning_rate");
  require(loss_target_weight >= 0 && loss_context_weight >= 0 &&
              loss_target_weight + loss_context_weight > 0,
          "training.loss_target_weight", "loss weights must be >= 0 and not both 0");
  require(ignore_label >= 0 && ignore_label <= 255, "training.ignore_label", "must be 0..255");
  require(threads >= 0 && threads <= max_threads(), "training.threads",
          "must be 0 (automatic) to " + std::to_string(max_threads()));
  for (const double w : class_weights) {
    require(w >= 0 && std::isfinite(w), "training.class_weights", "weights must be >= 0");
  }
  augment.validate();
  validation.validate();
}

std::size_t TrainConfig::input_branches() const {
  return model.architecture == "unet" ? 1 : geometry.branches.size();
}

void TrainConfig::validate() const {
  model.validate();
  training.validate();
  geometry.validate();
  if (model.architecture == "hooknet") {
    require(geometry.branches.size() >= 2, "geometry.branches",
            "HookNet needs a target and at least one context branch");
    if (model.depth == 4) {
      geometry.validate_hooknet_sizes();
    }
  }
  require(classes.size() >= 2, "classes", "needs at least two classes (e.g. background and one)");
  std::set<int> values;
  std::set<std::string> names;
  for (const LabelClass& label : classes) {
    require(values.insert(label.value).second, "classes",
            "value " + std::to_string(label.value) + " appears twice");
    require(names.insert(label.name).second && !label.name.empty(), "classes",
            "class names must be non-empty and unique ('" + label.name + "')");
    require(static_cast<int>(label.value) != training.ignore_label, "classes",
            "a class uses the ignore label " + std::to_string(training.ignore_label));
  }
  require(training.class_weights.empty() || training.class_weights.size() == classes.size(),
          "training.class_weights",
          "needs one weight per class (" + std::to_string(classes.size()) + ")");
}

TrainConfig load_train_config(const std::optional<fs::path>& path,
                              const std::vector<std::string>& overrides) {
  YAML::Node root = config::load_root(path, overrides, "training.epochs=5");
  require_known_keys(root, "config", {"model", "geometry", "classes", "training"});
  TrainConfig config;
  read_model(root["model"], config.model);
  read_geometry(root["geometry"], config.geometry);
  read_classes(root["classes"], config.classes);
  read_training(root["training"], config.training);
  config.validate();
  YAML::Emitter out;
  out << root;
  config.yaml = out.c_str();
  return config;
}

}  // namespace slidestream
