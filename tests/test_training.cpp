// Training, torch-free parts: configs, the HDF5 patch-set reader, slide splits, augmentation,
// metrics, the training log and plot, and `evaluate`.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <set>

#include "slidestream/core.hpp"
#include "slidestream/jobs/batch.hpp"
#include "slidestream/jobs/evaluate.hpp"
#include "slidestream/jobs/extract.hpp"
#include "slidestream/models/description.hpp"
#include "slidestream/training/augment.hpp"
#include "slidestream/training/config.hpp"
#include "slidestream/training/dataset.hpp"
#include "slidestream/training/log.hpp"
#include "slidestream/training/metrics.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;

namespace slidestream {
namespace {

using testing::error_of;
using testing::mentions;
using testing::TempDir;

// A small two-branch extraction (64 px at 0.5 and 2.0 um/px, output 32 px) of a region of the
// small synthetic slide, with labels from its annotations.
fs::path small_dataset(const TempDir& dir, bool with_labels = true) {
  const fs::path slide = testing::small_lossless_slide();
  ExtractJob job;
  job.inputs = {slide.string()};
  job.config = load_extract_config(
      std::nullopt, {"geometry.branches=[{spacing_um: 0.5, size: 64}, {spacing_um: 2.0, size: 64}]",
                     "geometry.output={spacing_um: 0.5, size: 32}", "tiling.min_tissue_fraction=0",
                     "tiling.region=[800, 500, 320, 160]",
                     "labels.classes=[{name: Stroma, value: 1}, {name: Tumor, value: 2}]",
                     "output.gzip_level=1"});
  job.config.scheduler.progress = false;
  if (with_labels) {
    job.annotations = slide.parent_path() / (slide.stem().string() + ".geojson");
  }
  job.output = dir / (with_labels ? "labelled.h5" : "unlabelled.h5");
  const BatchReport report = run_extract(job);
  EXPECT_EQ(report.failed(), 0u) << report.summary();
  return job.output;
}

TEST(TrainingConfig, ShippedConfigsLoadAndValidate) {
  for (const char* name : {"hooknet-nuclei.yaml", "unet-nuclei.yaml", "hooknet-breast.yaml",
                           "hooknet-synthetic.yaml"}) {
    const fs::path path = fs::path(SLIDESTREAM_SOURCE_DIR) / "configs" / name;
    const TrainConfig config = load_train_config(path, {});
    EXPECT_GE(config.classes.size(), 2u) << name;
    EXPECT_EQ(config.input_branches(), config.model.architecture == "unet" ? 1u : 2u) << name;
  }
}

TEST(TrainingConfig, UnknownKeysAndIllegalHookNetSizesAreConfigErrors) {
  auto code_of = [](const std::vector<std::string>& overrides) {
    try {
      load_train_config(fs::path(SLIDESTREAM_SOURCE_DIR) / "configs" / "hooknet-nuclei.yaml",
                        overrides);
    } catch (const Error& error) {
      return error.code();
    }
    return ErrorCode::kInternal;
  };
  EXPECT_EQ(code_of({"training.epoch=3"}), ErrorCode::kInvalidConfig);
  EXPECT_EQ(
      code_of({"geometry.branches=[{spacing_um: 0.5, size: 280}, {spacing_um: 2.0, size: 280}]"}),
      ErrorCode::kInvalidConfig);
  EXPECT_EQ(code_of({"training.class_weights=[1, 2, 3]"}), ErrorCode::kInvalidConfig);
  EXPECT_EQ(code_of({"training.schedule=linear"}), ErrorCode::kInvalidConfig);
  EXPECT_EQ(code_of({"training.epochs=3"}), ErrorCode::kInternal);  // valid: nothing thrown
}

TEST(NativeNetwork, ModelYamlAndTrainConfigShareTheKeysAndTheirRanges) {
  const fs::path config = fs::path(SLIDESTREAM_SOURCE_DIR) / "configs" / "unet-nuclei.yaml";
  const TrainConfig trained = load_train_config(config, {"model.dropout=0.25"});
  EXPECT_DOUBLE_EQ(trained.model.network.dropout, 0.25);
  EXPECT_EQ(load_train_config(config, {}).model.network.batch_norm, NativeNetwork{}.batch_norm);
  const Error train_error = error_of([&] { load_train_config(config, {"model.filters=0"}); });
  EXPECT_EQ(train_error.code(), ErrorCode::kInvalidConfig);
  EXPECT_TRUE(mentions(train_error, "model.filters") && mentions(train_error, "1..512"))
      << train_error.what();

  TempDir dir;
  const std::string model =
      "architecture: unet\n"
      "branches: [{spacing_um: 2.0, size_px: 64}]\n"
      "output: {spacing_um: 2.0, size_px: 64}\n"
      "padding: same\n"
      "classes: [{name: a, value: 0}, {name: b, value: 1}]\n";
  // A model.yaml from before batch_norm existed has none; a new network has it.
  EXPECT_FALSE(load_model_description(write_text_file(dir, "old.yaml", model)).network.batch_norm);
  EXPECT_TRUE(NativeNetwork{}.batch_norm);
  const ModelDescription wide =
      load_model_description(write_text_file(dir, "wide.yaml", model + "filters: 0\n"));
  const Error model_error = error_of([&] { wide.validate(); });
  EXPECT_EQ(model_error.code(), ErrorCode::kInvalidConfig);
  EXPECT_TRUE(mentions(model_error, "filters") && mentions(model_error, "1..512"))
      << model_error.what();
}

TEST(PatchDataset, ReaderReturnsTheExtractedPatchSetsWithLabels) {
  TempDir dir;
  const fs::path path = small_dataset(dir);
  const PatchDatasetReader reader(path);
  ASSERT_EQ(reader.slides().size(), 1u);
  const DatasetSlide& slide = reader.slides()[0];
  EXPECT_EQ(slide.id, "small-lossless");
  EXPECT_TRUE(slide.with_labels);
  ASSERT_EQ(slide.geometry.branches.size(), 2u);
  EXPECT_DOUBLE_EQ(slide.geometry.branches[1].spacing_um, 2.0);
  EXPECT_EQ(slide.geometry.output.size_px.width, 32);
  ASSERT_EQ(slide.classes.size(), 2u);
  EXPECT_EQ(slide.classes[1].name, "Tumor");
  ASSERT_GT(slide.patches, 10u);

  // Independently: the same tile read from the slide through the tiler.
  const auto slide_reader = open_slide(testing::small_lossless_slide());
  ModelGeometry geometry;
  geometry.branches = slide.geometry.branches;
  geometry.output = slide.geometry.output;
  PlanOptions plan;
  plan.min_tissue_fraction = 0;
  plan.region_l0 = Rect{800, 500, 320, 160};
  const auto tiles = plan_tiles(slide_reader->info(), nullptr, geometry, plan);
  const std::size_t index = slide.patches / 2;
  const PatchSet set = reader.read(0, index);
  ASSERT_EQ(set.branches.size(), 2u);
  ASSERT_EQ(set.labels.size(), 2u);
  EXPECT_EQ(set.branches[1].size(), cv::Size(64, 64));
  const auto tile = std::find_if(tiles.begin(), tiles.end(),
                                 [&](const TileSpec& t) { return t.index == set.spec.index; });
  ASSERT_NE(tile, tiles.end());
  const PatchSet expected = read_patch_set(*slide_reader, *tile, geometry);
  for (int b = 0; b < 2; ++b) {
    EXPECT_EQ(cv::norm(set.branches[b], expected.branches[b], cv::NORM_INF), 0) << b;
    EXPECT_EQ(cv::norm(set.valid[b], expected.valid[b], cv::NORM_INF), 0) << b;
  }
  EXPECT_EQ(reader.read(0, index, 1).branches.size(), 1u);
  EXPECT_THROW(reader.read(0, slide.patches), Error);
}

TEST(PatchDataset, MissingFileIsNotFoundAndOtherFilesAreCorrupt) {
  TempDir dir;
  try {
    PatchDatasetReader reader(dir / "missing.h5");
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kNotFound);
  }
  std::ofstream(dir / "text.h5") << "not hdf5";
  try {
    PatchDatasetReader reader(dir / "text.h5");
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kCorruptData);
    EXPECT_NE(std::string(error.what()).find("text.h5"), std::string::npos);
  }
}

