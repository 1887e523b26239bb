// Training data for run_train (models/training internal, torch-free): the datasets opened and
// checked against the config, the slide split, and patch sets ready for a batch.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "slidestream/training/augment.hpp"
#include "slidestream/training/dataset.hpp"
#include "slidestream/training/train.hpp"

namespace slidestream::training_detail {

/// One patch of one slide of one dataset file.
struct PatchRef {
  std::size_t reader = 0;
  std::size_t slide = 0;
  std::size_t index = 0;
};

/// Label value meaning "not learnt from" after mapping (CE ignores it).
constexpr std::uint8_t kIgnoreIndex = 255;

class TrainData {
 public:
  /// Opens job.data and job.val_data and checks every slide against the config: labels present,
  /// branch spacings and sizes equal, every dataset class value a config class. Throws
  /// kNotFound, kCorruptData or kInvalidConfig naming the file, slide and fix.
  TrainData(const TrainJob& job);

  const SlideSplit& split() const { return split_; }
  const std::vector<PatchRef>& train() const { return train_; }
  const std::vector<PatchRef>& validation() const { return validation_; }
  /// The slide id of a patch.
  const std::string& slide_id(const PatchRef& ref) const {
    return readers_[ref.reader]->slides()[ref.slide].id;
  }
  /// Files the slides came from, for provenance.
  std::vector<std::string> files() const;

  /// The patch set for `ref` with its first `branches` branches, augmented when `augmenter` is
  /// given (with `seed`); labels become class indices (config order), kIgnoreIndex outside the
  /// valid masks and for the ignore label or values the config does not know.
  PatchSet load(const PatchRef& ref, const Augmenter* augmenter, std::uint64_t seed) const;

 private:
  void check_slide(const PatchDatasetReader& reader, const DatasetSlide& slide) const;

  const TrainJob* job_;
  std::vector<std::unique_ptr<PatchDatasetReader>> readers_;
  SlideSplit split_;
  std::vector<PatchRef> train_;
  std::vector<PatchRef> validation_;
  std::array<std::uint8_t, 256> lut_{};
};

}  // namespace slidestream::training_detail
