// `run_train` end to end on tiny HookNets (2 filters, 220 px inputs, 6 px outputs) over patch
// sets extracted from the small synthetic slide: overfitting, determinism, resume, the model
// directory, and bad input.
#include <gtest/gtest.h>

#include <fstream>

#include "slidestream/core.hpp"
#include "slidestream/h5.hpp"
#include "slidestream/jobs/batch.hpp"
#include "slidestream/jobs/extract.hpp"
#include "slidestream/jobs/features.hpp"
#include "slidestream/models/description.hpp"
#include "slidestream/models/model.hpp"
#include "slidestream/training/config.hpp"
#include "slidestream/training/train.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;

namespace slidestream {
namespace {

using testing::TempDir;

// Patch sets of a level-0 region of the small synthetic slide under slide id `id`.
fs::path extract(const TempDir& dir, const std::string& id, const std::string& region,
                 bool with_labels = true) {
  const fs::path slide = testing::small_lossless_slide();
  const fs::path manifest = dir / (id + ".csv");
  std::ofstream(manifest) << "path,id\n" << slide.string() << "," << id << "\n";
  ExtractJob job;
  job.inputs = {manifest.string()};
  job.config = load_extract_config(
      std::nullopt,
      {"geometry.branches=[{spacing_um: 0.5, size: 220}, {spacing_um: 1.0, size: 220}]",
       "geometry.output={spacing_um: 0.5, size: 6}", "tiling.min_tissue_fraction=0",
       "tiling.region=" + region,
       "labels.classes=[{name: Stroma, value: 1}, {name: Tumor, value: 2}]",
       "output.gzip_level=1"});
  job.config.scheduler.progress = false;
  if (with_labels) {
    job.annotations = slide.parent_path() / (slide.stem().string() + ".geojson");
  }
  job.output = dir / (id + ".h5");
  const BatchReport report = run_extract(job);
  EXPECT_EQ(report.failed(), 0u) << report.summary();
  return job.output;
}

TrainConfig tiny_config(std::vector<std::string> extra = {}) {
  std::vector<std::string> overrides{
      "model={architecture: hooknet, filters: 2, depth: 4, batch_norm: true}",
      "geometry.branches=[{spacing_um: 0.5, size: 220}, {spacing_um: 1.0, size: 220}]",
      "geometry.output={spacing_um: 0.5, size: 6}",
      "classes=[{name: background, value: 0}, {name: stroma, value: 1}, {name: tumour, value: 2}]",
      "training.batch_size=2",
      "training.steps_per_epoch=2",
      "training.epochs=2",
      "training.learning_rate=0.01",
      "training.threads=1",
      "training.seed=3",
      "training.schedule=constant"};
  overrides.insert(overrides.end(), extra.begin(), extra.end());
  return load_train_config(std::nullopt, overrides);
}

// Two tiles on the stroma/tumour border of the slide (the same two every step).
const char* kTwoTiles = "[1003, 703, 8, 4]";

TEST(TrainLoop, TinyHookNetOverfitsOneBatch) {
  TempDir dir;
  TrainJob job;
  const std::string no_augmentation =
      "training.augment={flips: false, rotate90: false, brightness: 0, contrast: 0, "
      "hed_sigma_factor: 0, hed_sigma_bias: 0}";
  job.config =
      tiny_config({"training.epochs=45", "training.learning_rate=0.03",
                   "training.steps_per_epoch=1", "training.schedule=constant", no_augmentation});
  job.data = {extract(dir, "train", kTwoTiles)};
  job.output = dir / "model";
  job.progress = false;
  const TrainResult result = run_train(job);
  ASSERT_EQ(result.epochs.size(), 45u);
  EXPECT_LT(result.epochs.back().train_loss, result.epochs.front().train_loss / 10)
      << "first " << result.epochs.front().train_loss << ", last "
      << result.epochs.back().train_loss;
}

TEST(TrainLoop, SameSeedGivesTheSameLossesAndResumeContinuesThem) {
  TempDir dir;
  TrainJob job;
  job.config = tiny_config({"training.epochs=3"});
  job.data = {extract(dir, "train", "[900, 600, 24, 12]")};
  job.val_data = {extract(dir, "held-out", "[1400, 900, 12, 6]")};
  job.output = dir / "full";
  job.progress = false;
  const TrainResult full = run_train(job);
  ASSERT_EQ(full.epochs.size(), 3u);
  EXPECT_EQ(full.validation_slides, std::vector<std::string>{"held-out"});

  job.output = dir / "again";
  const TrainResult again = run_train(job);
  for (std::size_t e = 0; e < 3; ++e) {
    EXPECT_EQ(again.epochs[e].train_loss, full.epochs[e].train_loss) << e;
    EXPECT_EQ(again.epochs[e].val_loss, full.epochs[e].val_loss) << e;
  }

  // Two epochs, then --resume up to three: epoch 3 continues from the checkpoint.
  job.output = dir / "resumed";
  job.config = tiny_config({"training.epochs=2"});
  run_train(job);
  job.config = tiny_config({"training.epochs=3"});
  job.resume = true;
  const TrainResult resumed = run_train(job);
  ASSERT_EQ(resumed.epochs.size(), 3u);
  EXPECT_EQ(resumed.epochs[2].epoch, 3);
  EXPECT_NEAR(resumed.epochs[1].train_loss, full.epochs[1].train_loss,
              1e-7 * full.epochs[1].train_loss);  // read back from training_log.csv
  EXPECT_NEAR(resumed.epochs[2].train_loss, full.epochs[2].train_loss,
              1e-6 * full.epochs[2].train_loss);

  // The output is a model directory load_model reads, with logs beside it.
  for (const char* name : {"model.yaml", "training_log.csv", "training_plot.png",
                           "validation_slides.csv", "checkpoint/state.yaml"}) {
    EXPECT_TRUE(fs::exists(dir / "resumed" / name)) << name;
  }
  const auto model = load_model(dir / "resumed");
  EXPECT_EQ(model->architecture(), "hooknet");
  EXPECT_EQ(model->classes().size(), 3u);
  EXPECT_EQ(model->geometry().output.size_px.width, 6);
  std::ifstream yaml(dir / "resumed" / "model.yaml");
  const std::string text((std::istreambuf_iterator<char>(yaml)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("held-out"), std::string::npos) << "provenance names the split";
  EXPECT_NE(text.find("best_mean_dice"), std::string::npos);
}

ErrorCode train_error(TrainJob job) {
  job.progress = false;
  try {
    run_train(job);
  } catch (const Error& error) {
    return error.code();
  }
  return ErrorCode::kInternal;
}

TEST(TrainLoop, BadDatasetsAreClearErrors) {
  TempDir dir;
  TrainJob job;
  job.config = tiny_config();
  job.output = dir / "model";
  job.data = {dir / "missing.h5"};
  EXPECT_EQ(train_error(job), ErrorCode::kNotFound);
  job.data = {extract(dir, "unlabelled", kTwoTiles, false)};
  EXPECT_EQ(train_error(job), ErrorCode::kInvalidConfig);
  // The dataset's Tumor = 2 is not among these classes.
  job.config = tiny_config({"classes=[{name: background, value: 0}, {name: stroma, value: 1}]"});
  job.data = {extract(dir, "labelled", kTwoTiles)};
  EXPECT_EQ(train_error(job), ErrorCode::kInvalidConfig);
  EXPECT_FALSE(fs::exists(dir / "model" / "model.yaml"));
}

// A tiny same-padded U-Net at 4 um/px (64 px tiles), saved untrained: a few dozen tiles a slide.
fs::path tiny_unet(const TempDir& dir, const std::string& name, std::uint64_t seed) {
  ModelDescription description;
  description.architecture = "unet";
  description.network.padding = Padding::kSame;
  description.network.depth = 3;
  description.network.filters = 2;
  description.geometry.branches = {BranchGeometry{4.0, Size{64, 64}}};
  description.geometry.output = BranchGeometry{4.0, Size{64, 64}};
  description.classes = {{"background", 0, {}}, {"tissue", 1, {}}};
  const auto model = create_native_model(description, {}, seed);
  model->save(dir / name);
  return dir / name;
}

TEST(Features, WritesClamShapedFilesAndReusesThemForTheSameModel) {
  TempDir dir;
  FeaturesJob job;
  job.inputs = {testing::small_lossless_slide().string()};
  job.model_dir = tiny_unet(dir, "model-a", 1);
  job.output_dir = dir / "features";
  job.scheduler.progress = false;
  job.inference.intra_op_threads = 1;
  job.min_tissue_fraction = 0.2;
  const BatchReport first = run_features(job);
  ASSERT_EQ(first.failed(), 0u) << first.summary();
  EXPECT_FALSE(first.slides[0].skipped);
  EXPECT_GT(first.slides[0].patches, 5u);
  const fs::path folder = features_folder(job, *load_model(job.model_dir));
  const fs::path file = folder / "small-lossless.h5";
  ASSERT_TRUE(fs::exists(file));
  {
    const h5::File h5 = h5::File::open(file, h5::File::Access::kReadOnly);
    const h5::Dataset features = h5.open_dataset("features");
    EXPECT_EQ(features.dims(), (h5::Dims{first.slides[0].patches, 16}));  // 2 filters * 2^3
    EXPECT_EQ(features.type(), h5::Type::kFloat32);
    const h5::Dataset coords = h5.open_dataset("coords");
    EXPECT_EQ(coords.dims().at(1), 2u);
    EXPECT_EQ(coords.type(), h5::Type::kInt64);
    const std::int64_t patch_size = coords.int_attribute("patch_size").value_or(-1);
    const auto downsample =
        coords.double_pair_attribute("downsample").value_or(std::array{1.0, 1.0});
    // 64 px at 4 um/px on a 0.5 um/px slide: 512 level-0 px, in pixels of the level read.
    EXPECT_EQ(patch_size, std::llround(512 / downsample[0]));
    for (const char* name : {"patch_level", "downsample", "level_dim", "name"}) {
      EXPECT_TRUE(coords.has_attribute(name)) << name;
    }
    for (const char* name : {"model_sha256", "config_sha256", "features_key"}) {
      EXPECT_TRUE(h5.has_attribute(name)) << name;
    }
  }
  const auto written = fs::last_write_time(file);
  const BatchReport second = run_features(job);
  EXPECT_TRUE(second.slides[0].skipped);
  EXPECT_EQ(fs::last_write_time(file), written);

  job.model_dir = tiny_unet(dir, "model-b", 2);  // other weights: another folder
  const BatchReport third = run_features(job);
  EXPECT_FALSE(third.slides[0].skipped);
  EXPECT_NE(features_folder(job, *load_model(job.model_dir)), folder);
}

}  // namespace
}  // namespace slidestream