TEST(SlideSplit, ValidationNeverSharesASlideWithTraining) {
  std::vector<std::string> ids;
  ids.reserve(30);
  for (int i = 0; i < 30; ++i) {
    ids.push_back("slide-" + std::to_string(i));
  }
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    ValidationSplit split;
    split.fraction = 0.25;
    const SlideSplit result = split_slides(ids, split, seed);
    EXPECT_EQ(result.validation.size(), 8u);
    EXPECT_EQ(result.train.size() + result.validation.size(), ids.size());
    std::set<std::string> train(result.train.begin(), result.train.end());
    for (const std::string& id : result.validation) {
      EXPECT_EQ(train.count(id), 0u) << id;
    }
  }
  ValidationSplit explicit_ids;
  explicit_ids.slide_ids = {"slide-3", "slide-7"};
  const SlideSplit result = split_slides(ids, explicit_ids, 0);
  EXPECT_EQ(result.validation, (std::vector<std::string>{"slide-3", "slide-7"}));
  EXPECT_EQ(result.train.size(), 28u);
  explicit_ids.slide_ids = {"slide-99"};
  EXPECT_THROW(split_slides(ids, explicit_ids, 0), Error);
}

// A patch set whose label is a known function of its pixels (red channel > 127) and whose
// context branch is an exact copy of the target: every transform must keep both properties.
PatchSet registered_patch_set() {
  PatchSet set;
  cv::Mat rgb(64, 64, CV_8UC3, cv::Scalar(40, 90, 160));
  cv::Mat labels(64, 64, CV_8UC1, cv::Scalar(0));
  // An asymmetric "L" so flips and turns are distinguishable.
  rgb(cv::Rect(10, 8, 12, 40)).setTo(cv::Scalar(230, 60, 60));
  rgb(cv::Rect(10, 40, 36, 10)).setTo(cv::Scalar(230, 60, 60));
  labels(cv::Rect(10, 8, 12, 40)).setTo(1);
  labels(cv::Rect(10, 40, 36, 10)).setTo(1);
  for (int b = 0; b < 2; ++b) {
    set.branches.push_back(rgb.clone());
    set.valid.emplace_back(64, 64, CV_8UC1, cv::Scalar(255));
    set.labels.push_back(labels.clone());
  }
  return set;
}

