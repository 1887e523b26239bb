// YAML helpers shared by every config reader (the job configs in jobs, the train config in
// training): key-named errors, typed reads, unknown-key checks and `--set` overrides.
#pragma once

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "slidestream/geometry.hpp"
#include "slidestream/tiling.hpp"

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

/// Reads `node[key]` into `target` when it is present and not null (`section` names it in
/// errors: "section.key").
template <typename T>
void read_if(const YAML::Node& node, const std::string& section, const char* key, T& target) {
  if (node && node[key] && !node[key].IsNull()) {
    target = value_of<T>(node[key], section + "." + key);
  }
}

/// Errors for keys a section does not know, so a typo never passes silently.
void require_known_keys(const YAML::Node& section, const std::string& name,
                        const std::set<std::string>& known);

/// "N" or [W, H] as a size.
Size size_of(const YAML::Node& node, const std::string& key);
/// {spacing_um, size} as a branch.
BranchGeometry branch_of(const YAML::Node& node, const std::string& key);

/// The YAML file (or an empty map) with `--set section.key=value` overrides applied. Throws
/// kNotFound for a missing file, kInvalidConfig for bad YAML or a bad assignment (the message
/// shows `example`, e.g. "tissue.spacing_um=4").
YAML::Node load_root(const std::optional<std::filesystem::path>& path,
                     const std::vector<std::string>& overrides, const std::string& example);

}  // namespace slidestream::config
