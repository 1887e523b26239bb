// The extract config: YAML sections -> structs, with `--set` overrides and key-named errors.
#include <yaml-cpp/yaml.h>

#include <set>

#include "config_yaml.hpp"
#include "slidestream/core.hpp"
#include "slidestream/jobs.hpp"

namespace fs = std::filesystem;

namespace slidestream {

using config::branch_of;
using config::config_error;
using config::require_known_keys;
using config::size_of;
using config::value_of;

namespace {

void read_geometry(const YAML::Node& node, ModelGeometry& geometry) {
  if (!node) {
    return;
  }
  require_known_keys(node, "geometry", {"branches", "output", "check"});
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
  if (node["check"]) {
    const auto check = value_of<std::string>(node["check"], "geometry.check");
    if (check == "hooknet") {
      geometry.validate();
      geometry.validate_hooknet_sizes();
    } else if (check != "none") {
      config_error("geometry.check", "'" + check + "' is not hooknet or none");
    }
  }
}

void read_tiling(const YAML::Node& node, ExtractConfig& config) {
  require_known_keys(node, "tiling",
                     {"stride", "min_tissue_fraction", "region", "within_annotations"});
  if (!node) {
    return;
  }
  PlanOptions& tiling = config.tiling;
  if (node["within_annotations"]) {
    config.tiles_within_annotations =
        value_of<bool>(node["within_annotations"], "tiling.within_annotations");
  }
  if (node["stride"] && !node["stride"].IsNull()) {
    tiling.stride_px = size_of(node["stride"], "tiling.stride");
  }
  if (node["min_tissue_fraction"]) {
    tiling.min_tissue_fraction =
        value_of<double>(node["min_tissue_fraction"], "tiling.min_tissue_fraction");
  }
  if (node["region"] && !node["region"].IsNull()) {
    const auto values = value_of<std::vector<std::int64_t>>(node["region"], "tiling.region");
    if (values.size() != 4) {
      config_error("tiling.region", "must be [x, y, width, height] in level-0 pixels");
    }
    tiling.region_l0 = Rect{values[0], values[1], values[2], values[3]};
  }
}

}  // namespace

void config::read_tissue(const YAML::Node& node, TissueOptions& tissue) {
  require_known_keys(
      node, "tissue",
      {"spacing_um", "method", "threshold", "close_radius_um", "open_radius_um",
       "min_tissue_area_um2", "max_hole_area_um2", "exclude_pen", "max_mask_megapixels"});
  if (!node) {
    return;
  }
  auto number = [&](const char* key, double& target) {
    if (node[key]) {
      target = value_of<double>(node[key], std::string("tissue.") + key);
    }
  };
  number("spacing_um", tissue.spacing_um);
  number("close_radius_um", tissue.close_radius_um);
  number("open_radius_um", tissue.open_radius_um);
  number("min_tissue_area_um2", tissue.min_tissue_area_um2);
  number("max_hole_area_um2", tissue.max_hole_area_um2);
  number("max_mask_megapixels", tissue.max_mask_megapixels);
  if (node["method"]) {
    tissue.method = parse_tissue_method(value_of<std::string>(node["method"], "tissue.method"));
  }
  if (node["threshold"] && !node["threshold"].IsNull()) {
    tissue.threshold = value_of<double>(node["threshold"], "tissue.threshold");
  }
  if (node["exclude_pen"]) {
    tissue.exclude_pen = value_of<bool>(node["exclude_pen"], "tissue.exclude_pen");
  }
}

namespace {

void read_labels(const YAML::Node& node, ExtractConfig& config) {
  require_known_keys(node, "labels", {"classes", "ignore_unknown", "unnamed_class", "raster_rule"});
  if (!node) {
    return;
  }
  if (node["classes"] && !node["classes"].IsNull()) {
    if (!node["classes"].IsSequence()) {
      config_error("labels.classes", "must be a list of {name, value, colour}");
    }
    config.labels.classes.clear();
    for (size_t i = 0; i < node["classes"].size(); ++i) {
      const YAML::Node entry = node["classes"][i];
      const std::string key = "labels.classes[" + std::to_string(i) + "]";
      require_known_keys(entry, key, {"name", "value", "colour", "color"});
      LabelClass label;
      label.name = value_of<std::string>(entry["name"], key + ".name");
      const int value = value_of<int>(entry["value"], key + ".value");
      if (value < 1 || value > 255) {
        config_error(key + ".value", "must be 1..255 (0 is background)");
      }
      label.value = static_cast<std::uint8_t>(value);
      const YAML::Node colour = entry["colour"] ? entry["colour"] : entry["color"];
      if (colour) {
        const auto rgb = value_of<std::vector<int>>(colour, key + ".colour");
        if (rgb.size() != 3) {
          config_error(key + ".colour", "must be [r, g, b]");
        }
        label.colour =
            cv::Vec3b(static_cast<std::uint8_t>(rgb[0]), static_cast<std::uint8_t>(rgb[1]),
                      static_cast<std::uint8_t>(rgb[2]));
      }
      config.labels.classes.push_back(label);
    }
  }
  if (node["ignore_unknown"]) {
    config.labels.ignore_unknown = value_of<bool>(node["ignore_unknown"], "labels.ignore_unknown");
  }
  if (node["unnamed_class"] && !node["unnamed_class"].IsNull()) {
    config.labels.unnamed_class =
        value_of<std::string>(node["unnamed_class"], "labels.unnamed_class");
  }
  if (node["raster_rule"]) {
    config.label_raster_rule = value_of<std::string>(node["raster_rule"], "labels.raster_rule");
  }
}

void read_output(const YAML::Node& node, ExtractConfig& config) {
  require_known_keys(node, "output", {"format", "gzip_level"});
  if (!node) {
    return;
  }
  if (node["format"]) {
    config.format = value_of<std::string>(node["format"], "output.format");
  }
  if (node["gzip_level"]) {
    config.gzip_level = value_of<int>(node["gzip_level"], "output.gzip_level");
  }
}

}  // namespace

// stain: { method, target, fit: slide|tile, fit_spacing_um }; present = enabled.
void config::read_stain(const YAML::Node& node, StainConfig& stain) {
  if (!node) {
    return;
  }
  require_known_keys(node, "stain", {"method", "target", "fit", "fit_spacing_um"});
  stain.enabled = true;
  // null: the method recorded with the target (stain_node writes it so when none was given).
  if (node["method"] && !node["method"].IsNull()) {
    try {
      stain.method = parse_stain_method(value_of<std::string>(node["method"], "stain.method"));
    } catch (const Error& error) {
      config_error("stain.method", error.what());
    }
  }
  if (node["target"]) {
    stain.target = value_of<std::string>(node["target"], "stain.target");
  }
  if (node["fit"]) {
    const auto fit = value_of<std::string>(node["fit"], "stain.fit");
    if (fit != "slide" && fit != "tile") {
      config_error("stain.fit", "'" + fit +
                                    "' is not slide (fit each slide's stains once, the default) "
                                    "or tile (fit every tile)");
    }
    stain.fit = fit == "slide" ? StainFitScope::kSlide : StainFitScope::kTile;
  }
  if (node["fit_spacing_um"]) {
    stain.fit_spacing_um = value_of<double>(node["fit_spacing_um"], "stain.fit_spacing_um");
  }
}

void config::read_scheduler(const YAML::Node& node, SchedulerOptions& scheduler) {
  require_known_keys(node, "scheduler", {"threads", "max_inflight"});
  if (!node) {
    return;
  }
  if (node["threads"]) {
    scheduler.threads = value_of<int>(node["threads"], "scheduler.threads");
  }
  if (node["max_inflight"]) {
    scheduler.max_inflight = value_of<int>(node["max_inflight"], "scheduler.max_inflight");
  }
}

void config::validate_scheduler(const SchedulerOptions& scheduler) {
  if (scheduler.threads < 0 || scheduler.threads > max_threads()) {
    config_error("scheduler.threads", "must be 0 (all cores) to " + std::to_string(max_threads()));
  }
  if (scheduler.max_inflight < 0 || scheduler.max_inflight > 65536) {
    config_error("scheduler.max_inflight", "must be 0 (automatic) to 65536");
  }
}

YAML::Node config::branch_node(const BranchGeometry& branch) {
  YAML::Node node;
  node["spacing_um"] = branch.spacing_um;
  node["size"].push_back(branch.size_px.width);
  node["size"].push_back(branch.size_px.height);
  node["size"].SetStyle(YAML::EmitterStyle::Flow);
  return node;
}

YAML::Node config::stain_node(const StainConfig& stain) {
  YAML::Node node;
  node["method"] = stain.method ? YAML::Node(stain_method_name(*stain.method))
                                : YAML::Node(YAML::NodeType::Null);
  node["target"] = stain.target;
  node["fit"] = stain.fit == StainFitScope::kSlide ? "slide" : "tile";
  node["fit_spacing_um"] = stain.fit_spacing_um;
  return node;
}

YAML::Node config::tissue_node(const TissueOptions& tissue) {
  YAML::Node node;
  node["spacing_um"] = tissue.spacing_um;
  node["method"] = tissue_method_name(tissue.method);
  node["threshold"] =
      tissue.threshold ? YAML::Node(*tissue.threshold) : YAML::Node(YAML::NodeType::Null);
  node["close_radius_um"] = tissue.close_radius_um;
  node["open_radius_um"] = tissue.open_radius_um;
  node["min_tissue_area_um2"] = tissue.min_tissue_area_um2;
  node["max_hole_area_um2"] = tissue.max_hole_area_um2;
  node["exclude_pen"] = tissue.exclude_pen;
  node["max_mask_megapixels"] = tissue.max_mask_megapixels;
  return node;
}

namespace {

using config::branch_node;
using config::read_scheduler;
using config::read_tissue;

// Every setting that shapes the output, defaults included, so an output records exactly how
// it was made.
std::string resolved_yaml(const ExtractConfig& config) {
  YAML::Node root;
  for (const BranchGeometry& branch : config.geometry.branches) {
    root["geometry"]["branches"].push_back(branch_node(branch));
  }
  root["geometry"]["output"] = branch_node(config.geometry.output);
  if (config.tiling.stride_px) {
    root["tiling"]["stride"].push_back(config.tiling.stride_px->width);
    root["tiling"]["stride"].push_back(config.tiling.stride_px->height);
  } else {
    root["tiling"]["stride"] = YAML::Node(YAML::NodeType::Null);
  }
  root["tiling"]["min_tissue_fraction"] = config.tiling.min_tissue_fraction;
  root["tiling"]["within_annotations"] = config.tiles_within_annotations;
  if (config.tiling.region_l0) {
    const Rect& region = *config.tiling.region_l0;
    for (const std::int64_t value : {region.x, region.y, region.width, region.height}) {
      root["tiling"]["region"].push_back(value);
    }
  }
  root["tissue"] = config::tissue_node(config.tissue);
  root["labels"]["classes"] = YAML::Node(YAML::NodeType::Sequence);
  for (const LabelClass& label : config.labels.classes) {
    YAML::Node entry;
    entry["name"] = label.name;
    entry["value"] = static_cast<int>(label.value);
    for (int c = 0; c < 3; ++c) {
      entry["colour"].push_back(static_cast<int>(label.colour[c]));
    }
    entry["colour"].SetStyle(YAML::EmitterStyle::Flow);
    root["labels"]["classes"].push_back(entry);
  }
  root["labels"]["ignore_unknown"] = config.labels.ignore_unknown;
  root["labels"]["unnamed_class"] = config.labels.unnamed_class
                                        ? YAML::Node(*config.labels.unnamed_class)
                                        : YAML::Node(YAML::NodeType::Null);
  root["labels"]["raster_rule"] = config.label_raster_rule;
  root["output"]["format"] = config.format;
  root["output"]["gzip_level"] = config.gzip_level;
  if (config.stain.enabled) {  // absent when off, so configs without it record the same YAML
    root["stain"] = config::stain_node(config.stain);
  }
  // The scheduler section is left out on purpose: it changes speed, never the output, and
  // outputs are byte-identical whatever the thread count.
  return YAML::Dump(root);
}

}  // namespace

void ExtractConfig::validate() const {
  geometry.validate();
  tissue.validate();
  labels.validate();
  if (format != "hdf5" && format != "png") {
    config_error("output.format", "'" + format + "' is not hdf5 or png");
  }
  if (gzip_level < 0 || gzip_level > 9) {
    config_error("output.gzip_level", "must be 0..9");
  }
  if (!is_within(tiling.min_tissue_fraction, 0, 1)) {
    config_error("tiling.min_tissue_fraction", "must be between 0 and 1");
  }
  if (tiling.region_l0 && (tiling.region_l0->width <= 0 || tiling.region_l0->height <= 0)) {
    config_error("tiling.region", "width and height must be positive (level-0 pixels)");
  }
  if (tiling.stride_px &&
      (tiling.stride_px->width <= 0 || tiling.stride_px->height <= 0 ||
       tiling.stride_px->width > 1000000 || tiling.stride_px->height > 1000000)) {
    config_error("tiling.stride", "must be positive output pixels (or null for the output size)");
  }
  config::validate_scheduler(scheduler);
  if (stain.enabled) {
    stain.validate();
  }
}

ExtractConfig load_extract_config(const std::optional<fs::path>& path,
                                  const std::vector<std::string>& overrides) {
  YAML::Node root = config::load_root(path, overrides, "tissue.spacing_um=4");
  require_known_keys(root, "config",
                     {"geometry", "tiling", "tissue", "labels", "output", "scheduler", "stain"});
  ExtractConfig config;
  config.source_path = path;
  read_geometry(root["geometry"], config.geometry);
  read_tiling(root["tiling"], config);
  read_tissue(root["tissue"], config.tissue);
  read_labels(root["labels"], config);
  read_output(root["output"], config);
  read_scheduler(root["scheduler"], config.scheduler);
  config::read_stain(root["stain"], config.stain);
  config.validate();
  config.yaml = resolved_yaml(config);
  return config;
}

}  // namespace slidestream
