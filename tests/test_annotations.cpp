// Annotations: GeoJSON/ASAP/ImageScope readers, rasterization against the synthetic truth,
// MoNuSeg's ImageScope XML against its instance maps, and malformed input.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <opencv2/imgcodecs.hpp>

#include "slidestream/annotations.hpp"
#include "slidestream/core.hpp"
#include "test_support.hpp"

namespace slidestream {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream stream(path);
  stream << text;
}

LabelMap stroma_tumour_map() {
  LabelMap labels;
  labels.classes = {{"Stroma", 1, {150, 200, 150}}, {"Tumor", 2, {200, 0, 0}}};
  return labels;
}

LabelMap one_class_map(const std::string& name) {
  LabelMap labels;
  labels.classes = {{name, 1, {255, 0, 0}}};
  return labels;
}

/// The ErrorCode and message of what `action` throws (kInternal/"" when it throws nothing).
template <typename Action>
std::pair<ErrorCode, std::string> error_of(Action action) {
  try {
    action();
  } catch (const Error& error) {
    return {error.code(), error.what()};
  }
  return {ErrorCode::kInternal, ""};
}

double dice(const cv::Mat& a, const cv::Mat& b) {
  const double both = cv::countNonZero(a & b);
  const double total = cv::countNonZero(a) + cv::countNonZero(b);
  return total == 0 ? 1.0 : 2.0 * both / total;
}

constexpr const char* kSquareWithHole = R"({"type": "FeatureCollection", "features": [
  {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [
    [[10, 10], [30, 10], [30, 30], [10, 30], [10, 10]],
    [[15, 15], [15, 25], [25, 25], [25, 15], [15, 15]]]},
   "properties": {"objectType": "annotation", "classification": {"name": "Tumor"}}}]})";

// --- synthetic slide ---------------------------------------------------------------------------

SynthOptions annotated_slide_options() {
  SynthOptions options;
  options.size = Size{1536, 1024};
  options.compression = "deflate";
  return options;
}

TEST(SyntheticAnnotations, LevelZeroRasterAgreesWithThePixelCentreTruth) {
  const SynthOptions options = annotated_slide_options();
  const fs::path slide = testing::synthetic_slide("annot", options);
  const auto annotations = read_annotations(fs::path(slide).replace_extension(".geojson"));
  ASSERT_FALSE(annotations.empty());
  const SynthLayout layout = make_synth_layout(options);
  std::int64_t agree = 0;
  std::int64_t total = 0;
  std::int64_t labelled = 0;
  for (const Rect& window :
       {Rect{0, 0, 512, 512}, Rect{500, 300, 600, 400}, Rect{1024, 512, 512, 512}}) {
    const cv::Mat raster = rasterize_annotations(
        annotations, stroma_tumour_map(),
        RectF{double(window.x), double(window.y), double(window.width), double(window.height)},
        Size{window.width, window.height});
    for (int r = 0; r < raster.rows; ++r) {
      for (int c = 0; c < raster.cols; ++c) {
        const auto truth =
            static_cast<std::uint8_t>(synth_class_at(layout, window.x + c, window.y + r));
        agree += raster.at<std::uint8_t>(r, c) == truth;
        labelled += truth != 0;
        ++total;
      }
    }
  }
  EXPECT_GT(labelled, total / 10);  // the windows hold tissue, so agreement means something
  EXPECT_GT(double(agree) / double(total), 0.999);
}

TEST(SyntheticAnnotations, FourTimesCoarserRasterAgreesWithTheTruthAtOutputCentres) {
  const fs::path slide = testing::synthetic_slide("annot", annotated_slide_options());
  const auto annotations = read_annotations(fs::path(slide).replace_extension(".geojson"));
  const cv::Mat truth =
      cv::imread(fs::path(slide).replace_extension(".truth.tif").string(), cv::IMREAD_UNCHANGED);
  ASSERT_EQ(truth.type(), CV_8UC1);
  const RectF fov{100, 60, 1400, 960};
  const Size size{350, 240};
  const cv::Mat raster = rasterize_annotations(annotations, stroma_tumour_map(), fov, size);
  std::int64_t agree = 0;
  for (int r = 0; r < raster.rows; ++r) {
    for (int c = 0; c < raster.cols; ++c) {
      const int x = static_cast<int>(fov.x + (c + 0.5) * 4);
      const int y = static_cast<int>(fov.y + (r + 0.5) * 4);
      agree += raster.at<std::uint8_t>(r, c) == truth.at<std::uint8_t>(y, x);
    }
  }
  EXPECT_GT(cv::countNonZero(raster), raster.total() / 10);
  EXPECT_GT(double(agree) / double(raster.total()), 0.99);
}

