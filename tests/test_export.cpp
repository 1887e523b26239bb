// Export: tracing label rasters into polygons with holes (exact pixel corners, level-0
// coordinates, areas), the GeoJSON and ASAP XML writers read back by the project's own readers,
// and the overlay PNG (class colours, heatmaps, legends).
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>
#include <set>

#include "slidestream/annotations.hpp"
#include "slidestream/core.hpp"
#include "slidestream/export.hpp"
#include "test_support.hpp"

namespace slidestream {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

template <typename Action>
ErrorCode error_code_of(Action action) {
  try {
    action();
  } catch (const Error& error) {
    return error.code();
  }
  return ErrorCode::kInternal;
}

const std::vector<LabelClass> kClasses = {{"Tumor", 1, {200, 0, 0}}, {"Stroma", 2, {0, 150, 0}}};

/// 200 x 160 labels: a tumour square [20, 80)^2 with a hole [40, 60)^2 that holds a stroma
/// island [45, 55)^2, a stroma rectangle [100, 150) x [20, 50), and a tilted tumour ellipse.
cv::Mat known_shapes() {
  cv::Mat labels = cv::Mat::zeros(160, 200, CV_8UC1);
  labels(cv::Rect(20, 20, 60, 60)).setTo(1);
  labels(cv::Rect(40, 40, 20, 20)).setTo(0);
  labels(cv::Rect(45, 45, 10, 10)).setTo(2);
  labels(cv::Rect(100, 20, 50, 30)).setTo(2);
  cv::ellipse(labels, cv::Point(140, 110), cv::Size(40, 15), 35, 0, 360, cv::Scalar(1), cv::FILLED);
  return labels;
}

/// Raster geometry of the tests: origin (1000, 2000) level-0 px, 8 level-0 px per raster pixel,
/// 0.5 um/px at level 0, so one raster pixel is 16 um^2.
TraceOptions known_geometry(double tolerance_px) {
  TraceOptions options;
  options.origin_l0 = {1000.0, 2000.0};
  options.downsample_x = 8.0;
  options.downsample_y = 8.0;
  options.level0_spacing = {0.5, 0.5};
  options.simplify_tolerance_px = tolerance_px;
  return options;
}

/// The traced regions filled back at the raster's own geometry.
cv::Mat rasterize_back(const std::vector<Annotation>& annotations, const cv::Mat& labels,
                       const TraceOptions& options, const std::vector<LabelClass>& classes) {
  LabelMap label_map;
  label_map.classes = classes;
  label_map.ignore_unknown = true;
  const RectF fov{options.origin_l0.x, options.origin_l0.y, labels.cols * options.downsample_x,
                  labels.rows * options.downsample_y};
  return rasterize_annotations(annotations, label_map, fov, {labels.cols, labels.rows});
}

double iou(const cv::Mat& a, const cv::Mat& b) {
  const double both = cv::countNonZero(a & b);
  const double either = cv::countNonZero(a | b);
  return either == 0 ? 1.0 : both / either;
}

// --- tracing -------------------------------------------------------------------------------------

TEST(Trace, KnownShapesGiveTheirRegionsHolesAndAreas) {
  const cv::Mat labels = known_shapes();
  const auto regions = trace_regions(labels, kClasses, known_geometry(1.0));
  ASSERT_EQ(regions.size(), 4u);
  // Sorted by class, then by first pixel: tumour square, tumour ellipse, stroma rectangle,
  // stroma island.
  EXPECT_EQ(regions[0].class_name, "Tumor");
  EXPECT_EQ(regions[1].class_name, "Tumor");
  EXPECT_EQ(regions[2].class_name, "Stroma");
  EXPECT_EQ(regions[3].class_name, "Stroma");
  EXPECT_EQ(regions[0].colour, cv::Vec3b(200, 0, 0));
  EXPECT_EQ(regions[0].hole_count, 1);
  EXPECT_EQ(regions[0].rings.size(), 2u);
  EXPECT_EQ(regions[1].hole_count, 0);
  EXPECT_EQ(regions[2].hole_count, 0);
  EXPECT_EQ(regions[3].hole_count, 0);
  constexpr double kUm2PerPixel = 16.0;
  EXPECT_DOUBLE_EQ(regions[0].area_um2, (60 * 60 - 20 * 20) * kUm2PerPixel);
  EXPECT_DOUBLE_EQ(regions[2].area_um2, 50 * 30 * kUm2PerPixel);
  EXPECT_DOUBLE_EQ(regions[3].area_um2, 10 * 10 * kUm2PerPixel);
  cv::Mat ellipse = cv::Mat::zeros(labels.size(), CV_8UC1);
  cv::ellipse(ellipse, cv::Point(140, 110), cv::Size(40, 15), 35, 0, 360, cv::Scalar(1),
              cv::FILLED);
  EXPECT_DOUBLE_EQ(regions[1].area_um2, cv::countNonZero(ellipse) * kUm2PerPixel);
}

TEST(Trace, ASquareMapsBackToExactlyItsLevel0Square) {
  const auto regions = trace_regions(known_shapes(), kClasses, known_geometry(1.0));
  ASSERT_GE(regions.size(), 3u);
  // Raster [20, 80)^2 -> level 0 [1000 + 160, 1000 + 640) x [2000 + 160, 2000 + 640).
  const std::set<std::pair<double, double>> outer(
      {{1160, 2160}, {1640, 2160}, {1640, 2640}, {1160, 2640}});
  const auto& square = regions[0].rings;
  ASSERT_EQ(square[0].size(), 4u);
  for (const cv::Point2d& vertex : square[0]) {
    EXPECT_EQ(outer.count({vertex.x, vertex.y}), 1u) << vertex;
  }
  const std::set<std::pair<double, double>> hole(
      {{1320, 2320}, {1480, 2320}, {1480, 2480}, {1320, 2480}});
  ASSERT_EQ(square[1].size(), 4u);
  for (const cv::Point2d& vertex : square[1]) {
    EXPECT_EQ(hole.count({vertex.x, vertex.y}), 1u) << vertex;
  }
  EXPECT_EQ(regions[0].first_corner_l0, cv::Point2d(1160, 2160));
  // Stroma rectangle [100, 150) x [20, 50).
  const std::set<std::pair<double, double>> rectangle(
      {{1800, 2160}, {2200, 2160}, {2200, 2400}, {1800, 2400}});
  ASSERT_EQ(regions[2].rings[0].size(), 4u);
  for (const cv::Point2d& vertex : regions[2].rings[0]) {
    EXPECT_EQ(rectangle.count({vertex.x, vertex.y}), 1u) << vertex;
  }
}

TEST(Trace, UnsimplifiedPolygonsFillBackExactlyOnRandomMasks) {
  std::mt19937 random(7);
  std::uniform_int_distribution<int> value(0, 2);
  for (int trial = 0; trial < 40; ++trial) {
    // Salt-and-pepper noise (single pixels, diagonal contacts, 1-px lines) and smoothed blobs.
    cv::Mat labels(37 + trial, 53, CV_8UC1);
    for (int row = 0; row < labels.rows; ++row) {
      for (int col = 0; col < labels.cols; ++col) {
        labels.at<std::uint8_t>(row, col) = static_cast<std::uint8_t>(value(random));
      }
    }
    if (trial % 2 == 1) {
      cv::medianBlur(labels, labels, 3);
    }
    TraceOptions options = known_geometry(0.0);
    options.origin_l0 = {-13.0, 7.0};
    options.downsample_x = 3.0;
    options.downsample_y = 2.0;
    const auto regions = trace_regions(labels, kClasses, options);
    const cv::Mat back = rasterize_back(to_annotations(regions), labels, options, kClasses);
    ASSERT_EQ(cv::countNonZero(back != labels), 0) << "trial " << trial;
    double area = 0;
    for (const TracedRegion& region : regions) {
      area += region.area_um2;
    }
    EXPECT_DOUBLE_EQ(area, cv::countNonZero(labels) * 3.0 * 2.0 * 0.25) << "trial " << trial;
  }
}

TEST(Trace, MinimumAreasDropSmallRegionsAndFillSmallHoles) {
  TraceOptions options = known_geometry(1.0);
  options.min_area_um2 = 100 * 16.0 + 1;  // the 10 x 10 island and smaller go
  options.min_hole_area_um2 = 400 * 16.0 + 1;
  const auto regions = trace_regions(known_shapes(), kClasses, options);
  ASSERT_EQ(regions.size(), 3u);
  EXPECT_EQ(regions[0].hole_count, 0);
  EXPECT_DOUBLE_EQ(regions[0].area_um2, 60 * 60 * 16.0);
  for (const TracedRegion& region : regions) {
    EXPECT_GE(region.area_um2, options.min_area_um2);
  }
}

TEST(Trace, BadOptionsAndRastersAreInvalidArguments) {
  TraceOptions options = known_geometry(1.0);
  options.downsample_x = 0;
  EXPECT_EQ(error_code_of([&] { trace_regions(known_shapes(), kClasses, options); }),
            ErrorCode::kInvalidArgument);
  options = known_geometry(1.0);
  options.level0_spacing = {};
  EXPECT_EQ(error_code_of([&] { trace_regions(known_shapes(), kClasses, options); }),
            ErrorCode::kInvalidArgument);
  const cv::Mat wide(10, 10, CV_16UC1, cv::Scalar(1));
  EXPECT_EQ(error_code_of([&] { trace_regions(wide, kClasses, known_geometry(1.0)); }),
            ErrorCode::kInvalidArgument);
}

TEST(Trace, ALargeRasterTracesQuickly) {
  // 8000 x 8000 with thousands of blobs: the documented upper size of a vector raster.
  cv::Mat labels = cv::Mat::zeros(8000, 8000, CV_8UC1);
  std::mt19937 random(3);
  std::uniform_int_distribution<int> position(0, 7999);
  std::uniform_int_distribution<int> radius(3, 60);
  for (int blob = 0; blob < 4000; ++blob) {
    cv::circle(labels, {position(random), position(random)}, radius(random),
               cv::Scalar(1 + blob % 2), cv::FILLED);
  }
  const auto start = std::chrono::steady_clock::now();
  const auto regions = trace_regions(labels, kClasses, known_geometry(1.0));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GT(regions.size(), 1000u);
  EXPECT_LT(seconds, 10.0) << "8000 x 8000 took " << seconds << " s";
}

TEST(Trace, MonusegInstancesGiveOneRegionPerConnectedComponent) {
  SLIDESTREAM_REQUIRE_DATA(folder, "labeled/monuseg2018/train/labels");
  fs::path first;
  for (const auto& entry : fs::directory_iterator(folder)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 9 && name.substr(name.size() - 9) == "_inst.png" &&
        (first.empty() || entry.path() < first)) {
      first = entry.path();
    }
  }
  if (first.empty()) {
    GTEST_SKIP() << "no *_inst.png in " << folder;
  }
  const cv::Mat instances = cv::imread(first.string(), cv::IMREAD_UNCHANGED);
  ASSERT_FALSE(instances.empty()) << first;
  cv::Mat nuclei;
  cv::compare(instances, 0, nuclei, cv::CMP_GT);
  nuclei.setTo(1, nuclei);
  cv::Mat components;
  const int component_count = cv::connectedComponents(nuclei, components, 8) - 1;
  TraceOptions options;
  options.level0_spacing = {0.25, 0.25};
  options.simplify_tolerance_px = 0.5;
  const auto regions = trace_regions(nuclei, {{"nucleus", 1, {255, 0, 0}}}, options);
  EXPECT_GT(component_count, 100) << first;
  EXPECT_NEAR(static_cast<double>(regions.size()), component_count, 0.01 * component_count)
      << first;
  const cv::Mat back =
      rasterize_back(to_annotations(regions), nuclei, options, {{"nucleus", 1, {255, 0, 0}}});
  EXPECT_GT(iou(back, nuclei), 0.95) << first;
}

}  // namespace
}  // namespace slidestream
