// Internals shared by the stain translation units: optical density, stain vector fits.
#pragma once

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

/// The given percentile (0..100) of `values` (reordered), 0 when empty.
double percentile(std::vector<double>& values, double percent);

/// Angle between two vectors in degrees.
double angle_deg(const cv::Vec3d& a, const cv::Vec3d& b);

/// H first: the column with the larger red OD is haematoxylin; columns normalized to unit length.
cv::Matx32d order_and_normalize(const cv::Vec3d& first, const cv::Vec3d& second);

}  // namespace slidestream::stain_detail
