// The sections the job configs (extract, segment) share, read with the config module's reader
// (config_reader.hpp: key paths in errors, the null rule, unknown keys refused).
#pragma once

#include <yaml-cpp/yaml.h>

#include "config_reader.hpp"
#include "slidestream/jobs/stain_stage.hpp"
#include "slidestream/tile_pipeline.hpp"
#include "slidestream/tiling.hpp"
#include "slidestream/tissue.hpp"

namespace slidestream::config {

/// The `tissue:` and `scheduler:` sections, shared by every job config.
void read_tissue(const Node& section, TissueOptions& tissue);
void read_scheduler(const Node& section, SchedulerOptions& scheduler);
/// kInvalidConfig naming `scheduler.threads` / `scheduler.max_inflight` when out of range.
void validate_scheduler(const SchedulerOptions& scheduler);
/// `tiling.region`: [x, y, width, height] in level-0 pixels.
std::optional<Rect> region_of(const Node& node);
/// The `stain:` section (extract and segment); present = enabled.
void read_stain(const Node& section, StainConfig& stain);
YAML::Node tissue_node(const TissueOptions& tissue);
YAML::Node stain_node(const StainConfig& stain);
YAML::Node branch_node(const BranchGeometry& branch);

}  // namespace slidestream::config
