#include "yaml_helpers.hpp"

#include <sstream>

#include "slidestream/core.hpp"

namespace fs = std::filesystem;

namespace slidestream::config {

void config_error(const std::string& key, const std::string& problem) {
  throw Error(ErrorCode::kInvalidConfig, "config key '" + key + "': " + problem);
}

void require_known_keys(const YAML::Node& section, const std::string& name,
                        const std::set<std::string>& known) {
  if (!section) {
    return;
  }
  if (!section.IsMap()) {
    config_error(name, "must be a mapping of keys to values");
  }
  for (const auto& entry : section) {
    if (!entry.first.IsScalar()) {
      // YAML allows a list or a mapping as a key ("? [a, b]: 1"); no config key is one.
      config_error(name, "has a key that is not a name: " + YAML::Dump(entry.first));
    }
    const auto key = entry.first.as<std::string>();
    if (known.count(key) == 0) {
      std::string list;
      for (const auto& k : known) {
        list += (list.empty() ? "" : ", ") + k;
      }
      std::string problem = "unknown key; known keys of '";
      problem.append(name).append("': ").append(list);
      std::string full_key = name;
      full_key.append(".").append(key);
      config_error(full_key, problem);
    }
  }
}

Size size_of(const YAML::Node& node, const std::string& key) {
  if (node.IsSequence() && node.size() == 2) {
    return Size{value_of<std::int64_t>(node[0], key), value_of<std::int64_t>(node[1], key)};
  }
  const auto side = value_of<std::int64_t>(node, key);
  return Size{side, side};
}

BranchGeometry branch_of(const YAML::Node& node, const std::string& key) {
  require_known_keys(node, key, {"spacing_um", "size"});
  if (!node["spacing_um"] || !node["size"]) {
    config_error(key, "needs spacing_um and size, e.g. {spacing_um: 0.5, size: 284}");
  }
  return BranchGeometry{value_of<double>(node["spacing_um"], key + ".spacing_um"),
                        size_of(node["size"], key + ".size")};
}

namespace {

// "a.b.c=value": sets root[a][b][c] to the YAML value.
void apply_override(YAML::Node& root, const std::string& assignment, const std::string& example) {
  const size_t equals = assignment.find('=');
  if (equals == std::string::npos || equals == 0) {
    throw Error(ErrorCode::kInvalidConfig,
                "--set '" + assignment + "' must be section.key=value, e.g. " + example);
  }
  const std::string key = assignment.substr(0, equals);
  YAML::Node value;
  try {
    value = YAML::Load(assignment.substr(equals + 1));
  } catch (const YAML::Exception& error) {
    config_error(key, std::string("bad --set value: ") + error.what());
  }
  std::vector<std::string> parts;
  std::stringstream path(key);
  for (std::string part; std::getline(path, part, '.');) {
    if (part.empty()) {
      config_error(key, "--set needs a key like section.key, without empty parts");
    }
    parts.push_back(part);
  }
  if (parts.empty() || key.back() == '.') {
    config_error(key, "--set needs a key like section.key, without empty parts");
  }
  // yaml-cpp nodes are handles: walk with fresh handles, never reassign one (that would alias).
  std::vector<YAML::Node> chain{root};
  std::string walked;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    walked.append(walked.empty() ? "" : ".").append(parts[i]);
    YAML::Node next = chain.back()[parts[i]];
    if (next.IsDefined() && !next.IsNull() && !next.IsMap()) {
      config_error(walked, std::string("is a value, not a section, so --set '")
                               .append(assignment)
                               .append("' cannot set a key inside it; set ")
                               .append(walked)
                               .append("=VALUE instead"));
    }
    chain.push_back(next);
  }
  chain.back()[parts.back()] = value;
}

}  // namespace

YAML::Node load_root(const std::optional<fs::path>& path, const std::vector<std::string>& overrides,
                     const std::string& example) {
  YAML::Node root(YAML::NodeType::Map);
  if (path) {
    require_readable_file(*path);
    try {
      root = YAML::LoadFile(path->string());
    } catch (const YAML::Exception& error) {
      throw Error(ErrorCode::kInvalidConfig,
                  "cannot parse '" + path->string() + "': " + error.what());
    }
    if (root.IsNull()) {
      root = YAML::Node(YAML::NodeType::Map);
    }
    if (!root.IsMap()) {
      throw Error(ErrorCode::kInvalidConfig,
                  "'" + path->string() +
                      "' is not a config: it must be a YAML mapping of sections (e.g. "
                      "'tiling:' with its keys), not a single value or a list");
    }
  }
  for (const std::string& assignment : overrides) {
    try {
      apply_override(root, assignment, example);
    } catch (const YAML::Exception& error) {
      throw Error(ErrorCode::kInvalidConfig,
                  "--set '" + assignment + "' cannot be applied: " + error.msg);
    }
  }
  return root;
}

}  // namespace slidestream::config
