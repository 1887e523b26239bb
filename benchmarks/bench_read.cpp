// Reading every 256x256 tile of level 0 of a synthetic 20000x20000 slide: slidestream's
// SlideReader (1 and 2 threads) against a plain openslide_read_region loop in the same run.
//
//   bench_read [--slide PATH] [google-benchmark flags]
//
// Without --slide, the slide is synthesised once into $TMPDIR/slidestream-bench-20000.tif.
#include <benchmark/benchmark.h>
#include <openslide.h>
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>

#include <cstring>
#include <filesystem>
#include <vector>

#include "bench_support.hpp"
#include "slidestream/io.hpp"

namespace fs = std::filesystem;

namespace {

fs::path g_slide;
constexpr std::int64_t kTile = 256;

std::vector<slidestream::Point> tile_origins(slidestream::Size size) {
  std::vector<slidestream::Point> origins;
  for (std::int64_t y = 0; y + kTile <= size.height; y += kTile) {
    for (std::int64_t x = 0; x + kTile <= size.width; x += kTile) {
      origins.push_back({x, y});
    }
  }
  return origins;
}

void BM_OpenSlideReadRegion(benchmark::State& state) {
  openslide_t* slide = openslide_open(g_slide.c_str());
  int64_t width = 0;
  int64_t height = 0;
  openslide_get_level0_dimensions(slide, &width, &height);
  const auto origins = tile_origins({width, height});
  std::vector<std::uint32_t> buffer(kTile * kTile);
  for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores)
    for (const auto& origin : origins) {
      openslide_read_region(slide, buffer.data(), origin.x, origin.y, 0, kTile, kTile);
      benchmark::DoNotOptimize(buffer.data());
    }
  }
  state.counters["tiles/s"] = benchmark::Counter(static_cast<double>(origins.size()),
                                                 benchmark::Counter::kIsIterationInvariantRate);
  state.counters["MP/s"] =
      benchmark::Counter(static_cast<double>(origins.size() * kTile * kTile) / 1e6,
                         benchmark::Counter::kIsIterationInvariantRate);
  openslide_close(slide);
}

void BM_SlideReader(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  slidestream::OpenOptions options;
  options.backend =
      state.range(1) == 0 ? slidestream::Backend::kOpenSlide : slidestream::Backend::kVips;
  const auto reader = slidestream::open_slide(g_slide, options);
  const auto origins = tile_origins(reader->info().size());
  const double spacing = reader->info().spacing.x_um;
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism,
                            static_cast<size_t>(threads));
  for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores)
    tbb::parallel_for(size_t{0}, origins.size(), [&](size_t i) {
      const auto patch = reader->read_from_origin(origins[i], {kTile, kTile}, spacing);
      benchmark::DoNotOptimize(patch.rgb.data);
    });
  }
  state.counters["tiles/s"] = benchmark::Counter(static_cast<double>(origins.size()),
                                                 benchmark::Counter::kIsIterationInvariantRate);
  state.counters["MP/s"] =
      benchmark::Counter(static_cast<double>(origins.size() * kTile * kTile) / 1e6,
                         benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

BENCHMARK(BM_OpenSlideReadRegion)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_SlideReader)
    ->ArgNames({"threads", "vips"})
    ->Args({1, 0})
    ->Args({2, 0})
    ->Args({1, 1})
    ->Args({2, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2.0);

int main(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--slide") == 0) {
      g_slide = argv[i + 1];
    }
  }
  if (g_slide.empty()) {
    g_slide = slidestream::bench::synthetic_slide(20000);
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