// --- geometry and priority ---------------------------------------------------------------------

TEST(Rasterize, AHoleStaysBackgroundAndTheRingIsFilled) {
  const TempDir dir;
  write_text(dir / "hole.geojson", kSquareWithHole);
  const auto annotations = read_annotations(dir / "hole.geojson");
  ASSERT_EQ(annotations.size(), 1u);
  EXPECT_EQ(annotations[0].rings.size(), 2u);
  const cv::Mat raster =
      rasterize_annotations(annotations, one_class_map("Tumor"), RectF{0, 0, 40, 40}, {40, 40});
  EXPECT_EQ(raster.at<std::uint8_t>(20, 20), 0);  // hole centre
  EXPECT_EQ(raster.at<std::uint8_t>(12, 12), 1);  // ring
  EXPECT_EQ(raster.at<std::uint8_t>(27, 20), 1);
  EXPECT_EQ(raster.at<std::uint8_t>(5, 5), 0);  // outside
  // Exactly 20x20 minus 10x10 pixel centres lie inside.
  EXPECT_EQ(cv::countNonZero(raster), 400 - 100);
}

TEST(Rasterize, TheClassListedLaterInTheMapWinsWhereClassesOverlap) {
  const std::vector<Annotation> annotations = {
      {"B", {{{0, 0}, {20, 0}, {20, 20}, {0, 20}}}, 0},
      {"A", {{{10, 10}, {30, 10}, {30, 30}, {10, 30}}}, 1}};
  LabelMap labels;
  labels.classes = {{"A", 1, {}}, {"B", 2, {}}};
  cv::Mat raster = rasterize_annotations(annotations, labels, RectF{0, 0, 40, 40}, {40, 40});
  EXPECT_EQ(raster.at<std::uint8_t>(15, 15), 2);
  EXPECT_EQ(raster.at<std::uint8_t>(25, 25), 1);
  EXPECT_EQ(raster.at<std::uint8_t>(5, 5), 2);
  labels.classes = {{"B", 2, {}}, {"A", 1, {}}};
  raster = rasterize_annotations(annotations, labels, RectF{0, 0, 40, 40}, {40, 40});
  EXPECT_EQ(raster.at<std::uint8_t>(15, 15), 1);
}

TEST(Rasterize, SubPixelVerticesCountAtAFinerOutputSpacing) {
  // [10.25, 11.75) level-0 px at 4 output px per level-0 px covers output [41, 47).
  const std::vector<Annotation> annotations = {
      {"A", {{{10.25, 10.25}, {11.75, 10.25}, {11.75, 11.75}, {10.25, 11.75}}}, 0}};
  const cv::Mat raster =
      rasterize_annotations(annotations, one_class_map("A"), RectF{0, 0, 16, 16}, {64, 64});
  EXPECT_EQ(cv::countNonZero(raster), 6 * 6);
  EXPECT_EQ(raster.at<std::uint8_t>(41, 41), 1);
  EXPECT_EQ(raster.at<std::uint8_t>(40, 40), 0);
  EXPECT_EQ(raster.at<std::uint8_t>(46, 46), 1);
  EXPECT_EQ(raster.at<std::uint8_t>(47, 47), 0);
}

TEST(Rasterize, PolygonsOutsideTheFieldOfViewLeaveTheRasterEmpty) {
  const std::vector<Annotation> annotations = {
      {"A", {{{-500, -500}, {-100, -500}, {-100, -100}}}, 0},
      {"A", {{{5000, 5000}, {6000, 5000}, {6000, 6000}}}, 1}};
  const cv::Mat raster =
      rasterize_annotations(annotations, one_class_map("A"), RectF{0, 0, 100, 100}, {50, 50});
  EXPECT_EQ(cv::countNonZero(raster), 0);
}

TEST(Rasterize, AHugePolygonAroundAMagnifiedFieldOfViewFillsIt) {
  const std::vector<Annotation> annotations = {
      {"A", {{{-1e6, -1e6}, {1e6, -1e6}, {1e6, 1e6}, {-1e6, 1e6}}}, 0}};
  const cv::Mat raster =
      rasterize_annotations(annotations, one_class_map("A"), RectF{10, 10, 2, 2}, {200, 200});
  EXPECT_EQ(cv::countNonZero(raster), 200 * 200);
}

