// PyramidTiffWriter: Morton order, pyramids read back by OpenSlide and libvips, spacing tags,
// label-map downsampling, errors, atomic outputs and constant memory.
#include <gtest/gtest.h>
#include <openslide.h>
#include <unistd.h>
#include <vips/vips.h>

#include <cmath>
#include <filesystem>
#include <opencv2/imgproc.hpp>
#include <random>
#include <set>
#include <string>

#include "slidestream/core.hpp"
#include "slidestream/io.hpp"
#include "slidestream/raster.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using slidestream::ErrorCode;
using slidestream::PyramidTiffOptions;
using slidestream::PyramidTiffWriter;
using slidestream::Size;
using slidestream::TiffCompression;
using slidestream::testing::TempDir;

namespace {

/// A smooth colour pattern with fine noise: JPEG-friendly but not constant.
cv::Mat test_image(int width, int height, int channels, std::uint64_t seed) {
  cv::Mat image(height, width, CV_8UC(channels));
  std::mt19937_64 engine(seed);
  for (int y = 0; y < height; ++y) {
    auto* row = image.ptr<std::uint8_t>(y);
    for (int x = 0; x < width; ++x) {
      for (int c = 0; c < channels; ++c) {
        const double wave = 127.0 + 100.0 * std::sin(0.013 * x * (c + 1) + 0.021 * y);
        row[x * channels + c] = cv::saturate_cast<std::uint8_t>(wave + (engine() % 5));
      }
    }
  }
  return image;
}

/// Writes `image` tile by tile in the writer's Morton order and commits.
void write_image(const fs::path& path, const cv::Mat& image, const PyramidTiffOptions& options) {
  PyramidTiffWriter writer(path, Size{image.cols, image.rows}, image.channels(), options);
  for (const slidestream::Point& cell : slidestream::tile_order(writer.grid())) {
    const slidestream::Rect rect = writer.tile_rect(cell.x, cell.y);
    writer.write_tile(cell.x, cell.y,
                      image(cv::Rect(static_cast<int>(rect.x), static_cast<int>(rect.y),
                                     static_cast<int>(rect.width), static_cast<int>(rect.height))));
  }
  writer.commit();
}

/// Level `level` of an OpenSlide-readable file as RGB (OpenSlide returns premultiplied ARGB).
cv::Mat openslide_level(openslide_t* slide, int level) {
  std::int64_t width = 0;
  std::int64_t height = 0;
  openslide_get_level_dimensions(slide, level, &width, &height);
  cv::Mat argb(static_cast<int>(height), static_cast<int>(width), CV_8UC4);
  openslide_read_region(slide, reinterpret_cast<std::uint32_t*>(argb.data), 0, 0, level, width,
                        height);
  cv::Mat rgb;
  cv::cvtColor(argb, rgb, cv::COLOR_BGRA2RGB);  // little-endian ARGB words are B, G, R, A bytes
  return rgb;
}

/// Page `page` of a TIFF through libvips, as an OpenCV matrix of its bands.
cv::Mat vips_page(const fs::path& path, int page) {
  static const bool initialised = VIPS_INIT("test_raster") == 0;
  EXPECT_TRUE(initialised);
  VipsImage* image = vips_image_new_from_file(path.c_str(), "page", page, nullptr);
  if (image == nullptr) {
    ADD_FAILURE() << "libvips cannot open page " << page << " of " << path;
    return {};
  }
  std::size_t bytes = 0;
  void* memory = vips_image_write_to_memory(image, &bytes);
  cv::Mat copy = cv::Mat(vips_image_get_height(image), vips_image_get_width(image),
                         CV_8UC(vips_image_get_bands(image)), memory)
                     .clone();
  g_free(memory);
  g_object_unref(image);
  return copy;
}

double max_difference(const cv::Mat& a, const cv::Mat& b) {
  if (a.size() != b.size() || a.type() != b.type()) {
    ADD_FAILURE() << "images differ in size or type";
    return 255.0;
  }
  double maximum = 0;
  cv::Mat difference;
  cv::absdiff(a, b, difference);
  cv::minMaxLoc(difference.reshape(1), nullptr, &maximum);
  return maximum;
}

PyramidTiffOptions options_for(TiffCompression compression, int tile = 256) {
  PyramidTiffOptions options;
  options.tile_size = tile;
  options.compression = compression;
  options.spacing = slidestream::Spacing{0.5, 0.5};
  options.description = "test_raster";
  return options;
}

}  // namespace

