// The sections the job configs (extract, segment) share, over the generic YAML helpers of the
// config module (key-named errors, typed reads, unknown-key checks, `--set` overrides).
#pragma once

#include <yaml-cpp/yaml.h>

#include "slidestream/jobs.hpp"
#include "slidestream/tiling.hpp"
#include "slidestream/tissue.hpp"
#include "yaml_helpers.hpp"

namespace slidestream::config {

/// The `tissue:` and `scheduler:` sections, shared by every job config.
void read_tissue(const YAML::Node& node, TissueOptions& tissue);
void read_scheduler(const YAML::Node& node, SchedulerOptions& scheduler);
/// kInvalidConfig naming `scheduler.threads` / `scheduler.max_inflight` when out of range.
void validate_scheduler(const SchedulerOptions& scheduler);
/// The `stain:` section (extract and segment); present = enabled.
void read_stain(const YAML::Node& node, StainConfig& stain);
YAML::Node tissue_node(const TissueOptions& tissue);
YAML::Node stain_node(const StainConfig& stain);
YAML::Node branch_node(const BranchGeometry& branch);

}  // namespace slidestream::config
