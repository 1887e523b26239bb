// Both backends on synthetic slides made by `synth`: pixel equality with libvips' own decode,
// downsampling, edge padding, spacing sources and concurrent reads.
#include <gtest/gtest.h>
#include <tbb/parallel_for.h>
#include <unistd.h>

#include <opencv2/imgproc.hpp>
#include <string>
#include <vips/vips8>

#include "slidestream/core.hpp"
#include "slidestream/io.hpp"
#include "test_support.hpp"

namespace slidestream {
namespace {

using testing::psnr;
using testing::small_lossless_slide;

cv::Mat vips_crop(const std::filesystem::path& slide, int page, const Rect& rect) {
  const vips::VImage image =
      vips::VImage::new_from_file(slide.c_str(), vips::VImage::option()->set("page", page));
  const vips::VImage crop = image.crop(static_cast<int>(rect.x), static_cast<int>(rect.y),
                                       static_cast<int>(rect.width), static_cast<int>(rect.height));
  size_t bytes = 0;
  void* data = crop.write_to_memory(&bytes);
  cv::Mat pixels = cv::Mat(crop.height(), crop.width(), CV_8UC3, data).clone();
  g_free(data);
  return pixels;
}

OpenOptions with_backend(Backend backend) {
  OpenOptions options;
  options.backend = backend;
  return options;
}

class BothBackends : public ::testing::TestWithParam<Backend> {};

INSTANTIATE_TEST_SUITE_P(Synthetic, BothBackends,
                         ::testing::Values(Backend::kOpenSlide, Backend::kVips),
                         [](const auto& param_info) { return backend_name(param_info.param); });

TEST_P(BothBackends, ReportsTheSlideGeometryAndSpacingFromResolutionTags) {
  const auto reader = open_slide(small_lossless_slide(), with_backend(GetParam()));
  const SlideInfo& info = reader->info();
  EXPECT_EQ(info.backend, GetParam());
  EXPECT_EQ(info.size(), (Size{3000, 2000}));
  EXPECT_GE(info.levels.size(), 3u);
  EXPECT_NEAR(info.levels[1].downsample, 2.0, 0.01);
  EXPECT_NEAR(info.spacing.x_um, 0.5, 1e-6);
  EXPECT_NEAR(info.levels[1].spacing.x_um, 1.0, 0.01);
  EXPECT_EQ(info.spacing_source, SpacingSource::kTiffResolution);
}

TEST_P(BothBackends, LevelZeroPixelsEqualLibvipsOwnCrop) {
  const std::filesystem::path slide = small_lossless_slide();
  const auto reader = open_slide(slide, with_backend(GetParam()));
  const Patch patch = reader->read_from_origin({1234, 567}, {300, 200}, 0.5);
  EXPECT_EQ(patch.level, 0);
  const cv::Mat expected = vips_crop(slide, 0, Rect{1234, 567, 300, 200});
  EXPECT_EQ(cv::norm(patch.rgb, expected, cv::NORM_INF), 0.0);
  EXPECT_EQ(cv::countNonZero(patch.valid), 300 * 200);
}

TEST_P(BothBackends, TwiceTheSpacingMatchesAnAreaDownsampleOfLevelZero) {
  const std::filesystem::path slide = small_lossless_slide();
  const auto reader = open_slide(slide, with_backend(GetParam()));
  const Patch coarse = reader->read_from_origin({800, 600}, {256, 256}, 1.0);
  EXPECT_EQ(coarse.level, 1);
  const Patch fine = reader->read_from_origin({800, 600}, {512, 512}, 0.5);
  cv::Mat expected;
  cv::resize(fine.rgb, expected, cv::Size(256, 256), 0, 0, cv::INTER_AREA);
  EXPECT_GT(psnr(coarse.rgb, expected), 40.0);
}

TEST_P(BothBackends, NonPowerOfTwoSpacingKeepsTheExactFieldOfView) {
  const auto reader = open_slide(small_lossless_slide(), with_backend(GetParam()));
  const Patch patch = reader->read_centered({1500, 1000}, {300, 300}, 1.37);
  EXPECT_NEAR(patch.fov_l0.width * 0.5, 300 * 1.37, 1e-9);
  EXPECT_EQ(patch.level, 1);  // 1.0 um/px is the coarsest level finer than 1.37
  const Patch fine = reader->read_centered({1500, 1000}, {822, 822}, 0.5);
  cv::Mat expected;
  cv::resize(fine.rgb, expected, cv::Size(300, 300), 0, 0, cv::INTER_AREA);
  EXPECT_GT(psnr(patch.rgb, expected), 30.0);  // different source levels, close content
}

TEST_P(BothBackends, PadsOffSlidePixelsWithTheBackgroundAndMasksThem) {
  OpenOptions options = with_backend(GetParam());
  options.background = cv::Vec3b(10, 20, 30);
  const auto reader = open_slide(small_lossless_slide(), options);
  // Top-left corner: 100 px off the slide on each side.
  const Patch corner = reader->read_from_origin({-100, -50}, {300, 200}, 0.5);
  EXPECT_EQ(cv::countNonZero(corner.valid), 200 * 150);
  EXPECT_EQ(corner.valid.at<std::uint8_t>(49, 99), 0);
  EXPECT_EQ(corner.valid.at<std::uint8_t>(50, 100), 255);
  EXPECT_EQ(corner.rgb.at<cv::Vec3b>(10, 10), cv::Vec3b(10, 20, 30));
  // Bottom-right corner at 4 um/px (level 3): output pixels whose centre is off the slide.
  const Patch far = reader->read_centered({3000, 2000}, {100, 100}, 4.0);
  EXPECT_EQ(cv::countNonZero(far.valid), 50 * 50);
  EXPECT_EQ(far.valid.at<std::uint8_t>(49, 49), 255);
  EXPECT_EQ(far.valid.at<std::uint8_t>(50, 50), 0);
  EXPECT_EQ(far.rgb.at<cv::Vec3b>(99, 99), cv::Vec3b(10, 20, 30));
}

TEST_P(BothBackends, RegionEntirelyOutsideTheSlideIsAClearError) {
  const auto reader = open_slide(small_lossless_slide(), with_backend(GetParam()));
  try {
    reader->read_from_origin({1000000, 1000000}, {256, 256}, 0.5);
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(error.what()).find("entirely outside"), std::string::npos);
  }
}

TEST_P(BothBackends, ConcurrentReadsEqualSerialReads) {
  const auto reader = open_slide(small_lossless_slide(), with_backend(GetParam()));
  struct Request {
    Point center;
    double spacing;
  };
  std::vector<Request> requests;
  requests.reserve(96);
  for (int i = 0; i < 96; ++i) {
    requests.push_back({Point{(i * 397) % 3100 - 50, (i * 211) % 2100 - 50},
                        i % 3 == 0 ? 0.5 : (i % 3 == 1 ? 2.0 : 3.3)});
  }
  std::vector<cv::Mat> serial;
  serial.reserve(requests.size());
  for (const Request& request : requests) {
    serial.push_back(reader->read_centered(request.center, {128, 128}, request.spacing).rgb);
  }
  std::vector<cv::Mat> parallel(requests.size());
  tbb::parallel_for(size_t{0}, requests.size(), [&](size_t i) {
    parallel[i] = reader->read_centered(requests[i].center, {128, 128}, requests[i].spacing).rgb;
  });
  for (size_t i = 0; i < requests.size(); ++i) {
    ASSERT_EQ(cv::norm(serial[i], parallel[i], cv::NORM_INF), 0.0) << "request " << i;
  }
}

TEST(SyntheticJpeg, BothBackendsDecodeTheSamePixels) {
  SynthOptions options;
  options.size = Size{2048, 1536};
  options.seed = 3;
  const std::filesystem::path slide = testing::synthetic_slide("small-jpeg", options);
  const auto openslide = open_slide(slide, with_backend(Backend::kOpenSlide));
  const auto vips = open_slide(slide, with_backend(Backend::kVips));
  // OpenSlide leaves out generic-TIFF levels smaller than a tile (it would read them blank).
  ASSERT_LE(openslide->info().levels.size(), vips->info().levels.size());
  ASSERT_GE(openslide->info().levels.size(), 3u);
  for (size_t level = 0; level < openslide->info().levels.size(); ++level) {
    EXPECT_EQ(openslide->info().levels[level].size, vips->info().levels[level].size);
  }
  for (const double spacing : {0.5, 1.0, 2.2}) {
    const Patch a = openslide->read_centered({1000, 700}, {256, 256}, spacing);
    const Patch b = vips->read_centered({1000, 700}, {256, 256}, spacing);
    EXPECT_GT(psnr(a.rgb, b.rgb), 45.0) << "spacing " << spacing;
  }
}

TEST_P(BothBackends, AThumbnailOfASlideWithoutAPyramidIsReadInBlocks) {
  // A single-level copy of a 6000 x 6000 slide: a whole-slide read at 20x the spacing covers
  // 36 MP of level 0, more than one resampled read decodes at once (16 MP), so it goes block by
  // block and must still equal an area downsample of the whole level.
  SynthOptions options;
  options.size = Size{6000, 6000};
  options.seed = 5;
  options.compression = "deflate";
  const std::filesystem::path pyramid = testing::synthetic_slide("flat-source-6000", options);
  const std::filesystem::path flat = pyramid.parent_path() / "flat-6000.tif";
  if (!std::filesystem::exists(flat)) {
    static const bool vips_started = VIPS_INIT("test_io_synthetic") == 0;
    ASSERT_TRUE(vips_started) << vips_error_buffer();
    // Per process: the openslide and vips instances of this test may run at once (ctest -j).
    const std::filesystem::path partial =
        flat.string() + "." + std::to_string(::getpid()) + ".partial.tif";
    vips::VImage::new_from_file(pyramid.c_str())
        .tiffsave(partial.c_str(), vips::VImage::option()
                                       ->set("tile", true)
                                       ->set("tile_width", 256)
                                       ->set("tile_height", 256)
                                       ->set("compression", VIPS_FOREIGN_TIFF_COMPRESSION_DEFLATE));
    std::filesystem::rename(partial, flat);
  }
  const auto reader = open_slide(flat, with_backend(GetParam()));
  ASSERT_EQ(reader->info().levels.size(), 1u);
  const Patch thumbnail = reader->read_fov(RectF{0, 0, 6000, 6000}, Size{300, 300});
  EXPECT_EQ(thumbnail.level, 0);
  cv::Mat expected;
  cv::resize(reader->read_level(0, Rect{0, 0, 6000, 6000}), expected, cv::Size(300, 300), 0, 0,
             cv::INTER_AREA);
  EXPECT_LE(cv::norm(thumbnail.rgb, expected, cv::NORM_INF), 1.0);
  EXPECT_EQ(cv::countNonZero(thumbnail.valid), 300 * 300);
}

TEST(SyntheticSpacing, SlideWithoutMppNeedsTheOverride) {
  SynthOptions options;
  options.size = Size{512, 512};
  options.mpp_um = std::nullopt;
  const std::filesystem::path slide = testing::synthetic_slide("no-mpp", options);
  try {
    open_slide(slide);
    FAIL() << "expected kMissingMetadata";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kMissingMetadata);
    EXPECT_NE(std::string(error.what()).find("--mpp"), std::string::npos);
    EXPECT_NE(std::string(error.what()).find(slide.filename().string()), std::string::npos);
  }
  OpenOptions with_mpp;
  with_mpp.mpp_override_um = 0.25;
  const auto reader = open_slide(slide, with_mpp);
  EXPECT_EQ(reader->info().spacing_source, SpacingSource::kUser);
  EXPECT_DOUBLE_EQ(reader->info().spacing.x_um, 0.25);
  EXPECT_EQ(reader->read_centered({256, 256}, {64, 64}, 0.5).rgb.size(), cv::Size(64, 64));
}

TEST(SyntheticSpacing, UserOverrideWinsOverTheSlideMetadata) {
  OpenOptions options;
  options.mpp_override_um = 0.3;
  const auto reader = open_slide(small_lossless_slide(), options);
  EXPECT_EQ(reader->info().spacing_source, SpacingSource::kUser);
  EXPECT_DOUBLE_EQ(reader->info().levels[0].spacing.x_um, 0.3);
}

}  // namespace
}  // namespace slidestream