TEST(Augment, FlipsAndTurnsKeepLabelsRegisteredAndBranchesIdentical) {
  AugmentConfig config;
  config.hed_sigma_factor = 0;
  config.hed_sigma_bias = 0;
  config.brightness = 0;
  config.contrast = 0;
  const Augmenter augmenter(config, 255);
  std::set<std::vector<std::uint8_t>> distinct;
  for (std::uint64_t seed = 0; seed < 16; ++seed) {
    PatchSet set = registered_patch_set();
    augmenter.apply(set, seed);
    cv::Mat red;
    cv::extractChannel(set.branches[0], red, 0);
    const cv::Mat expected_labels = (red > 127) / 255;
    EXPECT_EQ(cv::norm(set.labels[0], expected_labels, cv::NORM_INF), 0) << seed;
    EXPECT_EQ(cv::norm(set.branches[0], set.branches[1], cv::NORM_INF), 0) << seed;
    EXPECT_EQ(cv::norm(set.labels[0], set.labels[1], cv::NORM_INF), 0) << seed;
    distinct.insert(std::vector<std::uint8_t>(set.labels[0].datastart, set.labels[0].dataend));
  }
  EXPECT_GE(distinct.size(), 5u) << "flips and turns should give several orientations";
}

TEST(Augment, AffineAndColourKeepPatchAndLabelAlignedOnEveryBranch) {
  AugmentConfig config;
  config.affine_rotation_deg = 20;
  config.affine_scale = 0.15;
  config.brightness = 0.1;
  config.contrast = 0.1;
  const Augmenter augmenter(config, 255);
  for (std::uint64_t seed = 0; seed < 8; ++seed) {
    PatchSet set = registered_patch_set();
    augmenter.apply(set, seed);
    cv::Mat red;
    cv::extractChannel(set.branches[0], red, 0);
    cv::Mat blue;
    cv::extractChannel(set.branches[0], blue, 2);
    // Object pixels are red-dominant, background blue-dominant, whatever the colour jitter.
    std::size_t agree = 0;
    std::size_t counted = 0;
    for (int y = 0; y < 64; ++y) {
      for (int x = 0; x < 64; ++x) {
        const std::uint8_t label = set.labels[0].at<std::uint8_t>(y, x);
        if (label == 255) {
          EXPECT_EQ(set.valid[0].at<std::uint8_t>(y, x), 0);
          continue;
        }
        ++counted;
        const bool object = red.at<std::uint8_t>(y, x) > blue.at<std::uint8_t>(y, x);
        agree += (object == (label == 1)) ? 1 : 0;
      }
    }
    EXPECT_GT(counted, 2000u);
    // Linear pixels vs nearest labels differ only along the object's edges.
    EXPECT_GT(static_cast<double>(agree) / static_cast<double>(counted), 0.97) << seed;
    EXPECT_EQ(cv::norm(set.branches[0], set.branches[1], cv::NORM_INF), 0) << seed;
    EXPECT_EQ(cv::norm(set.labels[0], set.labels[1], cv::NORM_INF), 0) << seed;
  }
  PatchSet a = registered_patch_set();
  PatchSet b = registered_patch_set();
  augmenter.apply(a, 42);
  augmenter.apply(b, 42);
  EXPECT_EQ(cv::norm(a.branches[0], b.branches[0], cv::NORM_INF), 0) << "deterministic per seed";
}