TEST(Rasterize, UnknownClassesAreAnErrorUnlessIgnored) {
  const std::vector<Annotation> annotations = {{"Necrosis", {{{0, 0}, {9, 0}, {9, 9}}}, 4},
                                               {"A", {{{0, 0}, {9, 0}, {0, 9}}}, 5}};
  LabelMap labels = one_class_map("A");
  const auto [code, message] = error_of([&] {
    rasterize_annotations(annotations, labels, RectF{0, 0, 10, 10}, {10, 10});
  });
  EXPECT_EQ(code, ErrorCode::kInvalidConfig);
  EXPECT_NE(message.find("Necrosis"), std::string::npos) << message;
  EXPECT_NE(message.find("'A'"), std::string::npos) << message;
  labels.ignore_unknown = true;
  const cv::Mat raster = rasterize_annotations(annotations, labels, RectF{0, 0, 10, 10}, {10, 10});
  EXPECT_GT(cv::countNonZero(raster), 0);
}

// --- formats -----------------------------------------------------------------------------------

TEST(ReadAnnotations, MultiPolygonBareFeatureAndBareArray) {
  const TempDir dir;
  const std::string feature = R"({"type": "Feature", "geometry": {"type": "MultiPolygon",
    "coordinates": [[[[0, 0], [4, 0], [4, 4], [0, 0]]], [[[10, 10], [14, 10], [14, 14]]]]},
    "properties": {"classification": {"name": "Tumor", "color": [200, 0, 0]}}})";
  const std::string point =
      R"({"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}})";
  write_text(dir / "feature.json", feature);
  write_text(dir / "array.geojson", "[" + point + ", " + feature + "]");

  const auto single = read_annotations(dir / "feature.json");
  ASSERT_EQ(single.size(), 2u);
  EXPECT_EQ(single[0].class_name, "Tumor");
  EXPECT_EQ(single[1].rings[0].size(), 3u);
  EXPECT_EQ(single[1].rings[0][2], cv::Point2d(14, 14));

  const auto array = read_annotations(dir / "array.geojson");  // the Point is skipped
  ASSERT_EQ(array.size(), 2u);
  EXPECT_EQ(array[0].source_index, 1);
  EXPECT_EQ(array[0].rings[0].size(), 3u);  // closing point dropped
}

TEST(ReadAnnotations, AsapXmlWithTwoGroupsSortsCoordinatesByOrder) {
  const TempDir dir;
  write_text(dir / "asap.xml", R"(<?xml version="1.0"?>
<ASAP_Annotations>
  <Annotations>
    <Annotation Name="Annotation 0" Type="Polygon" PartOfGroup="tumor" Color="#F4FA58">
      <Coordinates>
        <Coordinate Order="2" X="20" Y="20" />
        <Coordinate Order="0" X="0" Y="0" />
        <Coordinate Order="1" X="20" Y="0" />
        <Coordinate Order="3" X="0" Y="20" />
      </Coordinates>
    </Annotation>
    <Annotation Name="Annotation 1" Type="Rectangle" PartOfGroup="stroma">
      <Coordinates>
        <Coordinate Order="0" X="30" Y="30" /><Coordinate Order="1" X="40" Y="30" />
        <Coordinate Order="2" X="40" Y="40" /><Coordinate Order="3" X="30" Y="40" />
      </Coordinates>
    </Annotation>
    <Annotation Name="Dot" Type="Dot" PartOfGroup="tumor">
      <Coordinates><Coordinate Order="0" X="5" Y="5" /></Coordinates>
    </Annotation>
  </Annotations>
  <AnnotationGroups><Group Name="tumor" PartOfGroup="None" /></AnnotationGroups>
</ASAP_Annotations>)");
  const auto annotations = read_annotations(dir / "asap.xml");
  ASSERT_EQ(annotations.size(), 2u);
  EXPECT_EQ(annotations[0].class_name, "tumor");
  EXPECT_EQ(annotations[1].class_name, "stroma");
  EXPECT_EQ(annotations[0].rings[0][1], cv::Point2d(20, 0));
  EXPECT_EQ(annotations[0].rings[0][2], cv::Point2d(20, 20));
  LabelMap labels;
  labels.classes = {{"stroma", 1, {}}, {"tumor", 2, {}}};
  const cv::Mat raster = rasterize_annotations(annotations, labels, RectF{0, 0, 50, 50}, {50, 50});
  EXPECT_EQ(cv::countNonZero(raster == 2), 400);
  EXPECT_EQ(cv::countNonZero(raster == 1), 100);
}

