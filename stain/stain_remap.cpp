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

cv::Mat linear_remap(const cv::Mat& rgb, const IntensityTable& table, const cv::Matx33f& map,
                     const cv::Vec3f& offset) {
  cv::Mat output(rgb.size(), CV_8UC3);
  const auto& od = table.od();
  for (int row = 0; row < rgb.rows; ++row) {
    const auto* in = rgb.ptr<std::uint8_t>(row);
    auto* out = output.ptr<std::uint8_t>(row);
    for (int col = 0; col < 3 * rgb.cols; col += 3) {
      const float r = od[in[col]];
      const float g = od[in[col + 1]];
      const float b = od[in[col + 2]];
      for (int channel = 0; channel < 3; ++channel) {
        const float mapped =
            map(channel, 0) * r + map(channel, 1) * g + map(channel, 2) * b + offset[channel];
        const float value = table.intensity(mapped) + table.excess(in[col + channel]);
        // The value is clamped to >= 0, so adding 0.5 rounds correctly (cheaper than lround).
        // NOLINTBEGIN(bugprone-incorrect-roundings)
        out[col + channel] =
            static_cast<std::uint8_t>(std::min(std::max(value, 0.0F), 255.0F) + 0.5F);
        // NOLINTEND(bugprone-incorrect-roundings)
      }
    }
  }
  return output;
}

}  // namespace slidestream::stain_detail
