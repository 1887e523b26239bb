// Every user flow's outputs, byte for byte, against the SHA-256 hashes committed in
// tests/golden/<case>.sha256: a refactor must not change one byte (issue 12), and a change that
// is meant to must show which files it changes. The commands run inside the case folder with
// relative paths, so no clone-specific absolute path reaches an output; report.json files are
// hashed without what differs between equal runs (times, throughput, peak memory).
//
// The hashes hold for one toolchain (Debian 12: GCC 12, LibTorch 1.13, libvips 8.14, HDF5
// 1.10). After an intended change, or on another toolchain, rewrite them and review the diff:
//   SLIDESTREAM_UPDATE_GOLDEN=1 ctest --test-dir build -R GoldenOutputs
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "slidestream/models/description.hpp"
#include "slidestream/models/model.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;

namespace slidestream {
namespace {

using Manifest = std::map<std::string, std::string>;  // relative path -> sha256

// Runs `slidestream -q ARGUMENTS` with `dir` as the working folder.
void run_in(const fs::path& dir, const std::string& arguments) {
  const auto result =
      testing::run_shell("cd '" + dir.string() + "' && " + std::string(SLIDESTREAM_CLI_PATH) +
                         " -q " + arguments + " 2>&1");
  ASSERT_EQ(result.exit_code, 0) << "slidestream " << arguments << "\n" << result.output;
}

// A seeded, freshly initialised native model (the same weights on every run).
void save_model(const fs::path& dir, const std::string& architecture) {
  ModelDescription d;
  d.architecture = architecture;
  if (architecture == "hooknet") {
    d.geometry.branches = {{0.5, {284, 284}}, {8.0, {284, 284}}};  // the demo's geometry
    d.geometry.output = {0.5, {70, 70}};
    d.network.depth = 4;
    d.network.padding = Padding::kValid;
  } else {
    d.geometry.branches = {{2.0, {64, 64}}};
    d.geometry.output = {2.0, {64, 64}};
    d.network.depth = 2;
    d.network.padding = Padding::kSame;
  }
  d.classes = {{"background", 0, {255, 255, 255}},
               {"stroma", 1, {150, 200, 150}},
               {"tumour", 2, {200, 0, 0}}};
  d.network.filters = 2;
  d.network.batch_norm = false;  // as the golden hashes were made
  create_native_model(d, {}, 5)->save(dir);
}

void remove_run_dependent(nlohmann::json& value) {
  if (value.is_object()) {
    for (const char* key : {"seconds", "throughput", "peak_rss_mib"}) {
      value.erase(key);
    }
  }
  if (value.is_structured()) {
    for (auto& child : value) {
      remove_run_dependent(child);
    }
  }
}

std::string hash_of(const fs::path& file, const fs::path& scratch) {
  const std::string name = file.filename().string();
  if (name.size() < 11 || name.compare(name.size() - 11, 11, "report.json") != 0) {
    return sha256_file(file);
  }
  std::ifstream in(file);
  nlohmann::json report = nlohmann::json::parse(in);
  remove_run_dependent(report);
  const fs::path stable = scratch / "report.stable.json";
  std::ofstream(stable) << report.dump(1);
  return sha256_file(stable);
}

// The hashes of every file under `dir` but the inputs the test made (`inputs`, top-level names).
Manifest manifest_of(const fs::path& dir, const std::vector<std::string>& inputs,
                     const fs::path& scratch) {
  Manifest manifest;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    const fs::path relative = entry.path().lexically_relative(dir);
    const std::string top = relative.begin()->string();
    if (std::find(inputs.begin(), inputs.end(), top) != inputs.end() || !entry.is_regular_file()) {
      continue;
    }
    manifest[relative.generic_string()] = hash_of(entry.path(), scratch);
  }
  return manifest;
}

fs::path golden_file(const std::string& name) {
  return fs::path(SLIDESTREAM_SOURCE_DIR) / "tests" / "golden" / (name + ".sha256");
}

Manifest read_golden(const fs::path& path) {
  Manifest manifest;
  std::ifstream in(path);
  std::string hash;
  std::string file;
  while (in >> hash >> file) {
    manifest[file] = hash;
  }
  return manifest;
}

// Compares the outputs of case `name` (made in `dir`) with its golden file, or rewrites that
// file when SLIDESTREAM_UPDATE_GOLDEN=1.
void expect_golden(const std::string& name, const fs::path& dir,
                   const std::vector<std::string>& inputs, const fs::path& scratch) {
  const Manifest actual = manifest_of(dir, inputs, scratch);
  ASSERT_GE(actual.size(), 5U) << "the flows wrote too few files to compare";
  const char* update = std::getenv("SLIDESTREAM_UPDATE_GOLDEN");
  if (update != nullptr && std::string(update) == "1") {
    fs::create_directories(golden_file(name).parent_path());
    std::ofstream out(golden_file(name));
    for (const auto& [file, hash] : actual) {
      out << hash << "  " << file << "\n";
    }
    GTEST_SKIP() << "rewrote " << golden_file(name) << " (" << actual.size() << " files)";
  }
  const Manifest expected = read_golden(golden_file(name));
  ASSERT_FALSE(expected.empty()) << golden_file(name) << " is missing or empty";
  for (const auto& [file, hash] : expected) {
    const auto found = actual.find(file);
    if (found == actual.end()) {
      ADD_FAILURE() << name << ": " << file << " was not written";
    } else {
      EXPECT_EQ(found->second, hash) << name << ": " << file << " changed";
    }
  }
  for (const auto& [file, hash] : actual) {
    EXPECT_TRUE(expected.count(file) == 1) << name << ": new file " << file;
  }
}

void copy_config(const std::string& name, const fs::path& to) {
  fs::copy_file(fs::path(SLIDESTREAM_SOURCE_DIR) / "configs" / name, to);
}

// The demo's flows (scripts/demo.sh) on a smaller sample, with seeded models instead of training.
TEST(GoldenOutputs, DemoSlideEveryFlow) {
  testing::TempDir work;
  const fs::path dir = work / "demo";
  fs::create_directories(dir);
  save_model(dir / "hooknet", "hooknet");
  save_model(dir / "unet", "unet");
  copy_config("extract-synthetic.yaml", dir / "extract.yaml");
  ASSERT_NO_FATAL_FAILURE(run_in(dir,
                                 "synth -o sample.tif --size 1024x768 --mpp 0.5 --seed 1 "
                                 "--truth sample.truth.tif --annotations sample.geojson"));
  ASSERT_NO_FATAL_FAILURE(run_in(dir, "info sample.tif --json > info.json"));
  ASSERT_NO_FATAL_FAILURE(
      run_in(dir,
             "read sample.tif --spacing 2 --size 284 --center 512,384 -o target.png "
             "--mask target.valid.png"));
  ASSERT_NO_FATAL_FAILURE(run_in(dir, "tissue sample.tif -o tissue.png"));
  ASSERT_NO_FATAL_FAILURE(run_in(dir,
                                 "extract sample.tif -c extract.yaml --annotations sample.geojson "
                                 "--set tiling.stride=140 -o patches.h5"));
  ASSERT_NO_FATAL_FAILURE(run_in(dir, "stain fit target.png -o stain.json"));
  ASSERT_NO_FATAL_FAILURE(run_in(dir, "stain apply target.png --target stain.json -o apply.png"));
  ASSERT_NO_FATAL_FAILURE(run_in(dir,
                                 "stain normalize-slide sample.tif --target stain.json -o "
                                 "normalized.tif --fit tile --threads 2"));
  ASSERT_NO_FATAL_FAILURE(run_in(
      dir, "segment sample.tif --model hooknet -o segment --heatmaps --uncertainty --threads 2"));
  ASSERT_NO_FATAL_FAILURE(run_in(dir,
                                 "evaluate --pred segment/sample/labels.tif --truth "
                                 "sample.truth.tif --classes background=0,stroma=1,tumour=2 "
                                 "--json evaluate.json"));
  ASSERT_NO_FATAL_FAILURE(
      run_in(dir,
             "predict sample.tif --model unet --region 256,256,512,384 -o predict.png "
             "--probs predict.tif --threads 2"));
  ASSERT_NO_FATAL_FAILURE(run_in(dir, "features sample.tif --model unet -o features --threads 2"));
  expect_golden("demo", dir, {"hooknet", "unet", "extract.yaml"}, work.path());
}

TEST(GoldenOutputs, Cmu1SmallRegion) {
  const auto slide = testing::test_data_file("wsi/CMU-1-Small-Region.svs");
  if (!slide) {
    GTEST_SKIP() << "needs wsi/CMU-1-Small-Region.svs under SLIDESTREAM_TEST_DATA "
                    "(default ../shared/data)";
  }
  testing::TempDir work;
  const fs::path dir = work / "cmu1";
  fs::create_directories(dir);
  fs::create_symlink(*slide, dir / "cmu1.svs");
  save_model(dir / "unet", "unet");
  ASSERT_NO_FATAL_FAILURE(run_in(dir, "info cmu1.svs --json > info.json"));
  ASSERT_NO_FATAL_FAILURE(
      run_in(dir, "read cmu1.svs --spacing 1 --size 512 --center 1110,1483 -o read.png"));
  ASSERT_NO_FATAL_FAILURE(run_in(dir, "tissue cmu1.svs -o tissue.png"));
  ASSERT_NO_FATAL_FAILURE(
      run_in(dir, "segment cmu1.svs --model unet -o segment --heatmaps --uncertainty --threads 2"));
  expect_golden("cmu1", dir, {"cmu1.svs", "unet"}, work.path());
}

// A folder of three slides (one lossless) through the batch flows, with a heatmap re-export.
TEST(GoldenOutputs, SyntheticBatch) {
  testing::TempDir work;
  const fs::path dir = work / "batch";
  fs::create_directories(dir / "slides");
  save_model(dir / "unet", "unet");
  copy_config("extract-synthetic.yaml", dir / "extract.yaml");
  ASSERT_NO_FATAL_FAILURE(run_in(dir, "synth -o slides/a.tif --size 1024x768 --seed 11"));
  ASSERT_NO_FATAL_FAILURE(run_in(dir, "synth -o slides/b.tif --size 1536x1024 --seed 12"));
  ASSERT_NO_FATAL_FAILURE(
      run_in(dir, "synth -o slides/c.tif --size 1024x1024 --seed 13 --compression deflate"));
  ASSERT_NO_FATAL_FAILURE(
      run_in(dir, "segment slides --model unet -o segment --heatmaps --threads 2 --batch-size 4"));
  ASSERT_NO_FATAL_FAILURE(
      run_in(dir, "export segment/b --overlay --heatmap-class tumour --colormap magma"));
  ASSERT_NO_FATAL_FAILURE(run_in(dir, "extract slides -c extract.yaml -o patches.h5"));
  ASSERT_NO_FATAL_FAILURE(run_in(dir, "features slides --model unet -o features --threads 2"));
  expect_golden("batch", dir, {"unet", "extract.yaml"}, work.path());
}

}  // namespace
}  // namespace slidestream
