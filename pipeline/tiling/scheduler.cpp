#include <tbb/info.h>
#include <tbb/parallel_pipeline.h>
#include <tbb/task_arena.h>

#include <atomic>

#include "slidestream/core.hpp"
#include "slidestream/tiling.hpp"

namespace slidestream {

void run_tile_pipeline(const std::function<std::optional<TileSpec>()>& source,
                       std::uint64_t expected_tiles,
                       const std::function<PatchSet(const TileSpec&)>& process,
                       const std::function<void(PatchSet&&)>& sink,
                       const SchedulerOptions& options) {
  if (options.threads < 0 || options.max_inflight < 0) {
    throw Error(ErrorCode::kInvalidArgument, "--threads and --max-inflight must be >= 0");
  }
  const int threads = options.threads > 0 ? options.threads : tbb::info::default_concurrency();
  const auto max_inflight =
      static_cast<size_t>(options.max_inflight > 0 ? options.max_inflight : 2 * threads);
  ProgressBar progress(options.label, expected_tiles, options.progress);

  // serial source -> parallel process -> serial in-order sink; at most max_inflight tokens
  // (patch sets) exist at once, which is what bounds memory.
  struct Token {
    TileSpec spec;
    PatchSet patches;
  };
  InflightItems<Token> inflight;
  tbb::task_arena arena(threads);
  arena.execute([&] {
    tbb::parallel_pipeline(
        max_inflight,
        tbb::make_filter<void, Token*>(tbb::filter_mode::serial_in_order,
                                       [&](tbb::flow_control& control) -> Token* {
                                         std::optional<TileSpec> tile = source();
                                         if (!tile) {
                                           control.stop();
                                           return nullptr;
                                         }
                                         auto token = std::make_unique<Token>();
                                         token->spec = std::move(*tile);
                                         return inflight.adopt(std::move(token));
                                       }) &
            tbb::make_filter<Token*, Token*>(tbb::filter_mode::parallel,
                                             [&](Token* token) {
                                               token->patches = process(token->spec);
                                               return token;
                                             }) &
            tbb::make_filter<Token*, void>(tbb::filter_mode::serial_in_order, [&](Token* token) {
              const std::unique_ptr<Token> owned = inflight.release(token);
              sink(std::move(owned->patches));
              progress.advance();
            }));
  });
  progress.finish();
}

void run_tile_pipeline(const std::vector<TileSpec>& tiles,
                       const std::function<PatchSet(const TileSpec&)>& process,
                       const std::function<void(PatchSet&&)>& sink,
                       const SchedulerOptions& options) {
  size_t next = 0;
  run_tile_pipeline(
      [&]() -> std::optional<TileSpec> {
        return next < tiles.size() ? std::optional<TileSpec>(tiles[next++]) : std::nullopt;
      },
      tiles.size(), process, sink, options);
}

}  // namespace slidestream
