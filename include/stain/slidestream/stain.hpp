// slidestream stain: stain normalization (Macenko, Reinhard, Vahadane) and HED jitter.
//
// Fit parameters once on a reference image, save them as JSON, and apply them tile by tile:
// every tile's own stains (or LAB statistics) are fitted and mapped onto the reference's.
//
// Conventions: images are 8-bit RGB (CV_8UC3, R first; CV_8UC4 has its alpha dropped).
// Optical density per channel is OD = -ln((I + 1) / Io), negative OD clamped to 0: natural log,
// as in Macenko's reference code and torchstain, so beta = 0.15 and the reference maxima
// (1.9705, 1.0308) mean what they mean there.
// Pixels brighter than Io - 1 keep their excess brightness, so white background is unchanged.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <opencv2/core.hpp>
#include <optional>
#include <string>

namespace slidestream {

enum class StainMethod { kMacenko, kReinhard, kVahadane };

/// "macenko", "reinhard" or "vahadane"; parse throws kInvalidConfig for anything else.
std::string stain_method_name(StainMethod method);
StainMethod parse_stain_method(const std::string& name);

/// Everything needed to normalize onto a reference, as fitted (or a preset). Plain values: the
/// JSON round trip (to_json/from_json) is bit-exact.
struct StainParams {
  static constexpr int kVersion = 2;  ///< 2: natural-log OD (1: log10, converted on load)

  StainMethod method = StainMethod::kMacenko;
  double io = 240.0;    ///< background (white) intensity, 0..255
  double beta = 0.15;   ///< OD threshold of tissue pixels (see tissue_mask, stain_pixel_mask)
  double alpha = 1.0;   ///< Macenko angle percentile (percent)
  double lambda = 0.1;  ///< Vahadane L1 penalty (OD units)
  /// Unit stain vectors in OD space: rows R, G, B; column 0 haematoxylin, column 1 eosin.
  cv::Matx32d stain_matrix{0.5626, 0.2159, 0.7201, 0.8012, 0.4062, 0.5581};
  /// 99th percentile of the H and E concentrations over stain pixels (OD units).
  std::array<double, 2> max_concentrations{1.9705, 1.0308};
  /// The tint two stains cannot explain: tissue OD along the stain plane's normal (unit
  /// H x E) over the tissue's OD summed over channels. Normalization moves each tile's
  /// off-plane OD from its own ratio to this one (in proportion to each pixel's OD), so an
  /// image normalized to its own parameters is unchanged and white background stays white.
  double offplane_ratio = 0.0;
  /// Reinhard: mean and standard deviation of L*, a*, b* (CIELAB, L in 0..100) over tissue.
  std::array<double, 3> lab_mean{0.0, 0.0, 0.0};
  std::array<double, 3> lab_std{1.0, 1.0, 1.0};
  /// Largest angle (degrees) between the fitted H / E vectors and the reference preset's. A fit
  /// warns when it exceeds StainFitOptions::warn_quality_deg or when the E vector absorbs blue
  /// more than green (DAB, pen): H&E scans vary by up to ~30 degrees, so the angle alone cannot
  /// tell an IHC image (~24 degrees) from a strongly purple H&E one.
  double quality_deg = 0.0;
  std::string fitted_on;  ///< what the parameters were fitted on (a file name), informative
  int version = kVersion;

  /// JSON text (docs/FORMATS.md, "stain parameters").
  std::string to_json() const;
  /// Throws kInvalidConfig naming `source` and the bad field.
  static StainParams from_json(const std::string& text, const std::string& source = "<json>");
  /// Written atomically; throws kOutputError.
  void save(const std::filesystem::path& path) const;
  /// Throws kNotFound for a missing file, kInvalidConfig naming the file and the bad field.
  static StainParams load(const std::filesystem::path& path);
};

/// The Macenko reference preset ("macenko-reference"): the usual H&E stain matrix and maxima.
StainParams macenko_reference();

struct StainFitOptions {
  double io = 240.0;
  double beta = 0.15;
  double alpha = 1.0;
  double lambda = 0.1;
  int vahadane_pixels = 20000;     ///< random subsample of stain pixels for dictionary learning
  int vahadane_iterations = 40;    ///< alternating (dictionary, sparse code) rounds
  std::uint64_t seed = 20240611;   ///< subsample seed: fits are deterministic
  double warn_quality_deg = 40.0;  ///< quality_deg above this logs a warning
  std::string fitted_on;

  /// Throws kInvalidConfig naming the bad field.
  void validate() const;
};

/// Fits the parameters of `method` on an RGB image. Throws kInvalidArgument when the image has
/// too few stain pixels or a single colour (nothing to fit).
StainParams fit_stain(const cv::Mat& rgb, StainMethod method, const StainFitOptions& options = {});

/// Per-caller tile counters of StainNormalizer::apply (added to, never reset).
struct ApplyStats {
  std::int64_t tiles = 0;
  std::int64_t tiles_without_tissue = 0;  ///< returned unchanged: no tissue pixel at all
  std::int64_t tiles_degenerate = 0;      ///< returned unchanged: too few stain pixels / one colour
  std::int64_t tissue_pixels = 0;         ///< tissue pixels (tissue_mask) of normalized tiles
};

class StainNormalizer {
 public:
  /// Throws kInvalidConfig for parameters that cannot be applied (non-finite, zero maxima).
  explicit StainNormalizer(StainParams target);
  /// Maps fixed `source` parameters (e.g. fitted once on a whole slide, fit_stain on sampled
  /// tissue) onto the target instead of fitting every tile: tiles of one slide then share one
  /// mapping. Throws kInvalidConfig when the methods differ.
  StainNormalizer(StainParams target, StainParams source);

  /// The normalized tile (CV_8UC3 RGB, same size). Const and thread-safe; `stats`, when given,
  /// belongs to the caller (one per thread).
  cv::Mat apply(const cv::Mat& rgb, ApplyStats* stats = nullptr) const;

  const StainParams& target() const { return target_; }
  const std::optional<StainParams>& source() const { return source_; }

 private:
  struct Kernels;  // tabulated per-pixel mappings, built once per normalizer
  StainParams target_;
  std::optional<StainParams> source_;
  std::shared_ptr<const Kernels> kernels_;
};

/// Tissue pixels for Reinhard and for "does this tile have tissue": OD summed over the three
/// channels > beta (CV_8UC1, 255 = tissue). Pale eosin has a low blue OD, hence the sum.
cv::Mat tissue_mask(const cv::Mat& rgb, double io = 240.0, double beta = 0.15);

/// Stain pixels used to fit stain vectors (Macenko's rule): all three channel ODs > beta.
cv::Mat stain_pixel_mask(const cv::Mat& rgb, double io = 240.0, double beta = 0.15);

/// HED jitter augmentation: decomposes with `params.stain_matrix` (least squares), then per
/// stain k draws a ~ U(1 - sigma_factor, 1 + sigma_factor), b ~ U(-sigma_bias, sigma_bias) (OD
/// units) and uses a * C_k + b; the OD off the stain plane is kept, so sigmas of 0 return the
/// image. Deterministic for a seed. Background brighter than Io keeps its excess, so white stays
/// white when b = 0.
cv::Mat hed_jitter(const cv::Mat& rgb, const StainParams& params, double sigma_factor,
                   double sigma_bias, std::uint64_t seed);

}  // namespace slidestream
