#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>

#include "slidestream/io.hpp"
#include "test_support.hpp"

namespace slidestream {
namespace {

cv::Mat random_image(int width, int height, int channels) {
  cv::Mat image(height, width, CV_8UC(channels));
  cv::RNG rng(42);
  rng.fill(image, cv::RNG::UNIFORM, 0, 256);
  cv::GaussianBlur(image, image, cv::Size(5, 5), 1.5);  // tissue-like, not white noise
  return image;
}

TEST(ResampleArea, IntegerFactorsEqualOpenCvInterArea) {
  const cv::Mat source = random_image(400, 300, 3);
  for (const int factor : {2, 4, 5}) {
    cv::Mat expected;
    cv::resize(source, expected, cv::Size(400 / factor, 300 / factor), 0, 0, cv::INTER_AREA);
    const cv::Mat ours = resample_area(source, 0, 0, factor, factor, expected.size());
    EXPECT_LE(cv::norm(ours, expected, cv::NORM_INF), 1.0) << "factor " << factor;
  }
}

TEST(ResampleArea, IdentityWithZeroOffsetCopiesPixels) {
  const cv::Mat source = random_image(64, 48, 3);
  const cv::Mat same = resample_area(source, 0, 0, 1.0, 1.0, source.size());
  EXPECT_EQ(cv::norm(same, source, cv::NORM_INF), 0.0);
}

TEST(ResampleArea, FractionalOriginShiftsByTheExactFraction) {
  // A horizontal ramp 0, 4, 8, ...: shifting by 0.25 px must add exactly 1 grey level.
  cv::Mat ramp(4, 60, CV_8UC1);
  for (int x = 0; x < ramp.cols; ++x) {
    ramp.col(x).setTo(4 * x);
  }
  const cv::Mat shifted = resample_area(ramp, 0.25, 0, 1.0, 1.0, cv::Size(50, 4));
  for (int x = 0; x < 50; ++x) {
    EXPECT_EQ(shifted.at<std::uint8_t>(2, x), 4 * x + 1) << "column " << x;
  }
}

TEST(ResampleArea, NonIntegerScaleKeepsTheMean) {
  const cv::Mat source = random_image(999, 777, 3);
  const cv::Mat small = resample_area(source, 0, 0, 999.0 / 256, 777.0 / 200, cv::Size(256, 200));
  const cv::Scalar mean_in = cv::mean(source);
  const cv::Scalar mean_out = cv::mean(small);
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(mean_in[c], mean_out[c], 0.5);
  }
}

}  // namespace
}  // namespace slidestream
