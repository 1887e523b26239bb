// The one reader of the YAML files slidestream reads: the extract, segment and train configs
// (with their `--set` overrides) and model.yaml. Every error is kInvalidConfig and says where
// (the file, or the --set assignment), which key (its path) and what is allowed:
//
//   'c.yaml': config key 'tiling.stride': cannot read 'abc' as an integer
//   --set 'training.epochs=0': config key 'training.epochs': must be >= 1
//
// The null rule, the same in every file and section: a key that is absent or null (`key: ~`,
// `key: null`, `key:`) keeps its default. A null section is an absent one (`stain: ~` is no
// stain section), and a required key that is null is missing. So `--set tissue.threshold=~`
// gives back the default that a file changed.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "slidestream/core.hpp"
#include "slidestream/geometry.hpp"
#include "slidestream/label_class.hpp"
#include "slidestream/model_geometry.hpp"

namespace slidestream::config {

/// The error of one key: kInvalidConfig "config key '<key>': <problem>". A Document that reads
/// it adds where the key came from.
class KeyError : public Error {
 public:
  KeyError(const std::string& key, const std::string& problem)
      : Error(ErrorCode::kInvalidConfig, "config key '" + key + "': " + problem), key_(key) {}
  const std::string& key() const noexcept { return key_; }

 private:
  std::string key_;
};

/// Throws KeyError (kInvalidConfig) for `key`, also where no Document is reading (validate()).
[[noreturn]] void config_error(const std::string& key, const std::string& problem);

/// What a value of type T must be, in words, for "cannot read 'x' as <words>".
template <typename T>
std::string type_words() {
  if constexpr (std::is_same_v<T, bool>) {
    return "true or false";
  } else if constexpr (std::is_integral_v<T>) {
    return std::is_signed_v<T> ? "an integer" : "a whole number >= 0";
  } else if constexpr (std::is_floating_point_v<T>) {
    return "a number";
  } else if constexpr (std::is_same_v<T, std::string>) {
    return "a text value";
  } else {
    using Item = typename T::value_type;  // a std::vector
    if constexpr (std::is_integral_v<Item>) {
      return "a list of integers";
    } else if constexpr (std::is_floating_point_v<Item>) {
      return "a list of numbers";
    } else {
      return "a list of text values";
    }
  }
}

/// One node of a document and its key path ("tiling.stride", "classes[2].value").
class Node {
 public:
  Node(const YAML::Node& yaml, std::string path) : yaml_(yaml), path_(std::move(path)) {}

  /// Whether it holds a value: false when absent or null (the null rule).
  bool present() const { return yaml_.IsDefined() && !yaml_.IsNull(); }
  const std::string& path() const { return path_; }
  const YAML::Node& yaml() const { return yaml_; }

  /// The key of a section (absent when the section is absent or null); a present section that
  /// is not a mapping is an error.
  Node operator[](const std::string& key) const;
  /// The items of a list (none when absent or null); anything else is an error saying what an
  /// item is (`item`, e.g. "{spacing_um, size}").
  std::vector<Node> items(const std::string& item) const;
  /// A present section must be a mapping whose keys are all in `known`: a typo never passes.
  void require_keys(const std::set<std::string>& known) const;

  /// The value as T; missing (absent or null) or of another type is an error.
  template <typename T>
  T as() const {
    if (!present()) {
      fail("is required here");
    }
    try {
      return yaml_.as<T>();
    } catch (const YAML::Exception&) {
      fail("cannot read '" + YAML::Dump(yaml_) + "' as " + type_words<T>());
    }
  }
  /// `target` = the value of `key` when it is present; otherwise `target` keeps its default.
  template <typename T>
  void read(const std::string& key, T& target) const {
    const Node child = (*this)[key];
    if (child.present()) {
      target = child.as<T>();
    }
  }
  template <typename T>
  void read(const std::string& key, std::optional<T>& target) const {
    const Node child = (*this)[key];
    if (child.present()) {
      target = child.as<T>();
    }
  }

  /// `parse(as<std::string>())`, with an Error that `parse` throws (e.g. one that names a
  /// command-line flag) made this key's error.
  template <typename Parse>
  auto parsed(Parse parse) const -> decltype(parse(std::string())) {
    const auto text = as<std::string>();
    try {
      return parse(text);
    } catch (const Error& error) {
      fail(error.what());
    }
  }

  [[noreturn]] void fail(const std::string& problem) const { config_error(path_, problem); }

 private:
  YAML::Node yaml_;
  std::string path_;
};

/// `N` or `[W, H]` pixels.
Size size_of(const Node& node);
/// `{spacing_um, <size_key>}` ("size" in configs, "size_px" in model.yaml); both required.
BranchGeometry branch_of(const Node& node, const std::string& size_key = "size");
/// The `geometry:` section: `branches` (list of branches), `output` (a branch) and `check`
/// (`hooknet`: also enforce HookNet's sizes; `none`).
void read_geometry(const Node& section, ModelGeometry& geometry);
/// A list of `{name, value, colour}` (`colour` or `color`, optional [r, g, b]); a value outside
/// lowest..highest is an error that says `rule` (e.g. "must be 1..255 (0 is background)").
std::vector<LabelClass> label_classes(const Node& list, int lowest, int highest,
                                      const std::string& rule);

/// A YAML file (or, without one, an empty mapping) with `--set key.path=value` overrides applied
/// in order, and the origin of every key for messages.
class Document {
 public:
  /// Throws kNotFound for a missing file; kInvalidConfig for bad YAML, a file that is not a
  /// mapping, or a bad assignment (the message shows `example`, e.g. "tissue.spacing_um=4").
  Document(const std::optional<std::filesystem::path>& path,
           const std::vector<std::string>& overrides, const std::string& example);

  Node root() const { return Node(root_, ""); }
  /// The file and its overrides as one YAML mapping.
  const YAML::Node& yaml() const { return root_; }

  /// `read(root())`, with every kInvalidConfig it throws naming where the key came from (the
  /// --set assignment that set it, else the file).
  template <typename Read>
  auto read(Read&& read) const -> decltype(read(std::declval<Node>())) {
    try {
      return read(root());
    } catch (const KeyError& error) {
      throw Error(ErrorCode::kInvalidConfig, origin_of(error.key()) + error.what());
    } catch (const Error& error) {
      if (error.code() != ErrorCode::kInvalidConfig) {
        throw;
      }
      throw Error(ErrorCode::kInvalidConfig, origin_of("") + error.what());
    } catch (const YAML::Exception& error) {
      throw Error(ErrorCode::kInvalidConfig, origin_of("") + "cannot read: " + error.msg);
    }
  }

 private:
  /// "--set 'k=v': " for a key an override set (or set inside), else "'<file>': " (with
  /// " and --set" when some override might have set it); "" for the defaults alone.
  std::string origin_of(const std::string& key) const;

  std::optional<std::filesystem::path> path_;
  std::vector<std::pair<std::string, std::string>> overrides_;  ///< key path, assignment
  YAML::Node root_;
};

}  // namespace slidestream::config
