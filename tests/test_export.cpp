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

std::vector<LabelClass> two_classes() {
  return {{"Tumor", 1, {200, 0, 0}}, {"Stroma", 2, {0, 150, 0}}};
}

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
  const auto regions = trace_regions(labels, two_classes(), known_geometry(1.0));
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
  const auto regions = trace_regions(known_shapes(), two_classes(), known_geometry(1.0));
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
    const auto regions = trace_regions(labels, two_classes(), options);
    const cv::Mat back = rasterize_back(to_annotations(regions), labels, options, two_classes());
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
  const auto regions = trace_regions(known_shapes(), two_classes(), options);
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
  EXPECT_EQ(error_code_of([&] { trace_regions(known_shapes(), two_classes(), options); }),
            ErrorCode::kInvalidArgument);
  options = known_geometry(1.0);
  options.level0_spacing = {};
  EXPECT_EQ(error_code_of([&] { trace_regions(known_shapes(), two_classes(), options); }),
            ErrorCode::kInvalidArgument);
  const cv::Mat wide(10, 10, CV_16UC1, cv::Scalar(1));
  EXPECT_EQ(error_code_of([&] { trace_regions(wide, two_classes(), known_geometry(1.0)); }),
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
  const auto regions = trace_regions(labels, two_classes(), known_geometry(1.0));
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
  double area_um2 = 0;
  for (const TracedRegion& region : regions) {
    area_um2 += region.area_um2;
  }
  // Areas come from pixel counts net of holes, whatever the simplification: they add up exactly.
  EXPECT_DOUBLE_EQ(area_um2, cv::countNonZero(nuclei) * 0.0625) << first;
}

// --- GeoJSON and ASAP XML ------------------------------------------------------------------------

std::string read_bytes(const fs::path& path) {
  std::ifstream stream(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(stream), std::istreambuf_iterator<char>()};
}

/// Per-class IoU of two label rasters; the smallest over `classes`.
double worst_class_iou(const cv::Mat& a, const cv::Mat& b, const std::vector<LabelClass>& classes) {
  double worst = 1.0;
  for (const LabelClass& label_class : classes) {
    worst = std::min(worst, iou(a == label_class.value, b == label_class.value));
  }
  return worst;
}

TEST(GeoJson, WrittenRegionsReadBackOntoTheLabels) {
  TempDir folder;
  const cv::Mat labels = known_shapes();
  for (const double tolerance : {0.0, 0.5}) {
    const TraceOptions options = known_geometry(tolerance);
    write_geojson(trace_regions(labels, two_classes(), options), folder / "regions.geojson");
    const cv::Mat back = rasterize_back(read_annotations(folder / "regions.geojson"), labels,
                                        options, two_classes());
    if (tolerance == 0.0) {
      EXPECT_EQ(cv::countNonZero(back != labels), 0);
    } else {
      EXPECT_GT(worst_class_iou(back, labels, two_classes()), 0.98);
    }
  }
}

TEST(GeoJson, HasTheQuPathFieldsAndClosedRings) {
  TempDir folder;
  const auto regions = trace_regions(known_shapes(), two_classes(), known_geometry(1.0));
  write_geojson(regions, folder / "regions.geojson");
  const auto json = nlohmann::json::parse(read_bytes(folder / "regions.geojson"));
  EXPECT_EQ(json.at("type"), "FeatureCollection");
  const auto& features = json.at("features");
  ASSERT_EQ(features.size(), regions.size());
  for (std::size_t i = 0; i < features.size(); ++i) {
    const auto& feature = features[i];
    EXPECT_EQ(feature.at("type"), "Feature");
    EXPECT_EQ(feature.at("geometry").at("type"), "Polygon");
    const auto& properties = feature.at("properties");
    EXPECT_EQ(properties.at("objectType"), "annotation");
    EXPECT_EQ(properties.at("isLocked"), false);
    EXPECT_EQ(properties.at("classification").at("name"), regions[i].class_name);
    const cv::Vec3b& colour = regions[i].colour;
    EXPECT_EQ(properties.at("classification").at("color"),
              nlohmann::json::array({colour[0], colour[1], colour[2]}));
    EXPECT_NEAR(properties.at("measurements").at("Area um^2").get<double>(), regions[i].area_um2,
                0.01);
    const auto& rings = feature.at("geometry").at("coordinates");
    ASSERT_EQ(rings.size(), regions[i].rings.size());
    for (const auto& ring : rings) {
      EXPECT_EQ(ring.front(), ring.back());
    }
  }
  EXPECT_EQ(features[0].at("geometry").at("coordinates")[0][0],
            nlohmann::json::array({1160.0, 2160.0}));
}