TEST(ReadAnnotations, ImageScopeXmlShiftsVerticesByHalfAPixel) {
  const TempDir dir;
  write_text(dir / "scope.xml", R"(<Annotations MicronsPerPixel="0.25">
  <Annotation Id="1" Name="" Type="4">
    <Regions>
      <Region Id="1" Type="0" Text="">
        <Vertices><Vertex X="10.5" Y="10.5"/><Vertex X="20.5" Y="10.5"/>
          <Vertex X="20.5" Y="20.5"/><Vertex X="10.5" Y="20.5"/></Vertices>
      </Region>
    </Regions>
  </Annotation>
  <Annotation Id="2" Name="Tumor"><Regions><Region Id="2" Type="1" Text="note">
    <Vertices><Vertex X="30.5" Y="30.5"/><Vertex X="34.5" Y="30.5"/><Vertex X="34.5" Y="34.5"/>
      <Vertex X="30.5" Y="34.5"/></Vertices></Region></Regions></Annotation>
</Annotations>)");
  const auto annotations = read_annotations(dir / "scope.xml");
  ASSERT_EQ(annotations.size(), 2u);
  EXPECT_EQ(annotations[0].class_name, "");
  EXPECT_EQ(annotations[1].class_name, "Tumor");
  EXPECT_EQ(annotations[0].rings[0][0], cv::Point2d(10, 10));
  LabelMap labels;
  labels.classes = {{"nucleus", 1, {}}, {"Tumor", 2, {}}};
  labels.unnamed_class = "nucleus";
  const cv::Mat raster = rasterize_annotations(annotations, labels, RectF{0, 0, 40, 40}, {40, 40});
  EXPECT_EQ(cv::countNonZero(raster == 1), 100);
  EXPECT_EQ(raster.at<std::uint8_t>(10, 10), 1);
  EXPECT_EQ(raster.at<std::uint8_t>(20, 20), 0);
  EXPECT_EQ(cv::countNonZero(raster == 2), 16);
}

TEST(LabelRaster, NonzeroAndIdentityRulesSampleNearestAtOutputCentres) {
  const TempDir dir;
  cv::Mat instances = cv::Mat::zeros(8, 8, CV_16UC1);
  instances(cv::Rect(2, 2, 4, 4)).setTo(700);
  instances.at<std::uint16_t>(1, 7) = 3;
  ASSERT_TRUE(cv::imwrite((dir / "inst.png").string(), instances));
  const LabelRaster raster(dir / "inst.png", "nonzero:3");
  EXPECT_EQ(raster.size(), (Size{8, 8}));
  const cv::Mat half = raster.sample(RectF{0, 0, 8, 8}, {4, 4});  // centres at 1, 3, 5, 7
  EXPECT_EQ(half.at<std::uint8_t>(1, 1), 3);
  EXPECT_EQ(half.at<std::uint8_t>(0, 3), 3);
  EXPECT_EQ(cv::countNonZero(half), 5);
  const cv::Mat off = raster.sample(RectF{-4, -4, 8, 8}, {8, 8});
  EXPECT_EQ(off.at<std::uint8_t>(0, 0), 0);
  EXPECT_EQ(off.at<std::uint8_t>(6, 6), 3);  // level-0 pixel (2, 2)

  cv::Mat classes = cv::Mat::zeros(4, 4, CV_8UC1);
  classes.at<std::uint8_t>(1, 2) = 9;
  ASSERT_TRUE(cv::imwrite((dir / "classes.png").string(), classes));
  const cv::Mat identity =
      LabelRaster(dir / "classes.png", "identity").sample({0, 0, 4, 4}, {4, 4});
  EXPECT_EQ(identity.at<std::uint8_t>(1, 2), 9);
  EXPECT_EQ(error_of([&] { LabelRaster(dir / "inst.png", "identity"); }).first,
            ErrorCode::kInvalidConfig);  // 700 does not fit 8 bits
}

