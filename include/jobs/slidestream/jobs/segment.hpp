// slidestream segment: batch whole-slide segmentation and the exports drawn from its cache.
//
// Per slide, one streaming pass: tissue mask -> tiles planned from the model's own geometry ->
// parallel reads of concentric patch sets (+ stain normalization) -> batches -> inference ->
// a crash-safe journal of tile outputs -> predictions.h5 -> labels.tif, heatmaps, overlay,
// GeoJSON and ASAP XML. Reading, inference and writing are separate pipeline stages with a
// bounded number of batches in flight, so memory does not grow with the slide's area.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "slidestream/jobs/batch.hpp"
#include "slidestream/jobs/stain_stage.hpp"
#include "slidestream/models/model.hpp"
#include "slidestream/stitch.hpp"
#include "slidestream/tile_pipeline.hpp"

namespace slidestream {

/// What a segmentation writes besides predictions.h5, labels.tif and report.json.
struct SegmentOutputs {
  bool heatmaps = false;          ///< prob_<class>.tif per class
  int heatmap_downsample = 1;     ///< heatmaps at output spacing * this (divides the output tile)
  bool uncertainty = false;       ///< uncertainty.tif (softmax entropy, 255 = ln(classes))
  bool overlay = true;            ///< overlay.png: thumbnail + class colours + legend
  double overlay_spacing_um = 0;  ///< 0: the long side of the overlay is overlay_max_px
  int overlay_max_px = 2048;
  double overlay_alpha = 0.45;
  bool geojson = true;           ///< annotations.geojson (QuPath)
  bool asap = true;              ///< annotations.xml (ASAP)
  double vector_spacing_um = 0;  ///< 0: 2 x output spacing, coarsened to max_vector_megapixels
  double max_vector_megapixels = 64;
  double min_region_area_um2 = 0;  ///< smaller connected regions are left out of the vectors
  double simplify_px = 1.0;        ///< polygon simplification tolerance (vector-raster px)
  int tiff_tile_size = 512;
  int checkpoint_tiles = 256;  ///< tiles per committed journal part (what a crash can lose)
};

/// The segment config (configs/segment*.yaml): one struct per YAML section.
struct SegmentConfig {
  TissueOptions tissue;
  /// Tiles whose output FoV has less tissue than this are not run (their pixels are label 0).
  double min_tissue_fraction = 0.05;
  std::optional<Rect> region_l0;  ///< only tiles overlapping this level-0 rectangle
  /// Same-padded models only: the fraction of a tile its neighbours overlap, and how the
  /// overlaps are blended. Valid-convolution models always abut exactly with no blending.
  double overlap = 0.25;
  BlendMode blend = BlendMode::kGaussian;
  /// `stain:` section: every branch patch normalized in the parallel read stage.
  StainConfig stain;
  InferenceOptions inference;
  int batch_size = 8;
  SegmentOutputs outputs;
  /// threads: read workers (0 = all cores); max_inflight: batches in flight (0 = 3).
  SchedulerOptions scheduler;
  /// The resolved config (every setting that shapes the outputs), recorded in every output
  /// and part of the resume fingerprint.
  std::string resolved_yaml() const;

  /// Throws kInvalidConfig naming the key and the fix.
  void validate() const;
};

/// Defaults < YAML file < `--set section.key=value`; unknown keys are errors.
SegmentConfig load_segment_config(const std::optional<std::filesystem::path>& path,
                                  const std::vector<std::string>& overrides);

/// A deterministic share of a cohort: slide k (input order) belongs to shard k mod count.
struct Shard {
  int index = 1;  ///< 1..count
  int count = 1;
};
/// Parses "I/N" (1 <= I <= N); throws kInvalidArgument.
Shard parse_shard(const std::string& text);
/// The shard named by SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT (minus SLURM_ARRAY_TASK_MIN),
/// or by JOB_COMPLETION_INDEX with SLIDESTREAM_SHARD_COUNT (Kubernetes indexed jobs); nullopt
/// when none is set.
std::optional<Shard> shard_from_environment();

struct SegmentJob {
  std::vector<std::string> inputs;  ///< files, globs, folders, CSV manifests
  std::filesystem::path model_dir;
  SegmentConfig config;
  std::filesystem::path output_dir;  ///< one folder per slide id inside
  OpenOptions open;
  bool resume = false;  ///< skip finished slides, continue partial ones from their journal
  std::optional<Shard> shard;
};

/// Segments every slide of the job (the shard's share); a failing slide is reported and the
/// batch goes on. Writes OUT_DIR/batch_report.json (batch_report.shard-I-of-N.json for a shard).
/// Throws only for problems of the whole batch (model, config, output folder, no inputs).
BatchReport run_segment(const SegmentJob& job);
/// The same with a model already loaded (embedding, tests).
BatchReport run_segment(const SegmentJob& job, SegmentationModel& model);

/// `slidestream export`: outputs redrawn from OUT_DIR/<id>/predictions.h5 without the model.
struct ExportJob {
  std::filesystem::path slide_dir;  ///< holds predictions.h5
  bool labels = false;              ///< labels.tif
  bool heatmaps = false;            ///< prob_<class>.tif (needs probabilities in the cache)
  bool uncertainty = false;         ///< uncertainty.tif
  bool overlay = false;             ///< overlay.png (needs the slide at its recorded path)
  bool geojson = false;
  bool asap = false;
  /// Overlay of one class's probability instead of the class colours, and its colormap.
  std::optional<std::string> heatmap_class;
  std::string colormap = "viridis";
  SegmentOutputs settings;  ///< spacings, sizes and tolerances
  OpenOptions open;         ///< to reopen the slide for the overlay's thumbnail
};
/// Writes what the job asks (atomically) and returns the files written.
std::vector<std::filesystem::path> run_export(const ExportJob& job);

}  // namespace slidestream
