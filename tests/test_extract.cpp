// `slidestream extract` end to end: labels against the synthetic truth, determinism across
// thread counts, CLAM conventions (h5py), PNG output, resume and batch failures.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "slidestream/core.hpp"
#include "slidestream/h5.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;

namespace slidestream {
namespace {

using testing::run_cli;
using testing::TempDir;

std::string shell_quote(const fs::path& path) {
  return "'" + path.string() + "'";
}

// A small two-branch geometry (64 px at 0.5 and 2.0 um/px, output 32 px) so tests stay fast.
const char* kSmallConfig = R"(geometry:
  branches:
    - {spacing_um: 0.5, size: 64}
    - {spacing_um: 2.0, size: 64}
  output: {spacing_um: 0.5, size: 32}
tiling:
  min_tissue_fraction: 0.5
labels:
  classes:
    - {name: Stroma, value: 1, colour: [150, 200, 150]}
    - {name: Tumor, value: 2, colour: [200, 0, 0]}
output:
  gzip_level: 1
)";

fs::path write_config(const TempDir& dir) {
  fs::path path = dir / "config.yaml";
  std::ofstream(path) << kSmallConfig;
  return path;
}

fs::path sibling(const fs::path& slide, const std::string& suffix) {
  return slide.parent_path() / (slide.stem().string() + suffix);
}

// A whole dataset, as `type` (T's HDF5 type), in C order.
template <typename T>
std::vector<T> read_all(const h5::Dataset& dataset, h5::Type type) {
  const h5::Dims dims = dataset.dims();
  std::size_t count = 1;
  for (const std::uint64_t dim : dims) {
    count *= static_cast<std::size_t>(dim);
  }
  std::vector<T> values(count);
  if (count > 0) {
    dataset.read(type, h5::Dims(dims.size(), 0), dims, values.data());
  }
  return values;
}

std::vector<std::uint8_t> read_bytes(const h5::Dataset& dataset) {
  return read_all<std::uint8_t>(dataset, h5::Type::kUInt8);
}

std::vector<double> read_doubles(const h5::Dataset& dataset) {
  return read_all<double>(dataset, h5::Type::kFloat64);
}

h5::File open_read_only(const fs::path& path) {
  return h5::File::open(path, h5::File::Access::kReadOnly);
}

// Extracted labels agree with the synthetic truth raster sampled at each patch's pixel centres.
void expect_labels_match_truth(const fs::path& dataset_path, const fs::path& truth_path,
                               const std::string& slide_id) {
  const cv::Mat truth = cv::imread(truth_path.string(), cv::IMREAD_UNCHANGED);
  ASSERT_FALSE(truth.empty()) << truth_path;
  const h5::File file = open_read_only(dataset_path);
  const h5::Group slide = file.open_group(slide_id);
  const std::vector<double> centers = read_doubles(slide.open_dataset("center_l0"));
  const size_t count = centers.size() / 2;
  ASSERT_GT(count, 20u);
  for (const auto& [branch, spacing] : {std::pair{0, 0.5}, std::pair{1, 2.0}}) {
    const std::vector<std::uint8_t> labels =
        read_bytes(slide.open_dataset("branch_" + std::to_string(branch) + "/labels"));
    ASSERT_EQ(labels.size(), count * 64 * 64);
    const double step = spacing / 0.5;  // level-0 px per output px
    size_t agree = 0;
    size_t total = 0;
    for (size_t n = 0; n < count; ++n) {
      const double x0 = centers[2 * n] - 32 * step;
      const double y0 = centers[2 * n + 1] - 32 * step;
      for (int j = 0; j < 64; ++j) {
        for (int i = 0; i < 64; ++i) {
          const auto x = static_cast<int>(std::floor(x0 + (i + 0.5) * step));
          const auto y = static_cast<int>(std::floor(y0 + (j + 0.5) * step));
          if (x < 0 || y < 0 || x >= truth.cols || y >= truth.rows) {
            continue;
          }
          ++total;
          agree += labels[n * 4096 + static_cast<size_t>(j) * 64 + static_cast<size_t>(i)] ==
                   truth.at<std::uint8_t>(y, x);
        }
      }
    }
    EXPECT_GT(static_cast<double>(agree) / static_cast<double>(total), 0.99)
        << "branch " << branch << ": " << agree << " of " << total;
  }
}

TEST(Extract, LabelsFromAnnotationsMatchTheTruthAtBothSpacings) {
  TempDir dir;
  const fs::path slide = testing::small_lossless_slide();
  const fs::path output = dir / "patches.h5";
  const auto result =
      run_cli("extract " + shell_quote(slide) + " -c " + shell_quote(write_config(dir)) + " -o " +
              shell_quote(output) + " --annotations " + shell_quote(sibling(slide, ".geojson")) +
              " --threads 2 -q");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  expect_labels_match_truth(output, sibling(slide, ".truth.tif"), "small-lossless");
  const auto report = nlohmann::json::parse(std::ifstream(output.string() + ".report.json"));
  EXPECT_EQ(report["failed"], 0);
  EXPECT_EQ(report["slides"][0]["status"], "ok");
}

TEST(Extract, OutputIsByteIdenticalForOneAndTwoThreads) {
  TempDir dir;
  const fs::path slide = testing::small_lossless_slide();
  const std::string common = "extract " + shell_quote(slide) + " -c " +
                             shell_quote(write_config(dir)) + " --annotations " +
                             shell_quote(sibling(slide, ".geojson")) + " -q";
  ASSERT_EQ(run_cli(common + " --threads 1 -o " + shell_quote(dir / "one.h5")).exit_code, 0);
  ASSERT_EQ(
      run_cli(common + " --threads 2 --max-inflight 3 -o " + shell_quote(dir / "two.h5")).exit_code,
      0);
  std::ifstream one(dir / "one.h5", std::ios::binary);
  std::ifstream two(dir / "two.h5", std::ios::binary);
  const std::string a((std::istreambuf_iterator<char>(one)), std::istreambuf_iterator<char>());
  const std::string b((std::istreambuf_iterator<char>(two)), std::istreambuf_iterator<char>());
  EXPECT_GT(a.size(), 10000u);
  EXPECT_TRUE(a == b) << "files differ: " << a.size() << " vs " << b.size() << " bytes";
}

TEST(Extract, DatasetFollowsClamConventionsInH5py) {
  if (std::system("/usr/bin/python3 -c 'import h5py' > /dev/null 2>&1") != 0) {
    GTEST_SKIP() << "needs Debian's python3-h5py (/usr/bin/python3 cannot import h5py)";
  }
  TempDir dir;
  const fs::path slide = testing::small_lossless_slide();
  const fs::path output = dir / "clam.h5";
  ASSERT_EQ(run_cli("extract " + shell_quote(slide) + " -c " + shell_quote(write_config(dir)) +
                    " -o " + shell_quote(output) + " -q")
                .exit_code,
            0);
  const std::string script = std::string(SLIDESTREAM_SOURCE_DIR) + "/tests/check_clam_h5.py";
  const auto check = testing::run_shell("/usr/bin/python3 " + shell_quote(script) + " " +
                                        shell_quote(output) + " 2>&1");
  EXPECT_EQ(check.exit_code, 0) << check.output;
}

TEST(Extract, PngFormatWritesPatchesAndAnIndex) {
  TempDir dir;
  const fs::path slide = testing::small_lossless_slide();
  const fs::path output = dir / "pngs";
  const auto result =
      run_cli("extract " + shell_quote(slide) + " -c " + shell_quote(write_config(dir)) + " -o " +
              shell_quote(output) + " --format png --annotations " +
              shell_quote(sibling(slide, ".geojson")) + " -q");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  std::ifstream index(output / "small-lossless" / "index.csv");
  std::string header;
  std::getline(index, header);
  EXPECT_NE(header.find("branch_1"), std::string::npos);
  std::string first;
  ASSERT_TRUE(static_cast<bool>(std::getline(index, first)));
  const std::string tile = first.substr(0, first.find(','));
  EXPECT_EQ(cv::imread((output / "small-lossless" / (tile + "_b1.png")).string()).size(),
            cv::Size(64, 64));
  EXPECT_EQ(cv::imread((output / "small-lossless" / (tile + "_b0_labels.png")).string(),
                       cv::IMREAD_UNCHANGED)
                .type(),
            CV_8UC1);
}

TEST(Extract, ResumeAddsOnlyTheMissingSlides) {
  TempDir dir;
  const fs::path slide = testing::small_lossless_slide();
  SynthOptions other;
  other.size = Size{1024, 768};
  other.seed = 11;
  other.compression = "deflate";
  const fs::path second = testing::synthetic_slide("resume-second", other);
  const fs::path output = dir / "resume.h5";
  const std::string config =
      " -c " + shell_quote(write_config(dir)) + " -o " + shell_quote(output) + " -q";
  ASSERT_EQ(run_cli("extract " + shell_quote(slide) + config).exit_code, 0);
  const auto resumed =
      run_cli("extract " + shell_quote(slide) + " " + shell_quote(second) + config + " --resume");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("skipped"), std::string::npos) << resumed.output;
  const h5::File file = open_read_only(output);
  EXPECT_TRUE(file.has_link("small-lossless"));
  EXPECT_TRUE(file.has_link("resume-second"));
}