// --- MoNuSeg -----------------------------------------------------------------------------------

constexpr const char* kMonusegTrain = "labeled/monuseg2018/train";

/// Dice of each tile's XML rasterization (shifted by `shift` px on top of the reader's own
/// offset) against its instance map.
std::vector<std::pair<std::string, double>> monuseg_dice(const fs::path& train, double shift) {
  LabelMap labels;
  labels.classes = {{"nucleus", 1, {}}};
  labels.unnamed_class = "nucleus";
  std::vector<std::pair<std::string, double>> figures;
  for (const auto& entry : fs::directory_iterator(train / "annotations_xml")) {
    const std::string id = entry.path().stem().stem().string();
    auto annotations = read_annotations(entry.path());
    for (Annotation& annotation : annotations) {
      for (auto& ring : annotation.rings) {
        for (cv::Point2d& point : ring) {
          point += cv::Point2d(shift, shift);
        }
      }
    }
    const RectF fov{0, 0, 1000, 1000};
    const cv::Mat drawn = rasterize_annotations(annotations, labels, fov, {1000, 1000});
    const cv::Mat truth =
        LabelRaster(train / "labels" / (id + "_inst.png"), "nonzero:1").sample(fov, {1000, 1000});
    figures.emplace_back(id, dice(drawn, truth));
  }
  std::sort(figures.begin(), figures.end());
  return figures;
}

TEST(MoNuSeg, ImageScopeXmlRasterizesOntoTheInstanceMaps) {
  SLIDESTREAM_REQUIRE_DATA(train, kMonusegTrain);
  const auto figures = monuseg_dice(train, 0.0);
  ASSERT_EQ(figures.size(), 13u);
  for (const auto& [id, value] : figures) {
    std::cout << "MoNuSeg " << id << " Dice " << value << "\n";
    EXPECT_GT(value, 0.95) << id;
  }
}

TEST(MoNuSeg, TheReadersHalfPixelOffsetFitsBetterThanTheOthers) {
  SLIDESTREAM_REQUIRE_DATA(train, kMonusegTrain);
  // shift +0.5 undoes the reader's -0.5 (raw vertices); +1.0 is the other half-pixel offset.
  std::vector<double> mean;
  for (const double shift : {0.0, 0.5, 1.0}) {
    double sum = 0;
    const auto figures = monuseg_dice(train, shift);
    for (const auto& figure : figures) {
      sum += figure.second;
    }
    mean.push_back(sum / static_cast<double>(figures.size()));
    std::cout << "MoNuSeg vertex offset " << shift - 0.5 << " px: mean Dice " << mean.back()
              << "\n";
  }
  EXPECT_GT(mean[0], mean[1]);
  EXPECT_GT(mean[0], mean[2]);
}

// --- bad input ---------------------------------------------------------------------------------

TEST(BadAnnotations, MalformedGeoJsonNamesTheByteOrTheFeature) {
  const TempDir dir;
  write_text(dir / "broken.geojson", R"({"type": "FeatureCollection", "features": [)");
  auto [code, message] = error_of([&] { read_annotations(dir / "broken.geojson"); });
  EXPECT_EQ(code, ErrorCode::kInvalidConfig);
  EXPECT_NE(message.find("broken.geojson"), std::string::npos) << message;
  EXPECT_NE(message.find("byte"), std::string::npos) << message;

  write_text(dir / "short.geojson", R"([{"type": "Feature", "geometry": {"type": "Polygon",
    "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}},
    {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}}])");
  std::tie(code, message) = error_of([&] { read_annotations(dir / "short.geojson"); });
  EXPECT_EQ(code, ErrorCode::kInvalidConfig);
  EXPECT_NE(message.find("feature 1"), std::string::npos) << message;

  // Four identical points, or points on one line, bound no area: malformed too.
  write_text(dir / "flat.geojson", R"([{"type": "Feature", "geometry": {"type": "Polygon",
    "coordinates": [[[5, 5], [5, 5], [5, 5], [5, 5]]]}},
    {"type": "Feature", "geometry": {"type": "Polygon",
    "coordinates": [[[0, 0], [1, 1], [2, 2], [0, 0]]]}}])");
  std::tie(code, message) = error_of([&] { read_annotations(dir / "flat.geojson"); });
  EXPECT_EQ(code, ErrorCode::kInvalidConfig);
  EXPECT_NE(message.find("feature 0"), std::string::npos) << message;
  EXPECT_NE(message.find("1 distinct points"), std::string::npos) << message;

  write_text(dir / "text.geojson", R"({"type": "Feature", "geometry": {"type": "Polygon",
    "coordinates": [[[0, 0], ["a", 1], [2, 2]]]}})");
  std::tie(code, message) = error_of([&] { read_annotations(dir / "text.geojson"); });
  EXPECT_EQ(code, ErrorCode::kInvalidConfig);
  EXPECT_NE(message.find("feature 0"), std::string::npos) << message;
}

