// Native models: shape arithmetic, the HookNet hook rule, save/load round trips, the entropy
// and the errors of load_model. Tiny networks (2 filters, 220 px inputs) keep CPU time small.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <random>

#include "slidestream/core.hpp"
#include "slidestream/models/description.hpp"
#include "slidestream/models/model.hpp"
#include "slidestream/models/shapes.hpp"
#include "test_support.hpp"

namespace slidestream {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

ModelDescription tiny_hooknet() {
  ModelDescription d;
  d.architecture = "hooknet";
  d.geometry.branches = {{0.5, {220, 220}}, {8.0, {220, 220}}};
  d.geometry.output = {0.5, {6, 6}};
  d.classes = {{"background", 0, {255, 255, 255}}, {"tumour", 1, {200, 0, 0}}, {"stroma", 2, {}}};
  d.network.filters = 2;
  d.network.batch_norm = true;
  d.training_yaml = "{epochs: 1, note: test}";
  return d;
}

PatchSet random_patch_set(const ModelGeometry& geometry, unsigned seed) {
  PatchSet set;
  cv::RNG rng(seed);
  for (const auto& branch : geometry.branches) {
    cv::Mat rgb(static_cast<int>(branch.size_px.height), static_cast<int>(branch.size_px.width),
                CV_8UC3);
    rng.fill(rgb, cv::RNG::UNIFORM, 0, 256);
    set.branches.push_back(rgb);
  }
  return set;
}

ErrorCode code_of(const std::function<void()>& action, std::string* message = nullptr) {
  try {
    action();
  } catch (const Error& error) {
    if (message != nullptr) {
      *message = error.what();
    }
    return error.code();
  }
  return ErrorCode::kInternal;
}

TEST(ModelShapes, HookNetOutputIsInputMinus214ForLegalSizes) {
  // The paper's sizes: 284 -> 70 and 316 -> 102 (valid 3x3 convolutions, depth 4).
  EXPECT_EQ(unet_output_size(284, 4, true), 70);
  EXPECT_EQ(unet_output_size(316, 4, true), 102);
  for (std::int64_t k = 3; k < 12; ++k) {
    EXPECT_EQ(unet_output_size(32 * k + 124, 4, true), 32 * k + 124 - 214);
  }
  for (const std::int64_t illegal : {250, 283, 285, 156, 188, 236}) {
    EXPECT_FALSE(unet_output_size(illegal, 4, true).has_value()) << illegal;
  }
  EXPECT_EQ(unet_output_size(64, 4, false), 64);
  EXPECT_FALSE(unet_output_size(72, 4, false).has_value());  // not a multiple of 16
}

TEST(ModelShapes, IllegalHookNetSizeIsAConfigErrorNamingTheNearestLegalSizes) {
  ModelDescription d = tiny_hooknet();
  d.geometry.branches = {{0.5, {250, 250}}, {8.0, {250, 250}}};
  d.geometry.output = {0.5, {36, 36}};
  std::string message;
  EXPECT_EQ(code_of([&] { d.validate(); }, &message), ErrorCode::kInvalidConfig);
  EXPECT_NE(message.find("252"), std::string::npos) << message;
  EXPECT_NE(message.find("220"), std::string::npos) << message;
  EXPECT_EQ(nearest_legal_sizes(250, 4, true),
            std::make_pair(std::int64_t{220}, std::int64_t{252}));
}

TEST(ModelShapes, OutputSizeThatDisagreesWithTheInputIsRejected) {
  ModelDescription d = tiny_hooknet();
  d.geometry.output = {0.5, {8, 8}};
  std::string message;
  EXPECT_EQ(code_of([&] { d.validate(); }, &message), ErrorCode::kInvalidConfig);
  EXPECT_NE(message.find("must be 6 px"), std::string::npos) << message;
}

TEST(HookRule, BreastSpacingsHookTheLastContextDecoderIntoTheTargetBottleneck) {
  const HookSpec hook = hooknet_hook(0.5, 8.0, 4);
  EXPECT_EQ(hook.context_level, 0);
  EXPECT_EQ(hook.target_level, 4);
  EXPECT_DOUBLE_EQ(hook.spacing_um, 8.0);
  EXPECT_DOUBLE_EQ(0.5 * std::exp2(hook.target_level), 8.0 * std::exp2(hook.context_level));
}

TEST(HookRule, TwoMicronContextHooksIntoTargetLevelTwo) {
  const HookSpec hook = hooknet_hook(0.5, 2.0, 4);
  EXPECT_EQ(hook.context_level, 0);
  EXPECT_EQ(hook.target_level, 2);
  EXPECT_DOUBLE_EQ(hook.spacing_um, 2.0);
}

TEST(HookRule, SpacingRatiosThatAreNoReachablePowerOfTwoAreClearErrors) {
  std::string message;
  EXPECT_EQ(code_of([] { hooknet_hook(0.5, 3.0, 4); }, &message), ErrorCode::kInvalidConfig);
  EXPECT_NE(message.find("3 um/px"), std::string::npos) << message;
  EXPECT_EQ(code_of([] { hooknet_hook(0.5, 16.0, 4); }), ErrorCode::kInvalidConfig);  // 2^5
  EXPECT_EQ(code_of([] { hooknet_hook(8.0, 0.5, 4); }), ErrorCode::kInvalidConfig);   // finer
}

// The hooked context map, centre-cropped to the target map's size, covers exactly the target
// map's field of view: same spacing, same extent, same centre (both maps are centred on the
// shared patch centre because valid convolutions and 2x2 pools trim symmetrically).
void expect_crop_covers_target_fov(double target_um, double context_um, std::int64_t input_px) {
  const HookSpec hook = hooknet_hook(target_um, context_um, 4);
  const auto target = unet_level_size(input_px, 4, true, hook.target_level);
  const auto context = unet_level_size(input_px, 4, true, hook.context_level);
  ASSERT_TRUE(target && context);
  const double target_step = target_um * std::exp2(hook.target_level);
  const double context_step = context_um * std::exp2(hook.context_level);
  EXPECT_DOUBLE_EQ(target_step, context_step);
  const std::int64_t crop = *context - *target;
  ASSERT_EQ(crop % 2, 0);
  const double context_left_um = -static_cast<double>(*context) * context_step / 2;
  const double cropped_left_um = context_left_um + static_cast<double>(crop) / 2 * context_step;
  const double target_left_um = -static_cast<double>(*target) * target_step / 2;
  EXPECT_DOUBLE_EQ(cropped_left_um, target_left_um);
  EXPECT_DOUBLE_EQ(static_cast<double>(*target) * context_step,
                   static_cast<double>(*target) * target_step);
}

TEST(HookRule, HookedCropCoversExactlyTheTargetFieldOfView) {
  expect_crop_covers_target_fov(0.5, 8.0, 284);  // 70 px at 8 um cropped to 10 px: 80 um
  expect_crop_covers_target_fov(0.5, 2.0, 284);
  expect_crop_covers_target_fov(0.5, 8.0, 316);
  EXPECT_EQ(unet_level_size(284, 4, true, 4), 10);
  EXPECT_EQ(unet_level_size(284, 4, true, 0), 70);
}

TEST(NativeModel, SaveAndLoadRoundTripIsBitExact) {
  TempDir dir;
  const ModelDescription d = tiny_hooknet();
  auto model = create_native_model(d, {}, 3);
  const PatchSet a = random_patch_set(d.geometry, 1);
  const PatchSet b = random_patch_set(d.geometry, 2);
  const auto before = model->predict({&a, &b});
  model->save(dir.path());
  auto loaded = load_model(dir.path());
  const auto after = loaded->predict({&a, &b});
  ASSERT_EQ(before.size(), 2u);
  ASSERT_EQ(after.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    ASSERT_EQ(after[i].probs.size(), cv::Size(6, 6));
    ASSERT_EQ(after[i].probs.channels(), 3);
    EXPECT_EQ(std::memcmp(before[i].probs.data, after[i].probs.data,
                          before[i].probs.total() * before[i].probs.elemSize()),
              0);
  }
  EXPECT_EQ(loaded->weights_sha256(), sha256_file(dir / "weights.pt"));
  EXPECT_EQ(loaded->description().training_yaml.find("epochs") != std::string::npos, true);
  EXPECT_EQ(loaded->architecture(), "hooknet");
  EXPECT_TRUE(loaded->valid_convolutions());
}

TEST(NativeModel, SameSeedGivesSameWeightsAndProbabilitiesSumToOne) {
  const ModelDescription d = tiny_hooknet();
  auto first = create_native_model(d, {}, 5);
  auto second = create_native_model(d, {}, 5);
  const PatchSet set = random_patch_set(d.geometry, 9);
  const cv::Mat p = first->predict({&set}).front().probs;
  const cv::Mat q = second->predict({&set}).front().probs;
  EXPECT_EQ(cv::norm(p, q, cv::NORM_INF), 0.0);
  std::vector<cv::Mat> planes;
  cv::split(p, planes);
  const cv::Mat total = planes[0] + planes[1] + planes[2];
  EXPECT_NEAR(cv::norm(total - 1.0, cv::NORM_INF), 0.0, 1e-5);
}

TEST(NativeModel, SamePaddedUNetKeepsItsInputSizeAndEmbedsTheBottleneck) {
  ModelDescription d;
  d.architecture = "unet";
  d.network.padding = Padding::kSame;
  d.network.depth = 3;
  d.network.filters = 2;
  d.geometry.branches = {{1.0, {32, 32}}};
  d.geometry.output = {1.0, {32, 32}};
  d.classes = {{"background", 0, {}}, {"nuclei", 1, {}}};
  auto model = create_native_model(d);
  const PatchSet set = random_patch_set(d.geometry, 4);
  EXPECT_EQ(model->predict({&set}).front().probs.size(), cv::Size(32, 32));
  EXPECT_FALSE(model->valid_convolutions());
  const auto features = model->embed({&set, &set});
  ASSERT_EQ(features.size(), 2u);
  EXPECT_EQ(static_cast<int>(features[0].size()), 2 << 3);
  EXPECT_EQ(model->embedding_size(), 16);
}

TEST(NativeModel, EntropyIsPerPixelAndDropoutIsOffAtInference) {
  ModelDescription d = tiny_hooknet();
  d.network.dropout = 0.5;
  InferenceOptions options;
  options.entropy = true;
  auto model = create_native_model(d, options, 1);
  const PatchSet set = random_patch_set(d.geometry, 3);
  const ModelOutput out = model->predict({&set}).front();
  ASSERT_EQ(out.entropy.size(), cv::Size(6, 6));
  double low = 0;
  double high = 0;
  cv::minMaxLoc(out.entropy, &low, &high);
  EXPECT_GE(low, 0.0);
  EXPECT_LE(high, std::log(3.0) + 1e-5);
  // Dropout 0.5 on the bottleneck acts in training only: two passes agree exactly.
  const ModelOutput again = model->predict({&set}).front();
  EXPECT_EQ(cv::norm(out.probs, again.probs, cv::NORM_INF), 0.0);
}

TEST(NativeModel, WrongInputShapeIsAModelError) {
  const ModelDescription d = tiny_hooknet();
  auto model = create_native_model(d);
  PatchSet set = random_patch_set(d.geometry, 1);
  set.branches[1] = cv::Mat(100, 100, CV_8UC3, cv::Scalar(0, 0, 0));
  EXPECT_EQ(code_of([&] { model->predict({&set}); }), ErrorCode::kModelError);
}

class LoadModelErrors : public ::testing::Test {
 protected:
  void SetUp() override { create_native_model(tiny_hooknet(), {}, 2)->save(dir_.path()); }
  void edit_yaml(const std::function<void(ModelDescription&)>& change) {
    ModelDescription d = load_model_description(dir_ / "model.yaml");
    change(d);
    save_model_description(d, dir_ / "model.yaml");
  }
  std::string expect_model_error() {
    std::string message;
    EXPECT_EQ(code_of([&] { load_model(dir_.path()); }, &message), ErrorCode::kModelError);
    return message;
  }
  TempDir dir_;
};

TEST_F(LoadModelErrors, AWrongPathIsAModelErrorNamingIt) {
  std::string message;
  EXPECT_EQ(code_of([&] { load_model(dir_ / "nope"); }, &message), ErrorCode::kModelError);
  EXPECT_NE(message.find("nope"), std::string::npos);
  fs::remove(dir_ / "model.yaml");
  EXPECT_NE(expect_model_error().find("model.yaml"), std::string::npos);
}

TEST_F(LoadModelErrors, ACorruptWeightsFileIsAModelError) {
  {
    std::ofstream out(dir_ / "weights.pt", std::ios::binary | std::ios::trunc);
    out << "not a torch archive";
  }
  const std::string sha = sha256_file(dir_ / "weights.pt");
  edit_yaml([&](ModelDescription& d) { d.weights_sha256 = sha; });
  EXPECT_NE(expect_model_error().find("weights.pt"), std::string::npos);
}

TEST_F(LoadModelErrors, ASha256MismatchIsAModelErrorWithBothValues) {
  edit_yaml([](ModelDescription& d) { d.weights_sha256 = std::string(64, '0'); });
  const std::string message = expect_model_error();
  EXPECT_NE(message.find("sha256"), std::string::npos);
  EXPECT_NE(message.find(sha256_file(dir_ / "weights.pt")), std::string::npos);
}

TEST_F(LoadModelErrors, AClassCountThatDisagreesWithTheWeightsIsAModelError) {
  edit_yaml([](ModelDescription& d) { d.classes.push_back({"fat", 7, {}}); });
  const std::string message = expect_model_error();
  EXPECT_NE(message.find("4 classes"), std::string::npos) << message;
  EXPECT_NE(message.find("output 3"), std::string::npos) << message;
}

TEST_F(LoadModelErrors, AnIllegalGeometryIsAModelErrorSuggestingLegalSizes) {
  edit_yaml([](ModelDescription& d) {
    d.geometry.branches = {{0.5, {250, 250}}, {8.0, {250, 250}}};
  });
  EXPECT_NE(expect_model_error().find("252"), std::string::npos);
}

TEST_F(LoadModelErrors, AnUnknownModelYamlKeyIsAModelError) {
  {
    std::ofstream out(dir_ / "model.yaml", std::ios::app);
    out << "filterz: 3\n";
  }
  EXPECT_NE(expect_model_error().find("filterz"), std::string::npos);
}

TEST_F(LoadModelErrors, CudaRequestedWithoutAGpuIsAnInvalidArgument) {
  if (cuda_available()) {
    GTEST_SKIP() << "a CUDA device is present; this checks the CPU-only error";
  }
  InferenceOptions options;
  options.device = "cuda:0";
  std::string message;
  EXPECT_EQ(code_of([&] { load_model(dir_.path(), options); }, &message),
            ErrorCode::kInvalidArgument);
  EXPECT_NE(message.find("--device cpu"), std::string::npos);
  options.device = "tpu";
  EXPECT_EQ(code_of([&] { load_model(dir_.path(), options); }), ErrorCode::kInvalidArgument);
}

TEST(NativeModelGpu, RunsOnCuda) {
  if (!cuda_available()) {
    GTEST_SKIP() << "needs a CUDA device";
  }
  InferenceOptions options;
  options.device = "cuda";
  auto model = create_native_model(tiny_hooknet(), options, 1);
  EXPECT_EQ(model->device().rfind("cuda", 0), 0u);
}

}  // namespace
}  // namespace slidestream
