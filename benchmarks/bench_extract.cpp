// Patch-set extraction with the HookNet breast geometry (284 px at 0.5 and 8.0 um/px, output
// 70 px) on a synthetic 30000x30000 slide: slidestream's read_patch_set streamed through
// the tile pipeline (1 and 2 threads, with and without the HDF5 writer) against the same target
// and context fields of view read with plain openslide_read_region + cv::resize, in the same run.
//
//   bench_extract [--slide PATH] [--tiles N] [google-benchmark flags]
//
// Without --slide, the slide is synthesised once into $TMPDIR/slidestream-bench-30000.tif.
// The tissue mask and the tile plan are computed once, before the benchmarks, and only the first
// N tissue tiles of the plan (default 2000) are read, so a run takes about 2 minutes.
#include <benchmark/benchmark.h>
#include <openslide.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <opencv2/imgproc.hpp>
#include <optional>
#include <string>
#include <vector>

#include "bench_support.hpp"
#include "slidestream/io.hpp"
#include "slidestream/jobs/extract.hpp"
#include "slidestream/store.hpp"
#include "slidestream/tile_pipeline.hpp"
#include "slidestream/tiling.hpp"

namespace fs = std::filesystem;

namespace {

fs::path g_slide;
std::size_t g_max_tiles = 2000;
std::vector<slidestream::TileSpec> g_tiles;  // the first g_max_tiles tissue tiles of the plan

// The `extract` defaults: HookNet breast geometry, tissue >= 0.5, gzip level 4.
const slidestream::ExtractConfig& extract_config() {
  static const slidestream::ExtractConfig config =
      slidestream::load_extract_config(std::nullopt, {});
  return config;
}

// Level-0 megapixels covered by the target branch's field of view of one patch set.
double target_fov_megapixels_l0(const slidestream::ModelGeometry& geometry,
                                const slidestream::Spacing& slide_spacing) {
  const slidestream::BranchGeometry& target = geometry.branches.front();
  return target.fov_um_x() / slide_spacing.x_um * target.fov_um_y() / slide_spacing.y_um / 1e6;
}

void set_counters(benchmark::State& state, const slidestream::Spacing& slide_spacing) {
  const auto sets = static_cast<double>(g_tiles.size());
  state.counters["sets/s"] =
      benchmark::Counter(sets, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["l0_MP/s"] =
      benchmark::Counter(sets * target_fov_megapixels_l0(extract_config().geometry, slide_spacing),
                         benchmark::Counter::kIsIterationInvariantRate);
}

slidestream::SchedulerOptions scheduler_for(const benchmark::State& state) {
  slidestream::SchedulerOptions scheduler;
  scheduler.threads = static_cast<int>(state.range(0));
  scheduler.progress = false;
  return scheduler;
}

// read_patch_set through the streaming pipeline; the sink only counts.
void BM_ReadPatchSets(benchmark::State& state) {
  const auto reader = slidestream::open_slide(g_slide);
  const slidestream::SchedulerOptions scheduler = scheduler_for(state);
  for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores)
    std::size_t received = 0;
    slidestream::TilePipeline stages;
    stages.source = slidestream::tiles_from(g_tiles);
    stages.read = [&](const slidestream::TileSpec& spec) {
      return slidestream::read_patch_set(*reader, spec, extract_config().geometry);
    };
    stages.sink = [&](slidestream::TileBatch&& batch) {
      benchmark::DoNotOptimize(batch.patches.front().branches.front().data);
      received += batch.patches.size();
    };
    slidestream::run_tile_pipeline(stages, scheduler);
    if (received != g_tiles.size()) {
      state.SkipWithError("pipeline lost patch sets");
    }
  }
  set_counters(state, reader->info().spacing);
}

// The real extract path: the same tiles appended to an HDF5 dataset (gzip level from the default
// config) by PatchDatasetWriter in the pipeline's sink, into a temporary file deleted after.
void BM_ExtractToHdf5(benchmark::State& state) {
  const auto reader = slidestream::open_slide(g_slide);
  const slidestream::SchedulerOptions scheduler = scheduler_for(state);
  slidestream::SlideRecord record;
  record.slide_id = g_slide.stem().string();
  record.info = reader->info();
  record.geometry = extract_config().geometry;
  for (const slidestream::BranchGeometry& branch : extract_config().geometry.branches) {
    record.branch_levels.push_back(reader->level_for_spacing(branch.spacing_um));
  }
  record.config_yaml = extract_config().resolved_yaml();
  const fs::path output = fs::temp_directory_path() /
                          ("slidestream-bench-extract-" + std::to_string(state.range(0)) + ".h5");
  for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores)
    slidestream::PatchDatasetWriter writer(
        output, slidestream::PatchDatasetWriter::Options{extract_config().gzip_level, false});
    writer.begin_slide(record);
    slidestream::TilePipeline stages;
    stages.source = slidestream::tiles_from(g_tiles);
    stages.read = [&](const slidestream::TileSpec& spec) {
      return slidestream::read_patch_set(*reader, spec, extract_config().geometry);
    };
    stages.sink = [&](slidestream::TileBatch&& batch) {
      for (const slidestream::PatchSet& patches : batch.patches) {
        writer.append(patches, {});
      }
    };
    slidestream::run_tile_pipeline(stages, scheduler);
    writer.end_slide();
    writer.commit();
  }
  state.counters["file_MB"] = static_cast<double>(fs::file_size(output)) / 1e6;
  fs::remove(output);
  set_counters(state, reader->info().spacing);
}

