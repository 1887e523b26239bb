// Reading a `slidestream extract` patch dataset back for training, and the slide-wise split.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "slidestream/label_class.hpp"
#include "slidestream/model_geometry.hpp"
#include "slidestream/patch_set.hpp"
#include "slidestream/training/config.hpp"

namespace slidestream {

/// One slide group of a patch dataset (docs/FORMATS.md, slidestream.patches/1).
struct DatasetSlide {
  std::string id;
  std::size_t patches = 0;
  ModelGeometry geometry;           ///< branch spacing and size as written; output from the attrs
  bool with_labels = false;         ///< every branch has a `labels` dataset
  std::vector<LabelClass> classes;  ///< from the slide's extraction config (labels.classes)
};

/// Reads patch sets from a `slidestream extract` HDF5 file. Reads are serialised internally
/// (HDF5 is not thread-safe); one reader may be shared.
class PatchDatasetReader {
 public:
  /// Throws kNotFound for a missing file, kCorruptData for a file that is not a patch dataset.
  explicit PatchDatasetReader(const std::filesystem::path& path);
  ~PatchDatasetReader();
  PatchDatasetReader(const PatchDatasetReader&) = delete;
  PatchDatasetReader& operator=(const PatchDatasetReader&) = delete;

  const std::filesystem::path& path() const;
  /// Complete slides only (attr complete = 1), in file order.
  const std::vector<DatasetSlide>& slides() const;
  /// Patch `index` of slide `slide`: branches (RGB), valid masks and labels (when present) for
  /// the first `branches` branches (0 = all). spec.index is the tile index.
  PatchSet read(std::size_t slide, std::size_t index, std::size_t branches = 0) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Slide ids split into training and validation (sorted as given). With explicit ids, each must
/// exist (kInvalidConfig otherwise); with a fraction, the held-out slides are drawn with `seed`.
struct SlideSplit {
  std::vector<std::string> train;
  std::vector<std::string> validation;
};
SlideSplit split_slides(const std::vector<std::string>& slide_ids, const ValidationSplit& split,
                        std::uint64_t seed);

}  // namespace slidestream
