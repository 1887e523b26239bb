// Inference tiles (issue 13): a native network run at a larger tile than its training patch.
// The shape arithmetic of inference_geometry, and the equivalence that makes it safe: with
// valid convolutions every output pixel is computed from its whole receptive field, so a large
// tile gives the small tile's probabilities wherever the two put the pooling grid in the same
// place (tile origins a multiple of 2^depth apart).
#include <gtest/gtest.h>

#include <opencv2/core.hpp>

#include "slidestream/core.hpp"
#include "slidestream/models/description.hpp"
#include "slidestream/models/model.hpp"
#include "slidestream/models/shapes.hpp"

namespace slidestream {
namespace {

ModelDescription breast_hooknet() {
  ModelDescription d;
  d.architecture = "hooknet";
  d.geometry = ModelGeometry::hooknet_breast();  // 284 px at 0.5 and 8.0 um/px -> 70 px
  d.classes = {{"background", 0, {}}, {"tumour", 1, {}}};
  return d;
}

ModelDescription tiny_valid_unet() {
  ModelDescription d;
  d.architecture = "unet";
  d.network.filters = 2;
  d.network.depth = 2;
  const std::int64_t input = *largest_input_for_output(20, 2, true);
  const std::int64_t output = *unet_output_size(input, 2, true);
  d.geometry.branches = {{1.0, {input, input}}};
  d.geometry.output = {1.0, {output, output}};
  d.classes = {{"background", 0, {}}, {"nuclei", 1, {}}, {"stroma", 2, {}}};
  return d;
}

ErrorCode code_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& error) {
    return error.code();
  }
  return ErrorCode::kInternal;
}

TEST(InferenceGeometry, HookNetTargetGrowsToTheLegalOutputAndTheContextKeepsItsMargin) {
  const ModelDescription d = breast_hooknet();
  const ModelGeometry g = inference_geometry(d, 1030);
  EXPECT_EQ(g.branches[0].size_px, (Size{1244, 1244}));  // 32k + 124, output = input - 214
  EXPECT_EQ(g.output.size_px, (Size{1030, 1030}));
  // 960 px more target at 0.5 um/px is 60 px at 8 um/px: 284 + 60 = 344, next legal 348.
  EXPECT_EQ(g.branches[1].size_px, (Size{348, 348}));
  EXPECT_DOUBLE_EQ(g.branches[1].spacing_um, 8.0);
  EXPECT_NO_THROW(validate_inference_geometry(d, g));

  // Between legal outputs: the largest legal one below (998 = 32 * 34 - 90).
  EXPECT_EQ(inference_geometry(d, 1029).output.size_px, (Size{998, 998}));
  // Never below the training tile.
  EXPECT_EQ(inference_geometry(d, 40).output.size_px, (Size{70, 70}));
  EXPECT_EQ(inference_geometry(d, 70).branches[1].size_px, (Size{284, 284}));
}

TEST(InferenceGeometry, IllegalSizesSpacingsAndUncoveredHooksAreModelErrors) {
  const ModelDescription d = breast_hooknet();
  ModelGeometry odd = inference_geometry(d, 1030);
  odd.branches[0].size_px = Size{1240, 1240};
  EXPECT_EQ(code_of([&] { validate_inference_geometry(d, odd); }), ErrorCode::kModelError);
  ModelGeometry moved = inference_geometry(d, 1030);
  moved.branches[1].spacing_um = 4.0;
  EXPECT_EQ(code_of([&] { validate_inference_geometry(d, moved); }), ErrorCode::kModelError);
  ModelGeometry small_context = inference_geometry(d, 4000);
  small_context.branches[1].size_px = Size{284, 284};  // its map no longer covers the target's
  EXPECT_EQ(code_of([&] { validate_inference_geometry(d, small_context); }),
            ErrorCode::kModelError);
  ModelGeometry wrong_output = inference_geometry(d, 1030);
  wrong_output.output.size_px = Size{1000, 1000};
  EXPECT_EQ(code_of([&] { validate_inference_geometry(d, wrong_output); }), ErrorCode::kModelError);
}

// Probabilities of `model` on the `input_px` square of `image` at (x, y).
cv::Mat probabilities_at(SegmentationModel& model, const cv::Mat& image, int x, int y,
                         int input_px) {
  PatchSet set;
  set.branches.push_back(image(cv::Rect(x, y, input_px, input_px)).clone());
  return model.predict({&set}).front().probs;
}

double max_difference(const cv::Mat& a, const cv::Mat& b) {
  return cv::norm(a, b, cv::NORM_INF);
}

TEST(InferenceTiles, AValidUNetAtALargeTileGivesTheSmallTilesProbabilitiesOnTheSamePoolingGrid) {
  const ModelDescription d = tiny_valid_unet();
  const auto small_input = static_cast<int>(d.geometry.branches[0].size_px.width);
  const auto small_output = static_cast<int>(d.geometry.output.size_px.width);
  const auto small = create_native_model(d, {}, 7);
  const auto large = create_native_model(d, {}, 7);
  ASSERT_TRUE(large->fully_convolutional());
  const ModelGeometry geometry = inference_geometry(d, 8 * small_output);
  const auto large_input = static_cast<int>(geometry.branches[0].size_px.width);
  ASSERT_GE(large_input, small_input + 3 * (1 << d.network.depth));
  large->use_geometry(geometry);
  EXPECT_EQ(large->geometry().output.size_px, geometry.output.size_px);

  cv::Mat image(large_input, large_input, CV_8UC3);
  cv::RNG(3).fill(image, cv::RNG::UNIFORM, 0, 256);
  const cv::Mat whole = probabilities_at(*large, image, 0, 0, large_input);
  const int period = 1 << d.network.depth;
  for (const auto& [x, y] : {std::pair{0, 0}, {period, 0}, {3 * period, 2 * period}}) {
    const cv::Mat tile = probabilities_at(*small, image, x, y, small_input);
    const cv::Mat same = whole(cv::Rect(x, y, small_output, small_output));
    EXPECT_LT(max_difference(tile, same), 1e-5) << "origin " << x << ", " << y;
  }
  // Off the pooling grid the same pixels are computed from differently pooled maps.
  const cv::Mat shifted = probabilities_at(*small, image, 1, 0, small_input);
  EXPECT_GT(max_difference(shifted, whole(cv::Rect(1, 0, small_output, small_output))), 1e-4);
}

TEST(InferenceTiles, AnIllegalGeometryIsRefusedAndTheModelKeepsItsOwn) {
  const ModelDescription d = tiny_valid_unet();
  const auto model = create_native_model(d);
  ModelGeometry wrong = d.geometry;
  wrong.branches[0].size_px =
      Size{d.geometry.branches[0].size_px.width + 1, d.geometry.branches[0].size_px.width + 1};
  EXPECT_EQ(code_of([&] { model->use_geometry(wrong); }), ErrorCode::kModelError);
  EXPECT_EQ(model->geometry().branches[0].size_px, d.geometry.branches[0].size_px);
}

}  // namespace
}  // namespace slidestream
