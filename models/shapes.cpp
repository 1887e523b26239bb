// Shape arithmetic of the native networks and the HookNet hook rule: torch-free, so the tiler,
// the config checks and the tests use the same numbers the networks are built from.
#include "slidestream/models/shapes.hpp"

#include <cmath>
#include <sstream>

#include "slidestream/core.hpp"

namespace slidestream {

namespace {

constexpr std::int64_t kConvBlockLoss = 4;  // two valid 3x3 convolutions
constexpr std::int64_t kUpConvLoss = 2;     // the 3x3 convolution after each nearest upsampling

// Decoder map sizes per level (index 0 = last decoder block, depth = bottleneck); empty when
// the input is illegal for the network.
std::vector<std::int64_t> level_sizes(std::int64_t input_px, int depth, bool valid) {
  if (depth < 1 || input_px <= 0) {
    return {};
  }
  std::vector<std::int64_t> encoder(static_cast<size_t>(depth));
  std::int64_t size = input_px;
  for (int d = 0; d < depth; ++d) {
    size -= valid ? kConvBlockLoss : 0;
    if (size <= 0 || size % 2 != 0) {
      return {};
    }
    encoder[static_cast<size_t>(d)] = size;
    size /= 2;
  }
  std::vector<std::int64_t> decoder(static_cast<size_t>(depth) + 1);
  size -= valid ? kConvBlockLoss : 0;
  // An even bottleneck keeps every decoder map even, so any hook's centre crop is symmetric
  // (HookNet's 32k + 124 rule for depth 4; 16k + 124 would leave an odd bottleneck).
  if (size <= 0 || size % 2 != 0) {
    return {};
  }
  decoder[static_cast<size_t>(depth)] = size;
  for (int d = depth - 1; d >= 0; --d) {
    size = size * 2 - (valid ? kUpConvLoss : 0);
    const std::int64_t skip = encoder[static_cast<size_t>(d)];
    if (size <= 0 || skip < size || (skip - size) % 2 != 0) {
      return {};
    }
    size -= valid ? kConvBlockLoss : 0;
    if (size <= 0) {
      return {};
    }
    decoder[static_cast<size_t>(d)] = size;
  }
  return decoder;
}

}  // namespace

std::optional<std::int64_t> unet_level_size(std::int64_t input_px, int depth, bool valid,
                                            int level) {
  const auto sizes = level_sizes(input_px, depth, valid);
  if (sizes.empty() || level < 0 || level > depth) {
    return std::nullopt;
  }
  return sizes[static_cast<size_t>(level)];
}

std::optional<std::int64_t> unet_output_size(std::int64_t input_px, int depth, bool valid) {
  return unet_level_size(input_px, depth, valid, 0);
}

std::pair<std::int64_t, std::int64_t> nearest_legal_sizes(std::int64_t input_px, int depth,
                                                          bool valid) {
  // Legal sizes are an arithmetic progression of step 2^depth; scanning a few periods suffices.
  const std::int64_t period = std::int64_t{1} << depth;
  std::int64_t below = 0;
  for (std::int64_t size = input_px - 1; size > 0 && size >= input_px - 2 * period; --size) {
    if (unet_output_size(size, depth, valid)) {
      below = size;
      break;
    }
  }
  std::int64_t above = input_px + 1;
  while (!unet_output_size(above, depth, valid)) {
    ++above;
  }
  return {below, above};
}

HookSpec hooknet_hook(double target_um, double context_um, int depth) {
  if (!(target_um > 0) || !(context_um > 0)) {
    throw Error(ErrorCode::kInvalidConfig, "HookNet branch spacings must be positive (um/px)");
  }
  const double levels = std::log2(context_um / target_um);
  // A ratio beyond any depth (or infinite: 1e300 / 1e-300) has no hook; the cast to int below
  // would be undefined for it.
  const bool reachable = std::isfinite(levels) && std::abs(levels) <= 64;
  const double rounded = reachable ? std::round(levels) : 0.0;
  const int shift = static_cast<int>(rounded);
  const bool power_of_two =
      std::abs(std::exp2(rounded) * target_um - context_um) <= 1e-6 * context_um;
  if (reachable && power_of_two && shift >= 0) {
    // The smallest context level is the most decoded one: it carries the most context.
    for (int context_level = 0; context_level <= depth; ++context_level) {
      const int target_level = context_level + shift;
      if (target_level >= 1 && target_level <= depth) {
        return {context_level, target_level, context_um * std::exp2(context_level)};
      }
    }
  }
  std::ostringstream text;
  text << "no HookNet hook depth for a target at " << target_um << " um/px and a context at "
       << context_um << " um/px: r_ctx * 2^d_ctx must equal r_tgt * 2^d_tgt with d <= depth "
       << depth << ", so the context spacing must be the target's times 1, 2, 4, ... "
       << (1 << depth) << " (change geometry.branches[].spacing_um or the depth)";
  throw Error(ErrorCode::kInvalidConfig, text.str());
}

}  // namespace slidestream
