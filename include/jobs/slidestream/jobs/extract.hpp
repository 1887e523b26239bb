// `slidestream extract`: tissue-filtered target/context patch sets with labels, into HDF5 or PNG.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "slidestream/annotations.hpp"
#include "slidestream/io.hpp"
#include "slidestream/jobs/batch.hpp"
#include "slidestream/jobs/stain_stage.hpp"
#include "slidestream/label_class.hpp"
#include "slidestream/model_geometry.hpp"
#include "slidestream/tile_pipeline.hpp"
#include "slidestream/tiling.hpp"
#include "slidestream/tissue.hpp"

namespace slidestream {

/// The `extract` config (configs/extract-*.yaml): one struct per YAML section.
struct ExtractConfig {
  ModelGeometry geometry = ModelGeometry::hooknet_breast();
  PlanOptions tiling;
  /// Only tiles whose centre lies inside an annotation polygon (needs --annotations).
  bool tiles_within_annotations = false;
  TissueOptions tissue;
  LabelMap labels;
  std::string label_raster_rule = "nonzero:1";  ///< for --label-raster (see LabelRaster)
  std::string format = "hdf5";                  ///< "hdf5" or "png"
  int gzip_level = 4;
  SchedulerOptions scheduler;
  StainConfig stain;  ///< `stain:` section: patches normalized in the parallel stage
  /// The YAML file it was loaded from (none for the defaults), so no output may replace it.
  std::optional<std::filesystem::path> source_path;
  /// The resolved config (every setting that shapes the output, defaults included; not the
  /// scheduler), recorded in every output.
  std::string resolved_yaml() const;

  /// Throws kInvalidConfig naming the key and the fix.
  void validate() const;
};

/// Defaults, then the YAML file (if any), then `--set section.key=value` overrides (a YAML
/// value, e.g. `tiling.min_tissue_fraction=0.3`). Unknown keys are errors, so typos surface; a
/// null key keeps its default (docs/CLI.md, "Config"). The command line's typed flags are
/// assigned to the returned struct afterwards (they win).
ExtractConfig load_extract_config(const std::optional<std::filesystem::path>& path,
                                  const std::vector<std::string>& overrides);

/// `slidestream extract`: target/context patch sets with labels into an HDF5 dataset (or PNGs).
struct ExtractJob {
  std::vector<std::string> inputs;  ///< files, globs, folders, CSV manifests
  ExtractConfig config;
  std::filesystem::path output;  ///< .h5 file, or a folder when config.format is "png"
  /// Annotation file, or a folder holding <slide stem>.geojson|.json|.xml|.xml.gz per slide.
  std::optional<std::filesystem::path> annotations;
  /// Label raster per slide, "{stem}" replaced by the slide's file stem.
  std::optional<std::string> label_raster_pattern;
  OpenOptions open;
  bool resume = false;  ///< keep slides already in the output, extract only the others
};

/// Runs the extraction slide by slide; a failing slide is reported and the batch goes on.
/// Throws only for problems that concern the whole batch (config, output, no inputs).
BatchReport run_extract(const ExtractJob& job);

}  // namespace slidestream
