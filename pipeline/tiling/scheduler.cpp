// The one tile pipeline (include/tiling/slidestream/tile_pipeline.hpp) on tbb::parallel_pipeline.
#include <tbb/info.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_pipeline.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <atomic>
#include <chrono>

#include "inflight_items.hpp"
#include "slidestream/core.hpp"
#include "slidestream/tile_pipeline.hpp"

namespace slidestream {

namespace {

using Clock = std::chrono::steady_clock;

// Adds the seconds of its scope to an accumulator that several threads share.
class StageTimer {
 public:
  explicit StageTimer(std::atomic<double>& total) : total_(total), start_(Clock::now()) {}
  ~StageTimer() {
    const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
    double current = total_.load();
    while (!total_.compare_exchange_weak(current, current + elapsed)) {
    }
  }
  StageTimer(const StageTimer&) = delete;
  StageTimer& operator=(const StageTimer&) = delete;

 private:
  std::atomic<double>& total_;
  Clock::time_point start_;
};

struct StageSeconds {
  std::atomic<double> read{0};
  std::atomic<double> infer{0};
  std::atomic<double> sink{0};
};

// Batches in flight: max_inflight tiles, rounded up to whole batches.
std::size_t batches_in_flight(const SchedulerOptions& options, int threads,
                              std::size_t batch_size) {
  const auto tiles = options.max_inflight > 0
                         ? static_cast<std::size_t>(options.max_inflight)
                         : std::max(2 * static_cast<std::size_t>(threads), 3 * batch_size);
  return std::max<std::size_t>(1, (tiles + batch_size - 1) / batch_size);
}

void validate(const TilePipeline& stages, const SchedulerOptions& options) {
  if (options.threads < 0 || options.max_inflight < 0) {
    throw Error(ErrorCode::kInvalidArgument, "--threads and --max-inflight must be >= 0");
  }
  if (!stages.source || !stages.read || !stages.sink || stages.batch_size == 0) {
    throw Error(ErrorCode::kInvalidArgument,
                "a tile pipeline needs a source, a read and a sink stage and a batch size >= 1");
  }
}

}  // namespace

PipelineTimes run_tile_pipeline(const TilePipeline& stages, const SchedulerOptions& options) {
  validate(stages, options);
  const int threads = options.threads > 0 ? options.threads : tbb::info::default_concurrency();
  const std::size_t tokens = batches_in_flight(options, threads, stages.batch_size);
  ProgressBar progress(options.label, stages.expected_tiles, options.progress);
  StageSeconds seconds;
  PipelineTimes times;
  const auto start = Clock::now();

  detail::InflightItems<TileBatch> inflight;
  const auto source = [&](tbb::flow_control& control) -> TileBatch* {
    auto batch = std::make_unique<TileBatch>();
    while (batch->specs.size() < stages.batch_size) {
      std::optional<TileSpec> tile = stages.source();
      if (!tile) {
        break;
      }
      batch->specs.push_back(std::move(*tile));
    }
    if (batch->specs.empty()) {
      control.stop();
      return nullptr;
    }
    return inflight.adopt(std::move(batch));
  };
  const auto read = [&](TileBatch* batch) {
    const StageTimer timer(seconds.read);
    batch->patches.resize(batch->specs.size());
    tbb::parallel_for(std::size_t{0}, batch->specs.size(),
                      [&](std::size_t i) { batch->patches[i] = stages.read(batch->specs[i]); });
    return batch;
  };
  const auto infer = [&](TileBatch* batch) {
    if (stages.infer) {
      const StageTimer timer(seconds.infer);
      stages.infer(*batch);
    }
    return batch;
  };
  const auto sink = [&](TileBatch* finished) {
    const std::unique_ptr<TileBatch> batch = inflight.release(finished);
    const StageTimer timer(seconds.sink);
    const std::size_t count = batch->specs.size();
    stages.sink(std::move(*batch));
    times.tiles += count;
    progress.advance(count);
  };

  tbb::task_arena arena(threads);
  arena.execute([&] {
    tbb::parallel_pipeline(
        tokens,
        tbb::make_filter<void, TileBatch*>(tbb::filter_mode::serial_in_order, source) &
            tbb::make_filter<TileBatch*, TileBatch*>(tbb::filter_mode::parallel, read) &
            tbb::make_filter<TileBatch*, TileBatch*>(tbb::filter_mode::serial_in_order, infer) &
            tbb::make_filter<TileBatch*, void>(tbb::filter_mode::serial_in_order, sink));
  });
  progress.finish();
  times.read_s = seconds.read.load();
  times.infer_s = seconds.infer.load();
  times.sink_s = seconds.sink.load();
  times.wall_s = std::chrono::duration<double>(Clock::now() - start).count();
  return times;
}

std::function<std::optional<TileSpec>()> tiles_from(const std::vector<TileSpec>& tiles) {
  return [&tiles, next = std::size_t{0}]() mutable -> std::optional<TileSpec> {
    return next < tiles.size() ? std::optional<TileSpec>(tiles[next++]) : std::nullopt;
  };
}

}  // namespace slidestream