// Baseline: what a straightforward OpenSlide + OpenCV script does for the same fields of view,
// on one thread: the target FoV at level 0, the context FoV at OpenSlide's best level for its
// downsample, area-resampled to the branch size. No colour conversion (ARGB stays ARGB).
void BM_PlainReadRegion(benchmark::State& state) {
  openslide_t* slide = openslide_open(g_slide.c_str());
  const slidestream::BranchGeometry& target = extract_config().geometry.branches.at(0);
  const slidestream::BranchGeometry& context = extract_config().geometry.branches.at(1);
  const double downsample = context.spacing_um / target.spacing_um;
  const int32_t level = openslide_get_best_level_for_downsample(slide, downsample);
  const double level_downsample = openslide_get_level_downsample(slide, level);
  std::vector<std::uint32_t> target_buffer;
  std::vector<std::uint32_t> context_buffer;
  cv::Mat context_resized;
  for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores)
    for (const slidestream::TileSpec& spec : g_tiles) {
      const slidestream::RectF& target_l0 = spec.branch_l0.at(0);
      const auto target_w = static_cast<int64_t>(std::lround(target_l0.width));
      const auto target_h = static_cast<int64_t>(std::lround(target_l0.height));
      target_buffer.resize(static_cast<size_t>(target_w * target_h));
      openslide_read_region(slide, target_buffer.data(), std::llround(target_l0.x),
                            std::llround(target_l0.y), 0, target_w, target_h);
      benchmark::DoNotOptimize(target_buffer.data());

      const slidestream::RectF& context_l0 = spec.branch_l0.at(1);
      const auto context_w = static_cast<int64_t>(std::lround(context_l0.width / level_downsample));
      const auto context_h =
          static_cast<int64_t>(std::lround(context_l0.height / level_downsample));
      context_buffer.resize(static_cast<size_t>(context_w * context_h));
      openslide_read_region(slide, context_buffer.data(), std::llround(context_l0.x),
                            std::llround(context_l0.y), level, context_w, context_h);
      const cv::Mat context_level(static_cast<int>(context_h), static_cast<int>(context_w), CV_8UC4,
                                  context_buffer.data());
      cv::resize(context_level, context_resized,
                 cv::Size(static_cast<int>(context.size_px.width),
                          static_cast<int>(context.size_px.height)),
                 0, 0, cv::INTER_AREA);
      benchmark::DoNotOptimize(context_resized.data);
    }
  }
  if (const char* error = openslide_get_error(slide)) {
    state.SkipWithError(error);
  }
  openslide_close(slide);
  set_counters(state, slidestream::open_slide(g_slide)->info().spacing);
}

// Tissue mask once and the first g_max_tiles tissue tiles of the plan (row-major), walked with
// the same lazy TilePlanner as `slidestream extract`.
void plan_benchmark_tiles() {
  const auto started = std::chrono::steady_clock::now();
  const auto reader = slidestream::open_slide(g_slide);
  const slidestream::TissueMask mask =
      slidestream::compute_tissue_mask(*reader, extract_config().tissue);
  slidestream::TilePlanner planner(reader->info(), &mask, extract_config().geometry,
                                   extract_config().tiling);
  while (g_tiles.size() < g_max_tiles) {
    std::optional<slidestream::TileSpec> tile = planner.next();
    if (!tile) {
      break;
    }
    g_tiles.push_back(std::move(*tile));
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::fprintf(stderr,
               "bench_extract: %s, %llu tissue tiles in the plan, benchmarking the first %zu "
               "(mask + prefix %.1f s)\n",
               g_slide.c_str(), static_cast<unsigned long long>(planner.count()), g_tiles.size(),
               seconds);
}

}  // namespace

BENCHMARK(BM_PlainReadRegion)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
BENCHMARK(BM_ReadPatchSets)
    ->ArgName("threads")
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(1);
BENCHMARK(BM_ExtractToHdf5)
    ->ArgName("threads")
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(1);

int main(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--slide") == 0) {
      g_slide = argv[i + 1];
    } else if (std::strcmp(argv[i], "--tiles") == 0) {
      g_max_tiles = std::strtoull(argv[i + 1], nullptr, 10);
    }
  }
  if (g_slide.empty()) {
    g_slide = slidestream::bench::synthetic_slide(30000);
  }
  plan_benchmark_tiles();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