TEST(GeoJson, TheSameRasterGivesTheSameBytes) {
  TempDir folder;
  const cv::Mat labels = known_shapes();
  write_geojson(trace_regions(labels, two_classes(), known_geometry(1.0)), folder / "a.geojson");
  write_geojson(trace_regions(labels.clone(), two_classes(), known_geometry(1.0)),
                folder / "b.geojson");
  EXPECT_EQ(read_bytes(folder / "a.geojson"), read_bytes(folder / "b.geojson"));
  EXPECT_NE(read_bytes(folder / "a.geojson").find("51200.00"), std::string::npos);
}

TEST(GeoJson, AnUnwritablePathIsAnOutputError) {
  const auto regions = trace_regions(known_shapes(), two_classes(), known_geometry(1.0));
  EXPECT_EQ(error_code_of([&] { write_geojson(regions, "/nonexistent/folder/a.geojson"); }),
            ErrorCode::kOutputError);
  EXPECT_EQ(error_code_of([&] { write_asap_xml(regions, "/nonexistent/folder/a.xml"); }),
            ErrorCode::kOutputError);
}

/// ASAP annotations rebuilt per class, even-odd over the class's polygons and its hole group's
/// polygons (the rule documented for write_asap_xml).
cv::Mat rasterize_asap(const std::vector<Annotation>& annotations, const cv::Mat& labels,
                       const TraceOptions& options) {
  std::vector<Annotation> per_class;
  for (const LabelClass& label_class : two_classes()) {
    Annotation merged{label_class.name, {}, 0};
    for (const Annotation& annotation : annotations) {
      if (annotation.class_name == label_class.name ||
          annotation.class_name == asap_hole_group(label_class.name)) {
        EXPECT_EQ(annotation.rings.size(), 1u);  // ASAP has no holes
        merged.rings.push_back(annotation.rings[0]);
      }
    }
    if (!merged.rings.empty()) {
      per_class.push_back(merged);
    }
  }
  return rasterize_back(per_class, labels, options, two_classes());
}

