// Shape arithmetic of the native networks: legal input sizes, output sizes, HookNet's hook.
#pragma once

#include <cstdint>
#include <optional>
#include <utility>

#include "slidestream/model_geometry.hpp"
#include "slidestream/models/description.hpp"

namespace slidestream {

/// Output size (px, one axis) of a native branch for `input_px` input pixels: valid padding
/// loses 4 px per conv block and 2 px per upsampling conv; nullopt when the input is illegal
/// (odd size before a pooling, or a feature map that shrinks to nothing). For depth 4, valid:
/// legal inputs are 32k + 124 (k >= 3) and output = input - 214.
std::optional<std::int64_t> unet_output_size(std::int64_t input_px, int depth, bool valid);
/// Size (px) of the decoder map at `level` (0 = last decoder block, `depth` = bottleneck) for
/// `input_px` input pixels; nullopt when illegal.
std::optional<std::int64_t> unet_level_size(std::int64_t input_px, int depth, bool valid,
                                            int level);
/// The legal input sizes nearest to `input_px` (the largest below and the smallest above).
std::pair<std::int64_t, std::int64_t> nearest_legal_sizes(std::int64_t input_px, int depth,
                                                          bool valid);

/// The largest legal input whose output is at most `output_px` (one axis); nullopt when even
/// the smallest legal input gives more.
std::optional<std::int64_t> largest_input_for_output(std::int64_t output_px, int depth, bool valid);

/// Where a context branch hooks into a finer one: the context decoder map at level
/// `context_level` (spacing r_ctx * 2^context_level) is centre-cropped and concatenated to the
/// target decoder map at `target_level` (r_tgt * 2^target_level, the same spacing) before that
/// level's upsampling. target_level == depth is the bottleneck.
struct HookSpec {
  int context_level = 0;
  int target_level = 0;
  double spacing_um = 0;  ///< of both hooked maps
};

/// The hook for branch spacings `target_um` < `context_um` (um/px): the smallest context level
/// (the most decoded context) with r_ctx * 2^d_ctx == r_tgt * 2^d_tgt for some
/// 1 <= d_tgt <= depth (1e-6 relative tolerance). kInvalidConfig when the ratio is not a power
/// of two reachable within the depth, naming the spacings and the legal ratios.
HookSpec hooknet_hook(double target_um, double context_um, int depth);

/// Whether the context map of `hook` (context input `context_px`) covers the target map it is
/// concatenated to (target input `target_px`) with an even difference, so the crop is centred.
bool hook_fits(std::int64_t target_px, std::int64_t context_px, int depth, const HookSpec& hook);

/// The geometry a native network runs at for an output tile of about `output_px`: the largest
/// legal output <= output_px (never below the training output). The target branch is that
/// output plus the network's border; each context branch grows by the target's growth x target
/// spacing / its spacing (the same physical margin around the target as in training), rounded
/// up to the smallest legal size whose hook still fits. Valid convolutions compute every output
/// pixel from its whole receptive field, so a larger tile changes only where the pooling grid
/// falls (docs/ARCHITECTURE.md, "Inference tiles"). Spacings are the training ones.
ModelGeometry inference_geometry(const ModelDescription& description, std::int64_t output_px);

/// Throws kModelError unless `geometry` is one a native network of `description` can run:
/// the training spacings, legal square sizes, the output of the target branch, fitting hooks.
void validate_inference_geometry(const ModelDescription& description,
                                 const ModelGeometry& geometry);

}  // namespace slidestream
