// The segment config: YAML sections -> SegmentConfig, with `--set` overrides and key-named errors.
#include <yaml-cpp/yaml.h>

#include "config_yaml.hpp"
#include "slidestream/core.hpp"
#include "slidestream/segment.hpp"

namespace fs = std::filesystem;

namespace slidestream {

namespace {

using config::config_error;
using config::require_known_keys;
using config::value_of;

// Unlike config::read_if, a key set to null is an error here, not the default.
template <typename T>
void read_value(const YAML::Node& section, const char* name, const std::string& prefix, T& target) {
  if (section && section[name]) {
    target = value_of<T>(section[name], prefix + "." + name);
  }
}

// The parsers and checks the command line shares (--precision, --device) throw kInvalidArgument
// naming the option; a value from the config (or --set) is a config error naming the key.
template <typename Parse>
auto as_config_error(const std::string& key, Parse parse) {
  try {
    return parse();
  } catch (const Error& error) {
    config_error(key, error.what());
  }
}

void read_tiling(const YAML::Node& node, SegmentConfig& config) {
  require_known_keys(node, "tiling", {"min_tissue_fraction", "region"});
  read_value(node, "min_tissue_fraction", "tiling", config.min_tissue_fraction);
  if (node && node["region"] && !node["region"].IsNull()) {
    const auto values = value_of<std::vector<std::int64_t>>(node["region"], "tiling.region");
    if (values.size() != 4) {
      config_error("tiling.region", "must be [x, y, width, height] in level-0 pixels");
    }
    config.region_l0 = Rect{values[0], values[1], values[2], values[3]};
  }
}

void read_stitching(const YAML::Node& node, SegmentConfig& config) {
  require_known_keys(node, "stitching", {"overlap", "blend"});
  read_value(node, "overlap", "stitching", config.overlap);
  if (node && node["blend"]) {
    config.blend = parse_blend_mode(value_of<std::string>(node["blend"], "stitching.blend"));
  }
}

void read_inference(const YAML::Node& node, SegmentConfig& config) {
  require_known_keys(node, "inference",
                     {"device", "precision", "batch_size", "intra_op_threads", "mc_samples"});
  InferenceOptions& inference = config.inference;
  read_value(node, "device", "inference", inference.device);
  read_value(node, "batch_size", "inference", config.batch_size);
  read_value(node, "intra_op_threads", "inference", inference.intra_op_threads);
  read_value(node, "mc_samples", "inference", inference.mc_samples);
  if (node && node["precision"]) {
    const auto name = value_of<std::string>(node["precision"], "inference.precision");
    inference.precision =
        as_config_error("inference.precision", [&] { return parse_precision(name); });
  }
}

void read_outputs(const YAML::Node& node, SegmentOutputs& outputs) {
  require_known_keys(node, "outputs",
                     {"heatmaps", "heatmap_downsample", "uncertainty", "overlay",
                      "overlay_spacing_um", "overlay_max_px", "overlay_alpha", "geojson", "asap",
                      "vector_spacing_um", "max_vector_megapixels", "min_region_area_um2",
                      "simplify_px", "tiff_tile_size", "checkpoint_tiles"});
  read_value(node, "heatmaps", "outputs", outputs.heatmaps);
  read_value(node, "heatmap_downsample", "outputs", outputs.heatmap_downsample);
  read_value(node, "uncertainty", "outputs", outputs.uncertainty);
  read_value(node, "overlay", "outputs", outputs.overlay);
  read_value(node, "overlay_spacing_um", "outputs", outputs.overlay_spacing_um);
  read_value(node, "overlay_max_px", "outputs", outputs.overlay_max_px);
  read_value(node, "overlay_alpha", "outputs", outputs.overlay_alpha);
  read_value(node, "geojson", "outputs", outputs.geojson);
  read_value(node, "asap", "outputs", outputs.asap);
  read_value(node, "vector_spacing_um", "outputs", outputs.vector_spacing_um);
  read_value(node, "max_vector_megapixels", "outputs", outputs.max_vector_megapixels);
  read_value(node, "min_region_area_um2", "outputs", outputs.min_region_area_um2);
  read_value(node, "simplify_px", "outputs", outputs.simplify_px);
  read_value(node, "tiff_tile_size", "outputs", outputs.tiff_tile_size);
  read_value(node, "checkpoint_tiles", "outputs", outputs.checkpoint_tiles);
}

// Every setting that shapes the outputs, defaults included. The scheduler and the device are
// left out: they change speed, never the result (CPU fp32), and resumes may change them.
YAML::Node resolved_node(const SegmentConfig& config) {
  YAML::Node root;
  root["tissue"] = config::tissue_node(config.tissue);
  root["tiling"]["min_tissue_fraction"] = config.min_tissue_fraction;
  if (config.region_l0) {
    const Rect& region = *config.region_l0;
    for (const std::int64_t value : {region.x, region.y, region.width, region.height}) {
      root["tiling"]["region"].push_back(value);
    }
  }
  root["stitching"]["overlap"] = config.overlap;
  root["stitching"]["blend"] = blend_mode_name(config.blend);
  if (config.stain.enabled) {
    root["stain"] = config::stain_node(config.stain);
  }
  root["inference"]["precision"] = precision_name(config.inference.precision);
  root["inference"]["mc_samples"] = config.inference.mc_samples;
  const SegmentOutputs& outputs = config.outputs;
  YAML::Node out = root["outputs"];
  out["heatmaps"] = outputs.heatmaps;
  out["heatmap_downsample"] = outputs.heatmap_downsample;
  out["uncertainty"] = outputs.uncertainty;
  out["overlay"] = outputs.overlay;
  out["overlay_spacing_um"] = outputs.overlay_spacing_um;
  out["overlay_max_px"] = outputs.overlay_max_px;
  out["overlay_alpha"] = outputs.overlay_alpha;
  out["geojson"] = outputs.geojson;
  out["asap"] = outputs.asap;
  out["vector_spacing_um"] = outputs.vector_spacing_um;
  out["max_vector_megapixels"] = outputs.max_vector_megapixels;
  out["min_region_area_um2"] = outputs.min_region_area_um2;
  out["simplify_px"] = outputs.simplify_px;
  out["tiff_tile_size"] = outputs.tiff_tile_size;
  return root;
}

}  // namespace

std::string SegmentConfig::resolved_yaml() const {
  return YAML::Dump(resolved_node(*this));
}

void SegmentConfig::validate() const {
  tissue.validate();
  if (inference.intra_op_threads < 0 || inference.intra_op_threads > max_threads()) {
    config_error("inference.intra_op_threads",
                 "must be 0 (torch's default) to " + std::to_string(max_threads()));
  }
  if (inference.mc_samples < 0 || inference.mc_samples > 1000) {
    config_error("inference.mc_samples", "must be 0 (off) to 1000");
  }
  as_config_error("inference", [this] { inference.validate(); });
  if (stain.enabled) {
    stain.validate();
  }
  if (!is_within(min_tissue_fraction, 0, 1)) {
    config_error("tiling.min_tissue_fraction", "must be between 0 and 1");
  }
  if (region_l0 && (region_l0->width <= 0 || region_l0->height <= 0)) {
    config_error("tiling.region", "width and height must be positive (level-0 pixels)");
  }
  if (!(overlap >= 0 && overlap < 1)) {
    config_error("stitching.overlap", "must be at least 0 and below 1 (e.g. 0.25)");
  }
  if (batch_size < 1 || batch_size > 4096) {
    config_error("inference.batch_size", "must be 1..4096 (e.g. 8 on CPU, 32 on a GPU)");
  }
  if (outputs.heatmap_downsample < 1 || outputs.heatmap_downsample > 4096) {
    config_error("outputs.heatmap_downsample", "must be 1..4096");
  }
  if (!is_within(outputs.overlay_spacing_um, 0, 1e5)) {
    config_error("outputs.overlay_spacing_um", "must be 0 (auto) or a spacing up to 1e5 um/px");
  }
  if (!is_within(outputs.vector_spacing_um, 0, 1e5)) {
    config_error("outputs.vector_spacing_um", "must be 0 (auto) or a spacing up to 1e5 um/px");
  }
  if (outputs.overlay_max_px < 16 || outputs.overlay_max_px > 65536) {
    config_error("outputs.overlay_max_px", "must be 16..65536");
  }
  if (!is_within(outputs.overlay_alpha, 0, 1)) {
    config_error("outputs.overlay_alpha", "must be between 0 and 1");
  }
  if (!is_within(outputs.max_vector_megapixels, 1e-3, 4096)) {
    config_error("outputs.max_vector_megapixels", "must be in (0, 4096]");
  }
  if (!is_within(outputs.min_region_area_um2, 0, 1e15)) {
    config_error("outputs.min_region_area_um2", "must be >= 0 um^2");
  }
  if (!is_within(outputs.simplify_px, 0, 1e6)) {
    config_error("outputs.simplify_px", "must be >= 0 px");
  }
  if (outputs.tiff_tile_size < 16 || outputs.tiff_tile_size > 8192 ||
      outputs.tiff_tile_size % 16 != 0) {
    config_error("outputs.tiff_tile_size", "must be a multiple of 16 up to 8192 (e.g. 512)");
  }
  if (outputs.checkpoint_tiles < 1) {
    config_error("outputs.checkpoint_tiles", "must be >= 1");
  }
  config::validate_scheduler(scheduler);
}

SegmentConfig load_segment_config(const std::optional<fs::path>& path,
                                  const std::vector<std::string>& overrides) {
  YAML::Node root = config::load_root(path, overrides, "outputs.heatmaps=true");
  require_known_keys(
      root, "config",
      {"tissue", "tiling", "stitching", "stain", "inference", "outputs", "scheduler"});
  SegmentConfig config;
  config::read_tissue(root["tissue"], config.tissue);
  read_tiling(root["tiling"], config);
  read_stitching(root["stitching"], config);
  config::read_stain(root["stain"], config.stain);
  read_inference(root["inference"], config);
  read_outputs(root["outputs"], config.outputs);
  config::read_scheduler(root["scheduler"], config.scheduler);
  config.validate();
  return config;
}

}  // namespace slidestream
