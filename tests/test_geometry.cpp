#include <gtest/gtest.h>

#include <cmath>

#include "slidestream/core.hpp"
#include "slidestream/geometry.hpp"

namespace slidestream {
namespace {

// A 40x-like pyramid: 0.25 um/px with downsamples 1, 4, 16, 64.
const std::vector<Level>& pyramid() {
  static const std::vector<Level> levels = [] {
    std::vector<Level> pyramid;
    for (const auto& [size, downsample] :
         std::vector<std::pair<Size, double>>{{{80000, 60000}, 1.0},
                                              {{20000, 15000}, 4.0},
                                              {{5000, 3750}, 16.0},
                                              {{1250, 937}, 64.0}}) {
      Level level;
      level.size = size;
      level.downsample = downsample;
      pyramid.push_back(level);
    }
    return pyramid;
  }();
  return levels;
}
const Spacing kSpacing{0.25, 0.25};

TEST(ChooseLevel, PicksLevelZeroForItsOwnSpacing) {
  const LevelChoice choice = choose_level(pyramid(), kSpacing, 0.25);
  EXPECT_EQ(choice.level, 0);
  EXPECT_DOUBLE_EQ(choice.scale_x, 1.0);
}

TEST(ChooseLevel, PicksTheCoarsestLevelThatIsFineEnough) {
  EXPECT_EQ(choose_level(pyramid(), kSpacing, 0.5).level, 0);  // level 1 is 1.0 um/px: too coarse
  EXPECT_EQ(choose_level(pyramid(), kSpacing, 1.0).level, 1);
  EXPECT_EQ(choose_level(pyramid(), kSpacing, 2.0).level, 1);
  EXPECT_EQ(choose_level(pyramid(), kSpacing, 8.0).level, 2);  // level 3 (16 um/px): too coarse
  EXPECT_EQ(choose_level(pyramid(), kSpacing, 16.0).level, 3);
  const LevelChoice at_8 = choose_level(pyramid(), kSpacing, 8.0);
  EXPECT_NEAR(at_8.scale_x, 2.0, 1e-12);
}

TEST(ChooseLevel, AcceptsALevelWithinTheTolerance) {
  // 1.0 um/px level serves a 0.96 um/px request: 4.2 % coarser, inside the 5 % tolerance.
  EXPECT_EQ(choose_level(pyramid(), kSpacing, 0.96).level, 1);
  // ... but not a 0.94 um/px request (6.4 % coarser).
  EXPECT_EQ(choose_level(pyramid(), kSpacing, 0.94).level, 0);
  LevelChoiceOptions strict;
  strict.tolerance = 0.0;
  EXPECT_EQ(choose_level(pyramid(), kSpacing, 0.96, strict).level, 0);
}

TEST(ChooseLevel, RefusesToUpsampleBeyondTheTolerance) {
  EXPECT_EQ(choose_level(pyramid(), kSpacing, 0.24).level, 0);  // 4 % upsample is allowed
  try {
    choose_level(pyramid(), kSpacing, 0.2);
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(error.what()).find("finer than the slide's level 0"), std::string::npos);
  }
  LevelChoiceOptions upsample;
  upsample.allow_upsample = true;
  const LevelChoice choice = choose_level(pyramid(), kSpacing, 0.125, upsample);
  EXPECT_EQ(choice.level, 0);
  EXPECT_DOUBLE_EQ(choice.scale_x, 0.5);
}

TEST(ChooseLevel, RejectsSpacingThatIsNotPositive) {
  EXPECT_THROW(choose_level(pyramid(), kSpacing, 0.0), Error);
  EXPECT_THROW(choose_level(pyramid(), kSpacing, -1.0), Error);
  EXPECT_THROW(choose_level(pyramid(), kSpacing, std::nan("")), Error);
}

TEST(ChooseLevel, UsesTheCoarserAxisOfAnisotropicSpacing) {
  const Spacing anisotropic{0.25, 0.26};
  EXPECT_TRUE(anisotropic.is_anisotropic());
  EXPECT_FALSE(kSpacing.is_anisotropic());
  // Level 1 is 1.0 x 1.04 um/px: y exceeds 0.98 * 1.05 = 1.029, so level 0 serves 0.98.
  EXPECT_EQ(choose_level(pyramid(), anisotropic, 0.98).level, 0);
  EXPECT_EQ(choose_level(pyramid(), anisotropic, 1.0).level, 1);
}

TEST(FieldOfView, CentredPatchesAtTwoSpacingsShareTheirCentre) {
  const Point center{10000, 8000};
  const RectF target = fov_from_center(center, {284, 284}, 0.5, kSpacing);
  const RectF context = fov_from_center(center, {284, 284}, 8.0, kSpacing);
  EXPECT_DOUBLE_EQ(target.width, 568.0);    // 284 px * 0.5 um / 0.25 um
  EXPECT_DOUBLE_EQ(context.width, 9088.0);  // 284 px * 8 um / 0.25 um
  EXPECT_DOUBLE_EQ(target.x + target.width / 2, 10000.0);
  EXPECT_DOUBLE_EQ(context.x + context.width / 2, 10000.0);
  EXPECT_DOUBLE_EQ(context.y + context.height / 2, 8000.0);
}

TEST(FieldOfView, FieldOfViewInMicronsIsExactForAnySpacing) {
  // 0.499 um/px slide, 2 um/px request: no rounding to a power-of-two level.
  const RectF fov = fov_from_origin({0, 0}, {300, 200}, 2.0, Spacing{0.499, 0.499});
  EXPECT_DOUBLE_EQ(fov.width * 0.499, 600.0);
  EXPECT_DOUBLE_EQ(fov.height * 0.499, 400.0);
}

TEST(FieldOfView, OddSizesCentreOnAPixelBoundaryHalfAPixelOff) {
  const RectF fov = fov_from_center({100, 100}, {5, 3}, 0.25, kSpacing);
  EXPECT_DOUBLE_EQ(fov.x, 97.5);
  EXPECT_DOUBLE_EQ(fov.y, 98.5);
  const Rect cover = enclosing_rect(fov);
  EXPECT_EQ(cover, (Rect{97, 98, 6, 4}));
}

TEST(FieldOfView, RejectsEmptySizes) {
  EXPECT_THROW(fov_from_center({0, 0}, {0, 10}, 0.5, kSpacing), Error);
  EXPECT_THROW(fov_from_origin({0, 0}, {-5, 10}, 0.5, kSpacing), Error);
}

TEST(Rects, IntersectClipsAndReportsEmptyOverlap) {
  EXPECT_EQ(intersect(Rect{-10, -10, 30, 30}, Rect{0, 0, 100, 100}), (Rect{0, 0, 20, 20}));
  EXPECT_TRUE(intersect(Rect{200, 0, 10, 10}, Rect{0, 0, 100, 100}).empty());
  EXPECT_EQ(enclosing_rect(RectF{0.5, 1.0, 2.0, 2.5}), (Rect{0, 1, 3, 3}));
}

TEST(Parsing, SizesAndPointsFromTheCommandLine) {
  EXPECT_EQ(parse_size("512"), (Size{512, 512}));
  EXPECT_EQ(parse_size("512x256"), (Size{512, 256}));
  EXPECT_EQ(parse_point("-10,20"), (Point{-10, 20}));
  EXPECT_THROW(parse_size("-5"), Error);
  EXPECT_THROW(parse_size("0x10"), Error);
  EXPECT_THROW(parse_size("abc"), Error);
  EXPECT_THROW(parse_point("10"), Error);
  EXPECT_THROW(parse_point("1,2x"), Error);
}

}  // namespace
}  // namespace slidestream
