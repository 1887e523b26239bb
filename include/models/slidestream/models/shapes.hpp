// Shape arithmetic of the native networks: legal input sizes, output sizes, HookNet's hook.
#pragma once

#include <cstdint>
#include <optional>
#include <utility>

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

}  // namespace slidestream