TEST(Extract, ABatchGoesOnPastBadSlidesAndReportsThem) {
  TempDir dir;
  const fs::path text = dir / "notes.txt";
  std::ofstream(text) << "not a slide";
  const fs::path output = dir / "batch.h5";
  const auto result = run_cli("extract " + shell_quote(testing::small_lossless_slide()) + " " +
                              shell_quote(dir / "missing.svs") + " " + shell_quote(text) + " -c " +
                              shell_quote(write_config(dir)) + " -o " + shell_quote(output));
  EXPECT_EQ(result.exit_code, exit_code(ErrorCode::kPartialFailure)) << result.output;
  EXPECT_NE(result.output.find("2 failed"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("does not exist"), std::string::npos) << result.output;
  const auto report = nlohmann::json::parse(std::ifstream(output.string() + ".report.json"));
  EXPECT_EQ(report["failed"], 2);
  EXPECT_EQ(report["slides"][0]["status"], "ok");
  EXPECT_EQ(report["slides"][2]["error_code"], "unsupported_format");
  const h5::File file = open_read_only(output);
  EXPECT_TRUE(file.has_link("small-lossless"));
}

struct BadExtract {
  const char* name;
  std::string extra;
  int exit_code;
  const char* message;
};

void PrintTo(const BadExtract& bad, std::ostream* out) {
  *out << bad.name;
}

class ExtractBadInput : public ::testing::TestWithParam<BadExtract> {};

TEST_P(ExtractBadInput, FailsClearlyAndWritesNothing) {
  TempDir dir;
  std::ofstream(dir / "bad.geojson") << R"({"type": "FeatureCollection", "features": [
    {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [10, 0]]]},
     "properties": {"classification": {"name": "Stroma"}}}]})";
  std::string extra = GetParam().extra;
  const std::string placeholder = "{dir}";
  for (size_t at; (at = extra.find(placeholder)) != std::string::npos;) {
    extra.replace(at, placeholder.size(), dir.path().string());
  }
  const auto result = run_cli("extract " + shell_quote(testing::small_lossless_slide()) + " -c " +
                              shell_quote(write_config(dir)) + " " + extra);
  EXPECT_EQ(result.exit_code, GetParam().exit_code) << result.output;
  EXPECT_NE(result.output.find(GetParam().message), std::string::npos) << result.output;
  EXPECT_FALSE(fs::exists(dir / "out.h5"));
}

