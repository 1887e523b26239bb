// The parser bugs the fuzzers of tests/fuzz found, each stated as a sentence
// (docs/RELIABILITY.md, "Fuzzing"). The crash inputs themselves are replayed by the
// fuzz_replay.* tests; these say what the fix promises, with the documented code and message.
#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "slidestream/annotations.hpp"
#include "slidestream/core.hpp"
#include "slidestream/jobs/batch.hpp"
#include "slidestream/jobs/extract.hpp"
#include "slidestream/jobs/segment.hpp"
#include "slidestream/models/description.hpp"
#include "slidestream/models/shapes.hpp"
#include "slidestream/stain.hpp"
#include "slidestream/training/config.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;

namespace slidestream {
namespace {

using testing::error_of;
using testing::mentions;
using testing::write_text_file;

TEST(ConfigParsers, AConfigFileThatIsNotAMappingIsAConfigErrorNamingTheFile) {
  testing::TempDir dir;
  const fs::path path = write_text_file(dir, "config.yaml", "tissue.spacing_um=4\n");
  for (const auto& load : std::vector<std::function<void()>>{
           [&] { load_extract_config(path, {"tissue.spacing_um=4"}); },
           [&] { load_segment_config(path, {}); }, [&] { load_train_config(path, {}); }}) {
    const Error error = error_of(load);
    EXPECT_EQ(error.code(), ErrorCode::kInvalidConfig) << error.what();
    EXPECT_TRUE(mentions(error, path.string())) << error.what();
  }
}

TEST(ConfigParsers, SettingAKeyInsideAValueIsAConfigErrorNamingTheKey) {
  const Error error = error_of([] {
    load_extract_config(std::nullopt, {"tissue=4", "tissue.spacing_um=4"});
  });
  EXPECT_EQ(error.code(), ErrorCode::kInvalidConfig);
  EXPECT_TRUE(mentions(error, "tissue.spacing_um")) << error.what();
  // A list is a value too: yaml-cpp would silently turn it into a mapping.
  EXPECT_EQ(error_of([] {
              load_train_config(std::nullopt, {"classes=[1]", "classes.x=1"});
            }).code(),
            ErrorCode::kInvalidConfig);
}

TEST(ConfigParsers, ListsGivenAsMappingsAreConfigErrorsNamingTheKey) {
  const Error extract =
      error_of([] { load_extract_config(std::nullopt, {"labels.classes={a: 1}"}); });
  EXPECT_EQ(extract.code(), ErrorCode::kInvalidConfig);
  EXPECT_TRUE(mentions(extract, "labels.classes")) << extract.what();
  const Error train = error_of([] {
    load_train_config(std::nullopt, {"geometry.branches={a: {spacing_um: 1, size: 284}}"});
  });
  EXPECT_EQ(train.code(), ErrorCode::kInvalidConfig);
  EXPECT_TRUE(mentions(train, "geometry.branches")) << train.what();
}

TEST(ConfigParsers, SegmentPrecisionAndDeviceFromAConfigAreConfigErrorsNamingTheKey) {
  const Error precision =
      error_of([] { load_segment_config(std::nullopt, {"inference.precision=fp17"}); });
  EXPECT_EQ(precision.code(), ErrorCode::kInvalidConfig);
  EXPECT_TRUE(mentions(precision, "inference.precision")) << precision.what();
  const Error device =
      error_of([] { load_segment_config(std::nullopt, {"inference.device=tpu"}); });
  EXPECT_EQ(device.code(), ErrorCode::kInvalidConfig);
  EXPECT_TRUE(mentions(device, "inference")) << device.what();
}

// `stain: {}` enables normalization with the target's own method; the config recorded in the
// outputs writes that as `method: ~`, which must load again (segment --resume and export read it).
TEST(ConfigParsers, AStainSectionWithoutAMethodRecordsAConfigThatLoadsAgain) {
  testing::TempDir dir;
  const SegmentConfig config =
      load_segment_config(write_text_file(dir, "s.yaml", "stain: {}\n"), {});
  EXPECT_TRUE(config.stain.enabled);
  EXPECT_FALSE(config.stain.method.has_value());
  const fs::path recorded = write_text_file(dir, "recorded.yaml", config.resolved_yaml());
  const SegmentConfig again = load_segment_config(recorded, {});
  EXPECT_TRUE(again.stain.enabled);
  EXPECT_FALSE(again.stain.method.has_value());
  EXPECT_EQ(again.resolved_yaml(), config.resolved_yaml());
}

TEST(ManifestParser, AnMppThatIsNotAPositiveNumberIsAConfigErrorNamingTheLine) {
  testing::TempDir dir;
  for (const char* mpp : {"nan", "inf", "-0.25", "0", "um"}) {
    const fs::path manifest =
        write_text_file(dir, "slides.csv", std::string("path,mpp\na.svs,0.5\nb.svs,") + mpp + "\n");
    const Error error = error_of([&] { expand_slide_inputs({manifest.string()}); });
    EXPECT_EQ(error.code(), ErrorCode::kInvalidConfig) << mpp;
    EXPECT_TRUE(mentions(error, "line 3")) << error.what();
  }
}

TEST(ManifestParser, SlideIdsThatCannotNameAnOutputAreConfigErrors) {
  testing::TempDir dir;
  for (const char* row : {"a.svs,..", "a.svs,x/y", "a.svs,.", "dir/,"}) {
    const fs::path manifest =
        write_text_file(dir, "slides.csv", std::string("path,id\n") + row + "\n");
    const Error error = error_of([&] { expand_slide_inputs({manifest.string()}); });
    EXPECT_EQ(error.code(), ErrorCode::kInvalidConfig) << row;
    EXPECT_TRUE(mentions(error, "id")) << error.what();
  }
}

TEST(AnnotationParsers, GeoJsonWithANumberBeyondADoubleIsAConfigErrorNamingTheFile) {
  testing::TempDir dir;
  for (const char* text : {R"({"type": "Feature", "geometry": {"type": "Polygon",
                               "coordinates": [[[0, 0], [1e400, 0], [1, 1]]]}})",
                           R"({"type": 1, "features": []})"}) {
    const fs::path path = write_text_file(dir, "a.geojson", text);
    const Error error = error_of([&] { read_annotations(path); });
    EXPECT_EQ(error.code(), ErrorCode::kInvalidConfig) << text;
    EXPECT_TRUE(mentions(error, path.string())) << error.what();
  }
}

