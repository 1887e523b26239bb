// Tile planning, concentric patch sets and the streaming scheduler.
#include <gtest/gtest.h>

#include <atomic>
#include <opencv2/imgproc.hpp>

#include "slidestream/core.hpp"
#include "slidestream/tile_pipeline.hpp"
#include "slidestream/tiling.hpp"
#include "test_support.hpp"

namespace slidestream {
namespace {

ModelGeometry small_geometry() {
  ModelGeometry geometry;
  geometry.branches = {{0.5, {64, 64}}, {2.0, {64, 64}}};
  geometry.output = {0.5, {32, 32}};
  return geometry;
}

template <typename Action>
std::string error_message(Action action) {
  try {
    action();
  } catch (const Error& error) {
    return error.what();
  }
  return "no error";
}

TEST(ModelGeometry, HookNetBreastIsLegal) {
  const ModelGeometry geometry = ModelGeometry::hooknet_breast();
  EXPECT_NO_THROW(geometry.validate());
  EXPECT_NO_THROW(geometry.validate_hooknet_sizes());
  EXPECT_DOUBLE_EQ(geometry.branches[1].fov_um_x(), 284 * 8.0);
}

TEST(ModelGeometry, IllegalHookNetSizeSuggestsTheNearestLegalOnes) {
  ModelGeometry geometry = ModelGeometry::hooknet_breast();
  geometry.branches[0].size_px = geometry.branches[1].size_px = {270, 270};
  EXPECT_NE(error_message([&] { geometry.validate_hooknet_sizes(); }).find("252 and 284"),
            std::string::npos);
  // 32k + 124 below 220 leaves no output: the smallest legal size is suggested.
  geometry.branches[0].size_px = geometry.branches[1].size_px = {188, 188};
  EXPECT_NE(error_message([&] { geometry.validate_hooknet_sizes(); }).find("220 and 252"),
            std::string::npos);
  geometry = ModelGeometry::hooknet_breast();
  geometry.output.size_px = {72, 72};
  EXPECT_NE(error_message([&] { geometry.validate_hooknet_sizes(); }).find("input size - 214"),
            std::string::npos);
}

TEST(ModelGeometry, OutputMustLieInsideTheTarget) {
  ModelGeometry geometry = small_geometry();
  geometry.output = {1.0, {64, 64}};  // 64 um > the target's 32 um
  EXPECT_THROW(geometry.validate(), Error);
  geometry.branches.clear();
  EXPECT_THROW(geometry.validate(), Error);
}

class TilingOnSyntheticSlide : public ::testing::Test {
 protected:
  void SetUp() override { reader_ = open_slide(testing::small_lossless_slide()); }
  std::unique_ptr<SlideReader> reader_;
};

TEST_F(TilingOnSyntheticSlide, GridCoversTheSlideRowMajorWithAbuttingTiles) {
  PlanOptions options;
  options.min_tissue_fraction = 0;
  const auto tiles = plan_tiles(reader_->info(), nullptr, small_geometry(), options);
  // 3000 x 2000 px at 0.5 um/px; 32 px output tiles at 0.5 um/px: 94 x 63 tiles.
  ASSERT_EQ(tiles.size(), 94u * 63u);
  for (size_t i = 0; i < tiles.size(); ++i) {
    ASSERT_EQ(tiles[i].index, i);
  }
  EXPECT_DOUBLE_EQ(tiles[1].output_l0.x, tiles[0].output_l0.x + tiles[0].output_l0.width);
  EXPECT_EQ(tiles[94].row, 1);
  EXPECT_EQ(tiles[94].column, 0);
  const TileSpec& last = tiles.back();
  EXPECT_GE(last.output_l0.x + last.output_l0.width, 3000.0);
  EXPECT_GE(last.output_l0.y + last.output_l0.height, 2000.0);
}

TEST_F(TilingOnSyntheticSlide, LazyPlannerYieldsThePlanInOrderAndCountsIt) {
  TissueMask mask;
  mask.spacing_um = 8.0;
  mask.slide_spacing = reader_->info().spacing;
  mask.mask = cv::Mat::zeros(125, 188, CV_8UC1);
  cv::circle(mask.mask, {90, 60}, 40, cv::Scalar(255), cv::FILLED);
  const ModelGeometry geometry = small_geometry();
  const auto all = plan_tiles(reader_->info(), &mask, geometry, {});
  TilePlanner planner(reader_->info(), &mask, geometry, {});
  EXPECT_EQ(planner.count(), all.size());
  EXPECT_GT(all.size(), 100u);
  EXPECT_LT(all.size(), 94u * 63u);
  for (const TileSpec& expected : all) {
    const auto tile = planner.next();
    ASSERT_TRUE(tile.has_value());
    ASSERT_EQ(tile->index, expected.index);
  }
  EXPECT_FALSE(planner.next().has_value());
}

TEST_F(TilingOnSyntheticSlide, BranchesShareTheOutputCentreAndHaveExactFieldsOfView) {
  const auto tiles = plan_tiles(reader_->info(), nullptr, small_geometry(), {});
  const TileSpec& tile = tiles.at(500);
  const double cx = tile.output_l0.x + tile.output_l0.width / 2;
  const double cy = tile.output_l0.y + tile.output_l0.height / 2;
  for (const RectF& branch : tile.branch_l0) {
    EXPECT_DOUBLE_EQ(branch.x + branch.width / 2, cx);
    EXPECT_DOUBLE_EQ(branch.y + branch.height / 2, cy);
  }
  EXPECT_DOUBLE_EQ(tile.branch_l0[1].width * 0.5, 64 * 2.0);  // 128 um context
}

TEST_F(TilingOnSyntheticSlide, StrideRegionAndPolygonsRestrictThePlan) {
  PlanOptions options;
  options.min_tissue_fraction = 0;
  options.stride_px = Size{64, 64};
  // ceil((3000 - 32) / 64) + 1 = 48 columns, ceil((2000 - 32) / 64) + 1 = 32 rows.
  EXPECT_EQ(plan_tiles(reader_->info(), nullptr, small_geometry(), options).size(), 48u * 32u);
  options.stride_px.reset();
  options.region_l0 = Rect{0, 0, 320, 64};
  EXPECT_EQ(plan_tiles(reader_->info(), nullptr, small_geometry(), options).size(), 10u * 2u);
  options.region_l0.reset();
  options.restrict_to_polygons_l0 = {{{0, 0}, {640, 0}, {640, 640}, {0, 640}}};
  EXPECT_EQ(plan_tiles(reader_->info(), nullptr, small_geometry(), options).size(), 20u * 20u);
}

TEST_F(TilingOnSyntheticSlide, TissueFractionFiltersTiles) {
  TissueMask mask;
  mask.spacing_um = 8.0;
  mask.slide_spacing = reader_->info().spacing;
  mask.mask = cv::Mat::zeros(125, 188, CV_8UC1);
  mask.mask(cv::Rect(0, 0, 94, 125)).setTo(255);  // the left half of the slide is tissue
  PlanOptions options;
  options.min_tissue_fraction = 0.5;
  const auto tiles = plan_tiles(reader_->info(), &mask, small_geometry(), options);
  ASSERT_FALSE(tiles.empty());
  for (const TileSpec& tile : tiles) {
    EXPECT_GE(tile.tissue_fraction, 0.5f);
    EXPECT_LT(tile.output_l0.x, 1504.0);
  }
  EXPECT_EQ(tiles.size(), 47u * 63u);
}

TEST_F(TilingOnSyntheticSlide, PatchSetReadsContextFromACoarseLevelConcentrically) {
  const auto tiles = plan_tiles(reader_->info(), nullptr, small_geometry(), {});
  const TileSpec& tile = tiles.at(30 * 94 + 40);
  const PatchSet patches = read_patch_set(*reader_, tile, small_geometry());
  ASSERT_EQ(patches.branches.size(), 2u);
  EXPECT_EQ(patches.levels[0], 0);
  EXPECT_EQ(patches.levels[1], 2);  // 2.0 um/px = downsample 4, not level 0 resampled
  // The context's central 16 px (32 um) show the target's central 64 px, 4x coarser.
  cv::Mat target_centre;
  cv::resize(patches.branches[0](cv::Rect(0, 0, 64, 64)), target_centre, {16, 16}, 0, 0,
             cv::INTER_AREA);
  EXPECT_GT(testing::psnr(patches.branches[1](cv::Rect(24, 24, 16, 16)), target_centre), 30.0);
}

TEST_F(TilingOnSyntheticSlide, CornerTilesMarkThePaddingInEachBranch) {
  const auto tiles = plan_tiles(reader_->info(), nullptr, small_geometry(), {});
  const PatchSet corner = read_patch_set(*reader_, tiles.front(), small_geometry());
  // Target 64 px around the centre (16, 16): 16 px above and left are off the slide.
  EXPECT_EQ(cv::countNonZero(corner.valid[0]), 48 * 48);
  // Context 64 px at 2 um around the same centre: 32 - 4 = 28 px above and left are off.
  EXPECT_EQ(cv::countNonZero(corner.valid[1]), 36 * 36);
  EXPECT_EQ(corner.valid[1].at<std::uint8_t>(27, 27), 0);
  EXPECT_EQ(corner.valid[1].at<std::uint8_t>(28, 28), 255);
}

std::vector<TileSpec> numbered_tiles(std::size_t count) {
  std::vector<TileSpec> tiles(count);
  for (size_t i = 0; i < tiles.size(); ++i) {
    tiles[i].index = i;
  }
  return tiles;
}

PatchSet numbered_patch(const TileSpec& spec) {
  PatchSet patches;
  patches.spec = spec;
  patches.branches.emplace_back(8, 8, CV_8UC3,
                                cv::Scalar::all(static_cast<double>(spec.index % 256)));
  return patches;
}

TEST(Scheduler, SinkSeesTilesInOrderWithBoundedTilesInFlight) {
  const std::vector<TileSpec> tiles = numbered_tiles(200);
  std::atomic<int> in_flight{0};
  std::atomic<int> peak{0};
  std::vector<std::uint64_t> seen;
  SchedulerOptions options;
  options.threads = 2;
  options.max_inflight = 3;
  options.progress = false;
  TilePipeline stages;
  stages.source = tiles_from(tiles);
  stages.expected_tiles = tiles.size();
  stages.read = [&](const TileSpec& spec) {
    const int now = ++in_flight;
    int previous = peak.load();
    while (now > previous && !peak.compare_exchange_weak(previous, now)) {
    }
    return numbered_patch(spec);
  };
  stages.sink = [&](TileBatch&& batch) {
    for (const PatchSet& patches : batch.patches) {
      seen.push_back(patches.spec.index);
      --in_flight;
    }
  };
  const PipelineTimes times = run_tile_pipeline(stages, options);
  EXPECT_EQ(times.tiles, tiles.size());
  ASSERT_EQ(seen.size(), tiles.size());
  for (size_t i = 0; i < seen.size(); ++i) {
    ASSERT_EQ(seen[i], i);
  }
  EXPECT_LE(peak.load(), 3);
}

// The segment/features/predict shape: batches, one serial infer stage, outputs in plan order.
TEST(Scheduler, InferSeesWholeBatchesInPlanOrderAndTheSinkItsOutputs) {
  const std::vector<TileSpec> tiles = numbered_tiles(103);
  SchedulerOptions options;
  options.threads = 4;
  options.max_inflight = 20;  // 3 batches of 7 (rounded up)
  options.progress = false;
  std::vector<std::size_t> batch_sizes;
  std::vector<double> outputs;
  std::atomic<bool> infer_running{false};
  bool infer_overlapped = false;
  TilePipeline stages;
  stages.source = tiles_from(tiles);
  stages.read = numbered_patch;
  stages.batch_size = 7;
  stages.infer = [&](TileBatch& batch) {
    infer_overlapped = infer_overlapped || infer_running.exchange(true);
    batch_sizes.push_back(batch.specs.size());
    for (const PatchSet& patches : batch.patches) {
      batch.outputs.emplace_back(1, 1, CV_64FC1,
                                 cv::Scalar(patches.branches[0].at<cv::Vec3b>(0)[0]));
    }
    batch.patches.clear();
    infer_running = false;
  };
  stages.sink = [&](TileBatch&& batch) {
    ASSERT_EQ(batch.outputs.size(), batch.specs.size());
    for (const cv::Mat& output : batch.outputs) {
      outputs.push_back(output.at<double>(0));
    }
  };
  EXPECT_EQ(run_tile_pipeline(stages, options).tiles, tiles.size());
  EXPECT_FALSE(infer_overlapped);
  ASSERT_EQ(batch_sizes.size(), 15u);  // 14 x 7 + 5
  EXPECT_EQ(batch_sizes.back(), 5u);
  ASSERT_EQ(outputs.size(), tiles.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    ASSERT_EQ(outputs[i], static_cast<double>(i % 256));
  }
}

TEST(Scheduler, AnErrorInAWorkerStopsThePipelineAndPropagates) {
  const std::vector<TileSpec> tiles = numbered_tiles(50);
  SchedulerOptions options;
  options.progress = false;
  TilePipeline stages;
  stages.source = tiles_from(tiles);
  stages.read = [](const TileSpec& spec) -> PatchSet {
    if (spec.index == 17) {
      throw Error(ErrorCode::kCorruptData, "tile 17 is damaged");
    }
    return PatchSet{spec, {}, {}, {}, {}};
  };
  std::uint64_t consumed = 0;
  stages.sink = [&](TileBatch&& batch) { consumed += batch.specs.size(); };
  EXPECT_THROW(run_tile_pipeline(stages, options), Error);
  EXPECT_LE(consumed, 17u);
}

TEST(Scheduler, APipelineWithoutASinkIsRefused) {
  TilePipeline stages;
  stages.source = [] { return std::optional<TileSpec>(); };
  stages.read = numbered_patch;
  EXPECT_THROW(run_tile_pipeline(stages), Error);
}

}  // namespace
}  // namespace slidestream