INSTANTIATE_TEST_SUITE_P(
    Extract, ExtractBadInput,
    ::testing::Values(
        BadExtract{"illegal_hooknet_size",
                   "-o {dir}/out.h5 --set geometry.check=hooknet --set "
                   "'geometry.branches=[{spacing_um: 0.5, size: 270}]'",
                   7, "nearest legal sizes are 252 and 284"},
        BadExtract{"unknown_key", "-o {dir}/out.h5 --set tissue.spacng_um=4", 7, "unknown key"},
        BadExtract{"missing_output_folder", "-o {dir}/nowhere/out.h5", 8, "does not exist"},
        BadExtract{"malformed_geojson", "-o {dir}/out.h5 --annotations {dir}/bad.geojson", 7,
                   "feature 0"}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(Extract, TilesCanBeRestrictedToAnnotatedRegions) {
  TempDir dir;
  const fs::path slide = testing::small_lossless_slide();
  const fs::path output = dir / "within.h5";
  const auto result =
      run_cli("extract " + shell_quote(slide) + " -c " + shell_quote(write_config(dir)) + " -o " +
              shell_quote(output) + " --annotations " + shell_quote(sibling(slide, ".geojson")) +
              " --set tiling.within_annotations=true --set tiling.min_tissue_fraction=0 -q");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const cv::Mat truth = cv::imread(sibling(slide, ".truth.tif").string(), cv::IMREAD_UNCHANGED);
  const h5::File file = open_read_only(output);
  const std::vector<double> centers = read_doubles(file.open_dataset("small-lossless/center_l0"));
  ASSERT_GT(centers.size(), 40u);
  EXPECT_LT(centers.size() / 2, 94u * 63u);  // fewer than the whole grid
  for (size_t n = 0; n < centers.size() / 2; ++n) {
    const auto x = static_cast<int>(centers[2 * n]);
    const auto y = static_cast<int>(centers[2 * n + 1]);
    // The centre is a pixel corner: one of the four pixels around it is inside a region.
    const cv::Mat around = truth(cv::Rect(x - 1, y - 1, 2, 2));
    EXPECT_GT(cv::countNonZero(around), 0) << "tile centre " << x << "," << y;
  }
}

TEST(Extract, PolygonsOutsideTheSlideAreIgnoredWithAWarning) {
  TempDir dir;
  std::ofstream(dir / "outside.geojson") << R"({"type": "FeatureCollection", "features": [
    {"type": "Feature", "geometry": {"type": "Polygon",
     "coordinates": [[[100, 100], [900, 100], [900, 900], [100, 900], [100, 100]]]},
     "properties": {"classification": {"name": "Stroma"}}},
    {"type": "Feature", "geometry": {"type": "Polygon",
     "coordinates": [[[90000, 90000], [91000, 90000], [91000, 91000], [90000, 90000]]]},
     "properties": {"classification": {"name": "Tumor"}}}]})";
  const auto result = run_cli("extract " + shell_quote(testing::small_lossless_slide()) + " -c " +
                              shell_quote(write_config(dir)) + " -o " + shell_quote(dir / "o.h5") +
                              " --annotations " + shell_quote(dir / "outside.geojson"));
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("lies outside the slide; ignored"), std::string::npos)
      << result.output;
}