TEST(StainParameterParser, ANumberBeyondADoubleIsAConfigError) {
  const Error error = error_of([] { StainParams::from_json("4e4444", "p.json"); });
  EXPECT_EQ(error.code(), ErrorCode::kInvalidConfig);
  EXPECT_TRUE(mentions(error, "p.json")) << error.what();
}

TEST(StainParameterParser, AVersionOneValueThatOverflowsWhenConvertedIsAConfigErrorNamingIt) {
  nlohmann::json json = nlohmann::json::parse(StainParams().to_json());
  json["version"] = 1;  // log10 OD: max_concentrations are multiplied by ln 10 on load
  json["max_concentrations"] = {1e308, 1.0};
  const std::string text = json.dump();
  const Error error = error_of([&] { StainParams::from_json(text, "v1.json"); });
  EXPECT_EQ(error.code(), ErrorCode::kInvalidConfig);
  EXPECT_TRUE(mentions(error, "'max_concentrations' is too large")) << error.what();
}

TEST(ModelDescriptionParser, AnInfiniteOrUnreachableBranchSpacingIsAConfigErrorNotUndefined) {
  ModelDescription description;
  description.architecture = "hooknet";
  description.geometry = ModelGeometry::hooknet_breast();
  description.classes = {{"background", 0, {}}, {"tumour", 1, {}}};
  description.geometry.branches[1].spacing_um = INFINITY;
  EXPECT_EQ(error_of([&] { description.validate(); }).code(), ErrorCode::kInvalidConfig);
  // Finite spacings whose ratio overflows: log2 of it is infinite.
  EXPECT_EQ(error_of([] { hooknet_hook(1e-300, 1e300, 4); }).code(), ErrorCode::kInvalidConfig);
}

}  // namespace
}  // namespace slidestream
