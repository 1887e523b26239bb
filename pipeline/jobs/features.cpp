// `slidestream features`: per slide, the model's embedding of every tissue tile (CLAM layout).
#include "slidestream/jobs/features.hpp"

#include <openssl/sha.h>
#include <spdlog/spdlog.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <sstream>

#include "batch.hpp"
#include "slide_driver.hpp"
#include "slidestream/core.hpp"
#include "slidestream/h5.hpp"
#include "slidestream/jobs/batch.hpp"
#include "slidestream/store.hpp"

namespace fs = std::filesystem;

namespace slidestream {

namespace {

constexpr const char* kFormat = "slidestream.features/1";

std::string sha256_hex(const std::string& text) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest.data());
  std::string hex;
  char byte[3];
  for (const unsigned char b : digest) {
    std::snprintf(byte, sizeof(byte), "%02x", b);
    hex += byte;
  }
  return hex;
}

// Everything besides the weights that shapes the features, as text (hashed into the key).
std::string settings_text(const FeaturesJob& job, const ModelGeometry& geometry) {
  std::ostringstream out;
  out.precision(17);
  for (const BranchGeometry& b : geometry.branches) {
    out << "branch " << b.spacing_um << " " << b.size_px.width << "x" << b.size_px.height << "\n";
  }
  out << "output " << geometry.output.spacing_um << " " << geometry.output.size_px.width << "\n";
  out << "min_tissue_fraction " << job.min_tissue_fraction << "\n";
  out << "tissue " << job.tissue.spacing_um << " " << tissue_method_name(job.tissue.method) << "\n";
  out << "mpp " << (job.open.mpp_override_um ? *job.open.mpp_override_um : 0.0) << "\n";
  return out.str();
}

// Whether `path` is a complete features file with this key (so it can be reused).
bool reusable(const fs::path& path, const std::string& key) {
  if (!fs::exists(path)) {
    return false;
  }
  try {
    const auto file = h5::File::try_open(path, h5::File::Access::kReadOnly);
    return file && file->string_attribute("features_key") == key && file->has_link("features") &&
           file->has_link("coords");
  } catch (const Error&) {
    return false;  // unreadable: written again
  }
}

// Features (N x width) and coords (N x 2) grow a batch at a time, in chunks of 256 rows: CLAM
// reads a slide's rows whole, so large chunks cost nothing and keep the index small.
constexpr std::uint64_t kChunkRows = 256;

struct SlideFeatures {
  std::size_t tiles = 0;
};

