#include "slidestream/model_geometry.hpp"

#include <sstream>
#include <string>

#include "slidestream/core.hpp"
#include "slidestream/enum_names.hpp"

namespace slidestream {

constexpr EnumNames<Padding, 2> kPaddingNames{
    {{Padding::kValid, "valid"}, {Padding::kSame, "same"}}};

std::string padding_name(Padding padding) {
  return std::string(enum_name(kPaddingNames, padding));
}

Padding parse_padding(const std::string& name) {
  return parse_enum(kPaddingNames, name, "padding", ErrorCode::kInvalidConfig);
}

void ModelGeometry::validate() const {
  if (branches.empty()) {
    throw Error(ErrorCode::kInvalidConfig,
                "geometry.branches is empty; give at least the target branch {spacing_um, size}");
  }
  auto check = [](const BranchGeometry& branch, const std::string& name) {
    if (!is_within(branch.spacing_um, 1e-4, 1e5) || branch.size_px.width <= 0 ||
        branch.size_px.height <= 0 || branch.size_px.width > 65536 ||
        branch.size_px.height > 65536) {
      std::ostringstream text;
      text << name << " needs a spacing_um in (0, 1e5] um/px and a size of 1..65536 px (got "
           << branch.spacing_um << " um/px, " << branch.size_px.width << "x"
           << branch.size_px.height << " px)";
      throw Error(ErrorCode::kInvalidConfig, text.str());
    }
  };
  for (size_t b = 0; b < branches.size(); ++b) {
    check(branches[b], "geometry.branches[" + std::to_string(b) + "]");
  }
  check(output, "geometry.output");
  const BranchGeometry& target = branches.front();
  if (output.fov_um_x() > target.fov_um_x() + 1e-9 ||
      output.fov_um_y() > target.fov_um_y() + 1e-9) {
    std::ostringstream text;
    text << "geometry.output covers " << output.fov_um_x() << " um but the target branch only "
         << target.fov_um_x() << " um; the output must lie inside the target's field of view";
    throw Error(ErrorCode::kInvalidConfig, text.str());
  }
}

void ModelGeometry::validate_hooknet_sizes() const {
  for (size_t b = 0; b < branches.size(); ++b) {
    const Size size = branches[b].size_px;
    // 220 = 32 * 3 + 124 is the smallest input whose output (input - 214) is not empty.
    constexpr std::int64_t kSmallest = 220;
    const std::int64_t below =
        size.width < kSmallest ? kSmallest : (size.width - 124) / 32 * 32 + 124;
    if (size.width != size.height || size.width < kSmallest || (size.width - 124) % 32 != 0) {
      std::ostringstream text;
      text << "geometry.branches[" << b << "].size " << size.width << "x" << size.height
           << " is not a legal HookNet input (square, 32k + 124 px); the nearest legal sizes are "
           << below << " and " << below + 32;
      throw Error(ErrorCode::kInvalidConfig, text.str());
    }
    if (size != branches.front().size_px) {
      throw Error(ErrorCode::kInvalidConfig,
                  "HookNet branches share one input size; geometry.branches[" + std::to_string(b) +
                      "] differs from the target's");
    }
  }
  const std::int64_t expected = branches.front().size_px.width - 214;
  if (output.size_px != Size{expected, expected}) {
    throw Error(ErrorCode::kInvalidConfig,
                "geometry.output.size must be the input size - 214 = " + std::to_string(expected) +
                    " px for HookNet (valid convolutions)");
  }
}

ModelGeometry ModelGeometry::hooknet_breast() {
  ModelGeometry geometry;
  geometry.branches = {{0.5, {284, 284}}, {8.0, {284, 284}}};
  geometry.output = {0.5, {70, 70}};
  return geometry;
}

}  // namespace slidestream
