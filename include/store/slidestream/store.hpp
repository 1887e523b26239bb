// slidestream store: HDF5 patch datasets (CLAM-compatible coords plus our pixel groups).
// One writer per file, used from one thread (the pipeline's serial sink).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <opencv2/core.hpp>
#include <optional>
#include <string>
#include <vector>

#include "slidestream/io.hpp"
#include "slidestream/tiling.hpp"

namespace slidestream {

namespace h5 {
class Dataset;
}

/// Writes CLAM's attributes on a `coords` dataset (docs/FORMATS.md): patch_size (the target FoV
/// in pixels of `patch_level`), patch_level, downsample, level_dim, downsampled_level_dim, name.
/// Patch datasets and feature files share it, so CLAM reads both the same way.
void write_clam_coords_attributes(h5::Dataset& coords, const SlideInfo& info, int patch_level,
                                  const BranchGeometry& target, const std::string& slide_id);

/// What a slide group records about its slide and the extraction (docs/FORMATS.md).
struct SlideRecord {
  std::string slide_id;  ///< group name, unique in the file
  SlideInfo info;        ///< path, quickhash, spacing and its source, levels
  ModelGeometry geometry;
  std::vector<int> branch_levels;  ///< pyramid level each branch is read from (CLAM's patch_level)
  std::string config_yaml;         ///< the full extraction config
  bool with_labels = false;        ///< per-branch label datasets present
};

/// Writes a patch dataset to `<path>` through a temporary file that replaces it on `commit()`
/// (atomic), so a failure leaves the previous file (or none) untouched.
class PatchDatasetWriter {
 public:
  struct Options {
    int gzip_level = 4;  ///< 0 = no compression
    /// Start from the existing file's slides (for --resume): they are kept, new ones appended.
    bool resume = false;
  };

  PatchDatasetWriter(const std::filesystem::path& path, const Options& options);
  ~PatchDatasetWriter();
  PatchDatasetWriter(const PatchDatasetWriter&) = delete;
  PatchDatasetWriter& operator=(const PatchDatasetWriter&) = delete;

  /// Slide ids already complete in the file (with resume), in file order.
  std::vector<std::string> existing_slides() const;

  /// Throws kInvalidConfig when the file (being resumed) holds slides of another geometry.
  void require_geometry(const ModelGeometry& geometry) const;

  void begin_slide(const SlideRecord& record);
  /// Appends one patch set; `labels` has one CV_8UC1 raster per branch when the slide has
  /// labels (else empty).
  void append(const PatchSet& patches, const std::vector<cv::Mat>& labels);
  /// Marks the slide complete (attr "complete" = 1) and flushes.
  void end_slide();
  /// Removes the open slide's group (a failed slide), so the other slides can still be written;
  /// does nothing when no slide is open.
  void abandon_slide();
  /// Closes the file and renames it into place. Without commit, the destructor discards it.
  void commit();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace slidestream
