// slidestream model geometry: the concentric inputs (branches) of a multi-resolution model and
// its output, each a spacing (um/px) and a size (px). Tiling plans from it, models report it,
// datasets record it; it lives low so that none of them depends on another for it.
#pragma once

#include <string>
#include <vector>

#include "slidestream/geometry.hpp"

namespace slidestream {

/// How a native network's 3x3 convolutions pad: valid (none; HookNet, U-Net), each convolution
/// shrinking the map, or same (U-Net only).
enum class Padding { kValid, kSame };

/// "valid" or "same"; parse throws kInvalidConfig for anything else.
std::string padding_name(Padding padding);
Padding parse_padding(const std::string& name);

/// One input (or the output) of a model: its spacing (um/px) and size (px).
struct BranchGeometry {
  double spacing_um = 0;
  Size size_px;
  /// Field of view in microns.
  double fov_um_x() const { return static_cast<double>(size_px.width) * spacing_um; }
  double fov_um_y() const { return static_cast<double>(size_px.height) * spacing_um; }
};

/// The concentric inputs of a model and its output. Branch 0 is the target.
struct ModelGeometry {
  std::vector<BranchGeometry> branches;
  BranchGeometry output;

  /// Throws kInvalidConfig for no branches, non-positive sizes or spacings, or an output whose
  /// FoV exceeds the target's.
  void validate() const;

  /// HookNet's size rule (valid 3x3 convolutions, depth 4): every input is 32k + 124 px square
  /// and the output is input - 214 px. Throws kInvalidConfig suggesting the nearest legal sizes.
  void validate_hooknet_sizes() const;

  /// HookNet's breast geometry (van Rijthoven et al. 2021): 284 px at 0.5 and 8.0 um/px,
  /// output 70 px at 0.5 um/px.
  static ModelGeometry hooknet_breast();
};

}  // namespace slidestream
