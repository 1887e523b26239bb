// Stain normalization: apply throughput of each method on 512 x 512 tiles (one thread), against a
// straightforward per-pixel cv::Mat baseline (cv::log, cv::transform, cv::exp) in the same run,
// and fit time of each method on a 1000 x 1000 tile.
//
//   bench_stain [--image PATH] [google-benchmark flags]
//
// Without --image the tile is ../shared/data/he/tiatoolbox_target_image.png when present, else
// a synthetic H&E-like tile; fits use the same image (tiled to 1000 x 1000).
#include <benchmark/benchmark.h>

#include <cstring>
#include <filesystem>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>

#include "slidestream/stain.hpp"

namespace fs = std::filesystem;
using slidestream::StainMethod;

namespace {

fs::path g_image;

/// H&E-like colours: mixtures of the reference stains at random concentrations.
cv::Mat synthetic_tile(int side) {
  const slidestream::StainParams reference = slidestream::macenko_reference();
  cv::Mat tile(side, side, CV_8UC3);
  std::mt19937_64 engine(5);
  std::uniform_real_distribution<double> concentration(0.0, 1.2);
  for (int y = 0; y < side; ++y) {
    for (int x = 0; x < side; ++x) {
      const cv::Vec3d od = reference.stain_matrix *
                           cv::Vec2d(concentration(engine) * (x % 7 > 2), concentration(engine));
      for (int c = 0; c < 3; ++c) {
        tile.at<cv::Vec3b>(y, x)[c] = cv::saturate_cast<std::uint8_t>(240.0 * std::exp(-od[c]));
      }
    }
  }
  return tile;
}

/// The benchmark image cropped (or tiled) to side x side.
cv::Mat image_of_side(int side) {
  cv::Mat source;
  if (!g_image.empty()) {
    cv::Mat bgr = cv::imread(g_image.string(), cv::IMREAD_COLOR);
    if (!bgr.empty()) {
      cv::cvtColor(bgr, source, cv::COLOR_BGR2RGB);
    }
  }
  if (source.empty()) {
    return synthetic_tile(side);
  }
  cv::Mat tiled;
  cv::repeat(source, side / source.rows + 1, side / source.cols + 1, tiled);
  return tiled(cv::Rect(0, 0, side, side)).clone();
}

slidestream::StainParams fitted(StainMethod method) {
  static const cv::Mat reference = image_of_side(1000);
  return slidestream::fit_stain(reference, method);
}

void BM_Apply(benchmark::State& state, StainMethod method) {
  const cv::Mat tile = image_of_side(512);
  const slidestream::StainNormalizer normalizer(fitted(method));
  for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores)
    cv::Mat output = normalizer.apply(tile);
    benchmark::DoNotOptimize(output.data);
  }
  state.counters["MP/s"] = benchmark::Counter(
      static_cast<double>(tile.total()) * 1e-6 * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
}

/// Apply with fixed source parameters (a slide-level fit, `fit: slide`): only the mapping.
void BM_ApplySlideFit(benchmark::State& state, StainMethod method) {
  const cv::Mat tile = image_of_side(512);
  const slidestream::StainNormalizer normalizer(fitted(method),
                                                slidestream::fit_stain(tile, method));
  for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores)
    cv::Mat output = normalizer.apply(tile);
    benchmark::DoNotOptimize(output.data);
  }
  state.counters["MP/s"] = benchmark::Counter(
      static_cast<double>(tile.total()) * 1e-6 * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
}

/// The baseline: Macenko's mapping written directly with cv::Mat operations, with the stain
/// matrices fixed (no per-tile fit): OD = -log((I + 1) / Io), OD' = A OD, I' = Io exp(-OD') - 1.
void BM_BaselineCvMat(benchmark::State& state) {
  const cv::Mat tile = image_of_side(512);
  const slidestream::StainParams params = fitted(StainMethod::kMacenko);
  const cv::Matx23d pinv =
      (params.stain_matrix.t() * params.stain_matrix).inv() * params.stain_matrix.t();
  const cv::Matx33f map(params.stain_matrix * pinv);
  const float io = static_cast<float>(params.io);
  for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores)
    cv::Mat scaled;
    tile.convertTo(scaled, CV_32F, 1.0 / io, 1.0 / io);
    cv::Mat od;
    cv::log(scaled, od);
    od = -od;
    cv::Mat mapped;
    cv::transform(od, mapped, map);
    cv::Mat intensity;
    cv::exp(-mapped, intensity);
    cv::Mat output;
    intensity.convertTo(output, CV_8U, io, -1.0);
    benchmark::DoNotOptimize(output.data);
  }
  state.counters["MP/s"] = benchmark::Counter(
      static_cast<double>(tile.total()) * 1e-6 * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
}

/// Reinhard's baseline with cv::Mat operations: float CIELAB, one affine map per channel,
/// back to 8-bit RGB (fixed statistics, no tissue mask).
void BM_BaselineCvMatReinhard(benchmark::State& state) {
  const cv::Mat tile = image_of_side(512);
  const slidestream::StainParams target = fitted(StainMethod::kReinhard);
  const slidestream::StainParams source = slidestream::fit_stain(tile, StainMethod::kReinhard);
  cv::Matx34f affine = cv::Matx34f::zeros();
  for (int c = 0; c < 3; ++c) {
    const auto index = static_cast<std::size_t>(c);
    const double scale = target.lab_std[index] / source.lab_std[index];
    affine(c, c) = static_cast<float>(scale);
    affine(c, 3) = static_cast<float>(target.lab_mean[index] - source.lab_mean[index] * scale);
  }
  for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores)
    cv::Mat scaled;
    tile.convertTo(scaled, CV_32F, 1.0 / 255.0);
    cv::Mat lab;
    cv::cvtColor(scaled, lab, cv::COLOR_RGB2Lab);
    cv::transform(lab, lab, affine);
    cv::Mat rgb;
    cv::cvtColor(lab, rgb, cv::COLOR_Lab2RGB);
    cv::Mat output;
    rgb.convertTo(output, CV_8U, 255.0);
    benchmark::DoNotOptimize(output.data);
  }
  state.counters["MP/s"] = benchmark::Counter(
      static_cast<double>(tile.total()) * 1e-6 * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
}

void BM_Fit(benchmark::State& state, StainMethod method) {
  const cv::Mat image = image_of_side(1000);
  for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores)
    const slidestream::StainParams params = slidestream::fit_stain(image, method);
    benchmark::DoNotOptimize(params.stain_matrix.val[0]);
  }
  state.SetLabel("1000 x 1000");
}

}  // namespace

BENCHMARK(BM_BaselineCvMat)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BaselineCvMatReinhard)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Apply, macenko, StainMethod::kMacenko)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Apply, reinhard, StainMethod::kReinhard)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Apply, vahadane, StainMethod::kVahadane)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ApplySlideFit, macenko, StainMethod::kMacenko)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ApplySlideFit, reinhard, StainMethod::kReinhard)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ApplySlideFit, vahadane, StainMethod::kVahadane)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Fit, macenko, StainMethod::kMacenko)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Fit, reinhard, StainMethod::kReinhard)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Fit, vahadane, StainMethod::kVahadane)->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--image") == 0) {
      g_image = argv[i + 1];
    }
  }
  if (g_image.empty()) {
    const fs::path shared = fs::path(SLIDESTREAM_SOURCE_DIR) / ".." / "shared" / "data" / "he" /
                            "tiatoolbox_target_image.png";
    if (fs::exists(shared)) {
      g_image = shared;
    }
  }
  cv::setNumThreads(1);  // per core: the cv::Mat baselines must not fan out either
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