TEST(Raster, MortonOrderVisitsEveryTileOnceWithSiblingsTogether) {
  const Size grid{5, 3};
  const auto order = slidestream::tile_order(grid);
  ASSERT_EQ(order.size(), 15U);
  std::set<std::pair<std::int64_t, std::int64_t>> seen;
  for (const auto& cell : order) {
    EXPECT_TRUE(cell.x >= 0 && cell.x < 5 && cell.y >= 0 && cell.y < 3);
    seen.insert({cell.x, cell.y});
  }
  EXPECT_EQ(seen.size(), 15U);
  // The children of one parent follow each other: a parent changes only once they are done.
  std::set<std::pair<std::int64_t, std::int64_t>> finished_parents;
  for (std::size_t i = 1; i < order.size(); ++i) {
    const auto before = std::make_pair(order[i - 1].x / 2, order[i - 1].y / 2);
    const auto now = std::make_pair(order[i].x / 2, order[i].y / 2);
    if (before != now) {
      EXPECT_EQ(finished_parents.count(now), 0U) << "parent revisited";
      finished_parents.insert(before);
    }
  }
  EXPECT_EQ(order.front().x, 0);
  EXPECT_EQ(order.front().y, 0);
}

TEST(Raster, LosslessRgbPyramidReadsBackThroughOpenSlideAndLibvips) {
  TempDir folder;
  const fs::path path = folder / "rgb.tif";
  const cv::Mat image = test_image(1000, 700, 3, 1);
  write_image(path, image, options_for(TiffCompression::kDeflate));

  openslide_t* slide = openslide_open(path.c_str());
  ASSERT_NE(slide, nullptr);
  ASSERT_EQ(openslide_get_error(slide), nullptr);
  ASSERT_EQ(openslide_get_level_count(slide), 3);  // 1000x700, 500x350, 250x175 (<= 256)
  const std::int64_t widths[] = {1000, 500, 250};
  const std::int64_t heights[] = {700, 350, 175};
  for (int level = 0; level < 3; ++level) {
    std::int64_t width = 0;
    std::int64_t height = 0;
    openslide_get_level_dimensions(slide, level, &width, &height);
    EXPECT_EQ(width, widths[level]);
    EXPECT_EQ(height, heights[level]);
    EXPECT_NEAR(openslide_get_level_downsample(slide, level), std::ldexp(1.0, level), 1e-9);
  }
  EXPECT_EQ(max_difference(openslide_level(slide, 0), image), 0.0);
  // Levels are 2x2 means: the same as INTER_AREA over the whole (even-sized) image.
  cv::Mat level1;
  cv::resize(image, level1, cv::Size(500, 350), 0, 0, cv::INTER_AREA);
  EXPECT_EQ(max_difference(openslide_level(slide, 1), level1), 0.0);
  const char* resolution = openslide_get_property_value(slide, "tiff.XResolution");
  const char* unit = openslide_get_property_value(slide, "tiff.ResolutionUnit");
  ASSERT_NE(resolution, nullptr);
  ASSERT_NE(unit, nullptr);
  EXPECT_NEAR(std::stod(resolution), 20000.0, 0.01);  // 0.5 um/px = 20000 px/cm
  EXPECT_STREQ(unit, "centimeter");
  openslide_close(slide);

  EXPECT_EQ(max_difference(vips_page(path, 0), image), 0.0);
  const cv::Mat page2 = vips_page(path, 2);
  EXPECT_EQ(page2.cols, 250);
  EXPECT_EQ(page2.rows, 175);
  const auto reader = slidestream::open_slide(path);
  EXPECT_NEAR(reader->info().spacing.x_um, 0.5, 1e-4);
  EXPECT_NEAR(reader->info().spacing.y_um, 0.5, 1e-4);
}

TEST(Raster, GreyPyramidKeepsOneChannelAndItsLevelSpacing) {
  TempDir folder;
  const fs::path path = folder / "grey.tif";
  const cv::Mat image = test_image(1000, 700, 1, 2);
  PyramidTiffOptions options = options_for(TiffCompression::kLzw);
  options.spacing = slidestream::Spacing{0.25, 0.25};
  write_image(path, image, options);
  const cv::Mat page0 = vips_page(path, 0);
  ASSERT_EQ(page0.channels(), 1);
  EXPECT_EQ(max_difference(page0, image), 0.0);
  cv::Mat level1;
  cv::resize(image, level1, cv::Size(500, 350), 0, 0, cv::INTER_AREA);
  EXPECT_EQ(max_difference(vips_page(path, 1), level1), 0.0);
  // Each level's resolution tag holds its own spacing (0.25 um/px x 2^level).
  static const bool initialised = VIPS_INIT("test_raster") == 0;
  ASSERT_TRUE(initialised);
  for (int page = 0; page < 3; ++page) {
    VipsImage* level = vips_image_new_from_file(path.c_str(), "page", page, nullptr);
    ASSERT_NE(level, nullptr);
    // libvips reports resolution in px/mm.
    EXPECT_NEAR(1000.0 / level->Xres, 0.25 * std::ldexp(1.0, page), 1e-4) << "page " << page;
    g_object_unref(level);
  }
  openslide_t* slide = openslide_open(path.c_str());
  ASSERT_NE(slide, nullptr);
  EXPECT_EQ(openslide_get_level_count(slide), 3);
  openslide_close(slide);
}

