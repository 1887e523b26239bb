#include <algorithm>
#include <cmath>
#include <vector>

#include "slidestream/core.hpp"
#include "slidestream/io.hpp"

namespace slidestream {

namespace {

// For each output pixel along one axis: the source pixels it overlaps and their area weights
// (summing to 1), flattened as [first_tap[i], first_tap[i + 1]).
struct AxisTaps {
  std::vector<int> first_tap;
  std::vector<int> index;
  std::vector<float> weight;
};

AxisTaps area_taps(double origin, double scale, int out_count, int src_count) {
  AxisTaps taps;
  taps.first_tap.reserve(static_cast<size_t>(out_count) + 1);
  for (int i = 0; i < out_count; ++i) {
    taps.first_tap.push_back(static_cast<int>(taps.index.size()));
    const double begin = origin + i * scale;
    const double end = begin + scale;
    const int first = static_cast<int>(std::floor(begin));
    const int last = static_cast<int>(std::ceil(end)) - 1;
    for (int j = first; j <= last; ++j) {
      const double overlap = std::min(end, j + 1.0) - std::max(begin, static_cast<double>(j));
      if (overlap <= 1e-9) {
        continue;
      }
      taps.index.push_back(std::clamp(j, 0, src_count - 1));
      taps.weight.push_back(static_cast<float>(overlap / scale));
    }
  }
  taps.first_tap.push_back(static_cast<int>(taps.index.size()));
  return taps;
}

}  // namespace

cv::Mat resample_area(const cv::Mat& src, double x0, double y0, double scale_x, double scale_y,
                      cv::Size out_size) {
  if (src.depth() != CV_8U || src.empty() || out_size.width <= 0 || out_size.height <= 0 ||
      !(scale_x > 0) || !(scale_y > 0)) {
    throw Error(ErrorCode::kInternal, "resample_area: needs a non-empty 8-bit image and scales");
  }
  const int channels = src.channels();
  const AxisTaps cols = area_taps(x0, scale_x, out_size.width, src.cols);
  const AxisTaps rows = area_taps(y0, scale_y, out_size.height, src.rows);

  // Horizontal pass over the source rows that any output row uses, into float.
  const int first_row = *std::min_element(rows.index.begin(), rows.index.end());
  const int last_row = *std::max_element(rows.index.begin(), rows.index.end());
  cv::Mat horizontal(last_row - first_row + 1, out_size.width, CV_32FC(channels));
  for (int r = first_row; r <= last_row; ++r) {
    const std::uint8_t* in = src.ptr<std::uint8_t>(r);
    float* out = horizontal.ptr<float>(r - first_row);
    for (int i = 0; i < out_size.width; ++i) {
      float* acc = out + static_cast<ptrdiff_t>(i) * channels;
      std::fill(acc, acc + channels, 0.0f);
      for (int t = cols.first_tap[i]; t < cols.first_tap[i + 1]; ++t) {
        const std::uint8_t* pixel = in + static_cast<ptrdiff_t>(cols.index[t]) * channels;
        for (int c = 0; c < channels; ++c) {
          acc[c] += cols.weight[t] * pixel[c];
        }
      }
    }
  }

  // Vertical pass, rounding to 8 bits.
  cv::Mat result(out_size, src.type());
  const int row_values = out_size.width * channels;
  std::vector<float> acc(static_cast<size_t>(row_values));
  for (int j = 0; j < out_size.height; ++j) {
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (int t = rows.first_tap[j]; t < rows.first_tap[j + 1]; ++t) {
      const float* in = horizontal.ptr<float>(rows.index[t] - first_row);
      const float weight = rows.weight[t];
      for (int v = 0; v < row_values; ++v) {
        acc[static_cast<size_t>(v)] += weight * in[v];
      }
    }
    std::uint8_t* out = result.ptr<std::uint8_t>(j);
    for (int v = 0; v < row_values; ++v) {
      out[v] = cv::saturate_cast<std::uint8_t>(acc[static_cast<size_t>(v)]);
    }
  }
  return result;
}

}  // namespace slidestream
