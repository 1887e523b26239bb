// The one config reader (pipeline/config/config_reader.hpp) as every config sees it: one rule
// for null, errors that say where a value came from, which key and what is allowed, the typed
// flags of `train`, and the removed inference.mc_samples.
#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "config_reader.hpp"
#include "slidestream/core.hpp"
#include "slidestream/jobs/extract.hpp"
#include "slidestream/jobs/segment.hpp"
#include "slidestream/models/description.hpp"
#include "slidestream/training/config.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;

namespace slidestream {
namespace {

using testing::error_of;
using testing::mentions;
using testing::write_text_file;

constexpr const char* kTrainClasses =
    "classes:\n  - {name: background, value: 0}\n  - {name: tumour, value: 1}\n";

TEST(ConfigReader, ANullKeyKeepsItsDefaultInEveryConfig) {
  testing::TempDir dir;
  const ExtractConfig extract = load_extract_config(
      write_text_file(dir, "e.yaml",
                      "tissue: {spacing_um: ~, threshold: null, method: ~}\n"
                      "tiling:\n  within_annotations:\n  stride: ~\n  min_tissue_fraction: ~\n"
                      "labels: ~\nstain: ~\ngeometry: {output: ~}\n"),
      {"output.gzip_level=~"});
  EXPECT_EQ(extract.resolved_yaml(), load_extract_config(std::nullopt, {}).resolved_yaml());
  EXPECT_FALSE(extract.stain.enabled);  // a null section is an absent one

  const SegmentConfig segment = load_segment_config(
      write_text_file(
          dir, "s.yaml",
          "outputs: {heatmaps: ~, overlay_alpha: ~}\ninference: {batch_size: ~, precision: ~}\n"),
      {});
  EXPECT_EQ(segment.resolved_yaml(), load_segment_config(std::nullopt, {}).resolved_yaml());
  EXPECT_EQ(segment.batch_size, SegmentConfig{}.batch_size);

  // A null from --set gives back the default that the file changed.
  const TrainConfig train = load_train_config(
      write_text_file(dir, "t.yaml",
                      std::string(kTrainClasses) + "training: {epochs: 3, seed: ~}\n"),
      {"training.epochs=~"});
  EXPECT_EQ(train.training.epochs, TrainSettings{}.epochs);
  EXPECT_EQ(train.training.seed, TrainSettings{}.seed);
}

TEST(ConfigReader, ModelYamlFollowsTheSameNullRuleAndNamesTheFileAndKey) {
  testing::TempDir dir;
  const std::string model =
      "architecture: unet\n"
      "branches: [{spacing_um: 2.0, size_px: 64}]\n"
      "output: {spacing_um: 2.0, size_px: 64}\n"
      "classes: [{name: a, value: 0}, {name: b, value: 1}]\n";
  const ModelDescription d = load_model_description(
      write_text_file(dir, "model.yaml", model + "filters: ~\ndropout: ~\nweights: {file: ~}\n"));
  EXPECT_EQ(d.network.filters, ModelDescription{}.network.filters);
  EXPECT_EQ(d.weights_file, ModelDescription{}.weights_file);

  const fs::path bad = write_text_file(dir, "bad.yaml", model + "filters: two\n");
  const Error error = error_of([&] { load_model_description(bad); });
  EXPECT_EQ(error.code(), ErrorCode::kModelError);
  EXPECT_TRUE(mentions(error, "'" + bad.string() +
                                  "': config key 'filters': cannot read 'two' "
                                  "as an integer"))
      << error.what();
  // A required key that is null is missing.
  const std::string null_architecture = "architecture: ~" + model.substr(model.find('\n'));
  const Error missing = error_of(
      [&] { load_model_description(write_text_file(dir, "null.yaml", null_architecture)); });
  EXPECT_EQ(missing.code(), ErrorCode::kModelError);
  EXPECT_TRUE(mentions(missing, "architecture")) << missing.what();
}

TEST(ConfigReader, AnErrorNamesTheFileOrTheSetAssignmentTheKeyAndWhatIsAllowed) {
  testing::TempDir dir;
  const fs::path path = write_text_file(dir, "c.yaml", "tiling:\n  stride: abc\n");
  const Error file = error_of([&] { load_extract_config(path, {}); });
  EXPECT_EQ(file.code(), ErrorCode::kInvalidConfig);
  EXPECT_TRUE(mentions(
      file, "'" + path.string() + "': config key 'tiling.stride': cannot read 'abc' as an integer"))
      << file.what();

  const Error set = error_of([&] {
    load_extract_config(path, {"tiling.stride=4", "output.gzip_level=12"});
  });
  EXPECT_EQ(set.code(), ErrorCode::kInvalidConfig);
  EXPECT_TRUE(mentions(set,
                       "--set 'output.gzip_level=12': config key 'output.gzip_level': must "
                       "be 0..9"))
      << set.what();

  // A key the file set, with --set overrides of other keys: the file is named.
  const fs::path train =
      write_text_file(dir, "t.yaml", std::string(kTrainClasses) + "training:\n  epochs: 0\n");
  const Error epochs = error_of([&] { load_train_config(train, {"training.seed=1"}); });
  EXPECT_TRUE(
      mentions(epochs, "'" + train.string() + "': config key 'training.epochs': must be >= 1"))
      << epochs.what();

  // Unknown keys list the known ones, at the top level too.
  const Error top = error_of([] { load_segment_config(std::nullopt, {"output.heatmaps=true"}); });
  EXPECT_TRUE(mentions(top, "config key 'output': unknown key; known top-level keys: "))
      << top.what();
}

TEST(ConfigReader, InferenceMcSamplesWasRemovedAndTheErrorNamesTheFileTheKeyAndTheFix) {
  testing::TempDir dir;
  const fs::path path = write_text_file(dir, "s.yaml", "inference:\n  mc_samples: 8\n");
  const Error error = error_of([&] { load_segment_config(path, {}); });
  EXPECT_EQ(error.code(), ErrorCode::kInvalidConfig);
  EXPECT_TRUE(mentions(error, "'" + path.string() +
                                  "': config key 'inference.mc_samples': "
                                  "inference.mc_samples was removed: delete "
                                  "the key"))
      << error.what();
  const Error set = error_of([] { load_segment_config(std::nullopt, {"inference.mc_samples=2"}); });
  EXPECT_EQ(set.code(), ErrorCode::kInvalidConfig);
  EXPECT_TRUE(mentions(set, "--set 'inference.mc_samples=2'")) << set.what();
  EXPECT_EQ(error_of([] { load_segment_config(std::nullopt, {"inference.mc_samples=x"}); }).code(),
            ErrorCode::kInvalidConfig);

  // 0 (off), as configs/segment.yaml spelled it and every recorded config holds it, still reads
  // and changes nothing: a recorded config loads again.
  const SegmentConfig zero =
      load_segment_config(write_text_file(dir, "zero.yaml", "inference:\n  mc_samples: 0\n"), {});
  const std::string defaults = load_segment_config(std::nullopt, {}).resolved_yaml();
  EXPECT_EQ(zero.resolved_yaml(), defaults);
  EXPECT_NE(defaults.find("mc_samples: 0"), std::string::npos);
  const fs::path recorded = write_text_file(dir, "recorded.yaml", defaults);
  EXPECT_EQ(load_segment_config(recorded, {}).resolved_yaml(), defaults);
}

TEST(ConfigReader, TrainFlagsWinOverTheFileAndSetAndAreRecordedWithEveryDigit) {
  testing::TempDir dir;
  const fs::path path = write_text_file(
      dir, "t.yaml", std::string(kTrainClasses) + "training:\n  epochs: 7\n  seed: 2\n");
  TrainFlags flags;
  flags.seed = std::numeric_limits<std::uint64_t>::max();
  flags.epochs = 3;
  flags.threads = 1;
  const TrainConfig config = load_train_config(path, {"training.epochs=5"}, flags);
  EXPECT_EQ(config.training.epochs, 3);
  EXPECT_EQ(config.training.seed, std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ(config.training.threads, 1);
  // model.yaml's provenance records them as the keys they stand for.
  EXPECT_NE(config.yaml.find("seed: 18446744073709551615"), std::string::npos) << config.yaml;
  EXPECT_NE(config.yaml.find("epochs: 3"), std::string::npos) << config.yaml;
  EXPECT_NE(config.yaml.find("threads: 1"), std::string::npos) << config.yaml;
  // Without flags the recorded config is the file with its --set overrides.
  const TrainConfig plain = load_train_config(path, {"training.epochs=5"});
  EXPECT_EQ(plain.training.epochs, 5);
  EXPECT_NE(plain.yaml.find("epochs: 5"), std::string::npos) << plain.yaml;
  EXPECT_EQ(plain.yaml.find("threads"), std::string::npos) << plain.yaml;
  // A flag is checked as its key is.
  flags.epochs = 0;
  const Error error = error_of([&] { load_train_config(path, {}, flags); });
  EXPECT_EQ(error.code(), ErrorCode::kInvalidConfig);
  EXPECT_TRUE(mentions(error, "training.epochs")) << error.what();
}

TEST(ConfigReader, NodesReadTypedValuesAndRefuseWhatIsNotAllowed) {
  const config::Node root(YAML::Load("a: {n: 3, list: [1, 2], name: x}\nb: 7\n"), "");
  int n = 0;
  root["a"].read("n", n);
  EXPECT_EQ(n, 3);
  int untouched = 42;
  root["a"].read("absent", untouched);
  EXPECT_EQ(untouched, 42);
  EXPECT_EQ(root["a"]["list"].items("number").size(), 2u);
  const Error not_a_section = error_of([&] { (void)root["b"]["c"]; });
  EXPECT_TRUE(mentions(not_a_section, "config key 'b': must be a mapping")) << not_a_section.what();
  const Error not_a_list = error_of([&] { root["a"]["name"].items("{x}"); });
  EXPECT_TRUE(mentions(not_a_list, "config key 'a.name': must be a list of {x}"));
  const Error not_bool = error_of([&] { root["a"]["name"].as<bool>(); });
  EXPECT_TRUE(mentions(not_bool, "cannot read 'x' as true or false")) << not_bool.what();
  EXPECT_EQ(config::size_of(root["a"]["list"]), (Size{1, 2}));
  const Error sides =
      error_of([] { config::size_of(config::Node(YAML::Load("[1, 2, 3]"), "tiling.stride")); });
  EXPECT_TRUE(mentions(sides, "config key 'tiling.stride': must be N or [width, height] px"));
}

}  // namespace
}  // namespace slidestream
