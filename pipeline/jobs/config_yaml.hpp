// YAML helpers shared by the job configs (extract, segment): key-named errors, typed reads,
// unknown-key checks, `--set` overrides and the sections every config has.
#pragma once

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "slidestream/jobs.hpp"
#include "slidestream/tiling.hpp"
#include "slidestream/tissue.hpp"

namespace slidestream::config {

/// Throws kInvalidConfig "config key '<key>': <problem>".
[[noreturn]] void config_error(const std::string& key, const std::string& problem);

/// `node` as T, or a kInvalidConfig naming `key`.
template <typename T>
T value_of(const YAML::Node& node, const std::string& key) {
  try {
    return node.as<T>();
  } catch (const YAML::Exception&) {
    config_error(key, "cannot read '" + YAML::Dump(node) + "' as the expected type");
  }
}

/// Errors for keys a section does not know, so a typo never passes silently.
void require_known_keys(const YAML::Node& section, const std::string& name,
                        const std::set<std::string>& known);

/// "N" or [W, H] as a size.
Size size_of(const YAML::Node& node, const std::string& key);
/// {spacing_um, size} as a branch.
BranchGeometry branch_of(const YAML::Node& node, const std::string& key);

/// The `tissue:` and `scheduler:` sections, shared by every job config.
void read_tissue(const YAML::Node& node, TissueOptions& tissue);
void read_scheduler(const YAML::Node& node, SchedulerOptions& scheduler);
/// The `stain:` section (extract and segment); present = enabled.
void read_stain(const YAML::Node& node, StainConfig& stain);
YAML::Node tissue_node(const TissueOptions& tissue);
YAML::Node stain_node(const StainConfig& stain);
YAML::Node branch_node(const BranchGeometry& branch);

/// The YAML file (or an empty map) with `--set section.key=value` overrides applied. Throws
/// kNotFound for a missing file, kInvalidConfig for bad YAML or a bad assignment.
YAML::Node load_root(const std::optional<std::filesystem::path>& path,
                     const std::vector<std::string>& overrides);

}  // namespace slidestream::config
