// `slidestream segment` as a user runs it, with the TorchScript colour classifier exported by
// examples/export_torchscript.py: killed with SIGKILL and resumed, a real Aperio slide, and
// predictions.h5 read with h5py.
#include <gtest/gtest.h>
#include <openslide.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "test_support.hpp"

namespace fs = std::filesystem;

namespace slidestream {
namespace {

#define REQUIRE_COLOUR_MODEL()                                                        \
  if (testing::torchscript_exports().empty()) {                                       \
    GTEST_SKIP() << "needs " SLIDESTREAM_TORCH_PYTHON                                 \
                    " with torch (Debian: python3-torch) "                            \
                    "to export the colour model with examples/export_torchscript.py"; \
  }

fs::path colour_model() {
  return testing::torchscript_exports() / "colour";
}

fs::path lossless_slide() {
  SynthOptions options;
  options.size = {2048, 1536};
  options.compression = "deflate";
  options.seed = 7;
  return testing::synthetic_slide("segment-2048", options);
}

std::string file_bytes(const fs::path& path) {
  std::ifstream stream(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << stream.rdbuf();
  return bytes.str();
}

std::string segment_arguments(const fs::path& slide, const fs::path& out) {
  return "segment " + slide.string() + " --model " + colour_model().string() + " -o " +
         out.string() +
         " -q --threads 1 --set outputs.checkpoint_tiles=8 --set tiling.min_tissue_fraction=0";
}

bool has_part(const fs::path& journal) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(journal, ec)) {
    if (entry.path().filename().string().rfind("part-", 0) == 0) {
      return true;
    }
  }
  return false;
}

TEST(SegmentCli, AKilledRunResumesToTheOutputsOfAnUninterruptedOne) {
  REQUIRE_COLOUR_MODEL();
  const fs::path slide = lossless_slide();
  testing::TempDir work;
  const fs::path fresh = work / "fresh";
  const fs::path killed = work / "killed";
  ASSERT_EQ(testing::run_cli(segment_arguments(slide, fresh)).exit_code, 0);

  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const std::string command = std::string(SLIDESTREAM_CLI_PATH) + " " +
                                segment_arguments(slide, killed) + " > /dev/null 2>&1";
    execl("/bin/sh", "sh", "-c", ("exec " + command).c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  const fs::path journal = killed / "segment-2048" / "journal";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!has_part(journal) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(kill(child, SIGKILL), 0);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run finished before it could be killed";
  ASSERT_FALSE(fs::exists(killed / "segment-2048" / "labels.tif"));
  ASSERT_FALSE(fs::exists(killed / "segment-2048" / "report.json"));

  const auto resumed = testing::run_cli(segment_arguments(slide, killed) + " --resume");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  std::ifstream report_stream(killed / "segment-2048" / "report.json");
  const auto report = nlohmann::json::parse(report_stream);
  EXPECT_GT(report["tiles"]["resumed"].get<int>(), 0) << "the journal of the killed run was used";
  for (const char* name :
       {"labels.tif", "predictions.h5", "annotations.geojson", "annotations.xml", "overlay.png"}) {
    EXPECT_EQ(file_bytes(fresh / "segment-2048" / name), file_bytes(killed / "segment-2048" / name))
        << name;
  }
}

TEST(SegmentCli, TheCmuAperioSlideSegmentsEndToEndIntoWellFormedOutputs) {
  REQUIRE_COLOUR_MODEL();
  SLIDESTREAM_REQUIRE_DATA(slide, "wsi/CMU-1-Small-Region.svs");
  testing::TempDir out;
  const auto result =
      testing::run_cli("segment " + slide.string() + " --model " + colour_model().string() +
                       " -o " + out.path().string() + " -q --heatmaps");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const fs::path dir = out / "CMU-1-Small-Region";
  std::ifstream report_stream(dir / "report.json");
  const auto report = nlohmann::json::parse(report_stream);
  openslide_t* labels = openslide_open((dir / "labels.tif").c_str());
  ASSERT_NE(labels, nullptr);
  std::int64_t width = 0;
  std::int64_t height = 0;
  openslide_get_level0_dimensions(labels, &width, &height);
  // 2220 x 2967 px at the slide's spacing, covered by whole output pixels at 0.5 um/px.
  const double mpp = report["slide"]["mpp"][0].get<double>();
  EXPECT_NEAR(mpp, 0.499, 1e-3);
  EXPECT_EQ(width, static_cast<std::int64_t>(std::ceil(2220 * mpp / 0.5)));
  EXPECT_EQ(height, static_cast<std::int64_t>(std::ceil(2967 * mpp / 0.5)));
  openslide_close(labels);
  std::ifstream geojson_stream(dir / "annotations.geojson");
  const auto geojson = nlohmann::json::parse(geojson_stream);
  EXPECT_EQ(geojson["type"], "FeatureCollection");
  EXPECT_FALSE(geojson["features"].empty());
  EXPECT_EQ(report["slide"]["mpp_source"], "openslide.mpp");
  EXPECT_GT(report["tiles"]["processed"].get<int>(), 0);
  for (const char* name : {"prob_background.tif", "prob_pink.tif", "prob_purple.tif", "overlay.png",
                           "annotations.xml"}) {
    EXPECT_TRUE(fs::exists(dir / name)) << name;
  }
}

TEST(SegmentCli, PredictionsOpenInH5pyWithTheirSpacingAndClasses) {
  REQUIRE_COLOUR_MODEL();
  if (testing::run_shell("/usr/bin/python3 -c 'import h5py'").exit_code != 0) {
    GTEST_SKIP() << "needs Debian's python3-h5py (/usr/bin/python3 cannot import h5py)";
  }
  const fs::path slide = lossless_slide();
  testing::TempDir out;
  ASSERT_EQ(testing::run_cli(segment_arguments(slide, out.path())).exit_code, 0);
  const fs::path predictions = out / "segment-2048" / "predictions.h5";
  const std::string script =
      "import h5py, json, sys\n"
      "f = h5py.File(sys.argv[1], 'r')\n"
      "assert f.attrs['format'] == 'slidestream.predictions/1', f.attrs['format']\n"
      "assert abs(f.attrs['spacing_um'] - 0.5) < 1e-9\n"
      "labels = f['labels'][...]\n"
      "assert labels.shape == (1536, 2048), labels.shape\n"
      "layout = json.loads(f.attrs['layout_json'])\n"
      "values = {c['value'] for c in layout['classes']}\n"
      "assert set(int(v) for v in set(labels.flatten().tolist())) <= values\n"
      "assert f['tiles_done'][...].sum() == f.attrs['tiles_processed']\n"
      "print('ok')\n";
  const fs::path script_path = out / "check.py";
  std::ofstream(script_path) << script;
  const auto result =
      testing::run_shell("/usr/bin/python3 " + script_path.string() + " " + predictions.string());
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("ok"), std::string::npos) << result.output;
}

}  // namespace
}  // namespace slidestream
