// TorchScript models exported by examples/export_torchscript.py (Debian's python3-torch): parity
// with PyTorch, the colour classifier's exact rule, and `predict` on a synthetic image.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "slidestream/core.hpp"
#include "slidestream/jobs/predict.hpp"
#include "slidestream/models/description.hpp"
#include "slidestream/models/model.hpp"
#include "test_support.hpp"

namespace slidestream {
namespace {

namespace fs = std::filesystem;

const fs::path& exports() {
  return testing::torchscript_exports();
}

#define REQUIRE_EXPORTS()                                                   \
  if (exports().empty()) {                                                  \
    GTEST_SKIP() << "needs " SLIDESTREAM_TORCH_PYTHON                       \
                    " with torch (Debian: "                                 \
                    "python3-torch) to run examples/export_torchscript.py"; \
  }

template <typename T>
std::vector<T> read_raw(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<T> values(bytes.size() / sizeof(T));
  std::memcpy(values.data(), bytes.data(), values.size() * sizeof(T));
  return values;
}

// The reference batch's patch sets (one RGB8 patch per branch), as the exporter wrote them.
std::vector<PatchSet> reference_sets(const fs::path& dir, const ModelGeometry& geometry) {
  int count = 0;
  std::ifstream(dir / "reference.txt") >> count;
  std::vector<PatchSet> sets(static_cast<size_t>(count));
  for (size_t b = 0; b < geometry.branches.size(); ++b) {
    const auto pixels =
        read_raw<std::uint8_t>(dir / ("reference_input" + std::to_string(b) + ".u8"));
    const int side = static_cast<int>(geometry.branches[b].size_px.width);
    for (int n = 0; n < count; ++n) {
      cv::Mat rgb(side, side, CV_8UC3);
      std::memcpy(rgb.data, pixels.data() + static_cast<size_t>(n) * rgb.total() * 3,
                  rgb.total() * 3);
      sets[static_cast<size_t>(n)].branches.push_back(rgb);
    }
  }
  return sets;
}

// A batch pointing at `sets`, in order.
std::vector<const PatchSet*> batch_of(const std::vector<PatchSet>& sets) {
  std::vector<const PatchSet*> batch;
  batch.reserve(sets.size());
  for (const auto& set : sets) {
    batch.push_back(&set);
  }
  return batch;
}

// Max |slidestream - PyTorch| over the reference batch's softmax probabilities.
double parity_error(const fs::path& dir) {
  auto model = load_model(dir);
  const ModelGeometry& geometry = model->geometry();
  const std::vector<PatchSet> sets = reference_sets(dir, geometry);
  const int count = static_cast<int>(sets.size());
  const auto outputs = model->predict(batch_of(sets));
  const auto reference = read_raw<float>(dir / "reference_probs.f32");  // N x C x h x w
  const int classes = static_cast<int>(model->classes().size());
  const int side = static_cast<int>(geometry.output.size_px.width);
  EXPECT_EQ(reference.size(), static_cast<size_t>(count * classes * side * side));
  double worst = 0;
  for (int n = 0; n < count; ++n) {
    const cv::Mat& probs = outputs[static_cast<size_t>(n)].probs;
    for (int k = 0; k < classes; ++k) {
      for (int y = 0; y < side; ++y) {
        for (int x = 0; x < side; ++x) {
          const float ours = probs.ptr<float>(y)[x * classes + k];
          const float theirs =
              reference[((static_cast<size_t>(n) * classes + k) * side + y) * side + x];
          worst = std::max(worst, static_cast<double>(std::abs(ours - theirs)));
        }
      }
    }
  }
  return worst;
}

TEST(TorchScript, ScriptedUNetMatchesPyTorch) {
  REQUIRE_EXPORTS();
  EXPECT_LT(parity_error(exports() / "unet"), 1e-4);
}

TEST(TorchScript, TracedTwoInputModelReturningATupleMatchesPyTorch) {
  REQUIRE_EXPORTS();
  EXPECT_LT(parity_error(exports() / "two_input"), 1e-4);
  auto model = load_model(exports() / "two_input");
  EXPECT_EQ(model->geometry().branches.size(), 2u);
  EXPECT_EQ(model->architecture(), "torchscript");
  // A scripted graph may fix its input sizes: it runs at model.yaml's geometry only.
  EXPECT_FALSE(model->fully_convolutional());
  ModelGeometry larger = model->geometry();
  larger.branches[0].size_px.width *= 2;
  EXPECT_THROW(model->use_geometry(larger), Error);
  EXPECT_EQ(model->geometry().branches[0].size_px,
            model->description().geometry.branches[0].size_px);
}

TEST(TorchScript, ColourClassifierMatchesPyTorch) {
  REQUIRE_EXPORTS();
  EXPECT_LT(parity_error(exports() / "colour"), 1e-4);
}

TEST(TorchScript, ClassCountThatDisagreesWithTheOutputIsAModelError) {
  REQUIRE_EXPORTS();
  testing::TempDir dir;
  fs::copy(exports() / "unet", dir.path(), fs::copy_options::recursive);
  ModelDescription d = load_model_description(dir / "model.yaml");
  d.classes.pop_back();
  save_model_description(d, dir / "model.yaml");
  try {
    load_model(dir.path());
    ADD_FAILURE() << "a 2-class model.yaml for 3 logits loaded";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kModelError);
    EXPECT_NE(std::string(error.what()).find("2 classes"), std::string::npos) << error.what();
  }
}

TEST(TorchScript, DeclaredEmbeddingsMatchPyTorch) {
  REQUIRE_EXPORTS();
  // The U-Net's exported method `embed` (N x 16) and the two-input model's forward element 1
  // (N x 4 x 64 x 64, pooled to N x 4).
  for (const auto& [name, size] : {std::pair<std::string, int>{"unet", 16}, {"two_input", 4}}) {
    auto model = load_model(exports() / name);
    EXPECT_EQ(model->embedding_size(), size) << name;
    const std::vector<PatchSet> sets = reference_sets(exports() / name, model->geometry());
    const auto rows = model->embed(batch_of(sets));
    const auto reference = read_raw<float>(exports() / name / "reference_embedding.f32");
    ASSERT_EQ(rows.size(), sets.size()) << name;
    ASSERT_EQ(reference.size(), sets.size() * static_cast<size_t>(size)) << name;
    double worst = 0;
    for (size_t n = 0; n < rows.size(); ++n) {
      ASSERT_EQ(rows[n].size(), static_cast<size_t>(size)) << name;
      for (size_t d = 0; d < rows[n].size(); ++d) {
        worst = std::max(worst, static_cast<double>(std::abs(
                                    rows[n][d] - reference[n * static_cast<size_t>(size) + d])));
      }
    }
    EXPECT_LT(worst, 1e-4) << name;
  }
  // No declaration: no embedding, and embed() says how to declare one.
  auto colour = load_model(exports() / "colour");
  EXPECT_EQ(colour->embedding_size(), 0);
  EXPECT_THROW(colour->embed({}), Error);
}

TEST(TorchScript, AnEmbeddingMethodTheModuleLacksIsAModelErrorNamingIt) {
  REQUIRE_EXPORTS();
  testing::TempDir dir;
  fs::copy(exports() / "unet", dir.path(), fs::copy_options::recursive);
  ModelDescription d = load_model_description(dir / "model.yaml");
  d.embedding_method = "pooled_features";
  save_model_description(d, dir / "model.yaml");
  try {
    load_model(dir.path());
    ADD_FAILURE() << "a missing embedding method loaded";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kModelError);
    EXPECT_NE(std::string(error.what()).find("pooled_features"), std::string::npos) << error.what();
  }
  d.embedding_output = 1;  // both declared
  save_model_description(d, dir / "model.yaml");
  EXPECT_THROW(load_model(dir.path()), Error);
}

