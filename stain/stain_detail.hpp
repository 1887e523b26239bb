// Internals shared by the stain translation units: optical density, stain vector fits.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <opencv2/core.hpp>
#include <optional>
#include <vector>

namespace slidestream::stain_detail {

/// OD of each 8-bit value for one Io, negative OD clamped to 0.
using OdTable = std::array<double, 256>;
OdTable od_table(double io);

/// CV_8UC3 RGB from CV_8UC3 / CV_8UC4 (alpha dropped); throws kInvalidArgument otherwise.
cv::Mat as_rgb8(const cv::Mat& image);

/// OD vectors of the pixels whose three channel ODs all exceed beta.
std::vector<cv::Vec3d> stain_pixels(const cv::Mat& rgb, const OdTable& table, double beta);

/// OD vectors of the tissue pixels: OD summed over the channels > beta.
std::vector<cv::Vec3d> tissue_pixels(const cv::Mat& rgb, const OdTable& table, double beta);

/// Fewer stain pixels than this and a tile is not fitted (returned unchanged).
constexpr std::size_t kMinStainPixels = 50;

/// Macenko stain matrix (unit columns, H first) or nullopt when the pixels span no plane.
std::optional<cv::Matx32d> fit_macenko(const std::vector<cv::Vec3d>& od, double alpha);

/// Vahadane: sparse non-negative dictionary learning started from `initial` (Macenko's fit).
cv::Matx32d fit_vahadane(const std::vector<cv::Vec3d>& od, const cv::Matx32d& initial,
                         double lambda, int max_pixels, int iterations, std::uint64_t seed);

/// Least-squares concentrations (pseudo-inverse of the stain matrix) ...
class LeastSquares {
 public:
  explicit LeastSquares(const cv::Matx32d& stains);
  cv::Vec2d operator()(const cv::Vec3d& od) const { return pinv_ * od; }
  const cv::Matx23d& pseudo_inverse() const { return pinv_; }

 private:
  cv::Matx23d pinv_;
};

/// ... and non-negative lasso ones: argmin 0.5 |od - S c|^2 + lambda (c1 + c2), c >= 0, solved
/// exactly by its four active sets (two stains), i.e. what ISTA converges to.
class NonNegativeLasso {
 public:
  NonNegativeLasso(const cv::Matx32d& stains, double lambda);
  cv::Vec2d operator()(const cv::Vec3d& od) const;

 private:
  cv::Matx32d stains_;
  cv::Matx22d gram_;
  double lambda_;
};

/// Unit normal of the stain plane, H x E (the direction two stains cannot explain).
cv::Vec3d plane_normal(const cv::Matx32d& stains);

/// 8-bit output intensity of an OD, Io exp(-od) - 1, tabulated with an OD step of 1/2048 (at
/// most ~0.06 grey levels from the exact value), plus the excess of the original pixel over
/// Io - 1 (so background brighter than Io is kept).
class IntensityTable {
 public:
  explicit IntensityTable(double io);
  float intensity(float od) const {
    const float position = std::min(std::max((od - kMinOd) * kStepsPerOd, 0.0F), last_);
    // position >= 0, so adding 0.5 rounds correctly (and is cheaper than lround).
    // NOLINTBEGIN(bugprone-incorrect-roundings)
    return values_[static_cast<std::size_t>(position + 0.5F)];
    // NOLINTEND(bugprone-incorrect-roundings)
  }
  float excess(std::uint8_t original) const { return excess_[original]; }
  /// The OD of each 8-bit input value (as OdTable, in float).
  const std::array<float, 256>& od() const { return od_; }

 private:
  static constexpr float kMinOd = -0.0700F;  // brighter than 255 below -ln(256 / 240)
  static constexpr float kMaxOd = 8.0F;      // darker than 0.1 grey levels above
  static constexpr float kStepsPerOd = 2048.0F;
  std::vector<float> values_;
  std::array<float, 256> excess_{};
  std::array<float, 256> od_{};
  float last_ = 0;
};

/// OD_out = map * OD for every pixel (Macenko with least squares: linear in OD), in fixed
/// point: per input channel and 8-bit value one table row holds the value's OD times each
/// output row of `map` (and the OD itself, for the tissue count), so a pixel costs three row
/// loads, integer adds and three lookups of the output intensity. At most ~0.1 grey levels from
/// the float mapping.
class LinearOdMap {
 public:
  LinearOdMap(double io, double beta);
  /// Maps `rgb` (CV_8UC3) by `map` into `output` (allocated here); returns the number of tissue
  /// pixels (OD summed over the channels > beta), counted in the same pass.
  std::int64_t apply(const cv::Mat& rgb, const cv::Matx33d& map, cv::Mat& output) const;

