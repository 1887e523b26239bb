// `run_segment` end to end on synthetic slides, with a deterministic pixel-rule model whose
// expected label map is known exactly: stitching, determinism, resume, shards, bad slides.
#include <gtest/gtest.h>
#include <openslide.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>
#include <sstream>
#include <vips/vips8>

#include "slidestream/core.hpp"
#include "slidestream/jobs/segment.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;

namespace slidestream {
namespace {

const std::vector<LabelClass>& rule_classes() {
  static const std::vector<LabelClass> list{{"background", 0, {255, 255, 255}},
                                            {"stroma", 1, {255, 105, 180}},
                                            {"tumour", 2, {128, 0, 128}}};
  return list;
}

// The rule the fake model applies to each pixel of its target patch: white -> background,
// blue at least as strong as red -> tumour, otherwise stroma.
int rule_class(const cv::Vec3b& rgb) {
  if (rgb[0] + rgb[1] + rgb[2] > 3 * 215) {
    return 0;
  }
  return rgb[2] + 10 > rgb[0] ? 2 : 1;
}

cv::Mat rule_labels(const cv::Mat& rgb) {
  cv::Mat labels(rgb.size(), CV_8UC1);
  for (int y = 0; y < rgb.rows; ++y) {
    for (int x = 0; x < rgb.cols; ++x) {
      labels.at<std::uint8_t>(y, x) = rule_classes()[rule_class(rgb.at<cv::Vec3b>(y, x))].value;
    }
  }
  return labels;
}

// A model applying rule_class per pixel to the centre of its target patch (0.9 for the class,
// 0.05 for the others). `valid` models crop (output 32 of 64 px), same-padded ones do not.
class PixelRuleModel : public SegmentationModel {
 public:
  explicit PixelRuleModel(bool valid, int fail_after_batches = -1)
      : valid_(valid), fail_after_(fail_after_batches) {
    geometry_.branches = {{2.0, {64, 64}}, {8.0, {64, 64}}};
    geometry_.output = {2.0, valid ? Size{32, 32} : Size{64, 64}};
    description_.architecture = "pixel-rule";
    description_.geometry = geometry_;
    description_.classes = rule_classes();
  }
  const ModelGeometry& geometry() const override { return geometry_; }
  const std::vector<LabelClass>& classes() const override { return rule_classes(); }
  bool valid_convolutions() const override { return valid_; }
  std::string architecture() const override { return "pixel-rule"; }
  std::string weights_sha256() const override { return valid_ ? "valid-rule" : "same-rule"; }
  std::string device() const override { return "cpu"; }
  const ModelDescription& description() const override { return description_; }

  std::vector<ModelOutput> predict(const std::vector<const PatchSet*>& batch) override {
    if (fail_after_ >= 0 && calls_++ >= fail_after_) {
      throw Error(ErrorCode::kInternal, "interrupted on purpose by the test");
    }
    std::vector<ModelOutput> outputs;
    const int crop = valid_ ? 16 : 0;
    const Size out = geometry_.output.size_px;
    for (const PatchSet* patches : batch) {
      EXPECT_EQ(patches->branches.size(), 2u);
      const cv::Mat& target = patches->branches.front();
      cv::Mat probs(static_cast<int>(out.height), static_cast<int>(out.width), CV_32FC3);
      for (int y = 0; y < probs.rows; ++y) {
        for (int x = 0; x < probs.cols; ++x) {
          const int c = rule_class(target.at<cv::Vec3b>(y + crop, x + crop));
          probs.at<cv::Vec3f>(y, x) = cv::Vec3f(0.05f, 0.05f, 0.05f);
          probs.at<cv::Vec3f>(y, x)[c] = 0.9f;
        }
      }
      outputs.push_back({probs, {}});
    }
    return outputs;
  }