TEST(Raster, JpegRgbPyramidIsCloseToTheInput) {
  TempDir folder;
  const fs::path path = folder / "rgb-jpeg.tif";
  const cv::Mat image = test_image(1000, 700, 3, 3);
  PyramidTiffOptions options = options_for(TiffCompression::kJpeg);
  options.jpeg_quality = 90;
  write_image(path, image, options);
  openslide_t* slide = openslide_open(path.c_str());
  ASSERT_NE(slide, nullptr);
  ASSERT_EQ(openslide_get_error(slide), nullptr);
  ASSERT_EQ(openslide_get_level_count(slide), 3);
  const double level0_psnr = slidestream::testing::psnr(openslide_level(slide, 0), image);
  EXPECT_GT(level0_psnr, 35.0);
  cv::Mat level1;
  cv::resize(image, level1, cv::Size(500, 350), 0, 0, cv::INTER_AREA);
  const double level1_psnr = slidestream::testing::psnr(openslide_level(slide, 1), level1);
  EXPECT_GT(level1_psnr, 35.0);
  std::cout << "JPEG Q90 PSNR: level 0 " << level0_psnr << " dB, level 1 " << level1_psnr
            << " dB\n";
  openslide_close(slide);
  EXPECT_GT(slidestream::testing::psnr(vips_page(path, 1), level1), 35.0);
}

TEST(Raster, ModeDownsamplingNeverCreatesNewLabels) {
  TempDir folder;
  const fs::path path = folder / "labels.tif";
  cv::Mat labels(700, 1000, CV_8UC1);
  std::mt19937_64 engine(4);
  const std::uint8_t values[] = {0, 3, 7};
  for (int y = 0; y < labels.rows; ++y) {
    for (int x = 0; x < labels.cols; ++x) {
      labels.at<std::uint8_t>(y, x) = values[engine() % 3];
    }
  }
  PyramidTiffOptions options = options_for(TiffCompression::kDeflate);
  options.downsample = PyramidTiffOptions::Downsample::kMode;
  write_image(path, labels, options);
  for (int page = 0; page < 3; ++page) {
    const cv::Mat level = vips_page(path, page);
    ASSERT_FALSE(level.empty());
    std::set<int> seen;
    for (int y = 0; y < level.rows; ++y) {
      for (int x = 0; x < level.cols; ++x) {
        seen.insert(level.at<std::uint8_t>(y, x));
      }
    }
    EXPECT_EQ(seen, (std::set<int>{0, 3, 7})) << "page " << page;
  }
  // A 2x2 block with a majority keeps it.
  cv::Mat block(256, 256, CV_8UC1, cv::Scalar(5));
  block.at<std::uint8_t>(0, 0) = 9;
  write_image(folder / "block.tif", block, options_for(TiffCompression::kNone, 128));
  PyramidTiffOptions mode = options_for(TiffCompression::kNone, 128);
  mode.downsample = PyramidTiffOptions::Downsample::kMode;
  write_image(folder / "block-mode.tif", block, mode);
  EXPECT_EQ(vips_page(folder / "block-mode.tif", 1).at<std::uint8_t>(0, 0), 5);
  EXPECT_NE(vips_page(folder / "block.tif", 1).at<std::uint8_t>(0, 0), 5);  // the mean blends
}