TEST(AsapXml, WrittenRegionsReadBackWithHolesAsTheirOwnGroup) {
  TempDir folder;
  const cv::Mat labels = known_shapes();
  for (const double tolerance : {0.0, 0.5}) {
    const TraceOptions options = known_geometry(tolerance);
    write_asap_xml(trace_regions(labels, two_classes(), options), folder / "regions.xml");
    const auto annotations = read_annotations(folder / "regions.xml");
    ASSERT_EQ(annotations.size(), 5u);  // 4 regions + 1 hole
    EXPECT_EQ(std::count_if(annotations.begin(), annotations.end(),
                            [](const Annotation& a) { return a.class_name == "Tumor hole"; }),
              1);
    const cv::Mat back = rasterize_asap(annotations, labels, options);
    if (tolerance == 0.0) {
      EXPECT_EQ(cv::countNonZero(back != labels), 0);
    } else {
      EXPECT_GT(worst_class_iou(back, labels, two_classes()), 0.98);
    }
  }
  const std::string xml = read_bytes(folder / "regions.xml");
  EXPECT_NE(xml.find(R"(<Group Name="Tumor" PartOfGroup="None" Color="#C80000")"),
            std::string::npos);
  EXPECT_NE(xml.find(R"(<Group Name="Tumor hole" PartOfGroup="None")"), std::string::npos);
  EXPECT_NE(xml.find(R"(Type="Polygon" PartOfGroup="Stroma" Color="#009600")"), std::string::npos);
}

// --- overlay -------------------------------------------------------------------------------------

cv::Mat gradient_thumbnail(int width, int height) {
  cv::Mat thumbnail(height, width, CV_8UC3);
  for (int row = 0; row < height; ++row) {
    for (int col = 0; col < width; ++col) {
      thumbnail.at<cv::Vec3b>(row, col) = cv::Vec3b(static_cast<std::uint8_t>(col % 256),
                                                    static_cast<std::uint8_t>(row % 256), 180);
    }
  }
  return thumbnail;
}

TEST(Overlay, ClassColoursBlendAtLabelledPixelsOnly) {
  const cv::Mat thumbnail = gradient_thumbnail(200, 160);
  const cv::Mat labels = known_shapes();
  OverlayOptions options;
  options.classes = two_classes();
  options.alpha = 0.5;
  const cv::Mat overlay = render_overlay(thumbnail, labels, options);
  ASSERT_GE(overlay.rows, thumbnail.rows);
  ASSERT_GT(overlay.cols, thumbnail.cols);                  // the legend panel
  const cv::Vec3b under = thumbnail.at<cv::Vec3b>(30, 30);  // tumour pixel
  const cv::Vec3b drawn = overlay.at<cv::Vec3b>(30, 30);
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(drawn[c], 0.5 * under[c] + 0.5 * two_classes()[0].colour[c], 1.0) << c;
  }
  EXPECT_EQ(overlay.at<cv::Vec3b>(5, 5), thumbnail.at<cv::Vec3b>(5, 5));      // background
  EXPECT_EQ(overlay.at<cv::Vec3b>(50, 42), thumbnail.at<cv::Vec3b>(50, 42));  // in the hole
  const cv::Mat image_part = overlay(cv::Rect(0, 0, thumbnail.cols, thumbnail.rows));
  EXPECT_GT(cv::countNonZero(image_part.reshape(1) != thumbnail.reshape(1)), 0);
}

TEST(Overlay, TheLegendShowsEachClassSwatchAndText) {
  const cv::Mat thumbnail = gradient_thumbnail(300, 200);
  OverlayOptions options;
  options.classes = two_classes();
  options.legend_values = {1.25, 0.5};
  cv::Mat labels = cv::Mat::zeros(200, 300, CV_8UC1);
  const cv::Mat overlay = render_overlay(thumbnail, labels, options);
  ASSERT_GT(overlay.cols, thumbnail.cols);
  const cv::Mat panel =
      overlay(cv::Rect(thumbnail.cols, 0, overlay.cols - thumbnail.cols, overlay.rows));
  for (const LabelClass& label_class : two_classes()) {
    cv::Mat swatch;
    cv::inRange(
        panel, cv::Scalar(label_class.colour[0], label_class.colour[1], label_class.colour[2]),
        cv::Scalar(label_class.colour[0], label_class.colour[1], label_class.colour[2]), swatch);
    EXPECT_GT(cv::countNonZero(swatch), 100) << label_class.name;
  }
  cv::Mat dark;
  cv::inRange(panel, cv::Scalar(0, 0, 0), cv::Scalar(60, 60, 60), dark);
  EXPECT_GT(cv::countNonZero(dark), 200);  // text and swatch borders
  // Without a legend the overlay is the thumbnail's size, and unlabelled it is the thumbnail.
  options.draw_legend = false;
  const cv::Mat plain = render_overlay(thumbnail, labels, options);
  ASSERT_EQ(plain.size(), thumbnail.size());
  EXPECT_EQ(cv::countNonZero(plain.reshape(1) != thumbnail.reshape(1)), 0);
}

TEST(Overlay, LegendTextScalesWithTheThumbnail) {
  OverlayOptions options;
  options.classes = two_classes();
  int previous_height = 0;
  for (const int width : {300, 1200, 4000}) {
    const cv::Mat thumbnail(width * 2 / 3, width, CV_8UC3, cv::Scalar(255, 255, 255));
    const cv::Mat labels = cv::Mat::zeros(thumbnail.size(), CV_8UC1);
    const cv::Mat overlay = render_overlay(thumbnail, labels, options);
    const cv::Mat panel = overlay(cv::Rect(width, 0, overlay.cols - width, overlay.rows));
    cv::Mat swatch;
    cv::inRange(panel, cv::Scalar(200, 0, 0), cv::Scalar(200, 0, 0), swatch);
    const cv::Rect box = cv::boundingRect(swatch);
    EXPECT_GE(box.height, 14) << width;                    // legible at 300 px
    EXPECT_LE(panel.cols, std::max(width, 200)) << width;  // never wider than the image
    EXPECT_GT(box.height, previous_height) << width;
    previous_height = box.height;
  }
}

TEST(Overlay, OutlinesDrawOnlyRegionBorders) {
  const cv::Mat thumbnail = gradient_thumbnail(200, 160);
  OverlayOptions options;
  options.classes = two_classes();
  options.outline_only = true;
  options.outline_thickness_px = 2;
  options.draw_legend = false;
  const cv::Mat overlay = render_overlay(thumbnail, known_shapes(), options);
  EXPECT_EQ(overlay.at<cv::Vec3b>(21, 50), two_classes()[0].colour);          // square's border
  EXPECT_EQ(overlay.at<cv::Vec3b>(30, 30), thumbnail.at<cv::Vec3b>(30, 30));  // its inside
  EXPECT_EQ(overlay.at<cv::Vec3b>(5, 5), thumbnail.at<cv::Vec3b>(5, 5));
}

TEST(Overlay, HeatmapsAreTransparentBelowTheThresholdAndHaveAColourBar) {
  const cv::Mat thumbnail = gradient_thumbnail(256, 100);
  cv::Mat probabilities(100, 256, CV_32FC1);
  for (int col = 0; col < 256; ++col) {
    probabilities.col(col).setTo(col / 255.0);
  }
  OverlayOptions options;
  options.mode = OverlayMode::kHeatmap;
  options.colormap = parse_colormap("Magma");
  options.threshold = 0.5;
  options.alpha = 1.0;
  const cv::Mat overlay = render_overlay(thumbnail, probabilities, options);
  EXPECT_EQ(overlay.at<cv::Vec3b>(50, 100), thumbnail.at<cv::Vec3b>(50, 100));  // 0.39
  cv::Mat one(1, 1, CV_8UC1, cv::Scalar(255));
  cv::Mat bgr;
  cv::applyColorMap(one, bgr, cv::COLORMAP_MAGMA);
  const cv::Vec3b top = bgr.at<cv::Vec3b>(0, 0);
  EXPECT_EQ(overlay.at<cv::Vec3b>(50, 255), cv::Vec3b(top[2], top[1], top[0]));
  // The same from uint8 probabilities.
  cv::Mat bytes;
  probabilities.convertTo(bytes, CV_8U, 255.0);
  const cv::Mat from_bytes = render_overlay(thumbnail, bytes, options);
  EXPECT_EQ(cv::countNonZero(from_bytes.reshape(1) != overlay.reshape(1)), 0);
  // The colour bar holds the colormap's colours near 1.0.
  const cv::Mat panel = overlay(cv::Rect(256, 0, overlay.cols - 256, overlay.rows));
  cv::Mat near_one(1, 1, CV_8UC1, cv::Scalar(250));
  cv::applyColorMap(near_one, bgr, cv::COLORMAP_MAGMA);
  const cv::Vec3b high = bgr.at<cv::Vec3b>(0, 0);
  cv::Mat bar;
  cv::inRange(panel, cv::Scalar(high[2] - 3, high[1] - 3, high[0] - 3),
              cv::Scalar(high[2] + 3, high[1] + 3, high[0] + 3), bar);
  EXPECT_GT(cv::countNonZero(bar), 10);
}

TEST(Overlay, ColormapNamesParseAndUnknownOnesAreInvalid) {
  for (const char* name : {"viridis", "magma", "inferno", "jet", "turbo"}) {
    EXPECT_EQ(colormap_name(parse_colormap(name)), name);
  }
  try {
    parse_colormap("rainbow");
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(error.what()).find("viridis, magma, inferno, jet, turbo"),
              std::string::npos);
  }
}

TEST(Overlay, BadInputsAreInvalidAndUnwritablePathsAreOutputErrors) {
  const cv::Mat thumbnail = gradient_thumbnail(200, 160);
  OverlayOptions options;
  options.classes = two_classes();
  options.alpha = 1.5;
  EXPECT_EQ(error_code_of([&] { render_overlay(thumbnail, known_shapes(), options); }),
            ErrorCode::kInvalidArgument);
  options.alpha = 0.5;
  const cv::Mat other_shape = cv::Mat::zeros(50, 200, CV_8UC1);
  EXPECT_EQ(error_code_of([&] { render_overlay(thumbnail, other_shape, options); }),
            ErrorCode::kInvalidArgument);
  const cv::Mat overlay = render_overlay(thumbnail, known_shapes(), options);
  EXPECT_EQ(error_code_of([&] { write_png_atomically(overlay, "/nonexistent/dir/o.png"); }),
            ErrorCode::kOutputError);
  TempDir folder;
  write_png_atomically(overlay, folder / "overlay.png");
  cv::Mat read = cv::imread((folder / "overlay.png").string(), cv::IMREAD_COLOR);
  ASSERT_EQ(read.size(), overlay.size());
  cv::cvtColor(read, read, cv::COLOR_BGR2RGB);
  EXPECT_EQ(cv::countNonZero(read.reshape(1) != overlay.reshape(1)), 0);
}

}  // namespace
}  // namespace slidestream