TEST(Metrics, ConfusionMatrixGivesHandCountedDiceAndIoU) {
  // truth: 6 pixels of class 1 then 4 of class 0; prediction: 4 of the 6 right, 1 false positive.
  const cv::Mat truth = (cv::Mat_<std::uint8_t>(1, 10) << 1, 1, 1, 1, 1, 1, 0, 0, 0, 255);
  const cv::Mat prediction = (cv::Mat_<std::uint8_t>(1, 10) << 1, 1, 1, 1, 0, 0, 1, 0, 0, 1);
  ConfusionMatrix m(2);
  m.add(truth, prediction, 255);
  EXPECT_EQ(m.total(), 9);
  EXPECT_EQ(m.count(1, 1), 4);
  EXPECT_EQ(m.count(1, 0), 2);
  EXPECT_EQ(m.count(0, 1), 1);
  EXPECT_DOUBLE_EQ(m.dice(1), 8.0 / 11.0);  // 2*4 / (2*4 + 1 + 2)
  EXPECT_DOUBLE_EQ(m.iou(1), 4.0 / 7.0);
  EXPECT_DOUBLE_EQ(m.dice(0), 4.0 / 7.0);  // 2*2 / (2*2 + 2 + 1)
  EXPECT_DOUBLE_EQ(m.accuracy(), 6.0 / 9.0);
  EXPECT_DOUBLE_EQ(m.mean_dice(true), 8.0 / 11.0);
  EXPECT_TRUE(std::isnan(ConfusionMatrix(3).dice(2)));
}

TEST(TrainingLog, CsvRoundTripsAndThePlotIsWritten) {
  std::vector<EpochRecord> records;
  for (int e = 1; e <= 4; ++e) {
    EpochRecord r;
    r.epoch = e;
    r.learning_rate = 1e-3 / e;
    r.train_loss = 1.0 / e;
    r.val_loss = 1.2 / e;
    r.val_dice = {0.9, 0.1 * e};
    r.val_mean_dice = 0.1 * e;
    r.seconds = 2.5;
    records.push_back(r);
  }
  const std::vector<LabelClass> classes{{"background", 0, {}}, {"nucleus", 1, {}}};
  const std::string csv = training_log_csv(records, classes);
  EXPECT_EQ(csv.substr(0, csv.find('\n')),
            "epoch,lr,train_loss,val_loss,dice_background,dice_nucleus,mean_dice,seconds");
  const auto parsed = parse_training_log_csv(csv, "log");
  ASSERT_EQ(parsed.size(), 4u);
  EXPECT_NEAR(parsed[2].train_loss, 1.0 / 3, 1e-8);  // 9 significant digits
  EXPECT_DOUBLE_EQ(parsed[3].val_dice[1], 0.4);
  TempDir dir;
  write_training_plot(records, dir / "plot.png");
  const cv::Mat plot = cv::imread((dir / "plot.png").string());
  ASSERT_FALSE(plot.empty());
  EXPECT_GT(plot.cols, 400);
  // Drawn curves: some pixels are neither white nor grey.
  cv::Mat channels[3];
  cv::split(plot, channels);
  EXPECT_GT(cv::countNonZero(cv::abs(channels[2] - channels[0]) > 60), 100);
}

