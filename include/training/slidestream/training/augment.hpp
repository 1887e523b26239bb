// Augmentation of patch sets: one random draw for every branch and its labels.
#pragma once

#include <cstdint>

#include "slidestream/patch_set.hpp"
#include "slidestream/stain.hpp"
#include "slidestream/training/config.hpp"

namespace slidestream {

/// Applies one random draw of AugmentConfig to a patch set in place: every branch, valid mask and
/// label raster gets the same flips / rotation / affine (labels and masks nearest, pixels linear;
/// pixels moved in from outside become invalid and their labels `ignore_label`), and every
/// branch the same brightness / contrast / HED jitter. Deterministic for a seed.
class Augmenter {
 public:
  Augmenter(AugmentConfig config, int ignore_label, StainParams stain = macenko_reference());
  void apply(PatchSet& patches, std::uint64_t seed) const;

 private:
  AugmentConfig config_;
  int ignore_label_;
  StainParams stain_;
};

}  // namespace slidestream
