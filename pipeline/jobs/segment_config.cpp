// The segment config: YAML sections -> SegmentConfig, read with the config module's reader (key
// paths in errors, the null rule, `--set` overrides).
#include <yaml-cpp/yaml.h>

#include "config_yaml.hpp"
#include "slidestream/core.hpp"
#include "slidestream/jobs/segment.hpp"

namespace fs = std::filesystem;

namespace slidestream {

namespace {

using config::config_error;
using config::Node;

// The parsers and checks the command line shares (--device) throw kInvalidArgument naming the
// option; a value from the config (or --set) is a config error naming the key.
template <typename Check>
void as_config_error(const std::string& key, Check check) {
  try {
    check();
  } catch (const Error& error) {
    config_error(key, error.what());
  }
}

void read_tiling(const Node& section, SegmentConfig& config) {
  section.require_keys({"min_tissue_fraction", "region"});
  section.read("min_tissue_fraction", config.min_tissue_fraction);
  if (const auto region = config::region_of(section["region"])) {
    config.region_l0 = region;
  }
}

void read_stitching(const Node& section, SegmentConfig& config) {
  section.require_keys({"overlap", "blend"});
  section.read("overlap", config.overlap);
  if (section["blend"].present()) {
    // parse_blend_mode's message names stitching.blend itself.
    config.blend = parse_blend_mode(section["blend"].as<std::string>());
  }
}

// inference.mc_samples ran extra forward passes with dropout on, and their variance reached no
// output, so it was removed (issue 12). 0, the off that configs/segment.yaml spelled out and
// that every recorded config carries (resolved_node), still reads, so those load again.
void reject_mc_samples(const Node& node) {
  if (!node.present()) {
    return;
  }
  int samples = -1;
  try {
    samples = node.yaml().as<int>();
  } catch (const YAML::Exception&) {
    // Not a number: removed all the same.
  }
  if (samples != 0) {
    node.fail(
        "inference.mc_samples was removed: delete the key (its Monte Carlo dropout passes "
        "cost forward passes, and their variance reached no output; outputs.uncertainty "
        "writes the softmax entropy)");
  }
}

void read_inference(const Node& section, SegmentConfig& config) {
  section.require_keys({"device", "precision", "batch_size", "intra_op_threads", "mc_samples"});
  InferenceOptions& inference = config.inference;
  section.read("device", inference.device);
  section.read("batch_size", config.batch_size);
  section.read("intra_op_threads", inference.intra_op_threads);
  reject_mc_samples(section["mc_samples"]);
  if (section["precision"].present()) {
    inference.precision = section["precision"].parsed(parse_precision);
  }
}

void read_outputs(const Node& section, SegmentOutputs& outputs) {
  section.require_keys({"heatmaps", "heatmap_downsample", "uncertainty", "overlay",
                        "overlay_spacing_um", "overlay_max_px", "overlay_alpha", "geojson", "asap",
                        "vector_spacing_um", "max_vector_megapixels", "min_region_area_um2",
                        "simplify_px", "tiff_tile_size", "checkpoint_tiles"});
  section.read("heatmaps", outputs.heatmaps);
  section.read("heatmap_downsample", outputs.heatmap_downsample);
  section.read("uncertainty", outputs.uncertainty);
  section.read("overlay", outputs.overlay);
  section.read("overlay_spacing_um", outputs.overlay_spacing_um);
  section.read("overlay_max_px", outputs.overlay_max_px);
  section.read("overlay_alpha", outputs.overlay_alpha);
  section.read("geojson", outputs.geojson);
  section.read("asap", outputs.asap);
  section.read("vector_spacing_um", outputs.vector_spacing_um);
  section.read("max_vector_megapixels", outputs.max_vector_megapixels);
  section.read("min_region_area_um2", outputs.min_region_area_um2);
  section.read("simplify_px", outputs.simplify_px);
  section.read("tiff_tile_size", outputs.tiff_tile_size);
  section.read("checkpoint_tiles", outputs.checkpoint_tiles);
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
  // A constant since mc_samples was removed: recorded configs and run fingerprints stay
  // byte-identical with the runs before (reject_mc_samples reads it back).
  root["inference"]["mc_samples"] = 0;
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
  const config::Document document(path, overrides, "outputs.heatmaps=true");
  SegmentConfig config;
  document.read([&](const Node& root) {
    root.require_keys(
        {"tissue", "tiling", "stitching", "stain", "inference", "outputs", "scheduler"});
    config::read_tissue(root["tissue"], config.tissue);
    read_tiling(root["tiling"], config);
    read_stitching(root["stitching"], config);
    config::read_stain(root["stain"], config.stain);
    read_inference(root["inference"], config);
    read_outputs(root["outputs"], config.outputs);
    config::read_scheduler(root["scheduler"], config.scheduler);
    config.validate();
  });
  return config;
}

}  // namespace slidestream