 private:
  OdTable od_{};
  std::vector<std::int32_t> intensity_;     // 256ths of a grey level, by OD step
  std::array<std::int32_t, 256> excess_{};  // 256ths of a grey level above Io - 1
  std::int32_t tissue_threshold_ = 0;
  std::int32_t last_ = 0;
};

/// Reinhard's mapping in CIELAB (D65, sRGB, as OpenCV's float conversion) for fixed LAB
/// statistics: tissue pixels (OD sum > beta, as tissue_mask) move from the source's LAB mean and
/// std to the target's, the other pixels are copied. The same pass gives a tile's masked LAB
/// moments. Pixels go through in chunks, each stage one branchless loop over the chunk's
/// channel arrays (so the compiler vectorizes the arithmetic): tabulated sRGB decoding, CIE
/// f(t) with a bit-level cube root and one Halley step, the mapping as one affine map of
/// (fx, fy, fz), and a tabulated sRGB encoding.
class ReinhardMap {
 public:
  ReinhardMap(double io, double beta);

  struct Moments {
    std::int64_t count = 0;
    cv::Vec3d sum;
    cv::Vec3d sum_of_squares;
  };
  /// Sums of L*, a*, b* and of their squares over the tissue pixels.
  Moments moments(const cv::Mat& rgb) const;

  /// lab_out = (lab - mean) * scale + target on tissue pixels; returns their count.
  std::int64_t apply(const cv::Mat& rgb, const cv::Vec3d& mean, const cv::Vec3d& scale,
                     const cv::Vec3d& target, cv::Mat& output) const;

  /// Pixels per chunk (a multiple of any SIMD width).
  static constexpr int kChunk = 256;
  /// CIE f(X / Xn), f(Y), f(Z / Zn) of one chunk's pixels, and whether each is tissue (0 or 1).
  struct Chunk {
    std::array<float, kChunk> fx;
    std::array<float, kChunk> fy;
    std::array<float, kChunk> fz;
    std::array<std::uint8_t, kChunk> tissue;
  };

 private:
  /// Fills `chunk` from `count` (<= kChunk) RGB pixels; the tail past `count` is zero.
  void convert(const std::uint8_t* pixels, int count, Chunk& chunk) const;

  OdTable od_{};
  double beta_;
  std::array<float, 256> linear_{};
  std::vector<std::uint8_t> encode_;
};

/// OD_out = map_od(solve(OD)) + normal_out * (OD . normal_in + shift) for every pixel (any
/// concentration solver, e.g. the non-negative lasso).
template <typename Solve, typename Map>
cv::Mat remap_pixels(const cv::Mat& rgb, const IntensityTable& table, const Solve& solve,
                     const Map& map_od, const cv::Vec3d& normal_in, const cv::Vec3d& normal_out,
                     double shift) {
  cv::Mat output(rgb.size(), CV_8UC3);
  const auto& od_of = table.od();
  for (int row = 0; row < rgb.rows; ++row) {
    const auto* in = rgb.ptr<cv::Vec3b>(row);
    auto* out = output.ptr<cv::Vec3b>(row);
    for (int col = 0; col < rgb.cols; ++col) {
      const cv::Vec3d od(od_of[in[col][0]], od_of[in[col][1]], od_of[in[col][2]]);
      const cv::Vec3d mapped = map_od(solve(od)) + normal_out * (od.dot(normal_in) + shift);
      for (int channel = 0; channel < 3; ++channel) {
        out[col][channel] = cv::saturate_cast<std::uint8_t>(
            table.intensity(static_cast<float>(mapped[channel])) + table.excess(in[col][channel]));
      }
    }
  }
  return output;
}

/// The given percentile (0..100) of `values` (reordered), 0 when empty.
double percentile(std::vector<double>& values, double percent);

/// Angle between two vectors in degrees.
double angle_deg(const cv::Vec3d& a, const cv::Vec3d& b);

/// H first: the column with the larger red OD is haematoxylin; columns normalized to unit length.
cv::Matx32d order_and_normalize(const cv::Vec3d& first, const cv::Vec3d& second);

}  // namespace slidestream::stain_detail
