// WindowStitcher: an in-memory average of overlapping tile outputs over one raster window.
#include <algorithm>

#include "slidestream/stitch.hpp"

namespace slidestream {

WindowStitcher::WindowStitcher(Rect window_px, int channels)
    : window_(window_px),
      sum_(cv::Mat::zeros(static_cast<int>(window_px.height), static_cast<int>(window_px.width),
                          CV_32FC(channels))),
      count_(cv::Mat::zeros(sum_.rows, sum_.cols, CV_32FC1)) {}

void WindowStitcher::add(Point origin_px, const cv::Mat& probs) {
  const cv::Rect tile(static_cast<int>(origin_px.x - window_.x),
                      static_cast<int>(origin_px.y - window_.y), probs.cols, probs.rows);
  const cv::Rect inside = tile & cv::Rect(0, 0, sum_.cols, sum_.rows);
  if (inside.empty()) {
    return;
  }
  const cv::Rect source(inside.x - tile.x, inside.y - tile.y, inside.width, inside.height);
  cv::Mat target = sum_(inside);
  target += probs(source);
  count_(inside) += 1.0f;
}

WindowStitcher::Stitched WindowStitcher::finish(const std::vector<LabelClass>& classes) const {
  const int channels = sum_.channels();
  Stitched out;
  out.labels = cv::Mat(sum_.rows, sum_.cols, CV_8UC1, cv::Scalar(0));
  out.pages.resize(static_cast<size_t>(channels));
  for (auto& page : out.pages) {
    page.create(sum_.rows, sum_.cols, CV_8UC1);
  }
  for (int y = 0; y < sum_.rows; ++y) {
    const auto* sum = sum_.ptr<float>(y);
    const auto* count = count_.ptr<float>(y);
    for (int x = 0; x < sum_.cols; ++x) {
      const float n = std::max(count[x], 1.0f);
      int best = 0;
      for (int k = 0; k < channels; ++k) {
        const float p = sum[x * channels + k] / n;
        out.pages[static_cast<size_t>(k)].at<std::uint8_t>(y, x) =
            cv::saturate_cast<std::uint8_t>(p * 255.0f);
        best = p > sum[x * channels + best] / n ? k : best;
      }
      out.labels.at<std::uint8_t>(y, x) =
          count[x] > 0 ? classes[static_cast<size_t>(best)].value : 0;
    }
  }
  return out;
}

}  // namespace slidestream
