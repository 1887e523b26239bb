// slidestream stitch: model outputs of many tiles -> one on-disk raster per slide, in constant
// memory, crash-safe and resumable.
//
// While a slide is segmented, tile outputs go to a journal: a folder of small HDF5 "parts",
// each written under a temporary name and renamed when complete, so a killed process loses at
// most the part it was writing. Tiles arrive in plan order, so the committed parts always hold
// a prefix of the plan and a resumed run skips exactly that prefix. When every tile is in,
// `merge_predictions` writes predictions.h5: the label map, optional per-class probabilities
// and uncertainty as chunked whole-slide datasets at the output spacing. Valid-convolution
// models' tiles abut exactly (no blending); same-padded models' overlapping tiles are blended
// (average or Gaussian weights) through on-disk accumulators. Raster coordinates are output
// pixels: raster pixel (i, j) covers level-0 [i * s, (i + 1) * s) with s = output spacing /
// slide spacing, the frame of TilePlanner's grid.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "slidestream/annotations.hpp"
#include "slidestream/io.hpp"
#include "slidestream/tiling.hpp"

namespace slidestream {

enum class BlendMode { kNone, kAverage, kGaussian };

/// "none", "average", "gaussian"; parse throws kInvalidConfig for anything else.
std::string blend_mode_name(BlendMode mode);
BlendMode parse_blend_mode(const std::string& name);

/// The geometry and content of a slide's prediction raster.
struct PredictionLayout {
  Size raster_px;                   ///< output pixels covering the whole slide
  double spacing_um = 0;            ///< output spacing (um/px)
  Size tile_px;                     ///< model output tile
  Size stride_px;                   ///< between tile origins (== tile_px for valid convolutions)
  Size grid;                        ///< plan columns x rows
  std::vector<LabelClass> classes;  ///< channel order of the model; value = label stored
  BlendMode blend = BlendMode::kNone;
  bool probabilities = false;  ///< store per-class probabilities (uint8, 255 = 1)
  int heatmap_downsample = 1;  ///< probabilities at spacing_um * this (divides tile and stride)
  bool entropy = false;        ///< store softmax entropy (uint8, 255 = ln(classes))
  /// Model sha256 + config hash: a journal or cache of another run is never mixed in.
  std::string fingerprint;

  /// Throws kInvalidConfig naming the problem (e.g. a downsample that does not divide the tile).
  void validate() const;
  /// The raster rectangle of tile (column, row), before cropping to the raster.
  Rect tile_rect(std::int64_t column, std::int64_t row) const;
};

/// The layout for `slide` planned with `geometry` and `stride_px`.
PredictionLayout make_prediction_layout(const SlideInfo& slide, const ModelGeometry& geometry,
                                        Size stride_px);

/// One tile's model output, at the output geometry.
struct TilePrediction {
  TileSpec spec;
  cv::Mat probs;  ///< CV_32FC(classes), tile_px; labels and entropy are derived from it
};

/// The crash-safe journal of a slide being segmented (a folder of committed parts).
class PredictionJournal {
 public:
  /// Opens (creating) `folder`. Parts whose fingerprint differs from `layout`'s are removed
  /// (with a log line), as are temporaries of a killed run. A part is committed every
  /// `checkpoint_tiles` tiles.
  PredictionJournal(std::filesystem::path folder, PredictionLayout layout, int checkpoint_tiles);
  ~PredictionJournal();
  PredictionJournal(const PredictionJournal&) = delete;
  PredictionJournal& operator=(const PredictionJournal&) = delete;

  /// Tiles of the plan already committed (a prefix of the plan): a resumed run skips them.
  std::uint64_t committed_tiles() const;
  /// Appends a tile; tiles must come in plan order.
  void append(const TilePrediction& tile);
  /// Commits the part being written (if any). Called at the end and on checkpoints.
  void flush();
  const std::filesystem::path& folder() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// What merging found, for the slide report.
struct MergeStats {
  std::uint64_t tiles = 0;
  /// Raster pixels per class value (index = label value 0..255), cropped to the raster.
  std::vector<std::uint64_t> label_pixels = std::vector<std::uint64_t>(256, 0);
};

/// Everything recorded with predictions.h5 besides the rasters (docs/FORMATS.md).
struct PredictionRecord {
  SlideInfo slide;
  std::string slide_id;
  std::string model_sha256;
  std::string model_architecture;
  std::string config_yaml;
  std::uint64_t planned_tiles = 0;
};

/// Writes `output` (predictions.h5, atomically) from every part in `journal_folder`, tile by
/// tile in plan order, so memory is one tile (plus blending blocks) whatever the slide's size.
/// The file's bytes depend only on the parts' content, not on how they were split.
MergeStats merge_predictions(const std::filesystem::path& journal_folder,
                             const PredictionLayout& layout, const PredictionRecord& record,
                             const std::filesystem::path& output);

/// Reads predictions.h5 (one reader per thread).
class PredictionCache {
 public:
  /// Throws kNotFound / kCorruptData naming the file.
  explicit PredictionCache(const std::filesystem::path& path);
  ~PredictionCache();
  PredictionCache(const PredictionCache&) = delete;
  PredictionCache& operator=(const PredictionCache&) = delete;

  const PredictionLayout& layout() const;
  const PredictionRecord& record() const;
  const MergeStats& stats() const;
  /// Label values of `region` (raster pixels), 0 outside the raster. CV_8UC1.
  cv::Mat read_labels(const Rect& region) const;
  /// Probability of class `index` (0..255) over `region` in heatmap pixels (raster / downsample).
  cv::Mat read_probability(int index, const Rect& region) const;
  /// Entropy (0..255) over `region` in raster pixels.
  cv::Mat read_entropy(const Rect& region) const;
  /// Heatmap raster size (raster_px / heatmap_downsample, rounded up).
  Size heatmap_px() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// One window of the output raster stitched in memory (`slidestream predict`): tile outputs are
/// summed per pixel and averaged where they overlap. Memory is the window's, so the caller
/// bounds the window; whole slides go through the journal instead.
class WindowStitcher {
 public:
  /// `window_px`: the part of the output raster kept; `channels`: classes per tile output.
  WindowStitcher(Rect window_px, int channels);

  /// Adds one tile's probabilities (CV_32FC(channels)) whose top-left pixel is `origin_px` of
  /// the output raster; the part outside the window is dropped.
  void add(Point origin_px, const cv::Mat& probs);

  struct Stitched {
    cv::Mat labels;              ///< CV_8UC1 arg-max class value, 0 where no tile fell
    std::vector<cv::Mat> pages;  ///< CV_8UC1 mean probability per class, 255 = 1
  };
  /// The averaged window; `classes` gives the label value of each channel.
  Stitched finish(const std::vector<LabelClass>& classes) const;

  const Rect& window() const { return window_; }

 private:
  Rect window_;
  cv::Mat sum_;    // CV_32FC(channels)
  cv::Mat count_;  // CV_32FC1: tiles per pixel
};

}  // namespace slidestream
