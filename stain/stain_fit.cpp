// Stain vector fits: Macenko (eigenvectors + angle percentiles) and Vahadane (sparse NMF).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <opencv2/imgproc.hpp>
#include <random>

#include "slidestream/core.hpp"
#include "stain_detail.hpp"

namespace slidestream::stain_detail {

OdTable od_table(double io) {
  OdTable table{};
  for (int value = 0; value < 256; ++value) {
    table[static_cast<std::size_t>(value)] = std::max(0.0, -std::log((value + 1.0) / io));
  }
  return table;
}

cv::Mat as_rgb8(const cv::Mat& image) {
  if (image.type() == CV_8UC3) {
    return image;
  }
  if (image.type() == CV_8UC4) {
    cv::Mat rgb;
    cv::cvtColor(image, rgb, cv::COLOR_RGBA2RGB);
    return rgb;
  }
  throw Error(ErrorCode::kInvalidArgument,
              "stain normalization needs an 8-bit RGB or RGBA image (got OpenCV type " +
                  std::to_string(image.type()) + ")");
}

std::vector<cv::Vec3d> stain_pixels(const cv::Mat& rgb, const OdTable& table, double beta) {
  std::vector<cv::Vec3d> od;
  for (int row = 0; row < rgb.rows; ++row) {
    const auto* pixel = rgb.ptr<cv::Vec3b>(row);
    for (int col = 0; col < rgb.cols; ++col) {
      const cv::Vec3d value(table[pixel[col][0]], table[pixel[col][1]], table[pixel[col][2]]);
      if (value[0] > beta && value[1] > beta && value[2] > beta) {
        od.push_back(value);
      }
    }
  }
  return od;
}

std::vector<cv::Vec3d> tissue_pixels(const cv::Mat& rgb, const OdTable& table, double beta) {
  std::vector<cv::Vec3d> od;
  for (int row = 0; row < rgb.rows; ++row) {
    const auto* pixel = rgb.ptr<cv::Vec3b>(row);
    for (int col = 0; col < rgb.cols; ++col) {
      const cv::Vec3d value(table[pixel[col][0]], table[pixel[col][1]], table[pixel[col][2]]);
      if (value[0] + value[1] + value[2] > beta) {
        od.push_back(value);
      }
    }
  }
  return od;
}

double percentile(std::vector<double>& values, double percent) {
  if (values.empty()) {
    return 0.0;
  }
  const double position = std::clamp(percent, 0.0, 100.0) / 100.0 * (values.size() - 1.0);
  const auto index = static_cast<std::size_t>(std::lround(position));
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(index),
                   values.end());
  return values[index];
}

double angle_deg(const cv::Vec3d& a, const cv::Vec3d& b) {
  const double norms = cv::norm(a) * cv::norm(b);
  if (norms <= 0.0) {
    return 90.0;
  }
  return std::acos(std::clamp(a.dot(b) / norms, -1.0, 1.0)) * 180.0 / CV_PI;
}

cv::Matx32d order_and_normalize(const cv::Vec3d& first, const cv::Vec3d& second) {
  const cv::Vec3d h = first[0] >= second[0] ? first : second;
  const cv::Vec3d e = first[0] >= second[0] ? second : first;
  const cv::Vec3d hn = h / cv::norm(h);
  const cv::Vec3d en = e / cv::norm(e);
  return {hn[0], en[0], hn[1], en[1], hn[2], en[2]};
}

std::optional<cv::Matx32d> fit_macenko(const std::vector<cv::Vec3d>& od, double alpha) {
  if (od.size() < kMinStainPixels) {
    return std::nullopt;
  }
  // The plane of the two largest singular vectors of the OD data itself (Macenko et al. 2009),
  // i.e. eigenvectors of the uncentred second moments: stains mix linearly, so their plane
  // passes through OD = 0. The centred covariance (torchstain, StainTools) fits a plane through
  // the mean instead, which tilts away from the stains when the data have OD off their plane.
  cv::Matx33d moments = cv::Matx33d::zeros();
  for (const auto& value : od) {
    moments += value * value.t();
  }
  moments *= 1.0 / static_cast<double>(od.size());
  cv::Vec3d eigenvalues;
  cv::Matx33d eigenvectors;  // rows, eigenvalues descending
  cv::eigen(moments, eigenvalues, eigenvectors);
  // A single colour (or a line of colours) spans no plane: nothing to fit.
  constexpr double kMinVariance = 1e-8;
  if (!(eigenvalues[1] > kMinVariance)) {
    return std::nullopt;
  }
  cv::Vec3d first(eigenvectors(0, 0), eigenvectors(0, 1), eigenvectors(0, 2));
  const cv::Vec3d second(eigenvectors(1, 0), eigenvectors(1, 1), eigenvectors(1, 2));
  if (first[0] + first[1] + first[2] < 0) {
    first = -first;  // OD vectors are positive: the main axis points into the positive octant
  }
  std::vector<double> angles;
  angles.reserve(od.size());
  for (const auto& value : od) {
    angles.push_back(std::atan2(value.dot(second), value.dot(first)));
  }
  const double low = percentile(angles, alpha);
  const double high = percentile(angles, 100.0 - alpha);
  auto direction = [&](double angle) {
    cv::Vec3d vector = first * std::cos(angle) + second * std::sin(angle);
    return vector[0] + vector[1] + vector[2] < 0 ? cv::Vec3d(-vector) : vector;
  };
  const cv::Vec3d low_vector = direction(low);
  const cv::Vec3d high_vector = direction(high);
  constexpr double kMinSeparationDeg = 1.0;
  if (angle_deg(low_vector, high_vector) < kMinSeparationDeg) {
    return std::nullopt;
  }
  return order_and_normalize(low_vector, high_vector);
}

