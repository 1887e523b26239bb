// Per-pixel stain mapping kernels: tabulated OD in and intensity out, no per-pixel allocation.
#include <cmath>
#include <cstring>

#include "stain_detail.hpp"

// The float kernels are built twice on x86-64, for AVX2 and for the baseline (SSE2), and the
// loader picks the clone the CPU runs (GCC's function multiversioning); one build elsewhere.
// Not with clang (which defines __GNUC__ too): clang 14 names the clones of these out-of-line
// member functions differently from the callers in other files, which then fail to link.
// Not under TSan: GCC instruments the ifunc resolver, which the loader runs before the TSan
// runtime is up, and every binary then crashes at start.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_THREAD__)
#define SLIDESTREAM_AVX2_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define SLIDESTREAM_AVX2_CLONES
#endif

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
constexpr std::size_t kEncodeSteps = 16384;

double srgb_decode(double value) {
  return value <= 0.04045 ? value / 12.92 : std::pow((value + 0.055) / 1.055, 2.4);
}

double srgb_encode(double linear) {
  return linear <= 0.0031308 ? 12.92 * linear : 1.055 * std::pow(linear, 1.0 / 2.4) - 0.055;
}

/// CIE f(t) = t^(1/3) above kLinearCie, linear below; t >= 0. The cube root starts from the
/// bit pattern divided by three (exponent / 3, within ~4 %) and takes one Halley step (cubic
/// convergence: within ~1e-4, 0.01 L* units), one division and no branches or tables, so a
/// loop over it vectorizes.
inline float cie_f(float t) {
  std::int32_t bits = 0;
  std::memcpy(&bits, &t, sizeof bits);
  constexpr float kThird = 1.0F / 3.0F;
  constexpr std::int32_t kMagic = 0x2a5137a0;  // (127 - 127 / 3) << 23, tuned
  bits = static_cast<std::int32_t>(static_cast<float>(bits) * kThird) + kMagic;
  float root = 0;
  std::memcpy(&root, &bits, sizeof root);
  const float cube = root * root * root;
  root *= (cube + 2.0F * t) / (2.0F * cube + t);
  return t > kLinearCie ? root : kSlopeCie * t + kOffsetCie;
}

/// The inverse of f: f^3 above f(kLinearCie), linear below.
inline float cie_inverse(float f) {
  constexpr float kThreshold = kSlopeCie * kLinearCie + kOffsetCie;
  constexpr float kInverseSlope = 1.0F / kSlopeCie;
  return f > kThreshold ? f * f * f : (f - kOffsetCie) * kInverseSlope;
}

}  // namespace

ReinhardMap::ReinhardMap(double io, double beta)
    : od_(od_table(io)), beta_(beta), encode_(kEncodeSteps + 1) {
  for (std::size_t value = 0; value < 256; ++value) {
    linear_[value] = static_cast<float>(srgb_decode(static_cast<double>(value) / 255.0));
  }
  for (std::size_t step = 0; step <= kEncodeSteps; ++step) {
    const double value = 255.0 * srgb_encode(static_cast<double>(step) / kEncodeSteps);
    encode_[step] = static_cast<std::uint8_t>(std::lround(std::min(value, 255.0)));
  }
}

SLIDESTREAM_AVX2_CLONES void ReinhardMap::convert(const std::uint8_t* pixels, int count,
                                                  Chunk& chunk) const {
  // Table lookups first (scalar), into the channel arrays ...
  std::array<float, kChunk> red{};
  std::array<float, kChunk> green{};
  std::array<float, kChunk> blue{};
  for (int i = 0; i < count; ++i) {
    const std::uint8_t* pixel = pixels + 3 * i;
    const auto index = static_cast<std::size_t>(i);
    red[index] = linear_[pixel[0]];
    green[index] = linear_[pixel[1]];
    blue[index] = linear_[pixel[2]];
    chunk.tissue[index] = od_[pixel[0]] + od_[pixel[1]] + od_[pixel[2]] > beta_ ? 1 : 0;
  }
  std::fill(chunk.tissue.begin() + count, chunk.tissue.end(), std::uint8_t{0});
  // ... then arithmetic over whole arrays. Reciprocals: float division is several times slower.
  constexpr float kInverseWhiteX = 1.0F / kWhite[0];
  constexpr float kInverseWhiteZ = 1.0F / kWhite[2];
  for (std::size_t i = 0; i < static_cast<std::size_t>(kChunk); ++i) {
    const float r = red[i];
    const float g = green[i];
    const float b = blue[i];
    chunk.fx[i] = cie_f((kRgbToXyz[0] * r + kRgbToXyz[1] * g + kRgbToXyz[2] * b) * kInverseWhiteX);
    chunk.fy[i] = cie_f(kRgbToXyz[3] * r + kRgbToXyz[4] * g + kRgbToXyz[5] * b);
    chunk.fz[i] = cie_f((kRgbToXyz[6] * r + kRgbToXyz[7] * g + kRgbToXyz[8] * b) * kInverseWhiteZ);
  }
}

