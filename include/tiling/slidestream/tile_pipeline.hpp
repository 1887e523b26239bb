// slidestream tile pipeline: the one bounded TBB pipeline every per-slide flow runs (extract,
// segment, features, predict, stain normalize-slide):
//
//   source (serial, plan order) -> read (parallel: pixels, stain, labels) -> batch
//     -> infer (optional; serial, one device) -> sink (serial, plan order)
//
// At most SchedulerOptions::max_inflight tiles exist at once, so memory does not grow with the
// slide; the sink sees tiles in plan order whatever the thread count, so outputs are
// byte-identical for any --threads.
#pragma once

#include <cstdint>
#include <functional>
#include <opencv2/core.hpp>
#include <optional>
#include <string>
#include <vector>

#include "slidestream/tiling.hpp"

namespace slidestream {

/// How the pipeline runs.
struct SchedulerOptions {
  int threads = 0;       ///< reader threads (the parallel stage); 0 = all cores
  int max_inflight = 0;  ///< tiles in flight at once (bounds memory); 0 = 2 x threads, and at
                         ///< least 3 batches so reading, inference and writing overlap
  bool progress = true;  ///< progress bar on a terminal
  std::string label = "tiles";
};

/// Consecutive tiles of the plan travelling through the pipeline together.
struct TileBatch {
  std::vector<TileSpec> specs;
  std::vector<PatchSet> patches;  ///< one per spec, from `read` (an infer stage may clear them)
  std::vector<cv::Mat> outputs;   ///< one per spec from `infer`: probabilities, an embedding row
};

/// The stages of one run. `read` runs on many threads at once and must be thread-safe; `infer`
/// and `sink` run one batch at a time, in plan order.
struct TilePipeline {
  std::function<std::optional<TileSpec>()> source;  ///< the next tile; nullopt ends the run
  std::uint64_t expected_tiles = 0;                 ///< for the progress bar
  std::function<PatchSet(const TileSpec&)> read;
  std::size_t batch_size = 1;             ///< tiles per batch given to infer and sink
  std::function<void(TileBatch&)> infer;  ///< optional: fills outputs (one device)
  std::function<void(TileBatch&&)> sink;  ///< consumes the batch
};

/// Where a run spent its time: stage seconds are summed over threads.
struct PipelineTimes {
  double read_s = 0;
  double infer_s = 0;
  double sink_s = 0;
  double wall_s = 0;
  std::uint64_t tiles = 0;  ///< tiles that reached the sink
};

/// Runs the stages to the end of the source. An exception from any stage stops the pipeline,
/// frees what is in flight and propagates; what the sink already consumed stays consumed.
PipelineTimes run_tile_pipeline(const TilePipeline& stages, const SchedulerOptions& options = {});

/// A source over a vector of tiles (tests, benchmarks, small plans); `tiles` must outlive it.
std::function<std::optional<TileSpec>()> tiles_from(const std::vector<TileSpec>& tiles);

}  // namespace slidestream