LeastSquares::LeastSquares(const cv::Matx32d& stains) {
  const cv::Matx22d gram = stains.t() * stains;
  pinv_ = gram.inv(cv::DECOMP_SVD) * stains.t();
}

NonNegativeLasso::NonNegativeLasso(const cv::Matx32d& stains, double lambda)
    : stains_(stains), gram_(stains.t() * stains), lambda_(lambda) {}

cv::Vec2d NonNegativeLasso::operator()(const cv::Vec3d& od) const {
  const cv::Vec2d correlation = stains_.t() * od;
  const auto objective = [&](const cv::Vec2d& c) {
    return 0.5 * c.dot(gram_ * c) - correlation.dot(c) + lambda_ * (c[0] + c[1]);
  };
  cv::Vec2d best(0, 0);
  double best_value = 0.0;
  const auto consider = [&](const cv::Vec2d& candidate) {
    if (candidate[0] >= 0 && candidate[1] >= 0) {
      const double value = objective(candidate);
      if (value < best_value) {
        best = candidate;
        best_value = value;
      }
    }
  };
  if (gram_(0, 0) > 0) {
    consider({(correlation[0] - lambda_) / gram_(0, 0), 0.0});
  }
  if (gram_(1, 1) > 0) {
    consider({0.0, (correlation[1] - lambda_) / gram_(1, 1)});
  }
  const double determinant = gram_(0, 0) * gram_(1, 1) - gram_(0, 1) * gram_(1, 0);
  if (std::abs(determinant) > 1e-12) {
    const cv::Vec2d shifted(correlation[0] - lambda_, correlation[1] - lambda_);
    consider({(gram_(1, 1) * shifted[0] - gram_(0, 1) * shifted[1]) / determinant,
              (gram_(0, 0) * shifted[1] - gram_(1, 0) * shifted[0]) / determinant});
  }
  return best;
}

namespace {

/// A random subsample of at most `count` pixels (partial Fisher-Yates with a fixed seed).
std::vector<cv::Vec3d> subsample(const std::vector<cv::Vec3d>& od, int count, std::uint64_t seed) {
  if (count <= 0 || od.size() <= static_cast<std::size_t>(count)) {
    return od;
  }
  std::vector<std::size_t> order(od.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::mt19937_64 engine(seed);
  std::vector<cv::Vec3d> sample;
  sample.reserve(static_cast<std::size_t>(count));
  for (std::size_t i = 0; i < static_cast<std::size_t>(count); ++i) {
    // Modulo of the raw engine output: unlike the distributions, the same on every platform.
    const std::size_t pick = i + static_cast<std::size_t>(engine() % (order.size() - i));
    std::swap(order[i], order[pick]);
    sample.push_back(od[order[i]]);
  }
  return sample;
}

}  // namespace

cv::Matx32d fit_vahadane(const std::vector<cv::Vec3d>& od, const cv::Matx32d& initial,
                         double lambda, int max_pixels, int iterations, std::uint64_t seed) {
  const std::vector<cv::Vec3d> sample = subsample(od, max_pixels, seed);
  cv::Matx32d dictionary = initial;
  std::vector<cv::Vec2d> codes(sample.size());
  for (int iteration = 0; iteration < iterations; ++iteration) {
    // Sparse codes for the current dictionary (exact non-negative lasso per pixel).
    const NonNegativeLasso lasso(dictionary, lambda);
    cv::Matx22d code_gram = cv::Matx22d::zeros();
    cv::Matx32d data_codes = cv::Matx32d::zeros();
    for (std::size_t i = 0; i < sample.size(); ++i) {
      codes[i] = lasso(sample[i]);
      code_gram += codes[i] * codes[i].t();
      data_codes += sample[i] * codes[i].t();
    }
    // Dictionary: one projected gradient step on 0.5 |X - D C|^2 (step 1 / Lipschitz constant),
    // then non-negative unit columns. A stain no pixel uses keeps its previous vector.
    const double lipschitz = std::max(code_gram(0, 0) + code_gram(1, 1), 1e-12);
    const cv::Matx32d gradient = dictionary * code_gram - data_codes;
    const cv::Matx32d update = dictionary - gradient * (1.0 / lipschitz);
    cv::Matx32d next = dictionary;
    for (int stain = 0; stain < 2; ++stain) {
      cv::Vec3d column(std::max(0.0, update(0, stain)), std::max(0.0, update(1, stain)),
                       std::max(0.0, update(2, stain)));
      const double length = cv::norm(column);
      if (length > 1e-9) {
        column *= 1.0 / length;
        for (int channel = 0; channel < 3; ++channel) {
          next(channel, stain) = column[channel];
        }
      }
    }
    dictionary = next;
  }
  return order_and_normalize({dictionary(0, 0), dictionary(1, 0), dictionary(2, 0)},
                             {dictionary(0, 1), dictionary(1, 1), dictionary(2, 1)});
}

}  // namespace slidestream::stain_detail
