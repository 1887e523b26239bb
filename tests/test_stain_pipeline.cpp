// Stain normalization inside the pipeline: slide-level fits, the `stain:` section of extract
// configs (StainStage) and `stain normalize-slide` into a pyramidal TIFF.
#include <gtest/gtest.h>
#include <openslide.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <optional>
#include <string>

#include "slidestream/core.hpp"
#include "slidestream/jobs/batch.hpp"
#include "slidestream/jobs/extract.hpp"
#include "slidestream/jobs/stain.hpp"
#include "slidestream/jobs/stain_stage.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;

namespace slidestream {
namespace {

using testing::TempDir;

/// A 2048 x 2048 synthetic slide at 0.5 um/px (deflate, so inputs are exact).
fs::path small_slide() {
  SynthOptions options;
  options.size = Size{2048, 2048};
  options.mpp_um = 0.5;
  options.seed = 11;
  options.compression = "deflate";
  return testing::synthetic_slide("stain-2048", options);
}

/// A Reinhard target far from the synthetic slide's colours, saved as JSON.
StainParams reinhard_target(const fs::path& path) {
  StainParams params = macenko_reference();
  params.method = StainMethod::kReinhard;
  params.lab_mean = {55.0, 35.0, -25.0};
  params.lab_std = {12.0, 8.0, 8.0};
  params.fitted_on = "test";
  params.save(path);
  return params;
}

cv::Vec3d lab_mean(const cv::Mat& rgb, const cv::Mat& mask) {
  cv::Mat scaled;
  rgb.convertTo(scaled, CV_32F, 1.0 / 255.0);
  cv::Mat lab;
  cv::cvtColor(scaled, lab, cv::COLOR_RGB2Lab);
  const cv::Scalar mean = cv::mean(lab, mask);
  return {mean[0], mean[1], mean[2]};
}

cv::Mat read_rgb(const fs::path& path) {
  const cv::Mat bgr = cv::imread(path.string(), cv::IMREAD_COLOR);
  EXPECT_FALSE(bgr.empty()) << path;
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

TEST(StainPipeline, SlideLevelFitIsDeterministicAndSeesTissue) {
  const auto reader = open_slide(small_slide());
  const TissueMask mask = compute_tissue_mask(*reader);
  const StainParams first = fit_stain_on_slide(*reader, mask, StainMethod::kMacenko);
  const StainParams again = fit_stain_on_slide(*reader, mask, StainMethod::kMacenko);
  EXPECT_EQ(first.to_json(), again.to_json());
  // The synthetic H&E stains are H&E-like: close to the reference vectors.
  EXPECT_LT(first.quality_deg, 30.0);
  EXPECT_EQ(first.fitted_on, "stain-2048.tif");
  // No tile has tissue under an empty mask: a clear error, not a fit on background.
  TissueMask empty = mask;
  empty.mask.setTo(0);
  EXPECT_THROW(fit_stain_on_slide(*reader, empty, StainMethod::kMacenko), Error);
}

TEST(StainPipeline, StainFitAcceptsASlide) {
  const TempDir folder;
  StainFitJob job;
  job.input = small_slide();
  job.method = StainMethod::kReinhard;
  job.output = folder / "slide.json";
  const StainParams params = run_stain_fit(job);
  EXPECT_EQ(StainParams::load(job.output).to_json(), params.to_json());
  EXPECT_GT(params.lab_std[0], 1.0);
}

/// Extracts the small slide's target/context patches as PNGs with `overrides`.
fs::path extract_pngs(const TempDir& folder, const std::string& name,
                      const std::vector<std::string>& overrides, BatchReport* report) {
  std::vector<std::string> settings{
      "geometry.branches=[{spacing_um: 0.5, size: 64}, {spacing_um: 2.0, size: 64}]",
      "geometry.output={spacing_um: 0.5, size: 32}", "tiling.stride=[256, 256]",
      "output.format=png"};
  settings.insert(settings.end(), overrides.begin(), overrides.end());
  ExtractJob job;
  job.inputs = {small_slide().string()};
  job.config = load_extract_config(std::nullopt, settings);
  job.config.scheduler.progress = false;
  job.output = folder / name;
  *report = run_extract(job);
  return job.output / "stain-2048";
}

TEST(StainPipeline, ExtractNormalizesPatchesOnlyWithAStainSection) {
  const TempDir folder;
  const fs::path target = folder / "target.json";
  const StainParams params = reinhard_target(target);
  BatchReport raw_report;
  BatchReport stain_report;
  const fs::path raw = extract_pngs(folder, "raw", {}, &raw_report);
  const fs::path normalized = extract_pngs(
      folder, "stain", {"stain={target: " + target.string() + ", fit: tile}"}, &stain_report);
  ASSERT_EQ(raw_report.failed(), 0U);
  ASSERT_EQ(stain_report.failed(), 0U);
  EXPECT_FALSE(raw_report.slides[0].stain.has_value());
  ASSERT_TRUE(stain_report.slides[0].stain.has_value());
  const StainCounts counts = *stain_report.slides[0].stain;
  // Every branch patch goes through the stage: two per tile.
  EXPECT_EQ(counts.tiles, 2 * static_cast<std::int64_t>(stain_report.slides[0].patches));
  EXPECT_GT(counts.normalized, 0);
  // The report records the counts; without `stain:` neither the report nor the recorded config
  // mention it.
  std::ifstream report_file(normalized.parent_path() / "report.json");
  const auto report = nlohmann::json::parse(report_file);
  EXPECT_EQ(report["slides"][0]["stain"]["normalized"].get<std::int64_t>(), counts.normalized);
  EXPECT_NE(report["config_yaml"].get<std::string>().find("stain:"), std::string::npos);
  std::ifstream raw_file(raw.parent_path() / "report.json");
  const auto raw_json = nlohmann::json::parse(raw_file);
  EXPECT_FALSE(raw_json["slides"][0].contains("stain"));
  EXPECT_EQ(raw_json["config_yaml"].get<std::string>().find("stain:"), std::string::npos);

  const cv::Vec3d wanted(params.lab_mean[0], params.lab_mean[1], params.lab_mean[2]);
  int compared = 0;
  double raw_distance = 0;
  double normalized_distance = 0;
  for (const auto& entry : fs::directory_iterator(raw)) {
    const std::string name = entry.path().filename().string();
    if (name.size() < 7 || name.substr(name.size() - 7) != "_b0.png") {
      continue;
    }
    const cv::Mat before = read_rgb(entry.path());
    const cv::Mat after = read_rgb(normalized / name);
    const cv::Mat mask = tissue_mask(before);
    if (cv::countNonZero(mask) < 100) {
      continue;
    }
    EXPECT_GT(cv::norm(before, after, cv::NORM_L1), 0.0) << name;
    raw_distance += cv::norm(lab_mean(before, mask) - wanted);
    normalized_distance += cv::norm(lab_mean(after, mask) - wanted);
    ++compared;
  }
  ASSERT_GT(compared, 3);
  std::cout << "LAB distance to the target over " << compared << " patches: raw "
            << raw_distance / compared << ", normalized " << normalized_distance / compared << "\n";
  EXPECT_LT(normalized_distance, 0.5 * raw_distance);
}

struct SlideCheck {
  double tissue_before = 0;      ///< LAB distance of the tissue mean to the target, input
  double tissue_after = 0;       ///< ... and output
  double background_change = 0;  ///< mean absolute change (grey levels) off the tissue mask
};

/// Normalizes `slide` onto `target` and checks what any output must satisfy.
SlideCheck normalize_and_check(const fs::path& slide, const std::string& target, StainMethod method,
                               const cv::Vec3d& target_lab) {
  const TempDir folder;
  NormalizeSlideJob job;
  job.input = slide;
  job.output = folder / "normalized.tif";
  job.stain.target = target;
  job.stain.method = method;
  job.tile_size = 256;
  job.scheduler.threads = 2;
  job.scheduler.progress = false;
  const NormalizeSlideReport report = run_stain_normalize_slide(job);
  EXPECT_GT(report.stain.normalized, 0);
  EXPECT_GT(report.tiles_copied, 0);

  openslide_t* handle = openslide_open(job.output.c_str());
  EXPECT_NE(handle, nullptr);
  if (handle != nullptr) {
    EXPECT_EQ(openslide_get_error(handle), nullptr);
    EXPECT_GT(openslide_get_level_count(handle), 1);
    openslide_close(handle);
  }
  const auto input = open_slide(slide);
  const auto output = open_slide(job.output);
  EXPECT_EQ(output->info().size(), input->info().size());
  EXPECT_NEAR(output->info().spacing.x_um, input->info().spacing.x_um,
              0.01 * input->info().spacing.x_um);
  EXPECT_NEAR(output->info().spacing.y_um, input->info().spacing.y_um,
              0.01 * input->info().spacing.y_um);
  EXPECT_EQ(output->info().spacing_source, SpacingSource::kTiffResolution);

  // Compare at 2 um/px: tissue by the input's own tissue pixels, background off the slide mask.
  const Size full = input->info().size();
  const double spacing = 4.0 * input->info().spacing.x_um;
  const Size size{full.width / 4, full.height / 4};
  const RectF fov{0, 0, static_cast<double>(full.width), static_cast<double>(full.height)};
  const cv::Mat before = input->read_fov(fov, size).rgb;
  const cv::Mat after = output->read_fov(fov, size).rgb;
  const TissueMask mask = compute_tissue_mask(*input);
  cv::Mat background;
  cv::resize(mask.mask, background, before.size(), 0, 0, cv::INTER_NEAREST);
  cv::dilate(background, background, cv::Mat::ones(15, 15, CV_8U));
  background = background == 0;
  SlideCheck check;
  const cv::Mat tissue = tissue_mask(before);
  check.tissue_before = cv::norm(lab_mean(before, tissue) - target_lab);
  check.tissue_after = cv::norm(lab_mean(after, tissue) - target_lab);
  cv::Mat difference;
  cv::absdiff(before, after, difference);
  const cv::Scalar change = cv::mean(difference, background);
  check.background_change = (change[0] + change[1] + change[2]) / 3.0;
  std::cout << "tissue LAB distance to the target " << check.tissue_before << " -> "
            << check.tissue_after << ", background change " << check.background_change
            << " grey levels (" << spacing << " um/px)\n";
  (void)spacing;
  return check;
}

TEST(StainPipeline, NormalizeSlideWritesAPyramidWithTheInputsGeometry) {
  const TempDir folder;
  const fs::path target = folder / "target.json";
  const StainParams params = reinhard_target(target);
  const SlideCheck check =
      normalize_and_check(small_slide(), target.string(), StainMethod::kReinhard,
                          cv::Vec3d(params.lab_mean[0], params.lab_mean[1], params.lab_mean[2]));
  EXPECT_LT(check.tissue_after, 0.5 * check.tissue_before);
  EXPECT_LT(check.background_change, 1.5);  // JPEG Q90 of copied background tiles
}

TEST(StainPipeline, NormalizeSlideOnARealSlideMovesTissueTowardsTheTarget) {
  SLIDESTREAM_REQUIRE_DATA(slide, "wsi/CMU-1-Small-Region.svs");
  SLIDESTREAM_REQUIRE_DATA(target_image, "he/torchstain_target.png");
  const cv::Mat target = read_rgb(target_image);
  const cv::Vec3d target_lab = lab_mean(target, tissue_mask(target));
  const SlideCheck check =
      normalize_and_check(slide, target_image.string(), StainMethod::kMacenko, target_lab);
  EXPECT_LT(check.tissue_after, check.tissue_before);
  EXPECT_LT(check.background_change, 2.0);
}

/// Peak RSS in MiB of `slidestream stain normalize-slide SLIDE` onto the reference preset, from
/// /usr/bin/time (nullopt, with the reason in `why`, when it cannot be measured).
std::optional<double> normalize_slide_peak_mib(const fs::path& slide, const fs::path& output,
                                               std::string& why) {
  const auto result = testing::run_shell(
      "/usr/bin/time -f 'peak_kib=%M' " + std::string(SLIDESTREAM_CLI_PATH) +
      " stain normalize-slide \"" + slide.string() + "\" --target macenko-reference -o \"" +
      output.string() + "\" --threads 2 -q 2>&1");
  const std::size_t at = result.output.rfind("peak_kib=");
  if (result.exit_code != 0 || at == std::string::npos) {
    why = "exit code " + std::to_string(result.exit_code) + ": " + result.output;
    return std::nullopt;
  }
  return std::stod(result.output.substr(at + 9)) / 1024.0;
}

TEST(StainPipeline, NormalizeSlideMemoryDoesNotGrowWithSlideArea) {
  if (!fs::exists("/usr/bin/time")) {
    GTEST_SKIP() << "needs /usr/bin/time to measure peak memory (Debian package 'time', "
                    "installed by scripts/install-deps.sh)";
  }
  SynthOptions options;
  options.mpp_um = 0.5;
  options.seed = 1;
  options.size = Size{2048, 2048};
  const fs::path small = testing::synthetic_slide("memory-2048", options);
  options.size = Size{8192, 8192};
  const fs::path large = testing::synthetic_slide("memory-8192", options);
  const TempDir folder;
  std::string why;
  const auto small_peak = normalize_slide_peak_mib(small, folder / "small.tif", why);
  ASSERT_TRUE(small_peak) << why;
  const auto large_peak = normalize_slide_peak_mib(large, folder / "large.tif", why);
  ASSERT_TRUE(large_peak) << why;
  std::cout << "normalize-slide peak RSS: 2048^2 " << *small_peak << " MiB, 8192^2 " << *large_peak
            << " MiB\n";
  // 16x the area. Holding the slide (or its output) would add 192 MiB of RGB at level 0; the
  // allowance is a third of that (the tissue mask and the pyramid writer's rows grow a little).
  EXPECT_LT(*large_peak, *small_peak + 64.0);
  EXPECT_EQ(open_slide(folder / "large.tif")->info().size(), (Size{8192, 8192}));
}

}  // namespace
}  // namespace slidestream
