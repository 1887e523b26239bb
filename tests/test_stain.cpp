// Stain normalization: Macenko, Reinhard and Vahadane on the torchstain source/target pair.
#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iostream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "slidestream/core.hpp"
#include "slidestream/stain.hpp"
#include "stain_detail.hpp"
#include "test_support.hpp"

namespace slidestream {
namespace {

constexpr std::array<StainMethod, 3> kMethods{StainMethod::kMacenko, StainMethod::kReinhard,
                                              StainMethod::kVahadane};

cv::Mat read_rgb(const std::filesystem::path& path) {
  const cv::Mat bgr = cv::imread(path.string(), cv::IMREAD_COLOR);
  EXPECT_FALSE(bgr.empty()) << path;
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

cv::Mat lab_of(const cv::Mat& rgb) {
  cv::Mat scaled;
  rgb.convertTo(scaled, CV_32F, 1.0 / 255.0);
  cv::Mat lab;
  cv::cvtColor(scaled, lab, cv::COLOR_RGB2Lab);
  return lab;
}

struct LabStats {
  cv::Vec3d mean;
  cv::Vec3d deviation;
};

LabStats lab_stats(const cv::Mat& rgb, const cv::Mat& mask) {
  cv::Scalar mean;
  cv::Scalar deviation;
  cv::meanStdDev(lab_of(rgb), mean, deviation, mask);
  return {{mean[0], mean[1], mean[2]}, {deviation[0], deviation[1], deviation[2]}};
}

double mean_abs_difference(const cv::Mat& a, const cv::Mat& b) {
  const cv::Scalar difference = cv::mean(cv::abs(cv::Mat_<cv::Vec3s>(a) - cv::Mat_<cv::Vec3s>(b)));
  return (difference[0] + difference[1] + difference[2]) / 3.0;
}

cv::Vec3d column(const cv::Matx32d& matrix, int index) {
  return {matrix(0, index), matrix(1, index), matrix(2, index)};
}

/// The bit pattern of a double, for bit-exact comparisons.
std::uint64_t bits(double value) {
  std::uint64_t pattern = 0;
  std::memcpy(&pattern, &value, sizeof(pattern));
  return pattern;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

TEST(Stain, NormalizingTheSourceMovesItsTissueColourOntoTheTarget) {
  SLIDESTREAM_REQUIRE_DATA(source_path, "he/torchstain_source.png");
  SLIDESTREAM_REQUIRE_DATA(target_path, "he/torchstain_target.png");
  const cv::Mat source = read_rgb(source_path);
  const cv::Mat target = read_rgb(target_path);
  // Tissue is judged on the source's mask for both the input and the output (same pixels).
  const cv::Mat source_mask = tissue_mask(source);
  const cv::Vec3d target_mean = lab_stats(target, tissue_mask(target)).mean;
  const double before = cv::norm(lab_stats(source, source_mask).mean - target_mean);
  for (const StainMethod method : kMethods) {
    const auto start = std::chrono::steady_clock::now();
    const StainNormalizer normalizer(fit_stain(target, method));
    const double fit_s = seconds_since(start);
    const cv::Mat output = normalizer.apply(source);
    const double after = cv::norm(lab_stats(output, source_mask).mean - target_mean);
    const double drop = 1.0 - after / before;
    std::cout << stain_method_name(method) << ": Delta E76 of the tissue mean to the target's "
              << before << " -> " << after << " (drop " << drop * 100.0 << " %), fit " << fit_s
              << " s, apply " << seconds_since(start) - fit_s << " s\n";
    EXPECT_GE(drop, 0.7) << stain_method_name(method);
  }
}

TEST(Stain, NormalizingTheTargetWithItsOwnParametersChangesAlmostNothing) {
  SLIDESTREAM_REQUIRE_DATA(target_path, "he/torchstain_target.png");
  const cv::Mat target = read_rgb(target_path);
  for (const StainMethod method : kMethods) {
    const cv::Mat output = StainNormalizer(fit_stain(target, method)).apply(target);
    const double change = mean_abs_difference(output, target);
    std::cout << stain_method_name(method) << ": self-normalization changes pixels by " << change
              << " grey levels on average\n";
    EXPECT_LT(change, 2.0) << stain_method_name(method);
  }
}

TEST(Stain, MacenkoVectorsAreStableWhenConcentrationsAreScaled) {
  SLIDESTREAM_REQUIRE_DATA(source_path, "he/torchstain_source.png");
  const cv::Mat source = read_rgb(source_path);
  constexpr double kScale = 0.7;
  constexpr double kIo = 240.0;
  // OD * 0.7 everywhere is every concentration * 0.7: I' = Io ((I + 1) / Io)^0.7 - 1.
  cv::Mat lut(1, 256, CV_8U);
  for (int value = 0; value < 256; ++value) {
    const double od = std::max(0.0, -std::log((value + 1.0) / kIo));
    const double excess = std::max(0.0, value - (kIo - 1.0));
    lut.at<std::uint8_t>(0, value) =
        cv::saturate_cast<std::uint8_t>(kIo * std::exp(-kScale * od) - 1.0 + excess);
  }
  cv::Mat paler;
  cv::LUT(source, lut, paler);
  const StainParams original = fit_stain(source, StainMethod::kMacenko);
  const StainParams scaled = fit_stain(paler, StainMethod::kMacenko);
  for (int stain = 0; stain < 2; ++stain) {
    const double angle = stain_detail::angle_deg(column(original.stain_matrix, stain),
                                                 column(scaled.stain_matrix, stain));
    std::cout << (stain == 0 ? "H" : "E") << " moves by " << angle << " degrees\n";
    EXPECT_LT(angle, 5.0);
  }
}

TEST(Stain, ReinhardMatchesTheTargetsLabStatistics) {
  SLIDESTREAM_REQUIRE_DATA(source_path, "he/torchstain_source.png");
  SLIDESTREAM_REQUIRE_DATA(target_path, "he/torchstain_target.png");
  const cv::Mat source = read_rgb(source_path);
  const StainParams params = fit_stain(read_rgb(target_path), StainMethod::kReinhard);
  const LabStats output = lab_stats(StainNormalizer(params).apply(source), tissue_mask(source));
  for (int channel = 0; channel < 3; ++channel) {
    const auto index = static_cast<std::size_t>(channel);
    std::cout << "LAB channel " << channel << ": mean " << output.mean[channel] << " vs "
              << params.lab_mean[index] << ", std " << output.deviation[channel] << " vs "
              << params.lab_std[index] << "\n";
    EXPECT_NEAR(output.mean[channel], params.lab_mean[index],
                0.01 * std::abs(params.lab_mean[index]));
    EXPECT_NEAR(output.deviation[channel], params.lab_std[index], 0.01 * params.lab_std[index]);
  }
}

TEST(Stain, VahadaneConcentrationsAreNonNegativeSparseAndReconstructTheImage) {
  SLIDESTREAM_REQUIRE_DATA(target_path, "he/tiatoolbox_target_image.png");
  const cv::Mat image = read_rgb(target_path);
  const auto start = std::chrono::steady_clock::now();
  const StainParams params = fit_stain(image, StainMethod::kVahadane);
  std::cout << "Vahadane fit of " << image.cols << "x" << image.rows << ": " << seconds_since(start)
            << " s\n";
  EXPECT_LT(seconds_since(start), 10.0);
  const auto od = stain_detail::stain_pixels(image, stain_detail::od_table(params.io), params.beta);
  const stain_detail::NonNegativeLasso lasso(params.stain_matrix, params.lambda);
  double residual = 0.0;
  double total = 0.0;
  std::size_t single_stain = 0;
  for (const auto& value : od) {
    const cv::Vec2d c = lasso(value);
    ASSERT_GE(c[0], 0.0);
    ASSERT_GE(c[1], 0.0);
    single_stain += (c[0] == 0.0 || c[1] == 0.0) ? 1 : 0;
    residual += cv::norm(value - params.stain_matrix * c, cv::NORM_L2SQR);
    total += cv::norm(value, cv::NORM_L2SQR);
  }
  // Sparsity: the fraction of stain pixels explained by one stain alone (the other exactly 0).
  const double sparsity = static_cast<double>(single_stain) / static_cast<double>(od.size());
  const double relative_error = std::sqrt(residual / total);
  std::cout << "Vahadane: " << sparsity * 100.0 << " % of stain pixels use a single stain, "
            << "relative reconstruction error " << relative_error << "\n";
  EXPECT_GT(sparsity, 0.1);
  // The L1 penalty shrinks each active concentration by about lambda = 0.1 OD against stain
  // pixels whose OD norm is 0.5..1.5, and two stains leave the third OD direction unexplained:
  // a relative error of up to ~25 % is the model, more is a bad fit.
  EXPECT_LT(relative_error, 0.25);
}

TEST(Stain, BlankAndSingleColourTilesAreReturnedUnchanged) {
  StainParams reinhard = macenko_reference();
  reinhard.method = StainMethod::kReinhard;
  reinhard.lab_mean = {60.0, 20.0, -10.0};
  reinhard.lab_std = {10.0, 5.0, 5.0};
  StainParams vahadane = macenko_reference();
  vahadane.method = StainMethod::kVahadane;
  for (const StainParams& params : {macenko_reference(), reinhard, vahadane}) {
    const StainNormalizer normalizer(params);
    ApplyStats stats;
    for (const cv::Scalar& colour : {cv::Scalar(255, 255, 255), cv::Scalar(0, 0, 0),
                                     cv::Scalar(150, 60, 140), cv::Scalar(245, 250, 252)}) {
      const cv::Mat tile(64, 64, CV_8UC3, colour);
      const cv::Mat output = normalizer.apply(tile, &stats);
      EXPECT_EQ(cv::norm(output, tile, cv::NORM_INF), 0.0)
          << stain_method_name(params.method) << " " << colour;
    }
    EXPECT_EQ(stats.tiles, 4);
    EXPECT_EQ(stats.tiles_without_tissue, 2);  // white and near-white
    EXPECT_EQ(stats.tiles_degenerate, 2);      // black and one colour
    EXPECT_THROW(fit_stain(cv::Mat(64, 64, CV_8UC3, cv::Scalar(150, 60, 140)), params.method),
                 Error);
  }
}

TEST(Stain, AnImmunohistochemistryImageGetsALowQualityWarning) {
  SLIDESTREAM_REQUIRE_DATA(ihc_path, "he/skimage_ihc.png");
  SLIDESTREAM_REQUIRE_DATA(he_path, "he/tiatoolbox_target_image.png");
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(16);
  const auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("stain-test", sink));
  StainFitOptions options;
  options.fitted_on = "skimage_ihc.png";
  const StainParams ihc = fit_stain(read_rgb(ihc_path), StainMethod::kMacenko, options);
  const auto warnings = sink->last_formatted();
  const StainParams he = fit_stain(read_rgb(he_path), StainMethod::kMacenko);
  spdlog::set_default_logger(previous);
  std::cout << "quality: IHC " << ihc.quality_deg << " degrees, H&E " << he.quality_deg
            << " degrees\n";
  // The IHC's second stain is DAB (brown, absorbs blue most); the H&E fit is close to the
  // reference.
  EXPECT_GT(ihc.quality_deg, 15.0);
  EXPECT_GT(ihc.stain_matrix(2, 1), ihc.stain_matrix(1, 1));
  EXPECT_LT(he.quality_deg, 15.0);
  ASSERT_EQ(warnings.size(), 1U);  // the IHC's only
  EXPECT_NE(warnings[0].find("not H&E"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[0].find("skimage_ihc.png"), std::string::npos) << warnings[0];
}

TEST(Stain, ParametersRoundTripThroughJsonBitExactly) {
  SLIDESTREAM_REQUIRE_DATA(source_path, "he/torchstain_source.png");
  const cv::Mat source = read_rgb(source_path);
  const testing::TempDir folder;
  for (const StainMethod method : kMethods) {
    StainFitOptions options;
    options.fitted_on = "torchstain_source.png";
    const StainParams fitted = fit_stain(source, method, options);
    fitted.save(folder / "params.json");
    const StainParams loaded = StainParams::load(folder / "params.json");
    EXPECT_EQ(loaded.to_json(), fitted.to_json());
    EXPECT_EQ(loaded.method, fitted.method);
    EXPECT_EQ(loaded.fitted_on, fitted.fitted_on);
    const auto expect_same_bits = [](const double* loaded_values, const double* fitted_values,
                                     std::size_t count, const char* field) {
      for (std::size_t i = 0; i < count; ++i) {
        EXPECT_EQ(bits(loaded_values[i]), bits(fitted_values[i])) << field << "[" << i << "]";
      }
    };
    expect_same_bits(loaded.stain_matrix.val, fitted.stain_matrix.val, 6, "stain_matrix");
    expect_same_bits(loaded.max_concentrations.data(), fitted.max_concentrations.data(), 2,
                     "max_concentrations");
    expect_same_bits(loaded.lab_mean.data(), fitted.lab_mean.data(), 3, "lab_mean");
    expect_same_bits(loaded.lab_std.data(), fitted.lab_std.data(), 3, "lab_std");
    expect_same_bits(&loaded.quality_deg, &fitted.quality_deg, 1, "quality_deg");
  }
}

TEST(Stain, ACorruptParametersFileIsAnInvalidConfigNamingTheFileAndField) {
  const testing::TempDir folder;
  const auto expect_invalid = [&](const std::string& text, const std::string& field) {
    const auto path = folder / "bad.json";
    std::ofstream(path) << text;
    try {
      StainParams::load(path);
      ADD_FAILURE() << "no error for " << text;
    } catch (const Error& error) {
      EXPECT_EQ(error.code(), ErrorCode::kInvalidConfig);
      EXPECT_NE(std::string(error.what()).find(path.string()), std::string::npos) << error.what();
      EXPECT_NE(std::string(error.what()).find(field), std::string::npos) << error.what();
    }
  };
  expect_invalid("{ \"format\": ", "JSON");
  std::string wrong_io = macenko_reference().to_json();
  wrong_io.replace(wrong_io.find("\"io\": 240.0"), 11, "\"io\": \"x\"");
  expect_invalid(wrong_io, "'io'");
  std::string wrong_method = macenko_reference().to_json();
  wrong_method.replace(wrong_method.find("macenko\""), 8, "unknown\"");
  expect_invalid(wrong_method, "'method'");
  EXPECT_THROW(parse_stain_method("sparse"), Error);
  EXPECT_EQ(parse_stain_method("vahadane"), StainMethod::kVahadane);
}

TEST(Stain, Version1ParametersInLog10UnitsAreConvertedOnLoad) {
  StainParams params = macenko_reference();
  std::string text = params.to_json();
  text.replace(text.find("\"version\": 2"), 12, "\"version\": 1");
  const double ln10 = std::log(10.0);
  const StainParams loaded = StainParams::from_json(text);
  EXPECT_NEAR(loaded.beta, params.beta * ln10, 1e-12);
  EXPECT_NEAR(loaded.max_concentrations[0], params.max_concentrations[0] * ln10, 1e-12);
  EXPECT_NEAR(loaded.max_concentrations[1], params.max_concentrations[1] * ln10, 1e-12);
  EXPECT_EQ(loaded.stain_matrix(2, 1), params.stain_matrix(2, 1));
}

TEST(Stain, HedJitterIsDeterministicAndKeepsWhiteBackground) {
  SLIDESTREAM_REQUIRE_DATA(source_path, "he/torchstain_source.png");
  const cv::Mat source = read_rgb(source_path);
  const StainParams params = fit_stain(source, StainMethod::kMacenko);
  const cv::Mat first = hed_jitter(source, params, 0.1, 0.0, 7);
  const cv::Mat again = hed_jitter(source, params, 0.1, 0.0, 7);
  const cv::Mat other = hed_jitter(source, params, 0.1, 0.0, 8);
  EXPECT_EQ(cv::norm(first, again, cv::NORM_INF), 0.0);
  EXPECT_GT(mean_abs_difference(first, other), 0.1);
  // No perturbation at all leaves the image as it is (the off-plane OD is kept).
  EXPECT_LT(mean_abs_difference(hed_jitter(source, params, 0.0, 0.0, 7), source), 0.05);
  const cv::Mat white(8, 8, CV_8UC3, cv::Scalar(250, 250, 250));
  EXPECT_EQ(cv::norm(hed_jitter(white, params, 0.1, 0.0, 7), white, cv::NORM_INF), 0.0);
}

/// Every 8-bit colour on a coarse grid plus random ones: what the tabulated kernels must map.
cv::Mat colour_sweep() {
  cv::Mat image(64, 128, CV_8UC3);
  cv::randu(image, cv::Scalar::all(0), cv::Scalar::all(256));
  int index = 0;
  for (int r = 0; r < 256; r += 17) {
    for (int g = 0; g < 256; g += 17) {
      for (int b = 0; b < 256; b += 17, ++index) {
        image.at<cv::Vec3b>(index / image.cols, index % image.cols) =
            cv::Vec3b(static_cast<std::uint8_t>(r), static_cast<std::uint8_t>(g),
                      static_cast<std::uint8_t>(b));
      }
    }
  }
  return image;
}

TEST(StainKernels, FixedPointOdMappingMatchesTheFloatFormula) {
  const double io = 240.0;
  // A Macenko-like map: stain projection plus a little off-plane OD, with negative entries.
  const cv::Matx33d map(0.9, 0.2, -0.1, 0.15, 1.1, 0.05, -0.2, 0.3, 0.8);
  const cv::Mat image = colour_sweep();
  cv::Mat output;
  const std::int64_t tissue = stain_detail::LinearOdMap(io, 0.15).apply(image, map, output);
  const stain_detail::OdTable od = stain_detail::od_table(io);
  std::int64_t expected_tissue = 0;
  double total = 0;
  double worst = 0;
  for (int y = 0; y < image.rows; ++y) {
    for (int x = 0; x < image.cols; ++x) {
      const cv::Vec3b& in = image.at<cv::Vec3b>(y, x);
      const cv::Vec3d density(od[in[0]], od[in[1]], od[in[2]]);
      expected_tissue += density[0] + density[1] + density[2] > 0.15 ? 1 : 0;
      const cv::Vec3d mapped = map * density;
      for (int c = 0; c < 3; ++c) {
        const double excess = std::max(0.0, in[c] - (io - 1.0));
        const double exact = std::clamp(io * std::exp(-mapped[c]) - 1.0, 0.0, 255.0) + excess;
        const double error = std::abs(std::min(exact, 255.0) - output.at<cv::Vec3b>(y, x)[c]);
        total += error;
        worst = std::max(worst, error);
      }
    }
  }
  const double mean = total / (3.0 * static_cast<double>(image.total()));
  std::cout << "fixed-point OD mapping: mean error " << mean << ", worst " << worst
            << " grey levels\n";
  EXPECT_LE(worst, 0.75);  // rounding (0.5) plus the table steps
  EXPECT_LT(mean, 0.3);
  EXPECT_NEAR(static_cast<double>(tissue), static_cast<double>(expected_tissue),
              0.001 * static_cast<double>(image.total()));  // fixed point at the threshold
}

TEST(StainKernels, TabulatedLabMatchesOpenCvsFloatConversion) {
  const cv::Mat image = colour_sweep();
  const stain_detail::ReinhardMap lab(240.0, 0.15);
  cv::Mat scaled;
  image.convertTo(scaled, CV_32F, 1.0 / 255.0);
  cv::Mat reference;
  cv::cvtColor(scaled, reference, cv::COLOR_RGB2Lab);
  cv::Scalar mean;
  cv::Scalar deviation;
  cv::meanStdDev(reference, mean, deviation, tissue_mask(image));
  const stain_detail::ReinhardMap::Moments moments = lab.moments(image);
  ASSERT_EQ(moments.count, cv::countNonZero(tissue_mask(image)));
  for (int c = 0; c < 3; ++c) {
    const double our_mean = moments.sum[c] / static_cast<double>(moments.count);
    // OpenCV approximates gamma and cube root with its own splines: within 0.2 LAB units (a
    // just-noticeable difference is ~2).
    EXPECT_NEAR(our_mean, mean[c], 0.2) << "channel " << c;
    EXPECT_NEAR(std::sqrt(moments.sum_of_squares[c] / static_cast<double>(moments.count) -
                          our_mean * our_mean),
                deviation[c], 0.2)
        << "channel " << c;
  }
  // Identity statistics map every colour back to itself (to rounding), and a shift of L* by
  // +10 equals OpenCV's Lab2RGB of the shifted LAB.
  cv::Mat same;
  lab.apply(image, cv::Vec3d(0, 0, 0), cv::Vec3d(1, 1, 1), cv::Vec3d(0, 0, 0), same);
  const cv::Mat mask = tissue_mask(image);
  cv::Mat difference;
  cv::absdiff(same, image, difference);
  EXPECT_LE(cv::norm(difference, cv::NORM_INF, mask), 1.0);
  cv::Mat shifted;
  lab.apply(image, cv::Vec3d(0, 0, 0), cv::Vec3d(1, 1, 1), cv::Vec3d(10, 0, 0), shifted);
  cv::Mat moved = reference + cv::Scalar(10, 0, 0);
  cv::Mat back;
  cv::cvtColor(moved, back, cv::COLOR_Lab2RGB);
  back.convertTo(back, CV_8U, 255.0);
  cv::absdiff(shifted, back, difference);
  EXPECT_LE(cv::norm(difference, cv::NORM_INF, mask), 1.0);
  // Background (not tissue) is copied.
  cv::Mat not_tissue;
  cv::bitwise_not(mask, not_tissue);
  cv::absdiff(shifted, image, difference);
  EXPECT_EQ(cv::norm(difference, cv::NORM_INF, not_tissue), 0.0);
}

std::string quoted(const std::filesystem::path& path) {
  return "\"" + path.string() + "\"";
}

TEST(StainCli, FitShowAndApplyWriteTheirOutputs) {
  SLIDESTREAM_REQUIRE_DATA(source_path, "he/torchstain_source.png");
  SLIDESTREAM_REQUIRE_DATA(target_path, "he/torchstain_target.png");
  const testing::TempDir folder;
  const auto params = folder / "target.json";
  auto result = testing::run_cli("stain fit --method vahadane " + quoted(target_path) + " -o " +
                                 quoted(params));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(StainParams::load(params).method, StainMethod::kVahadane);
  result = testing::run_cli("stain show " + quoted(params) + " --swatch " +
                            quoted(folder / "swatch.png"));
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("vahadane"), std::string::npos) << result.output;
  EXPECT_TRUE(std::filesystem::exists(folder / "swatch.png"));
  for (const std::string& target :
       {quoted(params), std::string("macenko-reference"), quoted(target_path)}) {
    const auto output = folder / "out.png";
    std::filesystem::remove(output);
    result = testing::run_cli("stain apply --target " + target + " " + quoted(source_path) +
                              " -o " + quoted(output));
    EXPECT_EQ(result.exit_code, 0) << target << ": " << result.output;
    const cv::Mat written = cv::imread(output.string(), cv::IMREAD_COLOR);
    EXPECT_EQ(written.size(), read_rgb(source_path).size()) << target;
  }
}

TEST(StainCli, BadMethodsAndCorruptParametersFailWithTheirExitCodes) {
  SLIDESTREAM_REQUIRE_DATA(source_path, "he/torchstain_source.png");
  const testing::TempDir folder;
  const auto corrupt = folder / "corrupt.json";
  std::ofstream(corrupt) << "{ not json";
  auto result = testing::run_cli("stain apply --target " + quoted(corrupt) + " " +
                                 quoted(source_path) + " -o " + quoted(folder / "out.png"));
  EXPECT_EQ(result.exit_code, exit_code(ErrorCode::kInvalidConfig)) << result.output;
  EXPECT_NE(result.output.find("corrupt.json"), std::string::npos) << result.output;
  EXPECT_FALSE(std::filesystem::exists(folder / "out.png"));
  result = testing::run_cli("stain fit --method sparse " + quoted(source_path) + " -o " +
                            quoted(folder / "p.json"));
  // A bad flag value is a usage error (exit 2) that names the flag and its choices.
  EXPECT_EQ(result.exit_code, exit_code(ErrorCode::kInvalidArgument)) << result.output;
  EXPECT_NE(result.output.find("--method"), std::string::npos) << result.output;
  result = testing::run_cli("stain show " + quoted(folder / "missing.json"));
  EXPECT_EQ(result.exit_code, exit_code(ErrorCode::kNotFound)) << result.output;
}

}  // namespace
}  // namespace slidestream
