// The train config: YAML sections -> structs, read with the config module's reader (key paths
// in errors, the null rule, `--set` overrides), and the typed flags of `slidestream train`.
#include "slidestream/training/config.hpp"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <set>

#include "config_reader.hpp"
#include "native_network_keys.hpp"
#include "slidestream/core.hpp"

namespace fs = std::filesystem;

namespace slidestream {

namespace {

using config::config_error;
using config::Node;

void read_model(const Node& section, NetworkConfig& model) {
  std::set<std::string> known = native_network_keys();
  known.insert("architecture");
  section.require_keys(known);
  section.read("architecture", model.architecture);
  read_native_network(section, model.network);
}

void read_augment(const Node& section, AugmentConfig& augment) {
  section.require_keys({"flips", "rotate90", "brightness", "contrast", "hed_sigma_factor",
                        "hed_sigma_bias", "affine_rotation_deg", "affine_scale"});
  section.read("flips", augment.flips);
  section.read("rotate90", augment.rotate90);
  section.read("brightness", augment.brightness);
  section.read("contrast", augment.contrast);
  section.read("hed_sigma_factor", augment.hed_sigma_factor);
  section.read("hed_sigma_bias", augment.hed_sigma_bias);
  section.read("affine_rotation_deg", augment.affine_rotation_deg);
  section.read("affine_scale", augment.affine_scale);
}

void read_training(const Node& section, TrainSettings& t) {
  section.require_keys({"epochs", "batch_size", "steps_per_epoch", "learning_rate", "weight_decay",
                        "schedule", "step_epochs", "step_gamma", "min_learning_rate",
                        "loss_target_weight", "loss_context_weight", "class_weights",
                        "ignore_label", "seed", "threads", "augment", "validation"});
  section.read("epochs", t.epochs);
  section.read("batch_size", t.batch_size);
  section.read("steps_per_epoch", t.steps_per_epoch);
  section.read("learning_rate", t.learning_rate);
  section.read("weight_decay", t.weight_decay);
  section.read("schedule", t.schedule);
  section.read("step_epochs", t.step_epochs);
  section.read("step_gamma", t.step_gamma);
  section.read("min_learning_rate", t.min_learning_rate);
  section.read("loss_target_weight", t.loss_target_weight);
  section.read("loss_context_weight", t.loss_context_weight);
  section.read("class_weights", t.class_weights);
  section.read("ignore_label", t.ignore_label);
  section.read("seed", t.seed);
  section.read("threads", t.threads);
  read_augment(section["augment"], t.augment);
  const Node validation = section["validation"];
  validation.require_keys({"fraction", "slide_ids", "max_patches"});
  validation.read("fraction", t.validation.fraction);
  validation.read("slide_ids", t.validation.slide_ids);
  validation.read("max_patches", t.validation.max_patches);
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
  if (const auto problem = network.first_problem(architecture)) {
    config_error("model." + problem->key, problem->problem);
  }
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
    if (model.network.depth == 4) {
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
                              const std::vector<std::string>& overrides, const TrainFlags& flags) {
  const config::Document document(path, overrides, "training.epochs=5");
  // The flags are recorded as the keys they stand for, as if the file had set them.
  YAML::Node recorded = YAML::Clone(document.yaml());
  TrainConfig config;
  document.read([&](const Node& root) {
    root.require_keys({"model", "geometry", "classes", "training"});
    read_model(root["model"], config.model);
    config::read_geometry(root["geometry"], config.geometry);
    if (root["classes"].present()) {
      config.classes = config::label_classes(
          root["classes"], 0, 254, "must be 0..254 (0 is usually background, 255 ignore)");
    }
    read_training(root["training"], config.training);
  });
  if (flags.seed) {
    config.training.seed = *flags.seed;
    recorded["training"]["seed"] = *flags.seed;
  }
  if (flags.threads) {
    config.training.threads = *flags.threads;
    recorded["training"]["threads"] = *flags.threads;
  }
  if (flags.epochs) {
    config.training.epochs = *flags.epochs;
    recorded["training"]["epochs"] = *flags.epochs;
  }
  document.read([&](const Node&) { config.validate(); });
  YAML::Emitter out;
  out << recorded;
  config.yaml = out.c_str();
  return config;
}

}  // namespace slidestream
