// Per-pixel stain mapping kernels: tabulated OD in and intensity out, no per-pixel allocation.
#include <cmath>

#include "stain_detail.hpp"

namespace slidestream::stain_detail {

cv::Vec3d plane_normal(const cv::Matx32d& stains) {
  const cv::Vec3d h(stains(0, 0), stains(1, 0), stains(2, 0));
  const cv::Vec3d e(stains(0, 1), stains(1, 1), stains(2, 1));
  const cv::Vec3d normal = h.cross(e);
  const double length = cv::norm(normal);
  return length > 0 ? normal * (1.0 / length) : cv::Vec3d(0, 0, 0);
}

IntensityTable::IntensityTable(double io) {
  const auto count = static_cast<std::size_t>((kMaxOd - kMinOd) * kStepsPerOd) + 1;
  values_.resize(count);
  for (std::size_t i = 0; i < count; ++i) {
    const double od = kMinOd + static_cast<double>(i) / kStepsPerOd;
    values_[i] = static_cast<float>(io * std::exp(-od) - 1.0);
  }
  last_ = static_cast<float>(count - 1);
  const OdTable table = od_table(io);
  for (std::size_t value = 0; value < 256; ++value) {
    excess_[value] = static_cast<float>(std::max(0.0, static_cast<double>(value) - (io - 1.0)));
    od_[value] = static_cast<float>(table[value]);
  }
}

namespace {

/// Fixed-point units: 1/32768 of an OD in the tables, 1/2048 (IntensityTable's step) to index.
constexpr double kOdUnits = 32768.0;
constexpr std::int32_t kUnitsPerStep = 16;
constexpr double kStepsPerOd = kOdUnits / kUnitsPerStep;
constexpr std::int32_t kNegativeSteps = 144;  // mapped OD down to -0.07 (brighter than Io)
constexpr double kMaxOd = 8.0;                // darker than 0.1 grey levels above
constexpr double kGreyUnits = 256.0;

std::int32_t fixed(double value, double units) {
  return static_cast<std::int32_t>(std::lround(value * units));
}

}  // namespace

LinearOdMap::LinearOdMap(double io, double beta)
    : od_(od_table(io)), tissue_threshold_(fixed(beta, kOdUnits)) {
  const auto steps = static_cast<std::int32_t>(kMaxOd * kStepsPerOd) + kNegativeSteps + 1;
  intensity_.resize(static_cast<std::size_t>(steps));
  for (std::int32_t step = 0; step < steps; ++step) {
    const double value = io * std::exp(-(step - kNegativeSteps) / kStepsPerOd) - 1.0;
    intensity_[static_cast<std::size_t>(step)] = fixed(std::max(value, 0.0), kGreyUnits);
  }
  last_ = steps * kUnitsPerStep - 1;
  for (std::size_t value = 0; value < 256; ++value) {
    excess_[value] = fixed(std::max(0.0, static_cast<double>(value) - (io - 1.0)), kGreyUnits);
  }
}

std::int64_t LinearOdMap::apply(const cv::Mat& rgb, const cv::Matx33d& map, cv::Mat& output) const {
  // One row per input channel and 8-bit value: its OD times each row of `map`, and the OD.
  using Row = std::array<std::int32_t, 4>;
  std::array<std::array<Row, 256>, 3> rows{};
  for (std::size_t channel = 0; channel < 3; ++channel) {
    for (std::size_t value = 0; value < 256; ++value) {
      Row& row = rows[channel][value];
      for (std::size_t out = 0; out < 3; ++out) {
        row[out] =
            fixed(map(static_cast<int>(out), static_cast<int>(channel)) * od_[value], kOdUnits);
      }
      row[3] = fixed(od_[value], kOdUnits);
    }
  }
  // The index offset and the rounding to the nearest step ride on channel 0's rows.
  for (Row& row : rows[0]) {
    for (std::size_t out = 0; out < 3; ++out) {
      row[out] += kNegativeSteps * kUnitsPerStep + kUnitsPerStep / 2;
    }
  }
  output.create(rgb.size(), CV_8UC3);
  constexpr std::int32_t kHalfGrey = 128;
  constexpr std::int32_t kMaxGrey = 255;
  std::int64_t tissue = 0;
  for (int row = 0; row < rgb.rows; ++row) {
    const auto* in = rgb.ptr<std::uint8_t>(row);
    auto* out = output.ptr<std::uint8_t>(row);
    for (int col = 0; col < 3 * rgb.cols; col += 3) {
      const Row& red = rows[0][in[col]];
      const Row& green = rows[1][in[col + 1]];
      const Row& blue = rows[2][in[col + 2]];
      tissue += red[3] + green[3] + blue[3] > tissue_threshold_ ? 1 : 0;
      for (std::size_t channel = 0; channel < 3; ++channel) {
        const std::int32_t units =
            std::min(std::max(red[channel] + green[channel] + blue[channel], 0), last_);
        const std::int32_t grey = intensity_[static_cast<std::size_t>(units / kUnitsPerStep)] +
                                  excess_[in[col + static_cast<int>(channel)]] + kHalfGrey;
        out[col + static_cast<int>(channel)] = static_cast<std::uint8_t>(
            std::min(grey / static_cast<std::int32_t>(kGreyUnits), kMaxGrey));
      }
    }
  }
  return tissue;
}

namespace {

// CIE XYZ of linear sRGB and back, D65 white, as OpenCV's colour conversions.
constexpr std::array<float, 3> kWhite{0.950456F, 1.0F, 1.088754F};
constexpr std::array<float, 9> kRgbToXyz{0.412453F, 0.357580F, 0.180423F, 0.212671F, 0.715160F,
                                         0.072169F, 0.019334F, 0.119193F, 0.950227F};
constexpr std::array<float, 9> kXyzToRgb{3.240479F, -1.53715F, -0.498535F, -0.969256F, 1.875991F,
                                         0.041556F, 0.055648F, -0.204043F, 1.057311F};
constexpr float kLinearCie = 0.008856F;  // below it f(t) is linear
constexpr float kSlopeCie = 7.787F;
constexpr float kOffsetCie = 16.0F / 116.0F;
constexpr std::size_t kCubeRootSteps = 2048;
constexpr std::size_t kEncodeSteps = 16384;

double srgb_decode(double value) {
  return value <= 0.04045 ? value / 12.92 : std::pow((value + 0.055) / 1.055, 2.4);
}

double srgb_encode(double linear) {
  return linear <= 0.0031308 ? 12.92 * linear : 1.055 * std::pow(linear, 1.0 / 2.4) - 0.055;
}

float cie_inverse(float f) {
  constexpr float kThreshold = kSlopeCie * kLinearCie + kOffsetCie;
  constexpr float kInverseSlope = 1.0F / kSlopeCie;
  return f <= kThreshold ? (f - kOffsetCie) * kInverseSlope : f * f * f;
}

}  // namespace

ReinhardMap::ReinhardMap(double io, double beta)
    : od_(od_table(io)), beta_(beta), cube_root_(kCubeRootSteps + 2), encode_(kEncodeSteps + 1) {
  for (std::size_t value = 0; value < 256; ++value) {
    linear_[value] = static_cast<float>(srgb_decode(static_cast<double>(value) / 255.0));
  }
  for (std::size_t step = 0; step < cube_root_.size(); ++step) {
    const double t = static_cast<double>(step) / kCubeRootSteps;
    cube_root_[step] =
        static_cast<float>(t > kLinearCie ? std::cbrt(t) : kSlopeCie * t + kOffsetCie);
  }
  for (std::size_t step = 0; step <= kEncodeSteps; ++step) {
    const double value = 255.0 * srgb_encode(static_cast<double>(step) / kEncodeSteps);
    encode_[step] = static_cast<std::uint8_t>(std::lround(std::min(value, 255.0)));
  }
}

float ReinhardMap::cube_root(float t) const {
  const float position = std::min(std::max(t, 0.0F), 1.0F) * static_cast<float>(kCubeRootSteps);
  // Through int: float to an unsigned 64-bit index costs extra branches.
  const int index = static_cast<int>(position);
  const float fraction = position - static_cast<float>(index);
  const float* table = cube_root_.data() + index;
  return table[0] + fraction * (table[1] - table[0]);
}

std::uint8_t ReinhardMap::encode(float linear) const {
  const float position = std::min(std::max(linear, 0.0F), 1.0F) * static_cast<float>(kEncodeSteps);
  // position >= 0, so adding 0.5 rounds correctly (and is cheaper than lround).
  // NOLINTBEGIN(bugprone-incorrect-roundings)
  return encode_.data()[static_cast<int>(position + 0.5F)];
  // NOLINTEND(bugprone-incorrect-roundings)
}

cv::Vec3f ReinhardMap::lab(const std::uint8_t* pixel) const {
  const float r = linear_[pixel[0]];
  const float g = linear_[pixel[1]];
  const float b = linear_[pixel[2]];
  // Multiplications by reciprocals: float division is several times slower.
  constexpr float kInverseWhiteX = 1.0F / kWhite[0];
  constexpr float kInverseWhiteZ = 1.0F / kWhite[2];
  const float fx =
      cube_root((kRgbToXyz[0] * r + kRgbToXyz[1] * g + kRgbToXyz[2] * b) * kInverseWhiteX);
  const float fy = cube_root(kRgbToXyz[3] * r + kRgbToXyz[4] * g + kRgbToXyz[5] * b);
  const float fz =
      cube_root((kRgbToXyz[6] * r + kRgbToXyz[7] * g + kRgbToXyz[8] * b) * kInverseWhiteZ);
  return {116.0F * fy - 16.0F, 500.0F * (fx - fy), 200.0F * (fy - fz)};
}

ReinhardMap::Moments ReinhardMap::moments(const cv::Mat& rgb) const {
  Moments moments;
  for (int row = 0; row < rgb.rows; ++row) {
    const auto* in = rgb.ptr<std::uint8_t>(row);
    for (int col = 0; col < 3 * rgb.cols; col += 3) {
      if (!tissue(in + col)) {
        continue;
      }
      const cv::Vec3d value = lab(in + col);
      ++moments.count;
      moments.sum += value;
      moments.sum_of_squares += value.mul(value);
    }
  }
  return moments;
}

std::int64_t ReinhardMap::apply(const cv::Mat& rgb, const cv::Vec3d& mean, const cv::Vec3d& scale,
                                const cv::Vec3d& target, cv::Mat& output) const {
  output.create(rgb.size(), CV_8UC3);
  // lab_out = lab * gain + bias, channel by channel.
  const cv::Vec3f gain(scale);
  const cv::Vec3f bias(target - mean.mul(scale));
  constexpr float kLightnessThreshold = kLinearCie * 903.3F;
  std::int64_t tissue_pixels = 0;
  for (int row = 0; row < rgb.rows; ++row) {
    const auto* in = rgb.ptr<std::uint8_t>(row);
    auto* out = output.ptr<std::uint8_t>(row);
    for (int col = 0; col < 3 * rgb.cols; col += 3) {
      if (!tissue(in + col)) {
        out[col] = in[col];
        out[col + 1] = in[col + 1];
        out[col + 2] = in[col + 2];
        continue;
      }
      ++tissue_pixels;
      const cv::Vec3f value = lab(in + col);
      const float lightness = value[0] * gain[0] + bias[0];
      // As OpenCV's Lab2RGB: dark lightness on the CIE's linear segment.
      constexpr float kInverseKappa = 1.0F / 903.3F;
      constexpr float kInverse116 = 1.0F / 116.0F;
      constexpr float kInverse500 = 1.0F / 500.0F;
      constexpr float kInverse200 = 1.0F / 200.0F;
      float y = lightness * kInverseKappa;
      float fy = kSlopeCie * y + kOffsetCie;
      if (lightness > kLightnessThreshold) {
        fy = (lightness + 16.0F) * kInverse116;
        y = fy * fy * fy;
      }
      const float x = kWhite[0] * cie_inverse(fy + (value[1] * gain[1] + bias[1]) * kInverse500);
      const float z = kWhite[2] * cie_inverse(fy - (value[2] * gain[2] + bias[2]) * kInverse200);
      out[col] = encode(kXyzToRgb[0] * x + kXyzToRgb[1] * y + kXyzToRgb[2] * z);
      out[col + 1] = encode(kXyzToRgb[3] * x + kXyzToRgb[4] * y + kXyzToRgb[5] * z);
      out[col + 2] = encode(kXyzToRgb[6] * x + kXyzToRgb[7] * y + kXyzToRgb[8] * z);
    }
  }
  return tissue_pixels;
}

}  // namespace slidestream::stain_detail
