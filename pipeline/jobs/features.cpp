// `slidestream features`: per slide, the model's embedding of every tissue tile (CLAM layout).
#include <H5Cpp.h>
#include <openssl/sha.h>
#include <spdlog/spdlog.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <sstream>

#include "batch.hpp"
#include "slide_driver.hpp"
#include "slidestream/core.hpp"
#include "slidestream/jobs.hpp"

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

void write_string_attribute(H5::H5Object& object, const char* name, const std::string& value) {
  const H5::StrType type(H5::PredType::C_S1, H5T_VARIABLE);
  type.setCset(H5T_CSET_UTF8);
  object.createAttribute(name, type, H5::DataSpace(H5S_SCALAR)).write(type, value);
}

template <typename T>
void write_attribute(H5::H5Object& object, const char* name, const H5::PredType& type,
                     const std::vector<T>& values) {
  const hsize_t count = values.size();
  const H5::DataSpace space = count == 1 ? H5::DataSpace(H5S_SCALAR) : H5::DataSpace(1, &count);
  object.createAttribute(name, type, space).write(type, values.data());
}

// Whether `path` is a complete features file with this key (so it can be reused).
bool reusable(const fs::path& path, const std::string& key) {
  if (!fs::exists(path)) {
    return false;
  }
  try {
    const H5::H5File file(path.string(), H5F_ACC_RDONLY);
    std::string stored;
    const H5::Attribute attribute = file.openAttribute("features_key");
    attribute.read(attribute.getStrType(), stored);
    return stored == key && file.nameExists("features") && file.nameExists("coords");
  } catch (const H5::Exception&) {
    return false;
  }
}

// Appends rows to N x width datasets with unlimited N (chunks of 256 rows).
class RowAppender {
 public:
  RowAppender(H5::H5File& file, const char* name, const H5::PredType& type, hsize_t width)
      : type_(type), width_(width) {
    const std::array<hsize_t, 2> dims{0, width};
    const std::array<hsize_t, 2> max_dims{H5S_UNLIMITED, width};
    const std::array<hsize_t, 2> chunk{256, width};
    H5::DSetCreatPropList properties;
    properties.setChunk(2, chunk.data());
    H5Pset_obj_track_times(properties.getId(), 0);  // no timestamps: equal runs, equal bytes
    dataset_ =
        file.createDataSet(name, type, H5::DataSpace(2, dims.data(), max_dims.data()), properties);
  }
  void append(const void* data, hsize_t rows) {
    const std::array<hsize_t, 2> size{rows_ + rows, width_};
    dataset_.extend(size.data());
    H5::DataSpace space = dataset_.getSpace();
    const std::array<hsize_t, 2> start{rows_, 0};
    const std::array<hsize_t, 2> count{rows, width_};
    space.selectHyperslab(H5S_SELECT_SET, count.data(), start.data());
    dataset_.write(data, type_, H5::DataSpace(2, count.data()), space);
    rows_ += rows;
  }
  H5::DataSet& dataset() { return dataset_; }
  hsize_t rows() const { return rows_; }

 private:
  H5::PredType type_;
  hsize_t width_;
  hsize_t rows_ = 0;
  H5::DataSet dataset_;
};

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
  H5::FileCreatPropList creation;
  H5Pset_obj_track_times(creation.getId(), 0);  // the root group's timestamps
  H5::H5File file(output.temp_path().string(), H5F_ACC_TRUNC, creation);
  const auto width = static_cast<hsize_t>(model.embedding_size());
  RowAppender features(file, "features", H5::PredType::NATIVE_FLOAT, width);
  RowAppender coords(file, "coords", H5::PredType::NATIVE_INT64, 2);
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
  const Level& level = info.levels.at(static_cast<std::size_t>(target_level));
  const BranchGeometry& target = geometry.branches.front();
  const auto patch_size = static_cast<std::int64_t>(
      std::llround(target.fov_um_x() / info.spacing.x_um / level.downsample));
  H5::DataSet& c = coords.dataset();
  write_attribute<std::int64_t>(c, "patch_size", H5::PredType::NATIVE_INT64, {patch_size});
  write_attribute<std::int64_t>(c, "patch_level", H5::PredType::NATIVE_INT64, {target_level});
  write_attribute<double>(c, "downsample", H5::PredType::NATIVE_DOUBLE,
                          {level.downsample, level.downsample});
  write_attribute<std::int64_t>(c, "level_dim", H5::PredType::NATIVE_INT64,
                                {level.size.width, level.size.height});
  write_attribute<std::int64_t>(c, "downsampled_level_dim", H5::PredType::NATIVE_INT64,
                                {level.size.width, level.size.height});
  write_string_attribute(c, "name", input.id);
  write_string_attribute(file, "format", kFormat);
  write_string_attribute(file, "slidestream_version", kVersion);
  write_string_attribute(file, "features_key", key);
  write_string_attribute(file, "model_sha256", model.weights_sha256());
  write_string_attribute(file, "model_architecture", model.architecture());
  write_string_attribute(file, "config_sha256", sha256_hex(settings_text(job, geometry)));
  write_string_attribute(file, "settings", settings_text(job, geometry));
  write_string_attribute(file, "slide_path", input.path.string());
  write_attribute<double>(file, "target_spacing_um", H5::PredType::NATIVE_DOUBLE,
                          {target.spacing_um});
  write_attribute<std::int64_t>(file, "target_size_px", H5::PredType::NATIVE_INT64,
                                {target.size_px.width, target.size_px.height});
  file.close();
  output.commit();
  return SlideFeatures{static_cast<std::size_t>(features.rows())};
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
      try {
        outcome.patches = write_slide(job, *model, input, path, key).tiles;
      } catch (const H5::Exception& error) {
        throw Error(ErrorCode::kOutputError, "'" + path.string() + "': " + error.getDetailMsg());
      }
    }));
  }
  return report;
}

}  // namespace slidestream
