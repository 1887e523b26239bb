// `slidestream features`: per-tile embeddings of a model, as CLAM-style HDF5 files.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "slidestream/io.hpp"
#include "slidestream/jobs/batch.hpp"
#include "slidestream/models/model.hpp"
#include "slidestream/tile_pipeline.hpp"
#include "slidestream/tissue.hpp"

namespace slidestream {

/// `slidestream features`: per slide, the model's embedding of every tissue tile planned at the
/// model's geometry, as a CLAM-style HDF5 file (docs/FORMATS.md, slidestream.features/1).
struct FeaturesJob {
  std::vector<std::string> inputs;  ///< files, globs, folders, CSV manifests
  std::filesystem::path model_dir;
  /// Files go to output_dir/<key>/<slide id>.h5, key = 16 hex digits of sha256(weights sha256 +
  /// settings): the same model and settings reuse a complete file, others write a new folder.
  std::filesystem::path output_dir;
  OpenOptions open;
  InferenceOptions inference;
  TissueOptions tissue;
  double min_tissue_fraction = 0.5;  ///< of a tile's output FoV
  int batch_size = 16;               ///< patch sets per embed() call
  SchedulerOptions scheduler;        ///< parallel reading
  void validate() const;
};

/// The folder `run_features` writes for this job and model (output_dir/<key>).
std::filesystem::path features_folder(const FeaturesJob& job, const SegmentationModel& model);

/// One outcome per slide (skipped = reused); throws for the model or the whole batch.
BatchReport run_features(const FeaturesJob& job);

}  // namespace slidestream
