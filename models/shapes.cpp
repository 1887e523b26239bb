// Shape arithmetic of the native networks and the HookNet hook rule: torch-free, so the tiler,
// the config checks and the tests use the same numbers the networks are built from.
#include "slidestream/models/shapes.hpp"

#include <cmath>
#include <sstream>
#include <string>

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

std::optional<std::int64_t> largest_input_for_output(std::int64_t output_px, int depth,
                                                     bool valid) {
  // The border (input - output) of a valid network is the same for every legal input.
  std::int64_t smallest = 1;
  const std::int64_t limit = (std::int64_t{1} << depth) * 64 + 4096;
  while (smallest < limit && !unet_output_size(smallest, depth, valid)) {
    ++smallest;
  }
  const auto smallest_output = unet_output_size(smallest, depth, valid);
  if (!smallest_output || *smallest_output > output_px) {
    return std::nullopt;
  }
  for (std::int64_t input = output_px + (smallest - *smallest_output); input >= smallest; --input) {
    if (const auto output = unet_output_size(input, depth, valid); output && *output <= output_px) {
      return input;
    }
  }
  return smallest;
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

bool hook_fits(std::int64_t target_px, std::int64_t context_px, int depth, const HookSpec& hook) {
  const auto target = unet_level_size(target_px, depth, true, hook.target_level);
  const auto context = unet_level_size(context_px, depth, true, hook.context_level);
  return target && context && *context >= *target && (*context - *target) % 2 == 0;
}

ModelGeometry inference_geometry(const ModelDescription& description, std::int64_t output_px) {
  const ModelGeometry& training = description.geometry;
  const int depth = description.network.depth;
  const bool valid = description.network.padding == Padding::kValid;
  const std::int64_t training_input = training.branches.front().size_px.width;
  const auto input = largest_input_for_output(output_px, depth, valid);
  if (!input || *input <= training_input) {
    return training;
  }
  ModelGeometry geometry = training;
  geometry.branches.front().size_px = Size{*input, *input};
  const std::int64_t output = *unet_output_size(*input, depth, valid);
  geometry.output.size_px = Size{output, output};
  const double target_um = training.branches.front().spacing_um;
  for (std::size_t b = 1; b < geometry.branches.size(); ++b) {
    BranchGeometry& context = geometry.branches[b];
    const double growth =
        static_cast<double>(*input - training_input) * target_um / context.spacing_um;
    auto size = static_cast<std::int64_t>(
        std::ceil(static_cast<double>(training.branches[b].size_px.width) + growth - 1e-9));
    const HookSpec hook =
        hooknet_hook(geometry.branches[b - 1].spacing_um, context.spacing_um, depth);
    const std::int64_t finer = geometry.branches[b - 1].size_px.width;
    while (!unet_output_size(size, depth, valid) || !hook_fits(finer, size, depth, hook)) {
      ++size;
    }
    context.size_px = Size{size, size};
  }
  return geometry;
}

void validate_inference_geometry(const ModelDescription& description,
                                 const ModelGeometry& geometry) {
  const ModelGeometry& training = description.geometry;
  const int depth = description.network.depth;
  const bool valid = description.network.padding == Padding::kValid;
  auto fail = [](const std::string& problem) {
    throw Error(ErrorCode::kModelError, "inference geometry: " + problem);
  };
  if (geometry.branches.size() != training.branches.size()) {
    fail("needs the model's " + std::to_string(training.branches.size()) + " branches");
  }
  for (std::size_t b = 0; b < geometry.branches.size(); ++b) {
    const BranchGeometry& branch = geometry.branches[b];
    if (std::abs(branch.spacing_um - training.branches[b].spacing_um) >
        1e-9 * training.branches[b].spacing_um) {
      fail("branch " + std::to_string(b) + " must keep the training spacing");
    }
    if (branch.size_px.width != branch.size_px.height ||
        !unet_output_size(branch.size_px.width, depth, valid)) {
      fail("branch " + std::to_string(b) + " size " + std::to_string(branch.size_px.width) +
           " px is not a legal square input of the network");
    }
    if (b > 0 &&
        !hook_fits(geometry.branches[b - 1].size_px.width, branch.size_px.width, depth,
                   hooknet_hook(geometry.branches[b - 1].spacing_um, branch.spacing_um, depth))) {
      fail("the context of branch " + std::to_string(b) + " does not cover its hook");
    }
  }
  const std::int64_t output =
      *unet_output_size(geometry.branches.front().size_px.width, depth, valid);
  if (geometry.output.size_px != Size{output, output} ||
      std::abs(geometry.output.spacing_um - training.output.spacing_um) >
          1e-9 * training.output.spacing_um) {
    fail("the output must be the target branch's (" + std::to_string(output) +
         " px at the training spacing)");
  }
}

}  // namespace slidestream
