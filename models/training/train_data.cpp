// Opening, checking and splitting the training datasets; patch sets ready for a batch.
#include "train_data.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "slidestream/core.hpp"

namespace fs = std::filesystem;

namespace slidestream::training_detail {

namespace {

Error config_mismatch(const PatchDatasetReader& reader, const DatasetSlide& slide,
                      const std::string& problem) {
  return Error(ErrorCode::kInvalidConfig,
               "'" + reader.path().string() + "', slide '" + slide.id + "': " + problem);
}

bool same_spacing(double a, double b) {
  return std::abs(a - b) <= 1e-6 * std::max(a, b);
}

// Evenly spaced, deterministic subset of at most `cap` refs (all when cap is 0).
std::vector<PatchRef> capped(std::vector<PatchRef> refs, int cap) {
  if (cap <= 0 || refs.size() <= static_cast<std::size_t>(cap)) {
    return refs;
  }
  std::vector<PatchRef> kept;
  kept.reserve(static_cast<std::size_t>(cap));
  for (int i = 0; i < cap; ++i) {
    kept.push_back(refs[static_cast<std::size_t>(i) * refs.size() / static_cast<std::size_t>(cap)]);
  }
  return kept;
}

}  // namespace

void TrainData::check_slide(const PatchDatasetReader& reader, const DatasetSlide& slide) const {
  const TrainConfig& config = job_->config;
  if (!slide.with_labels) {
    throw config_mismatch(reader, slide,
                          "has no labels; extract with --annotations or --label-raster to train");
  }
  const std::size_t used = config.input_branches();
  if (slide.geometry.branches.size() < used) {
    throw config_mismatch(reader, slide,
                          "has " + std::to_string(slide.geometry.branches.size()) +
                              " branches, the config's model reads " + std::to_string(used));
  }
  for (std::size_t b = 0; b < used; ++b) {
    const BranchGeometry& have = slide.geometry.branches[b];
    const BranchGeometry& want = config.geometry.branches[b];
    if (!same_spacing(have.spacing_um, want.spacing_um) || have.size_px != want.size_px) {
      throw config_mismatch(
          reader, slide,
          "branch " + std::to_string(b) + " is " + std::to_string(have.size_px.width) + " px at " +
              std::to_string(have.spacing_um) + " um/px, the config's geometry wants " +
              std::to_string(want.size_px.width) + " px at " + std::to_string(want.spacing_um) +
              " um/px; extract with the same geometry");
    }
  }
  for (const LabelClass& label : slide.classes) {
    const bool known = std::any_of(config.classes.begin(), config.classes.end(),
                                   [&](const LabelClass& c) { return c.value == label.value; });
    if (!known) {
      std::string list;
      for (const LabelClass& c : config.classes) {
        list += (list.empty() ? "" : ", ") + c.name + "=" + std::to_string(c.value);
      }
      throw config_mismatch(reader, slide,
                            "its labels have class '" + label.name + "' = " +
                                std::to_string(label.value) + ", which the config's classes (" +
                                list + ") do not list; add it to 'classes' or re-extract");
    }
  }
}

TrainData::TrainData(const TrainJob& job) : job_(&job) {
  lut_.fill(kIgnoreIndex);
  for (std::size_t k = 0; k < job.config.classes.size(); ++k) {
    lut_[job.config.classes[k].value] = static_cast<std::uint8_t>(k);
  }
  lut_[static_cast<std::size_t>(job.config.training.ignore_label)] = kIgnoreIndex;

  // Slide id -> (reader, slide); ids must be unique over all files.
  std::map<std::string, std::pair<std::size_t, std::size_t>> where;
  std::vector<std::string> data_ids;
  std::vector<std::string> val_ids;
  auto open = [&](const fs::path& path, std::vector<std::string>& ids) {
    readers_.push_back(std::make_unique<PatchDatasetReader>(path));
    const PatchDatasetReader& reader = *readers_.back();
    if (reader.slides().empty()) {
      throw Error(ErrorCode::kInvalidConfig,
                  "'" + path.string() + "' holds no complete slide; run 'slidestream extract'");
    }
    for (std::size_t s = 0; s < reader.slides().size(); ++s) {
      const DatasetSlide& slide = reader.slides()[s];
      check_slide(reader, slide);
      if (!where.emplace(slide.id, std::make_pair(readers_.size() - 1, s)).second) {
        throw Error(ErrorCode::kInvalidConfig,
                    "slide id '" + slide.id + "' appears in two datasets; ids must be unique");
      }
      ids.push_back(slide.id);
    }
  };
  for (const fs::path& path : job.data) {
    open(path, data_ids);
  }
  for (const fs::path& path : job.val_data) {
    open(path, val_ids);
  }
  if (val_ids.empty()) {
    split_ = split_slides(data_ids, job.config.training.validation, job.config.training.seed);
  } else {
    split_.train = data_ids;
    split_.validation = val_ids;
  }
  auto refs_of = [&](const std::vector<std::string>& ids) {
    std::vector<PatchRef> refs;
    for (const std::string& id : ids) {
      const auto [reader, slide] = where.at(id);
      for (std::size_t i = 0; i < readers_[reader]->slides()[slide].patches; ++i) {
        refs.push_back(PatchRef{reader, slide, i});
      }
    }
    return refs;
  };
  train_ = refs_of(split_.train);
  validation_ = capped(refs_of(split_.validation), job.config.training.validation.max_patches);
  if (train_.empty()) {
    throw Error(ErrorCode::kInvalidConfig,
                "no training patches: every slide went to validation; lower "
                "training.validation.fraction or list fewer training.validation.slide_ids");
  }
}

std::vector<std::string> TrainData::files() const {
  std::vector<std::string> files;
  for (const auto& reader : readers_) {
    files.push_back(reader->path().string());
  }
  return files;
}

PatchSet TrainData::load(const PatchRef& ref, const Augmenter* augmenter,
                         std::uint64_t seed) const {
  PatchSet set = readers_[ref.reader]->read(ref.slide, ref.index, job_->config.input_branches());
  if (augmenter != nullptr) {
    augmenter->apply(set, seed);
  }
  const cv::Mat lut(1, 256, CV_8UC1, const_cast<std::uint8_t*>(lut_.data()));
  for (std::size_t b = 0; b < set.labels.size(); ++b) {
    cv::Mat mapped;
    cv::LUT(set.labels[b], lut, mapped);
    mapped.setTo(kIgnoreIndex, set.valid[b] == 0);
    set.labels[b] = mapped;
  }
  return set;
}

}  // namespace slidestream::training_detail