SLIDESTREAM_AVX2_CLONES ReinhardMap::Moments ReinhardMap::moments(const cv::Mat& rgb) const {
  Moments moments;
  Chunk chunk;
  for (int row = 0; row < rgb.rows; ++row) {
    const auto* in = rgb.ptr<std::uint8_t>(row);
    for (int start = 0; start < rgb.cols; start += kChunk) {
      const int count = std::min(kChunk, rgb.cols - start);
      convert(in + 3 * start, count, chunk);
      // Masked sums per chunk, spread over lanes so the loop vectorizes without reassociating
      // a reduction; in double, as a single-colour tile must come out with a spread of 0.
      // (convert leaves the tissue flags past `count` at 0.)
      constexpr std::size_t kLanes = 8;
      std::array<std::array<double, kLanes>, 7> lanes{};
      for (std::size_t i = 0; i < static_cast<std::size_t>(kChunk); i += kLanes) {
        for (std::size_t j = 0; j < kLanes; ++j) {
          const std::size_t k = i + j;
          const auto weight = static_cast<double>(chunk.tissue[k]);
          const double lightness = weight * static_cast<double>(116.0F * chunk.fy[k] - 16.0F);
          const double a = weight * static_cast<double>(500.0F * (chunk.fx[k] - chunk.fy[k]));
          const double b = weight * static_cast<double>(200.0F * (chunk.fy[k] - chunk.fz[k]));
          lanes[0][j] += weight;
          lanes[1][j] += lightness;
          lanes[2][j] += a;
          lanes[3][j] += b;
          lanes[4][j] += lightness * lightness;
          lanes[5][j] += a * a;
          lanes[6][j] += b * b;
        }
      }
      std::array<double, 7> totals{};
      for (std::size_t sum = 0; sum < totals.size(); ++sum) {
        for (const double lane : lanes[sum]) {
          totals[sum] += lane;
        }
      }
      moments.count += static_cast<std::int64_t>(totals[0]);
      moments.sum += cv::Vec3d(totals[1], totals[2], totals[3]);
      moments.sum_of_squares += cv::Vec3d(totals[4], totals[5], totals[6]);
    }
  }
  return moments;
}

SLIDESTREAM_AVX2_CLONES std::int64_t ReinhardMap::apply(const cv::Mat& rgb, const cv::Vec3d& mean,
                                                        const cv::Vec3d& scale,
                                                        const cv::Vec3d& target,
                                                        cv::Mat& output) const {
  output.create(rgb.size(), CV_8UC3);
  // lab_out = lab * gain + bias per channel is, with L = 116 fy - 16, a = 500 (fx - fy) and
  // b = 200 (fy - fz), an affine map of f: fy' = gL fy + cy, fx' = fy' + ga (fx - fy) + cx,
  // fz' = fy' - gb (fy - fz) - cz. (OpenCV's Lab2RGB takes L <= 8 to y = L / 903.3, which is
  // f's linear piece: the same to 1e-5.)
  const cv::Vec3d bias = target - mean.mul(scale);
  const auto gain_y = static_cast<float>(scale[0]);
  const auto gain_a = static_cast<float>(scale[1]);
  const auto gain_b = static_cast<float>(scale[2]);
  const auto shift_y = static_cast<float>((bias[0] + 16.0 - 16.0 * scale[0]) / 116.0);
  const auto shift_a = static_cast<float>(bias[1] / 500.0);
  const auto shift_b = static_cast<float>(bias[2] / 200.0);
  constexpr auto kEncodeScale = static_cast<float>(kEncodeSteps);
  const auto encode_index = [](float linear) {
    // Clamped to [0, 1] first, so adding 0.5 rounds correctly (and is cheaper than lround).
    // NOLINTBEGIN(bugprone-incorrect-roundings)
    return static_cast<std::int32_t>(std::min(std::max(linear, 0.0F), 1.0F) * kEncodeScale + 0.5F);
    // NOLINTEND(bugprone-incorrect-roundings)
  };
  Chunk chunk;
  std::array<std::int32_t, kChunk> red{};
  std::array<std::int32_t, kChunk> green{};
  std::array<std::int32_t, kChunk> blue{};
  std::int64_t tissue_pixels = 0;
  for (int row = 0; row < rgb.rows; ++row) {
    const auto* in = rgb.ptr<std::uint8_t>(row);
    auto* out = output.ptr<std::uint8_t>(row);
    for (int start = 0; start < rgb.cols; start += kChunk) {
      const int count = std::min(kChunk, rgb.cols - start);
      convert(in + 3 * start, count, chunk);
      for (std::size_t i = 0; i < static_cast<std::size_t>(kChunk); ++i) {
        const float fy = gain_y * chunk.fy[i] + shift_y;
        const float fx = fy + gain_a * (chunk.fx[i] - chunk.fy[i]) + shift_a;
        const float fz = fy - gain_b * (chunk.fy[i] - chunk.fz[i]) - shift_b;
        const float x = kWhite[0] * cie_inverse(fx);
        const float y = cie_inverse(fy);
        const float z = kWhite[2] * cie_inverse(fz);
        red[i] = encode_index(kXyzToRgb[0] * x + kXyzToRgb[1] * y + kXyzToRgb[2] * z);
        green[i] = encode_index(kXyzToRgb[3] * x + kXyzToRgb[4] * y + kXyzToRgb[5] * z);
        blue[i] = encode_index(kXyzToRgb[6] * x + kXyzToRgb[7] * y + kXyzToRgb[8] * z);
      }
      const std::uint8_t* source = in + 3 * start;
      std::uint8_t* destination = out + 3 * start;
      // Selects, not branches: tissue borders would mispredict.
      for (std::size_t i = 0; i < static_cast<std::size_t>(count); ++i) {
        const std::size_t at = 3 * i;
        const bool tissue = chunk.tissue[i] != 0;
        const std::uint8_t r = encode_[static_cast<std::size_t>(red[i])];
        const std::uint8_t g = encode_[static_cast<std::size_t>(green[i])];
        const std::uint8_t b = encode_[static_cast<std::size_t>(blue[i])];
        destination[at] = tissue ? r : source[at];
        destination[at + 1] = tissue ? g : source[at + 1];
        destination[at + 2] = tissue ? b : source[at + 2];
      }
      for (std::size_t i = 0; i < static_cast<std::size_t>(count); ++i) {
        tissue_pixels += chunk.tissue[i];
      }
    }
  }
  return tissue_pixels;
}

}  // namespace slidestream::stain_detail