TEST(Evaluate, HandMadeLabelImagesGiveKnownDiceIoUAndConfusion) {
  TempDir dir;
  cv::Mat truth(40, 50, CV_8UC1, cv::Scalar(0));
  truth(cv::Rect(0, 0, 20, 40)).setTo(1);   // 800 px of class 1
  truth(cv::Rect(40, 0, 10, 10)).setTo(9);  // 100 ignored
  cv::Mat prediction(40, 50, CV_8UC1, cv::Scalar(0));
  prediction(cv::Rect(0, 0, 20, 30)).setTo(1);   // 600 right of 800
  prediction(cv::Rect(20, 0, 10, 20)).setTo(1);  // 200 false positives
  prediction(cv::Rect(30, 30, 5, 2)).setTo(7);   // 10 unlisted predictions on truth 0
  cv::imwrite((dir / "truth.png").string(), truth);
  cv::imwrite((dir / "pred.png").string(), prediction);
  EvaluateJob job;
  job.prediction = dir / "pred.png";
  job.truth = dir / "truth.png";
  job.classes = parse_class_list("background=0,nucleus=1");
  job.ignore = 9;
  job.json_output = dir / "report.json";
  job.strip_rows = 7;  // several strips, the last one short
  const EvaluationReport report = run_evaluate(job);
  // Truth 0: 2000 - 800 - 100 = 1100 px; predicted 0 on 1100 - 200 - 10 = 890 of them.
  ASSERT_EQ(report.confusion.classes(), 3);
  EXPECT_EQ(report.confusion.count(0, 0), 890);
  EXPECT_EQ(report.confusion.count(0, 1), 200);
  EXPECT_EQ(report.confusion.count(0, 2), 10);
  EXPECT_EQ(report.confusion.count(1, 1), 600);
  EXPECT_EQ(report.confusion.count(1, 0), 200);
  EXPECT_EQ(report.ignored_pixels, 100);
  const auto json = nlohmann::json::parse(std::ifstream(dir / "report.json"));
  EXPECT_EQ(json["schema"], "slidestream.evaluate/1");
  EXPECT_DOUBLE_EQ(json["classes"][1]["dice"].get<double>(), 1200.0 / 1600.0);
  EXPECT_DOUBLE_EQ(json["classes"][1]["iou"].get<double>(), 600.0 / 1000.0);
  EXPECT_DOUBLE_EQ(json["classes"][0]["iou"].get<double>(), 890.0 / 1300.0);
  EXPECT_DOUBLE_EQ(json["pixel_accuracy"].get<double>(), 1490.0 / 1900.0);
  EXPECT_EQ(json["confusion_matrix"][1][0], 200);
  EXPECT_NE(report.table().find("nucleus"), std::string::npos);
}

TEST(Evaluate, SizeMismatchAndNonLabelImagesAreClearErrors) {
  TempDir dir;
  cv::imwrite((dir / "a.png").string(), cv::Mat(10, 10, CV_8UC1, cv::Scalar(0)));
  cv::imwrite((dir / "b.png").string(), cv::Mat(12, 10, CV_8UC1, cv::Scalar(0)));
  cv::imwrite((dir / "c.png").string(), cv::Mat(10, 10, CV_16UC1, cv::Scalar(0)));
  const auto code_of = [&](const char* pred, const char* truth) {
    EvaluateJob job;
    job.prediction = dir / pred;
    job.truth = dir / truth;
    try {
      run_evaluate(job);
    } catch (const Error& error) {
      EXPECT_NE(std::string(error.what()).find(truth), std::string::npos) << error.what();
      return error.code();
    }
    return ErrorCode::kInternal;
  };
  EXPECT_EQ(code_of("a.png", "b.png"), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code_of("a.png", "c.png"), ErrorCode::kUnsupportedFormat);
  EXPECT_EQ(code_of("a.png", "missing.png"), ErrorCode::kNotFound);
  EXPECT_THROW(parse_class_list("nucleus"), Error);
}

}  // namespace
}  // namespace slidestream
