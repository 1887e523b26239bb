#include "config_reader.hpp"

#include <sstream>

namespace fs = std::filesystem;

namespace slidestream::config {

void config_error(const std::string& key, const std::string& problem) {
  throw KeyError(key, problem);
}

namespace {

std::string joined(const std::set<std::string>& names) {
  std::string list;
  for (const auto& name : names) {
    list.append(list.empty() ? "" : ", ").append(name);
  }
  return list;
}

std::string child_path(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : parent + "." + key;
}

}  // namespace

Node Node::operator[](const std::string& key) const {
  if (!present()) {
    return Node(YAML::Node(YAML::NodeType::Undefined), child_path(path_, key));
  }
  if (!yaml_.IsMap()) {
    fail("must be a mapping of keys to values");
  }
  return Node(yaml_[key], child_path(path_, key));
}

std::vector<Node> Node::items(const std::string& item) const {
  std::vector<Node> result;
  if (!present()) {
    return result;
  }
  if (!yaml_.IsSequence()) {
    fail("must be a list of " + item);
  }
  for (std::size_t i = 0; i < yaml_.size(); ++i) {
    result.emplace_back(yaml_[i], path_ + "[" + std::to_string(i) + "]");
  }
  return result;
}

void Node::require_keys(const std::set<std::string>& known) const {
  if (!present()) {
    return;
  }
  if (!yaml_.IsMap()) {
    fail("must be a mapping of keys to values");
  }
  for (const auto& entry : yaml_) {
    if (!entry.first.IsScalar()) {
      // YAML allows a list or a mapping as a key ("? [a, b]: 1"); no key is one.
      fail("has a key that is not a name: " + YAML::Dump(entry.first));
    }
    const auto key = entry.first.as<std::string>();
    if (known.count(key) == 0) {
      const std::string whose = path_.empty() ? "top-level keys" : "keys of '" + path_ + "'";
      config_error(child_path(path_, key), "unknown key; known " + whose + ": " + joined(known));
    }
  }
}

Size size_of(const Node& node) {
  if (node.yaml().IsSequence()) {
    const std::vector<Node> sides = node.items("sides");
    if (sides.size() != 2) {
      node.fail("must be N or [width, height] px");
    }
    return Size{sides[0].as<std::int64_t>(), sides[1].as<std::int64_t>()};
  }
  const auto side = node.as<std::int64_t>();
  return Size{side, side};
}

BranchGeometry branch_of(const Node& node, const std::string& size_key) {
  node.require_keys({"spacing_um", size_key});
  if (!node["spacing_um"].present() || !node[size_key].present()) {
    node.fail("needs spacing_um (um/px) and " + size_key + " (px: N or [width, height]), e.g. " +
              "{spacing_um: 0.5, " + size_key + ": 284}");
  }
  return BranchGeometry{node["spacing_um"].as<double>(), size_of(node[size_key])};
}

void read_geometry(const Node& section, ModelGeometry& geometry) {
  section.require_keys({"branches", "output", "check"});
  if (section["branches"].present()) {
    geometry.branches.clear();
    for (const Node& branch : section["branches"].items("{spacing_um, size}")) {
      geometry.branches.push_back(branch_of(branch));
    }
  }
  if (section["output"].present()) {
    geometry.output = branch_of(section["output"]);
  }
  if (section["check"].present()) {
    const auto check = section["check"].as<std::string>();
    if (check == "hooknet") {
      geometry.validate();
      geometry.validate_hooknet_sizes();
    } else if (check != "none") {
      section["check"].fail("'" + check + "' is not hooknet or none");
    }
  }
}

std::vector<LabelClass> label_classes(const Node& list, int lowest, int highest,
                                      const std::string& rule) {
  std::vector<LabelClass> classes;
  for (const Node& entry : list.items("{name, value, colour}")) {
    entry.require_keys({"name", "value", "colour", "color"});
    LabelClass label;
    label.name = entry["name"].as<std::string>();
    const int value = entry["value"].as<int>();
    if (value < lowest || value > highest) {
      entry["value"].fail(rule);
    }
    label.value = static_cast<std::uint8_t>(value);
    const Node colour = entry["colour"].present() ? entry["colour"] : entry["color"];
    if (colour.present()) {
      const auto rgb = colour.as<std::vector<int>>();
      if (rgb.size() != 3) {
        colour.fail("must be [r, g, b]");
      }
      for (const int channel : rgb) {
        if (channel < 0 || channel > 255) {
          colour.fail("must be [r, g, b] with each of r, g and b 0..255");
        }
      }
      label.colour = cv::Vec3b(static_cast<std::uint8_t>(rgb[0]), static_cast<std::uint8_t>(rgb[1]),
                               static_cast<std::uint8_t>(rgb[2]));
    }
    classes.push_back(label);
  }
  return classes;
}

namespace {

// "a.b.c=value": sets root[a][b][c] to the YAML value; returns the key path.
std::string apply_override(YAML::Node& root, const std::string& assignment,
                           const std::string& example) {
  const size_t equals = assignment.find('=');
  if (equals == std::string::npos || equals == 0) {
    throw Error(ErrorCode::kInvalidConfig,
                "--set '" + assignment + "' must be section.key=value, e.g. " + example);
  }
  std::string key = assignment.substr(0, equals);
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
  return key;
}

// Whether one key path lies within the other ("tiling" and "tiling.stride", "geometry.branches"
// and "geometry.branches[0].size").
bool nested(const std::string& outer, const std::string& inner) {
  if (inner.compare(0, outer.size(), outer) != 0) {
    return false;
  }
  return inner.size() == outer.size() || inner[outer.size()] == '.' || inner[outer.size()] == '[';
}

}  // namespace

Document::Document(const std::optional<fs::path>& path, const std::vector<std::string>& overrides,
                   const std::string& example)
    : path_(path), root_(YAML::NodeType::Map) {
  if (path) {
    require_readable_file(*path);
    try {
      root_ = YAML::LoadFile(path->string());
    } catch (const YAML::Exception& error) {
      throw Error(ErrorCode::kInvalidConfig,
                  "cannot parse '" + path->string() + "': " + error.what());
    }
    if (root_.IsNull()) {
      root_ = YAML::Node(YAML::NodeType::Map);
    }
    if (!root_.IsMap()) {
      throw Error(ErrorCode::kInvalidConfig,
                  "'" + path->string() +
                      "' must be a YAML mapping of keys to values (e.g. 'tiling:' with its "
                      "keys), not a single value or a list");
    }
  }
  for (const std::string& assignment : overrides) {
    try {
      overrides_.emplace_back(apply_override(root_, assignment, example), assignment);
    } catch (const YAML::Exception& error) {
      throw Error(ErrorCode::kInvalidConfig,
                  "--set '" + assignment + "' cannot be applied: " + error.msg);
    }
  }
}

std::string Document::origin_of(const std::string& key) const {
  if (!key.empty()) {
    // Later overrides win, so the last one that touches the key is the one that set it.
    for (auto it = overrides_.rbegin(); it != overrides_.rend(); ++it) {
      if (nested(it->first, key) || nested(key, it->first)) {
        return "--set '" + it->second + "': ";
      }
    }
    return path_ ? "'" + path_->string() + "': " : "";
  }
  // An error of no one key (e.g. of the label map as a whole): name every source there was.
  if (!path_) {
    return overrides_.empty() ? "" : "--set: ";
  }
  return "'" + path_->string() + (overrides_.empty() ? "': " : "' with --set: ");
}

}  // namespace slidestream::config