TEST(Raster, OutOfOrderTilesAndWrongSizesThrow) {
  TempDir folder;
  PyramidTiffWriter writer(folder / "order.tif", Size{1000, 700}, 3,
                           options_for(TiffCompression::kDeflate));
  const cv::Mat tile(256, 256, CV_8UC3, cv::Scalar(1, 2, 3));
  const auto code_of = [](const slidestream::Error& error) { return error.code(); };
  try {
    writer.write_tile(1, 0, tile);
    FAIL() << "an out-of-order tile was accepted";
  } catch (const slidestream::Error& error) {
    EXPECT_EQ(code_of(error), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(error.what()).find("expected (0, 0)"), std::string::npos);
  }
  EXPECT_THROW(writer.write_tile(0, 0, cv::Mat(100, 256, CV_8UC3)), slidestream::Error);
  EXPECT_THROW(writer.write_tile(0, 0, cv::Mat(256, 256, CV_8UC1)), slidestream::Error);
  EXPECT_THROW(writer.write_tile(0, 0, cv::Mat(256, 256, CV_16UC3)), slidestream::Error);
  EXPECT_THROW(writer.commit(), slidestream::Error);  // tiles missing
  writer.write_tile(0, 0, tile);
  writer.write_tile(1, 0, tile);
  EXPECT_THROW(writer.write_tile(1, 0, tile), slidestream::Error);  // twice
  // Edge tiles may come cropped or full-size.
  const slidestream::Rect edge = writer.tile_rect(3, 2);
  EXPECT_EQ(edge.width, 1000 - 3 * 256);
  EXPECT_EQ(edge.height, 700 - 2 * 256);
  EXPECT_THROW(PyramidTiffWriter(folder / "bad.tif", Size{10, 10}, 2, {}), slidestream::Error);
  PyramidTiffOptions bad_tile;
  bad_tile.tile_size = 100;
  EXPECT_THROW(PyramidTiffWriter(folder / "bad.tif", Size{10, 10}, 3, bad_tile),
               slidestream::Error);
}

TEST(Raster, DestroyingWithoutCommitLeavesNoFile) {
  TempDir folder;
  {
    PyramidTiffWriter writer(folder / "unfinished.tif", Size{1000, 700}, 3,
                             options_for(TiffCompression::kJpeg));
    const cv::Mat tile(256, 256, CV_8UC3, cv::Scalar(10, 20, 30));
    for (const auto& cell : std::vector<slidestream::Point>{{0, 0}, {1, 0}, {0, 1}, {1, 1}}) {
      writer.write_tile(cell.x, cell.y, tile);
    }
  }
  EXPECT_TRUE(fs::is_empty(folder.path()));
}

TEST(Raster, UnwritableFolderGivesOutputError) {
  TempDir folder;
  try {
    PyramidTiffWriter writer(folder / "missing" / "out.tif", Size{100, 100}, 3, {});
    FAIL() << "a missing folder was accepted";
  } catch (const slidestream::Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kOutputError);
  }
  if (::geteuid() == 0) {
    return;  // root writes into read-only folders; the missing folder above still ran
  }
  const fs::path locked = folder / "locked";
  fs::create_directory(locked);
  fs::permissions(locked, fs::perms::owner_read | fs::perms::owner_exec);
  try {
    PyramidTiffWriter writer(locked / "out.tif", Size{100, 100}, 3, {});
    ADD_FAILURE() << "a read-only folder was accepted";
  } catch (const slidestream::Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kOutputError);
  }
  fs::permissions(locked, fs::perms::owner_all);
}

/// The most bytes the writer held while writing a constant square image of `side` pixels.
std::size_t peak_held_bytes(const fs::path& path, std::int64_t side, int* levels) {
  // JPEG: a constant tile encodes fastest; the held bytes do not depend on the compression.
  PyramidTiffOptions options = options_for(TiffCompression::kJpeg, 512);
  PyramidTiffWriter writer(path, Size{side, side}, 1, options);
  *levels = writer.levels();
  const cv::Mat tile(512, 512, CV_8UC1, cv::Scalar(200));
  std::size_t peak = 0;
  slidestream::MortonWalker walker(writer.grid());
  slidestream::Point cell;
  while (walker.next(cell)) {
    writer.write_tile(cell.x, cell.y, tile);
    peak = std::max(peak, writer.held_bytes());
  }
  writer.commit();
  EXPECT_EQ(writer.held_bytes(), 0U);
  return peak;
}

TEST(Raster, HeldMemoryDependsOnLevelsNotOnImageArea) {
  TempDir folder;
  int small_levels = 0;
  int large_levels = 0;
  const std::size_t small = peak_held_bytes(folder / "small.tif", 4096, &small_levels);
  const std::size_t large = peak_held_bytes(folder / "large.tif", 16384, &large_levels);
  const std::size_t tile_bytes = 512 * 512;
  EXPECT_EQ(small_levels, 4);  // 4096 .. 512
  EXPECT_EQ(large_levels, 6);  // 16384 .. 512
  // At most one partial tile per coarser level, whatever the area (16x larger here).
  EXPECT_LE(small, static_cast<std::size_t>(small_levels - 1) * tile_bytes);
  EXPECT_LE(large, static_cast<std::size_t>(large_levels - 1) * tile_bytes);
  std::cout << "peak held: 4096^2 " << small << " B, 16384^2 " << large << " B\n";
  openslide_t* slide = openslide_open((folder / "large.tif").c_str());
  ASSERT_NE(slide, nullptr);
  EXPECT_EQ(openslide_get_level_count(slide), 6);
  openslide_close(slide);
}
