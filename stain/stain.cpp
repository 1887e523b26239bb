// Stain normalization: fitting a reference and mapping each tile's stains onto it.
#include "slidestream/stain.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>
#include <random>
#include <utility>

#include "slidestream/core.hpp"
#include "slidestream/enum_names.hpp"
#include "stain_detail.hpp"

namespace slidestream {

using stain_detail::OdTable;

namespace {

/// Concentrations of a tile (Vahadane) use a small L1 penalty, as StainTools does: the
/// dictionary's lambda would zero every pale pixel.
constexpr double kConcentrationLambda = 0.01;

/// Flat LAB statistics (every std below this) mean a single-colour tile: nothing to match.
constexpr double kMinLabStd = 1e-3;

cv::Vec3d column(const cv::Matx32d& matrix, int index) {
  return {matrix(0, index), matrix(1, index), matrix(2, index)};
}

/// Largest angle between the fitted H / E vectors and the reference preset's, in degrees.
double stain_quality_deg(const cv::Matx32d& stains) {
  const cv::Matx32d reference = macenko_reference().stain_matrix;
  return std::max(stain_detail::angle_deg(column(stains, 0), column(reference, 0)),
                  stain_detail::angle_deg(column(stains, 1), column(reference, 1)));
}

/// A stain fit of one image: its matrix and 99th-percentile concentrations.
struct StainFit {
  cv::Matx32d stains;
  std::array<double, 2> max_concentrations{};
  double offplane_ratio = 0;  // tissue OD along the plane normal / OD summed over channels
};

std::optional<StainFit> fit_stains(const cv::Mat& rgb, const StainParams& settings,
                                   const StainFitOptions& options) {
  const OdTable table = stain_detail::od_table(settings.io);
  const std::vector<cv::Vec3d> od = stain_detail::stain_pixels(rgb, table, settings.beta);
  const auto macenko = stain_detail::fit_macenko(od, settings.alpha);
  if (!macenko) {
    return std::nullopt;
  }
  StainFit fit{*macenko, {}};
  // Maxima over all tissue (OD sum > beta), not only the stain pixels fitted above: a pale
  // image has few pixels dark in all three channels.
  const std::vector<cv::Vec3d> tissue = stain_detail::tissue_pixels(rgb, table, settings.beta);
  std::array<std::vector<double>, 2> concentrations;
  concentrations[0].reserve(tissue.size());
  concentrations[1].reserve(tissue.size());
  if (settings.method == StainMethod::kVahadane) {
    fit.stains = stain_detail::fit_vahadane(od, *macenko, settings.lambda, options.vahadane_pixels,
                                            options.vahadane_iterations, options.seed);
    const stain_detail::NonNegativeLasso lasso(fit.stains, kConcentrationLambda);
    for (const auto& value : tissue) {
      const cv::Vec2d c = lasso(value);
      concentrations[0].push_back(c[0]);
      concentrations[1].push_back(c[1]);
    }
  } else {
    const stain_detail::LeastSquares solve(fit.stains);
    for (const auto& value : tissue) {
      const cv::Vec2d c = solve(value);
      concentrations[0].push_back(c[0]);
      concentrations[1].push_back(c[1]);
    }
  }
  const cv::Vec3d normal = stain_detail::plane_normal(fit.stains);
  double offplane_sum = 0;
  double od_sum = 0;
  for (const auto& value : tissue) {
    offplane_sum += value.dot(normal);
    od_sum += value[0] + value[1] + value[2];
  }
  fit.offplane_ratio = od_sum > 0 ? offplane_sum / od_sum : 0.0;
  constexpr double kMaxPercentile = 99.0;
  constexpr double kMinConcentration = 1e-6;
  for (std::size_t stain = 0; stain < 2; ++stain) {
    fit.max_concentrations[stain] = stain_detail::percentile(concentrations[stain], kMaxPercentile);
    if (!(fit.max_concentrations[stain] > kMinConcentration)) {
      return std::nullopt;
    }
  }
  return fit;
}

/// Pixels whose OD summed over the channels exceeds beta (as tissue_mask, without the mask).
std::int64_t count_tissue(const cv::Mat& rgb, double io, double beta) {
  const stain_detail::OdTable table = stain_detail::od_table(io);
  std::array<float, 256> od{};
  for (std::size_t i = 0; i < 256; ++i) {
    od[i] = static_cast<float>(table[i]);
  }
  const auto threshold = static_cast<float>(beta);
  std::int64_t count = 0;
  for (int row = 0; row < rgb.rows; ++row) {
    const auto* in = rgb.ptr<std::uint8_t>(row);
    for (int col = 0; col < 3 * rgb.cols; col += 3) {
      count += od[in[col]] + od[in[col + 1]] + od[in[col + 2]] > threshold ? 1 : 0;
    }
  }
  return count;
}

/// LAB (L in 0..100) mean and std of the tissue pixels; nullopt when there are none.
std::optional<std::pair<cv::Vec3d, cv::Vec3d>> lab_statistics(const stain_detail::ReinhardMap& lab,
                                                              const cv::Mat& rgb) {
  const stain_detail::ReinhardMap::Moments moments = lab.moments(rgb);
  if (moments.count == 0) {
    return std::nullopt;
  }
  const auto count = static_cast<double>(moments.count);
  const cv::Vec3d mean = moments.sum * (1.0 / count);
  cv::Vec3d deviation;
  for (int channel = 0; channel < 3; ++channel) {
    deviation[channel] = std::sqrt(
        std::max(moments.sum_of_squares[channel] / count - mean[channel] * mean[channel], 0.0));
  }
  return std::make_pair(mean, deviation);
}

bool flat(const cv::Vec3d& deviation) {
  return deviation[0] < kMinLabStd && deviation[1] < kMinLabStd && deviation[2] < kMinLabStd;
}

/// A stored fit (e.g. a slide's) as the per-tile fit it stands for.
StainFit fixed_fit(const StainParams& params) {
  return StainFit{params.stain_matrix, params.max_concentrations, params.offplane_ratio};
}

/// Each pixel's OD in the source's frame (H, E, plane normal) is rebuilt in the target's: the
/// concentrations scaled to the target's maxima, the off-plane part moved from the source's
/// share of the OD to the target's (in proportion to the pixel's OD, so background with no OD
/// stays as it is). Dropping it (as torchstain does) loses the target's own tint, so
/// self-normalization changes pixels; keeping it as it is carries the source's tint over.
struct StainMapping {
  cv::Matx22d scaling;   // of the concentrations
  cv::Vec3d normal_in;   // OD . normal_in is the pixel's off-plane OD, shifted ...
  cv::Vec3d normal_out;  // ... and put back along the target's normal
};

StainMapping stain_mapping(const StainParams& target, const StainFit& source) {
  const double shift = target.offplane_ratio - source.offplane_ratio;
  return {cv::Matx22d(target.max_concentrations[0] / source.max_concentrations[0], 0.0, 0.0,
                      target.max_concentrations[1] / source.max_concentrations[1]),
          stain_detail::plane_normal(source.stains) + cv::Vec3d(shift, shift, shift),
          stain_detail::plane_normal(target.stain_matrix)};
}

/// Least squares make the whole mapping linear in OD: one 3 x 3 matrix.
cv::Matx33d linear_map(const StainParams& target, const StainFit& source) {
  const StainMapping mapping = stain_mapping(target, source);
  const cv::Matx23d pinv = stain_detail::LeastSquares(source.stains).pseudo_inverse();
  return target.stain_matrix * mapping.scaling * pinv +
         cv::Matx31d(mapping.normal_out) * cv::Matx13d(mapping.normal_in.val);
}

/// Reinhard: tissue pixels' LAB mean and std moved to the target's; the source's are the tile's
/// own (masked) unless fixed. A tile without tissue or without spread is returned as it was.
cv::Mat apply_reinhard(const cv::Mat& image, const stain_detail::ReinhardMap& lab,
                       const StainParams& target, const std::optional<StainParams>& source,
                       ApplyStats& counts) {
  const auto statistics =
      source ? std::make_optional(std::make_pair(cv::Vec3d(source->lab_mean.data()),
                                                 cv::Vec3d(source->lab_std.data())))
             : lab_statistics(lab, image);
  if (!statistics) {
    ++counts.tiles_without_tissue;
    return image.clone();
  }
  const auto& [mean, deviation] = *statistics;
  if (flat(deviation)) {
    // Counted as degenerate only when the tile has tissue (checked below for a fixed source).
    if (count_tissue(image, target.io, target.beta) == 0) {
      ++counts.tiles_without_tissue;
    } else {
      ++counts.tiles_degenerate;
    }
    return image.clone();
  }
  cv::Vec3d scale;
  for (int channel = 0; channel < 3; ++channel) {
    // A channel without spread (grey tissue's a*, b*) is only shifted.
    scale[channel] = deviation[channel] < kMinLabStd
                         ? 1.0
                         : target.lab_std[static_cast<std::size_t>(channel)] / deviation[channel];
  }
  cv::Mat output;
  const std::int64_t tissue =
      lab.apply(image, mean, scale, cv::Vec3d(target.lab_mean.data()), output);
  if (tissue == 0) {
    ++counts.tiles_without_tissue;
    return image.clone();
  }
  counts.tissue_pixels += tissue;
  return output;
}

}  // namespace

constexpr EnumNames<StainMethod, 3> kStainMethodNames{{{StainMethod::kMacenko, "macenko"},
                                                       {StainMethod::kReinhard, "reinhard"},
                                                       {StainMethod::kVahadane, "vahadane"}}};

std::string stain_method_name(StainMethod method) {
  return std::string(enum_name(kStainMethodNames, method));
}

StainMethod parse_stain_method(const std::string& name) {
  return parse_enum(kStainMethodNames, name, "stain method", ErrorCode::kInvalidConfig);
}

StainParams macenko_reference() {
  StainParams params;  // the defaults are the preset
  params.fitted_on = "macenko-reference";
  return params;
}

void StainFitOptions::validate() const {
  const auto require = [](bool ok, const std::string& field, const std::string& range) {
    if (!ok) {
      throw Error(ErrorCode::kInvalidConfig,
                  "stain fit option '" + field + "' is out of range: it must be " + range);
    }
  };
  require(io > 1.0 && io <= 255.0, "io", "in (1, 255] (background intensity)");
  require(beta >= 0.0 && beta < 2.0, "beta", "in [0, 2) (natural-log OD)");
  require(alpha >= 0.0 && alpha < 50.0, "alpha", "in [0, 50) (percentile)");
  require(lambda >= 0.0 && lambda < 10.0, "lambda", "in [0, 10)");
  require(vahadane_pixels > 0, "vahadane_pixels", "> 0");
  require(vahadane_iterations > 0, "vahadane_iterations", "> 0");
}

cv::Mat tissue_mask(const cv::Mat& rgb, double io, double beta) {
  const cv::Mat image = stain_detail::as_rgb8(rgb);
  const OdTable table = stain_detail::od_table(io);
  cv::Mat mask(image.size(), CV_8U);
  for (int row = 0; row < image.rows; ++row) {
    const auto* in = image.ptr<cv::Vec3b>(row);
    auto* out = mask.ptr<std::uint8_t>(row);
    for (int col = 0; col < image.cols; ++col) {
      const double sum = table[in[col][0]] + table[in[col][1]] + table[in[col][2]];
      out[col] = sum > beta ? 255 : 0;
    }
  }
  return mask;
}

cv::Mat stain_pixel_mask(const cv::Mat& rgb, double io, double beta) {
  const cv::Mat image = stain_detail::as_rgb8(rgb);
  const OdTable table = stain_detail::od_table(io);
  cv::Mat mask(image.size(), CV_8U);
  for (int row = 0; row < image.rows; ++row) {
    const auto* in = image.ptr<cv::Vec3b>(row);
    auto* out = mask.ptr<std::uint8_t>(row);
    for (int col = 0; col < image.cols; ++col) {
      const bool stained =
          table[in[col][0]] > beta && table[in[col][1]] > beta && table[in[col][2]] > beta;
      out[col] = stained ? 255 : 0;
    }
  }
  return mask;
}

StainParams fit_stain(const cv::Mat& rgb, StainMethod method, const StainFitOptions& options) {
  options.validate();
  const cv::Mat image = stain_detail::as_rgb8(rgb);
  StainParams params;
  params.method = method;
  params.io = options.io;
  params.beta = options.beta;
  params.alpha = options.alpha;
  params.lambda = options.lambda;
  params.fitted_on = options.fitted_on;
  if (method == StainMethod::kReinhard) {
    const auto statistics =
        lab_statistics(stain_detail::ReinhardMap(options.io, options.beta), image);
    if (!statistics || flat(statistics->second)) {
      throw Error(ErrorCode::kInvalidArgument,
                  "cannot fit Reinhard parameters: the image has no tissue or a single colour");
    }
    for (std::size_t channel = 0; channel < 3; ++channel) {
      params.lab_mean[channel] = statistics->first[static_cast<int>(channel)];
      params.lab_std[channel] = statistics->second[static_cast<int>(channel)];
    }
    return params;
  }
  const auto fit = fit_stains(image, params, options);
  if (!fit) {
    throw Error(ErrorCode::kInvalidArgument,
                "cannot fit " + stain_method_name(method) +
                    " stains: the image has too few stained pixels (all channel OD > " +
                    std::to_string(options.beta) + ") or a single colour");
  }
  params.stain_matrix = fit->stains;
  params.max_concentrations = fit->max_concentrations;
  params.offplane_ratio = fit->offplane_ratio;
  params.quality_deg = stain_quality_deg(fit->stains);
  // Eosin absorbs green most; DAB (IHC), pen ink or a second blue dye absorb blue most.
  const cv::Vec3d eosin = column(params.stain_matrix, 1);
  const bool eosin_like = eosin[1] >= eosin[0] && eosin[1] >= eosin[2];
  if (params.quality_deg > options.warn_quality_deg || !eosin_like) {
    spdlog::warn(
        "stain fit{}: implausible H&E stains (vectors up to {:.1f} degrees from the H&E "
        "reference{}); the image is probably not H&E, or has pen or another dye",
        options.fitted_on.empty() ? "" : " of " + options.fitted_on, params.quality_deg,
        eosin_like ? "" : ", the second stain absorbs blue more than green");
  }
  return params;
}

namespace {

/// Throws kInvalidConfig for parameters that cannot be applied.
void require_applicable(const StainParams& params, const char* role) {
  bool finite = std::isfinite(params.io) && std::isfinite(params.beta) &&
                std::isfinite(params.offplane_ratio);
  for (int row = 0; row < 3; ++row) {
    for (int stain = 0; stain < 2; ++stain) {
      finite = finite && std::isfinite(params.stain_matrix(row, stain));
    }
  }
  for (const double value : params.max_concentrations) {
    finite = finite && std::isfinite(value) && value > 0.0;
  }
  for (std::size_t channel = 0; channel < 3; ++channel) {
    finite = finite && std::isfinite(params.lab_mean[channel]) &&
             std::isfinite(params.lab_std[channel]) && params.lab_std[channel] > 0.0;
  }
  if (!finite || params.io <= 1.0 || params.io > 255.0) {
    throw Error(ErrorCode::kInvalidConfig,
                std::string(role) +
                    " stain parameters cannot be applied: io must be in (1, 255], values finite, "
                    "max_concentrations and lab_std positive");
  }
}

}  // namespace

/// The tables of the target's method: Reinhard's LAB tables, Macenko's fixed-point OD map, or
/// Vahadane's output intensities.
struct StainNormalizer::Kernels {
  explicit Kernels(const StainParams& target) {
    switch (target.method) {
      case StainMethod::kReinhard:
        reinhard.emplace(target.io, target.beta);
        break;
      case StainMethod::kMacenko:
        linear.emplace(target.io, target.beta);
        break;
      case StainMethod::kVahadane:
        intensity.emplace(target.io);
        break;
    }
  }
  std::optional<stain_detail::ReinhardMap> reinhard;
  std::optional<stain_detail::LinearOdMap> linear;
  std::optional<stain_detail::IntensityTable> intensity;
};

StainNormalizer::StainNormalizer(StainParams target) : target_(std::move(target)) {
  require_applicable(target_, "target");
  kernels_ = std::make_shared<const Kernels>(target_);
}

StainNormalizer::StainNormalizer(StainParams target, StainParams source)
    : target_(std::move(target)), source_(std::move(source)) {
  require_applicable(target_, "target");
  require_applicable(*source_, "source");
  if (source_->method != target_.method) {
    throw Error(ErrorCode::kInvalidConfig,
                "source stain parameters are " + stain_method_name(source_->method) +
                    ", the target's " + stain_method_name(target_.method) +
                    ": fit both with the same method");
  }
  kernels_ = std::make_shared<const Kernels>(target_);
}

cv::Mat StainNormalizer::apply(const cv::Mat& rgb, ApplyStats* stats) const {
  const cv::Mat image = stain_detail::as_rgb8(rgb);
  ApplyStats local;
  ApplyStats& counts = stats != nullptr ? *stats : local;
  ++counts.tiles;
  if (target_.method == StainMethod::kReinhard) {
    return apply_reinhard(image, *kernels_->reinhard, target_, source_, counts);
  }
  if (source_ && target_.method == StainMethod::kMacenko) {
    // Fixed source: the mapping needs no look at the tile, so it and the tissue count share
    // one pass (a tile without tissue is then returned as it was).
    cv::Mat output;
    const std::int64_t tissue =
        kernels_->linear->apply(image, linear_map(target_, fixed_fit(*source_)), output);
    if (tissue == 0) {
      ++counts.tiles_without_tissue;
      return image.clone();
    }
    counts.tissue_pixels += tissue;
    return output;
  }
  const std::int64_t tissue = count_tissue(image, target_.io, target_.beta);
  if (tissue == 0) {
    ++counts.tiles_without_tissue;
    return image.clone();
  }
  const auto source = source_ ? std::make_optional(fixed_fit(*source_))
                              : fit_stains(image, target_, StainFitOptions{});
  if (!source) {
    ++counts.tiles_degenerate;
    return image.clone();
  }
  counts.tissue_pixels += tissue;
  if (target_.method == StainMethod::kVahadane) {
    const StainMapping mapping = stain_mapping(target_, *source);
    const auto map_od = [&](const cv::Vec2d& c) {
      return cv::Vec3d(target_.stain_matrix * (mapping.scaling * c));
    };
    return stain_detail::remap_pixels(
        image, *kernels_->intensity,
        stain_detail::NonNegativeLasso(source->stains, kConcentrationLambda), map_od,
        mapping.normal_in, mapping.normal_out, 0.0);
  }
  cv::Mat output;
  kernels_->linear->apply(image, linear_map(target_, *source), output);
  return output;
}

cv::Mat hed_jitter(const cv::Mat& rgb, const StainParams& params, double sigma_factor,
                   double sigma_bias, std::uint64_t seed) {
  const cv::Mat image = stain_detail::as_rgb8(rgb);
  if (!(sigma_factor >= 0.0) || !(sigma_bias >= 0.0)) {
    throw Error(ErrorCode::kInvalidArgument, "hed_jitter: sigmas must be >= 0");
  }
  std::mt19937_64 engine(seed);
  // Uniform in [-1, 1) from the raw engine output: the same on every platform.
  const auto uniform = [&engine]() {
    constexpr double kScale = 1.0 / 9007199254740992.0;  // 2^-53
    return static_cast<double>(engine() >> 11U) * kScale * 2.0 - 1.0;
  };
  std::array<double, 2> factor{};
  std::array<double, 2> bias{};
  for (std::size_t stain = 0; stain < 2; ++stain) {
    factor[stain] = 1.0 + sigma_factor * uniform();
    bias[stain] = sigma_bias * uniform();
  }
  const auto map_od = [&](const cv::Vec2d& c) {
    // No clamp at 0: least-squares concentrations of pixels outside the stain cone are
    // negative, and clamping them would recolour those pixels even without jitter.
    return cv::Vec3d(params.stain_matrix *
                     cv::Vec2d(c[0] * factor[0] + bias[0], c[1] * factor[1] + bias[1]));
  };
  // The off-plane OD is kept as it is: with factor 1 and bias 0 the image is unchanged.
  const cv::Vec3d normal = stain_detail::plane_normal(params.stain_matrix);
  return stain_detail::remap_pixels(image, stain_detail::IntensityTable(params.io),
                                    stain_detail::LeastSquares(params.stain_matrix), map_od, normal,
                                    normal, 0.0);
}

}  // namespace slidestream