 private:
  ModelGeometry geometry_;
  ModelDescription description_;
  bool valid_;
  int fail_after_;
  int calls_ = 0;
};

fs::path lossless_slide() {
  SynthOptions options;
  options.size = {2048, 1536};
  options.compression = "deflate";
  options.seed = 7;
  return testing::synthetic_slide("segment-2048", options);
}

SegmentJob job_for(const std::vector<std::string>& inputs, const fs::path& output,
                   std::vector<std::string> overrides = {}) {
  overrides.insert(overrides.begin(),
                   {"tiling.min_tissue_fraction=0", "outputs.checkpoint_tiles=16"});
  SegmentJob job;
  job.inputs = inputs;
  job.model_dir = "pixel-rule";
  job.config = load_segment_config(std::nullopt, overrides);
  job.config.scheduler.progress = false;
  job.config.batch_size = 8;
  job.output_dir = output;
  return job;
}

cv::Mat read_tiff_page(const fs::path& path, int page) {
  vips::VImage image =
      vips::VImage::new_from_file(path.c_str(), vips::VImage::option()->set("page", page));
  const cv::Mat view(image.height(), image.width(), CV_8UC1,
                     const_cast<void*>(static_cast<const void*>(image.data())));
  return view.clone();
}

std::string file_bytes(const fs::path& path) {
  std::ifstream stream(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << stream.rdbuf();
  return bytes.str();
}

// The label map the rule gives on the whole slide read in one pass at the output spacing.
cv::Mat expected_labels(const fs::path& slide, Size raster) {
  const auto reader = open_slide(slide);
  const Patch whole = reader->read_from_origin({0, 0}, raster, 2.0);
  return rule_labels(whole.rgb);
}

std::size_t differing_pixels(const cv::Mat& a, const cv::Mat& b) {
  return static_cast<std::size_t>(cv::countNonZero(a != b));
}

TEST(Segment, ValidModelLabelsEqualTheRuleOnTheWholeSlideInOnePass) {
  const fs::path slide = lossless_slide();
  testing::TempDir out;
  PixelRuleModel model(true);
  const BatchReport report = run_segment(job_for({slide.string()}, out.path()), model);
  ASSERT_EQ(report.failed(), 0u) << report.summary();
  const fs::path dir = out / "segment-2048";
  const cv::Mat labels = read_tiff_page(dir / "labels.tif", 0);
  ASSERT_EQ(labels.cols, 512);
  ASSERT_EQ(labels.rows, 384);
  const cv::Mat expected = expected_labels(slide, {512, 384});
  EXPECT_EQ(differing_pixels(labels, expected), 0u);
  EXPECT_GT(cv::countNonZero(labels == 2), 100);  // the rule finds tumour-like pixels
  EXPECT_GT(cv::countNonZero(labels == 1), 100);
  for (const char* name :
       {"predictions.h5", "overlay.png", "annotations.geojson", "annotations.xml", "report.json"}) {
    EXPECT_TRUE(fs::exists(dir / name)) << name;
  }
  EXPECT_FALSE(fs::exists(dir / "journal")) << "the journal is removed once merged";
}

TEST(Segment, LabelTiffOpensInOpenSlideWithItsSpacingAndAPyramid) {
  const fs::path slide = lossless_slide();
  testing::TempDir out;
  PixelRuleModel model(true);
  ASSERT_EQ(run_segment(job_for({slide.string()}, out.path(),
                                {"outputs.tiff_tile_size=128", "outputs.overlay=false"}),
                        model)
                .failed(),
            0u);
  const fs::path labels = out / "segment-2048" / "labels.tif";
  openslide_t* handle = openslide_open(labels.c_str());
  ASSERT_NE(handle, nullptr);
  EXPECT_EQ(openslide_get_error(handle), nullptr);
  EXPECT_GE(openslide_get_level_count(handle), 3);
  std::int64_t width = 0;
  std::int64_t height = 0;
  openslide_get_level0_dimensions(handle, &width, &height);
  EXPECT_EQ(width, 512);
  EXPECT_EQ(height, 384);
  // 2.0 um/px = 5000 px/cm.
  const char* resolution = openslide_get_property_value(handle, "tiff.XResolution");
  ASSERT_NE(resolution, nullptr);
  EXPECT_NEAR(std::stod(resolution), 5000.0, 0.5);
  openslide_close(handle);
}

TEST(Segment, OutputsAreByteIdenticalForOneAndTwoThreads) {
  const fs::path slide = lossless_slide();
  testing::TempDir one;
  testing::TempDir two;
  PixelRuleModel model(true);
  ASSERT_EQ(
      run_segment(job_for({slide.string()}, one.path(), {"scheduler.threads=1"}), model).failed(),
      0u);
  ASSERT_EQ(
      run_segment(job_for({slide.string()}, two.path(), {"scheduler.threads=2"}), model).failed(),
      0u);
  for (const char* name :
       {"labels.tif", "predictions.h5", "annotations.geojson", "annotations.xml", "overlay.png"}) {
    EXPECT_EQ(file_bytes(one / "segment-2048" / name), file_bytes(two / "segment-2048" / name))
        << name;
  }
}

TEST(Segment, AResumedRunAfterAFailureEqualsAnUninterruptedOne) {
  const fs::path slide = lossless_slide();
  testing::TempDir fresh;
  testing::TempDir resumed;
  PixelRuleModel model(true);
  ASSERT_EQ(run_segment(job_for({slide.string()}, fresh.path()), model).failed(), 0u);

  PixelRuleModel failing(true, 5);  // fails on its 6th batch: 40 tiles in, 32 committed
  const BatchReport interrupted = run_segment(job_for({slide.string()}, resumed.path()), failing);
  ASSERT_EQ(interrupted.failed(), 1u);
  const fs::path dir = resumed / "segment-2048";
  EXPECT_FALSE(fs::exists(dir / "labels.tif")) << "no output appears before the slide is done";
  EXPECT_FALSE(fs::exists(dir / "report.json"));

  SegmentJob again = job_for({slide.string()}, resumed.path());
  again.resume = true;
  ASSERT_EQ(run_segment(again, model).failed(), 0u);
  std::ifstream report_stream(dir / "report.json");
  const auto report = nlohmann::json::parse(report_stream);
  EXPECT_EQ(report["tiles"]["resumed"].get<int>(), 32);
  EXPECT_EQ(report["tiles"]["processed"].get<int>(), 192 - 32);
  for (const char* name : {"labels.tif", "predictions.h5", "annotations.geojson"}) {
    EXPECT_EQ(file_bytes(fresh / "segment-2048" / name), file_bytes(dir / name)) << name;
  }

  // A finished slide is skipped by a further --resume.
  const BatchReport skipped = run_segment(again, model);
  ASSERT_EQ(skipped.slides.size(), 1u);
  EXPECT_TRUE(skipped.slides.front().skipped);
}

TEST(Segment, OverlappingSameModelTilesBlendToTheRuleLabels) {
  const fs::path slide = lossless_slide();
  for (const char* blend : {"average", "gaussian"}) {
    testing::TempDir out;
    PixelRuleModel model(false);
    ASSERT_EQ(run_segment(job_for({slide.string()}, out.path(),
                                  {std::string("stitching.blend=") + blend,
                                   "stitching.overlap=0.25", "outputs.heatmaps=true",
                                   "outputs.heatmap_downsample=4", "outputs.overlay=false"}),
                          model)
                  .failed(),
              0u)
        << blend;
    const cv::Mat labels = read_tiff_page(out / "segment-2048" / "labels.tif", 0);
    EXPECT_EQ(differing_pixels(labels, expected_labels(slide, {512, 384})), 0u) << blend;
    const cv::Mat tumour = read_tiff_page(out / "segment-2048" / "prob_tumour.tif", 0);
    EXPECT_EQ(tumour.cols, 128);
    double low = 0;
    double high = 0;
    cv::minMaxLoc(tumour, &low, &high);
    EXPECT_NEAR(high, 0.9 * 255, 1.0) << "a pure tumour block keeps its probability";
  }
}

TEST(Segment, ShardsTogetherProduceExactlyTheOutputsOfOneRun) {
  const fs::path first = lossless_slide();
  SynthOptions options;
  options.size = {1024, 1024};
  options.compression = "deflate";
  options.seed = 11;
  const fs::path second = testing::synthetic_slide("segment-1024", options);
  const std::vector<std::string> inputs{first.string(), second.string()};
  PixelRuleModel model(true);
  testing::TempDir all;
  testing::TempDir sharded;
  ASSERT_EQ(run_segment(job_for(inputs, all.path()), model).failed(), 0u);
  for (int index = 1; index <= 2; ++index) {
    SegmentJob job = job_for(inputs, sharded.path());
    job.shard = Shard{index, 2};
    const BatchReport report = run_segment(job, model);
    ASSERT_EQ(report.slides.size(), 1u) << "each shard takes one of the two slides";
  }
  EXPECT_TRUE(fs::exists(sharded / "batch_report.shard-1-of-2.json"));
  EXPECT_TRUE(fs::exists(sharded / "batch_report.shard-2-of-2.json"));
  for (const char* id : {"segment-2048", "segment-1024"}) {
    for (const char* name : {"labels.tif", "predictions.h5", "annotations.geojson"}) {
      EXPECT_EQ(file_bytes(all / id / name), file_bytes(sharded / id / name)) << id << name;
    }
  }
}

TEST(Segment, ABatchGoesOnPastBadSlidesAndReportsEachFailure) {
  const fs::path good = lossless_slide();
  testing::TempDir work;
  SynthOptions no_mpp;
  no_mpp.size = {512, 512};
  no_mpp.mpp_um = std::nullopt;
  no_mpp.compression = "deflate";
  const fs::path without_mpp = testing::synthetic_slide("segment-no-mpp", no_mpp);
  const fs::path text = work / "notes.txt";
  std::ofstream(text) << "not a slide";
  const fs::path corrupt = work / "corrupt.svs";
  std::ofstream(corrupt) << std::string(4096, 'x');
  PixelRuleModel model(true);
  const fs::path out = work / "out";
  const BatchReport report = run_segment(
      job_for({good.string(), without_mpp.string(), text.string(), corrupt.string()}, out), model);
  ASSERT_EQ(report.slides.size(), 4u);
  EXPECT_TRUE(report.slides[0].ok);
  EXPECT_EQ(report.failed(), 3u);
  EXPECT_EQ(report.slides[1].code, ErrorCode::kMissingMetadata);
  EXPECT_EQ(report.slides[2].code, ErrorCode::kUnsupportedFormat);
  EXPECT_NE(report.slides[3].error.find("corrupt.svs"), std::string::npos)
      << report.slides[3].error;
  EXPECT_TRUE(fs::exists(out / "segment-2048" / "labels.tif"));
  EXPECT_FALSE(fs::exists(out / "segment-no-mpp" / "labels.tif"));
  std::ifstream batch(out / "batch_report.json");
  const auto json = nlohmann::json::parse(batch);
  EXPECT_EQ(json["failed"].get<int>(), 3);
  EXPECT_EQ(json["slides"][1]["error_code"].get<std::string>(), "missing_metadata");
}

TEST(Segment, TheGeoJsonHoldsTheClassesWithTheirAreas) {
  const fs::path slide = lossless_slide();
  testing::TempDir out;
  PixelRuleModel model(true);
  // Vectors at the output spacing, so areas compare with the label map's pixel counts.
  ASSERT_EQ(run_segment(job_for({slide.string()}, out.path(),
                                {"outputs.vector_spacing_um=2.0", "outputs.simplify_px=0"}),
                        model)
                .failed(),
            0u);
  std::ifstream stream(out / "segment-2048" / "annotations.geojson");
  const auto geojson = nlohmann::json::parse(stream);
  std::map<std::string, double> area;
  for (const auto& feature : geojson["features"]) {
    EXPECT_EQ(feature["properties"]["objectType"], "annotation");
    area[feature["properties"]["classification"]["name"].get<std::string>()] +=
        feature["properties"]["measurements"]["Area um^2"].get<double>();
  }
  const cv::Mat labels = read_tiff_page(out / "segment-2048" / "labels.tif", 0);
  for (const LabelClass& label : {rule_classes()[1], rule_classes()[2]}) {
    const double expected = cv::countNonZero(labels == label.value) * 4.0;  // 2 um/px
    EXPECT_NEAR(area[label.name], expected, expected * 0.01 + 1.0) << label.name;
  }
  std::ifstream report_stream(out / "segment-2048" / "report.json");
  const auto report = nlohmann::json::parse(report_stream);
  EXPECT_NEAR(report["area_mm2"]["tumour"].get<double>(), cv::countNonZero(labels == 2) * 4.0e-6,
              1e-9);
}

TEST(Segment, AModelFinerThanTheSlideIsAModelError) {
  SynthOptions options;
  options.size = {512, 512};
  options.mpp_um = 4.0;  // coarser than the model's 2.0 um/px target
  options.compression = "deflate";
  const fs::path coarse = testing::synthetic_slide("segment-coarse", options);
  testing::TempDir out;
  PixelRuleModel model(true);
  const BatchReport report = run_segment(job_for({coarse.string()}, out.path()), model);
  ASSERT_EQ(report.slides.size(), 1u);
  EXPECT_EQ(report.slides.front().code, ErrorCode::kModelError);
  EXPECT_NE(report.slides.front().error.find("magnification"), std::string::npos);
}

TEST(Segment, BadConfigValuesAndShardsAreClearErrors) {
  EXPECT_THROW(load_segment_config(std::nullopt, {"inference.batch_size=0"}), Error);
  EXPECT_THROW(load_segment_config(std::nullopt, {"stitching.blend=median"}), Error);
  EXPECT_THROW(load_segment_config(std::nullopt, {"outputs.tiff_tile_size=100"}), Error);
  EXPECT_THROW(load_segment_config(std::nullopt, {"outputs.colour=red"}), Error);
  EXPECT_THROW(parse_shard("3/2"), Error);
  EXPECT_THROW(parse_shard("0/2"), Error);
  EXPECT_THROW(parse_shard("half"), Error);
  const Shard shard = parse_shard("2/5");
  EXPECT_EQ(shard.index, 2);
  EXPECT_EQ(shard.count, 5);
}

}  // namespace
}  // namespace slidestream

namespace slidestream {
namespace {

TEST(Segment, AStainSectionNormalizesWhatTheModelSeesAndIsRecorded) {
  const fs::path slide = lossless_slide();
  testing::TempDir plain;
  testing::TempDir stained;
  PixelRuleModel model(true);
  ASSERT_EQ(run_segment(job_for({slide.string()}, plain.path(), {"outputs.overlay=false"}), model)
                .failed(),
            0u);
  const SegmentJob job = job_for({slide.string()}, stained.path(),
                                 {"outputs.overlay=false", "stain.target=macenko-reference",
                                  "stain.method=macenko", "stain.fit=tile"});
  ASSERT_EQ(run_segment(job, model).failed(), 0u);
  EXPECT_NE(job.config.resolved_yaml().find("macenko-reference"), std::string::npos);
  const cv::Mat before = read_tiff_page(plain / "segment-2048" / "labels.tif", 0);
  const cv::Mat after = read_tiff_page(stained / "segment-2048" / "labels.tif", 0);
  EXPECT_GT(differing_pixels(before, after), 0u) << "normalized colours change the rule's classes";
  // White background stays white; only pale tissue at the rule's threshold may cross it.
  const int background_before = cv::countNonZero(before == 0);
  EXPECT_NEAR(cv::countNonZero(after == 0), background_before, background_before * 0.02);
}

}  // namespace
}  // namespace slidestream
