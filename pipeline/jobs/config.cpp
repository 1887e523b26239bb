// The extract config: YAML sections -> structs, read with the config module's reader (key
// paths in errors, the null rule, `--set` overrides).
#include <yaml-cpp/yaml.h>

#include <set>

#include "config_yaml.hpp"
#include "slidestream/core.hpp"
#include "slidestream/jobs/extract.hpp"
#include "slidestream/jobs/stain_stage.hpp"

namespace fs = std::filesystem;

namespace slidestream {

using config::config_error;
using config::Node;

namespace {

void read_tiling(const Node& section, ExtractConfig& config) {
  section.require_keys({"stride", "min_tissue_fraction", "region", "within_annotations"});
  PlanOptions& tiling = config.tiling;
  section.read("within_annotations", config.tiles_within_annotations);
  if (section["stride"].present()) {
    tiling.stride_px = config::size_of(section["stride"]);
  }
  section.read("min_tissue_fraction", tiling.min_tissue_fraction);
  if (const auto region = config::region_of(section["region"])) {
    tiling.region_l0 = region;
  }
}

void read_labels(const Node& section, ExtractConfig& config) {
  section.require_keys({"classes", "ignore_unknown", "unnamed_class", "raster_rule"});
  if (section["classes"].present()) {
    config.labels.classes =
        config::label_classes(section["classes"], 1, 255, "must be 1..255 (0 is background)");
  }
  section.read("ignore_unknown", config.labels.ignore_unknown);
  section.read("unnamed_class", config.labels.unnamed_class);
  section.read("raster_rule", config.label_raster_rule);
}

void read_output(const Node& section, ExtractConfig& config) {
  section.require_keys({"format", "gzip_level"});
  section.read("format", config.format);
  section.read("gzip_level", config.gzip_level);
}

}  // namespace

void config::read_tissue(const Node& section, TissueOptions& tissue) {
  section.require_keys({"spacing_um", "method", "threshold", "close_radius_um", "open_radius_um",
                        "min_tissue_area_um2", "max_hole_area_um2", "exclude_pen",
                        "max_mask_megapixels"});
  section.read("spacing_um", tissue.spacing_um);
  section.read("close_radius_um", tissue.close_radius_um);
  section.read("open_radius_um", tissue.open_radius_um);
  section.read("min_tissue_area_um2", tissue.min_tissue_area_um2);
  section.read("max_hole_area_um2", tissue.max_hole_area_um2);
  section.read("max_mask_megapixels", tissue.max_mask_megapixels);
  if (section["method"].present()) {
    tissue.method = section["method"].parsed(parse_tissue_method);
  }
  section.read("threshold", tissue.threshold);  // null: Otsu, the default
  section.read("exclude_pen", tissue.exclude_pen);
}

std::optional<Rect> config::region_of(const Node& node) {
  if (!node.present()) {
    return std::nullopt;
  }
  const auto values = node.as<std::vector<std::int64_t>>();
  if (values.size() != 4) {
    node.fail("must be [x, y, width, height] in level-0 pixels");
  }
  return Rect{values[0], values[1], values[2], values[3]};
}

// stain: { method, target, fit: slide|tile, fit_spacing_um }; present = enabled.
void config::read_stain(const Node& section, StainConfig& stain) {
  if (!section.present()) {
    return;
  }
  section.require_keys({"method", "target", "fit", "fit_spacing_um"});
  stain.enabled = true;
  // null: the method recorded with the target (stain_node writes it so when none was given).
  if (section["method"].present()) {
    stain.method = section["method"].parsed(parse_stain_method);
  }
  section.read("target", stain.target);
  if (section["fit"].present()) {
    const auto fit = section["fit"].as<std::string>();
    try {
      stain.fit = parse_stain_fit_scope(fit, "fit");
    } catch (const Error&) {
      section["fit"].fail("'" + fit +
                          "' is not slide (fit each slide's stains once, the default) or tile "
                          "(fit every tile)");
    }
  }
  section.read("fit_spacing_um", stain.fit_spacing_um);
}

void config::read_scheduler(const Node& section, SchedulerOptions& scheduler) {
  section.require_keys({"threads", "max_inflight"});
  section.read("threads", scheduler.threads);
  section.read("max_inflight", scheduler.max_inflight);
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
  node["fit"] = stain_fit_scope_name(stain.fit);
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

// Every setting that shapes the output, defaults included, so an output records exactly how it
// was made.
std::string ExtractConfig::resolved_yaml() const {
  const ExtractConfig& config = *this;
  YAML::Node root;
  for (const BranchGeometry& branch : config.geometry.branches) {
    root["geometry"]["branches"].push_back(config::branch_node(branch));
  }
  root["geometry"]["output"] = config::branch_node(config.geometry.output);
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
  const config::Document document(path, overrides, "tissue.spacing_um=4");
  ExtractConfig config;
  config.source_path = path;
  document.read([&](const Node& root) {
    root.require_keys({"geometry", "tiling", "tissue", "labels", "output", "scheduler", "stain"});
    config::read_geometry(root["geometry"], config.geometry);
    read_tiling(root["tiling"], config);
    config::read_tissue(root["tissue"], config.tissue);
    read_labels(root["labels"], config);
    read_output(root["output"], config);
    config::read_scheduler(root["scheduler"], config.scheduler);
    config::read_stain(root["stain"], config.stain);
    config.validate();
  });
  return config;
}

}  // namespace slidestream