TEST(Extract, MoNuSegXmlAndLabelPngsGiveTheSameLabels) {
  SLIDESTREAM_REQUIRE_DATA(monuseg, "labeled/monuseg2018/train");
  TempDir dir;
  // The 13 tiles with XML annotations, at MoNuSeg's nominal 0.25 um/px.
  std::ofstream manifest(dir / "tiles.csv");
  manifest << "path,mpp,id\n";
  int tiles = 0;
  for (const auto& entry : fs::directory_iterator(monuseg / "annotations_xml")) {
    const std::string id = entry.path().stem().stem().string();  // <id>.xml.gz
    manifest << (monuseg / "images" / (id + ".jpg")).string() << ",0.25," << id << "\n";
    ++tiles;
  }
  manifest.close();
  ASSERT_EQ(tiles, 13);
  // At the tiles' own spacing, so both sources are sampled at the same pixel centres. (Coarser,
  // a nearest-neighbour raster sample at a pixel corner picks one side while the polygon test
  // is exact: that alone costs a few % Dice on nuclei ~10 px across.)
  const fs::path config = dir / "nuclei.yaml";
  std::ofstream(config) << R"(geometry:
  branches: [{spacing_um: 0.25, size: 128}, {spacing_um: 1.0, size: 128}]
  output: {spacing_um: 0.25, size: 128}
tiling: {min_tissue_fraction: 0}
labels:
  classes: [{name: nucleus, value: 1}]
  unnamed_class: nucleus
)";
  const std::string common =
      "extract " + shell_quote(dir / "tiles.csv") + " -c " + shell_quote(config) + " -q";
  const auto from_xml = run_cli(common + " -o " + shell_quote(dir / "xml.h5") + " --annotations " +
                                shell_quote(monuseg / "annotations_xml"));
  ASSERT_EQ(from_xml.exit_code, 0) << from_xml.output;
  const auto from_png = run_cli(common + " -o " + shell_quote(dir / "png.h5") + " --label-raster " +
                                shell_quote((monuseg / "labels" / "{stem}_inst.png").string()));
  ASSERT_EQ(from_png.exit_code, 0) << from_png.output;
  const h5::File xml_file = open_read_only(dir / "xml.h5");
  const h5::File png_file = open_read_only(dir / "png.h5");
  const std::vector<std::string> ids = xml_file.link_names();
  ASSERT_EQ(ids, png_file.link_names());
  int compared = 0;
  for (const std::string& id : ids) {
    if (!xml_file.has_link(id + "/branch_0/labels")) {
      continue;  // not a slide group
    }
    ++compared;
    const auto a = read_bytes(xml_file.open_dataset(id + "/branch_0/labels"));
    const auto b = read_bytes(png_file.open_dataset(id + "/branch_0/labels"));
    ASSERT_EQ(a.size(), b.size()) << id;
    size_t both = 0;
    size_t sum = 0;
    for (size_t p = 0; p < a.size(); ++p) {
      both += (a[p] == 1 && b[p] == 1);
      sum += (a[p] == 1) + (b[p] == 1);
    }
    const double dice = 2.0 * static_cast<double>(both) / static_cast<double>(sum);
    std::cout << id << " Dice(XML, PNG) = " << dice << "\n";
    EXPECT_GT(dice, 0.95) << id;
  }
  EXPECT_EQ(compared, tiles) << "every tile has its slide group in both datasets";
}

}  // namespace
}  // namespace slidestream