TEST(BadAnnotations, MalformedXmlNamesTheLine) {
  const TempDir dir;
  write_text(dir / "open.xml",
             "<ASAP_Annotations>\n<Annotations>\n<Annotation Type=\"Polygon\">\n");
  auto [code, message] = error_of([&] { read_annotations(dir / "open.xml"); });
  EXPECT_EQ(code, ErrorCode::kInvalidConfig);
  EXPECT_NE(message.find("line"), std::string::npos) << message;

  write_text(dir / "number.xml",
             "<Annotations>\n<Annotation><Regions><Region>\n<Vertices>\n"
             "<Vertex X=\"1\" Y=\"1\"/>\n<Vertex X=\"abc\" Y=\"2\"/>\n</Vertices></Region>"
             "</Regions></Annotation></Annotations>");
  std::tie(code, message) = error_of([&] { read_annotations(dir / "number.xml"); });
  EXPECT_EQ(code, ErrorCode::kInvalidConfig);
  EXPECT_NE(message.find("line 5"), std::string::npos) << message;

  write_text(dir / "other.xml", "<svg><path/></svg>");
  std::tie(code, message) = error_of([&] { read_annotations(dir / "other.xml"); });
  EXPECT_EQ(code, ErrorCode::kInvalidConfig);
  EXPECT_NE(message.find("svg"), std::string::npos) << message;
}

TEST(BadAnnotations, MissingFileIsNotFound) {
  const TempDir dir;
  EXPECT_EQ(error_of([&] { read_annotations(dir / "absent.geojson"); }).first,
            ErrorCode::kNotFound);
}

TEST(BadAnnotations, LabelMapWithDuplicatesOrZeroFailsValidation) {
  LabelMap labels;
  labels.classes = {{"A", 1, {}}, {"B", 1, {}}};
  EXPECT_EQ(error_of([&] { labels.validate(); }).first, ErrorCode::kInvalidConfig);
  labels.classes = {{"A", 1, {}}, {"A", 2, {}}};
  EXPECT_EQ(error_of([&] { labels.validate(); }).first, ErrorCode::kInvalidConfig);
  labels.classes = {{"A", 0, {}}};
  EXPECT_EQ(error_of([&] { labels.validate(); }).first, ErrorCode::kInvalidConfig);
  labels.classes = {{"", 3, {}}};
  EXPECT_EQ(error_of([&] { labels.validate(); }).first, ErrorCode::kInvalidConfig);
  labels.classes = {{"A", 1, {}}, {"B", 2, {}}};
  EXPECT_NO_THROW(labels.validate());
  EXPECT_EQ(labels.find("B")->value, 2);
  EXPECT_EQ(labels.find(""), nullptr);
  labels.unnamed_class = "A";
  EXPECT_EQ(labels.find("")->value, 1);
}

TEST(BadAnnotations, BadRasterRuleOrColourImageIsInvalidConfig) {
  const TempDir dir;
  ASSERT_TRUE(cv::imwrite((dir / "grey.png").string(), cv::Mat::zeros(4, 4, CV_8UC1)));
  ASSERT_TRUE(cv::imwrite((dir / "rgb.png").string(), cv::Mat::zeros(4, 4, CV_8UC3)));
  for (const char* rule : {"nonzero:0", "nonzero:256", "nonzero:x", "nonzero", "max"}) {
    EXPECT_EQ(error_of([&] { LabelRaster(dir / "grey.png", rule); }).first,
              ErrorCode::kInvalidConfig)
        << rule;
  }
  const auto [code, message] = error_of([&] { LabelRaster(dir / "rgb.png", "nonzero:1"); });
  EXPECT_EQ(code, ErrorCode::kInvalidConfig);
  EXPECT_NE(message.find("rgb.png"), std::string::npos) << message;
}

}  // namespace
}  // namespace slidestream