// Streams one slide's tiles through the model and writes `path` (through a temporary).
SlideFeatures write_slide(const FeaturesJob& job, SegmentationModel& model, const SlideInput& input,
                          const fs::path& path, const std::string& key) {
  const auto slide = detail::open_input(input, job.open);
  const SlideInfo& info = slide->info();
  const ModelGeometry& geometry = model.geometry();
  const TissueMask mask = compute_tissue_mask(*slide, job.tissue);
  PlanOptions plan;
  plan.min_tissue_fraction = job.min_tissue_fraction;
  TilePlanner planner(info, &mask, geometry, plan);
  const std::uint64_t expected = planner.count();

  AtomicOutput output(path);
  h5::File::CreateOptions creation;
  creation.name = path.string();
  creation.root_times = false;
  h5::File file = h5::File::create(output.temp_path(), creation);
  const auto width = static_cast<std::uint64_t>(model.embedding_size());
  h5::Rows features = file.create_rows("features", h5::Type::kFloat32, {width}, kChunkRows, 0);
  h5::Rows coords = file.create_rows("coords", h5::Type::kInt64, {2}, kChunkRows, 0);
  int target_level = 0;
  TilePipeline stages;
  stages.source = detail::source_of(planner);
  stages.expected_tiles = expected;
  stages.read = [&](const TileSpec& spec) {
    return detail::read_tile(*slide, spec, geometry, nullptr);
  };
  stages.batch_size = static_cast<std::size_t>(job.batch_size);
  stages.infer = [&](TileBatch& batch) {
    std::vector<const PatchSet*> pointers;
    for (const PatchSet& set : batch.patches) {
      pointers.push_back(&set);
      target_level = set.levels[0];
    }
    const std::vector<std::vector<float>> embeddings = model.embed(pointers);
    if (embeddings.size() != batch.specs.size()) {
      throw Error(ErrorCode::kModelError,
                  "the model returned " + std::to_string(embeddings.size()) +
                      " embeddings for a batch of " + std::to_string(batch.specs.size()));
    }
    for (const std::vector<float>& embedding : embeddings) {
      if (embedding.size() != width) {
        throw Error(ErrorCode::kModelError,
                    "the model returned an embedding of " + std::to_string(embedding.size()) +
                        " values; its embedding_size is " + std::to_string(width));
      }
      batch.outputs.push_back(cv::Mat(embedding, true).reshape(1, 1));
    }
    batch.patches.clear();
  };
  stages.sink = [&](TileBatch&& batch) {
    std::vector<float> rows;
    std::vector<std::int64_t> xy;
    for (std::size_t i = 0; i < batch.specs.size(); ++i) {
      const cv::Mat& row = batch.outputs[i];
      rows.insert(rows.end(), row.ptr<float>(), row.ptr<float>() + row.total());
      xy.push_back(static_cast<std::int64_t>(std::floor(batch.specs[i].branch_l0[0].x)));
      xy.push_back(static_cast<std::int64_t>(std::floor(batch.specs[i].branch_l0[0].y)));
    }
    features.append(rows.data(), batch.specs.size());
    coords.append(xy.data(), batch.specs.size());
  };
  SchedulerOptions scheduler = job.scheduler;
  scheduler.label = input.id;
  run_tile_pipeline(stages, scheduler);

  // CLAM's coords attributes, as in the patch datasets (docs/FORMATS.md).
  const BranchGeometry& target = geometry.branches.front();
  write_clam_coords_attributes(coords.dataset(), info, target_level, target, input.id);
  file.set_attribute("format", std::string(kFormat));
  file.set_attribute("slidestream_version", std::string(kVersion));
  file.set_attribute("features_key", key);
  file.set_attribute("model_sha256", model.weights_sha256());
  file.set_attribute("model_architecture", model.architecture());
  file.set_attribute("config_sha256", sha256_hex(settings_text(job, geometry)));
  file.set_attribute("settings", settings_text(job, geometry));
  file.set_attribute("slide_path", input.path.string());
  file.set_attribute("target_spacing_um", target.spacing_um);
  file.set_attribute("target_size_px",
                     std::array<std::int64_t, 2>{target.size_px.width, target.size_px.height});
  // coords closes before features (the order their last chunks reach the file), both before the
  // file, so a failed last write is an error before the file is renamed into place.
  const auto rows = static_cast<std::size_t>(features.size());
  coords.reset();
  features.reset();
  file.close();
  output.commit();
  return SlideFeatures{rows};
}

}  // namespace

void FeaturesJob::validate() const {
  if (inputs.empty()) {
    throw Error(ErrorCode::kInvalidArgument, "features needs at least one slide");
  }
  if (model_dir.empty() || output_dir.empty()) {
    throw Error(ErrorCode::kInvalidArgument, "features needs --model DIR and -o FEATURES_DIR");
  }
  if (batch_size < 1) {
    throw Error(ErrorCode::kInvalidArgument, "--batch-size must be >= 1");
  }
  if (min_tissue_fraction < 0 || min_tissue_fraction > 1) {
    throw Error(ErrorCode::kInvalidArgument, "--min-tissue must be between 0 and 1");
  }
  inference.validate();
  tissue.validate();
}

fs::path features_folder(const FeaturesJob& job, const SegmentationModel& model) {
  const std::string key =
      sha256_hex(model.weights_sha256() + "\n" + settings_text(job, model.geometry()));
  return job.output_dir / key.substr(0, 16);
}

BatchReport run_features(const FeaturesJob& job) {
  job.validate();
  const std::vector<SlideInput> slides = expand_slide_inputs(job.inputs);
  const auto model = load_model(job.model_dir, job.inference);
  if (model->embedding_size() <= 0) {
    throw Error(ErrorCode::kModelError, "the model in '" + job.model_dir.string() +
                                            "' exposes no embedding (embed); use a native "
                                            "HookNet/U-Net or a TorchScript model with one");
  }
  const fs::path folder = features_folder(job, *model);
  const std::string key = folder.filename().string();
  create_output_folder(folder);
  spdlog::info("features of '{}' ({} values per tile) into '{}'", job.model_dir.string(),
               model->embedding_size(), folder.string());
  BatchReport report;
  for (const SlideInput& input : slides) {
    const fs::path path = folder / (input.id + ".h5");
    report.slides.push_back(run_slide(input, [&](SlideOutcome& outcome) {
      if (reusable(path, key)) {
        spdlog::info("{}: reusing '{}' (same model and settings)", input.id, path.string());
        outcome.skipped = true;
        return;
      }
      outcome.patches = write_slide(job, *model, input, path, key).tiles;
    }));
  }
  return report;
}

}  // namespace slidestream