// The documented rule on uint8 RGB: 0 when G >= 192, else 1 when R > B, else 2.
std::uint8_t colour_rule(const cv::Vec3b& rgb) {
  if (rgb[1] >= 192) {
    return 0;
  }
  return rgb[0] > rgb[2] ? 1 : 2;
}

cv::Mat colour_test_image(int width, int height) {
  cv::Mat rgb(height, width, CV_8UC3);
  cv::RNG rng(5);
  rng.fill(rgb, cv::RNG::UNIFORM, 0, 256);
  rgb(cv::Rect(0, 0, width / 3, height)).setTo(cv::Scalar(255, 255, 255));              // white
  rgb(cv::Rect(width / 3, 0, width / 3, height / 2)).setTo(cv::Scalar(230, 150, 200));  // pink
  return rgb;
}

TEST(TorchScript, ColourClassifierLabelsFollowItsDocumentedRule) {
  REQUIRE_EXPORTS();
  auto model = load_model(exports() / "colour");
  PatchSet set;
  set.branches.push_back(colour_test_image(72, 72));
  const cv::Mat probs = model->predict({&set}).front().probs;
  ASSERT_EQ(probs.size(), cv::Size(64, 64));
  int mismatches = 0;
  for (int y = 0; y < 64; ++y) {
    for (int x = 0; x < 64; ++x) {
      const float* p = probs.ptr<float>(y) + x * 3;
      const int best = static_cast<int>(std::max_element(p, p + 3) - p);
      mismatches += best != colour_rule(set.branches[0].at<cv::Vec3b>(y + 4, x + 4)) ? 1 : 0;
    }
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(Predict, WritesALabelPngOfTheImageSizeWithTheColourRule) {
  REQUIRE_EXPORTS();
  testing::TempDir dir;
  const cv::Mat rgb = colour_test_image(150, 100);
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  ASSERT_TRUE(cv::imwrite((dir / "image.png").string(), bgr));
  PredictJob job;
  job.model_dir = exports() / "colour";
  job.image = dir / "image.png";
  job.open.mpp_override_um = 0.5;  // the model's spacing: patches are copied, not resampled
  job.labels_output = dir / "labels.png";
  job.probs_output = dir / "probs.tif";
  job.batch_size = 2;
  job.scheduler.progress = false;
  const PredictResult result = run_predict(job);
  EXPECT_EQ(result.labels_size_px, (Size{150, 100}));
  EXPECT_EQ(result.tiles, 6u);  // ceil(150 / 64) x ceil(100 / 64)
  const cv::Mat labels = cv::imread((dir / "labels.png").string(), cv::IMREAD_UNCHANGED);
  ASSERT_EQ(labels.size(), cv::Size(150, 100));
  ASSERT_EQ(labels.type(), CV_8UC1);
  int mismatches = 0;
  for (int y = 0; y < 100; ++y) {
    for (int x = 0; x < 150; ++x) {
      mismatches += labels.at<std::uint8_t>(y, x) != colour_rule(rgb.at<cv::Vec3b>(y, x)) ? 1 : 0;
    }
  }
  EXPECT_EQ(mismatches, 0);
  std::vector<cv::Mat> pages;
  ASSERT_TRUE(cv::imreadmulti((dir / "probs.tif").string(), pages, cv::IMREAD_UNCHANGED));
  ASSERT_EQ(pages.size(), 3u);
  EXPECT_EQ(pages[0].at<std::uint8_t>(50, 10), 255);  // white: class 0 with p ~ 0.9999
}

TEST(Predict, BadOptionsAreInvalidArguments) {
  PredictJob job;
  job.labels_output = "labels.jpg";
  EXPECT_THROW(job.validate(), Error);
  job.labels_output = "labels.png";
  job.batch_size = 0;
  EXPECT_THROW(job.validate(), Error);
}

}  // namespace
}  // namespace slidestream
