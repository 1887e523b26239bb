// Whole-slide segmentation on CPU: `run_segment` over a synthetic 40000 x 40000 slide (0.5 um/px,
// JPEG) with a small HookNet (4 filters, depth 4, 284 px at 4 and 16 um/px, output 70 px at
// 4 um/px, seeded random weights), against the model alone on the same patch sets in the same
// run. The segmentation is the whole product path: tissue mask, plan, parallel patch-set reads,
// batches, inference, journal, predictions.h5, labels.tif, overlay.png, GeoJSON and ASAP XML.
// Its report.json gives the time per stage, reported as counters.
//
//   bench_segment [--slide PATH] [--size N] [google-benchmark flags]
//   bench_segment --write-model DIR [--output-um X]   saves the benchmark model and exits
//
// Without --slide, the slide is synthesised once into $TMPDIR/slidestream-bench-<N>.tif (N =
// --size, default 40000: about a minute). --output-um changes the target/output spacing (the
// context is always 4x coarser), e.g. for scripts/bench-memory.sh's segment mode.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "bench_support.hpp"
#include "slidestream/io.hpp"
#include "slidestream/jobs/segment.hpp"
#include "slidestream/models/description.hpp"
#include "slidestream/models/model.hpp"
#include "slidestream/tiling.hpp"
#include "slidestream/tissue.hpp"

namespace fs = std::filesystem;

namespace {

fs::path g_slide;
double g_output_um = 4.0;
constexpr int kBatchSize = 8;
constexpr std::size_t kModelOnlyBatches = 12;  // patch sets read once for the model-only run

slidestream::ModelDescription bench_model() {
  slidestream::ModelDescription description;
  description.architecture = "hooknet";
  description.network.filters = 4;
  description.network.depth = 4;
  description.network.padding = slidestream::Padding::kValid;
  description.network.batch_norm = false;  // as the figures in docs/PERFORMANCE.md were made
  description.geometry.branches = {{g_output_um, {284, 284}}, {4.0 * g_output_um, {284, 284}}};
  description.geometry.output = {g_output_um, {70, 70}};
  description.classes = {{"background", 0, {255, 255, 255}},
                         {"stroma", 1, {150, 200, 150}},
                         {"tumour", 2, {200, 0, 0}}};
  return description;
}

std::unique_ptr<slidestream::SegmentationModel> make_model() {
  slidestream::InferenceOptions options;
  options.device = "cpu";
  return slidestream::create_native_model(bench_model(), options, 1);
}

// Baseline: the model alone, on patch sets read beforehand (the first tissue tiles of the plan).
void BM_ModelOnly(benchmark::State& state) {
  const auto model = make_model();
  const auto reader = slidestream::open_slide(g_slide);
  const slidestream::TissueMask mask = slidestream::compute_tissue_mask(*reader, {});
  slidestream::TilePlanner planner(reader->info(), &mask, model->geometry());
  std::vector<slidestream::PatchSet> sets;
  while (sets.size() < kModelOnlyBatches * kBatchSize) {
    const std::optional<slidestream::TileSpec> tile = planner.next();
    if (!tile) {
      break;
    }
    sets.push_back(slidestream::read_patch_set(*reader, *tile, model->geometry()));
  }
  std::size_t next = 0;
  for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores)
    std::vector<const slidestream::PatchSet*> batch;
    batch.reserve(kBatchSize);
    for (int i = 0; i < kBatchSize; ++i) {
      batch.push_back(&sets[next++ % sets.size()]);
    }
    benchmark::DoNotOptimize(model->predict(batch));
  }
  state.counters["tiles/s"] = benchmark::Counter(static_cast<double>(kBatchSize),
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

// The whole slide through run_segment, default config (2 read threads on 2 cores), once.
void BM_SegmentWholeSlide(benchmark::State& state) {
  auto model = make_model();
  const fs::path out = fs::temp_directory_path() / "slidestream-bench-segment";
  slidestream::SegmentJob job;
  job.inputs = {g_slide.string()};
  job.model_dir = "bench-model (seeded, not trained)";
  job.config = slidestream::load_segment_config(std::nullopt, {});
  job.config.batch_size = kBatchSize;
  job.config.scheduler.progress = false;
  job.output_dir = out;
  nlohmann::json report;
  for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores)
    fs::remove_all(out);
    const slidestream::BatchReport batch = slidestream::run_segment(job, *model);
    if (batch.failed() != 0) {
      state.SkipWithError(batch.summary().c_str());
      return;
    }
    std::ifstream file(out / g_slide.stem() / "report.json");
    report = nlohmann::json::parse(file);
  }
  const auto& seconds = report["seconds"];
  for (const char* stage :
       {"tissue", "plan", "read", "inference", "write", "pipeline", "merge", "export"}) {
    state.counters[std::string(stage) + "_s"] = seconds[stage].get<double>();
  }
  state.counters["tiles"] = report["tiles"]["processed"].get<double>();
  state.counters["tiles/s"] = report["throughput"]["tiles_per_s"].get<double>();
  state.counters["busy"] = report["throughput"]["inference_busy_fraction"].get<double>();
  state.counters["peak_MiB"] = report["peak_rss_mib"].get<double>();
  fs::remove_all(out);
}

BENCHMARK(BM_ModelOnly)->Unit(benchmark::kMillisecond)->MinTime(10.0);
BENCHMARK(BM_SegmentWholeSlide)->Unit(benchmark::kSecond)->Iterations(1);

const char* argument_after(int argc, char** argv, const char* flag) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (argv[i] != nullptr && std::strcmp(argv[i], flag) == 0) {
      return argv[i + 1];
    }
  }
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  if (const char* value = argument_after(argc, argv, "--output-um")) {
    g_output_um = std::strtod(value, nullptr);
  }
  if (const char* dir = argument_after(argc, argv, "--write-model")) {
    make_model()->save(dir);
    std::fprintf(stderr, "bench_segment: model written to %s\n", dir);
    return 0;
  }
  if (const char* slide = argument_after(argc, argv, "--slide")) {
    g_slide = slide;
  } else {
    const char* size_text = argument_after(argc, argv, "--size");
    g_slide = slidestream::bench::synthetic_slide(
        size_text != nullptr ? std::strtoll(size_text, nullptr, 10) : 40000);
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
