// slidestream jobs: each user-facing job takes a validated options struct and does all the
// work; the CLI only fills the struct (docs/CLI.md).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "slidestream/annotations.hpp"
#include "slidestream/core.hpp"
#include "slidestream/io.hpp"
#include "slidestream/models.hpp"
#include "slidestream/stain.hpp"
#include "slidestream/synth.hpp"
#include "slidestream/tile_pipeline.hpp"
#include "slidestream/tiling.hpp"
#include "slidestream/tissue.hpp"
#include "slidestream/training.hpp"

namespace slidestream {

/// `slidestream info`: the slide's metadata as stable JSON (schema in docs/FORMATS.md).
std::string slide_info_json(const SlideInfo& info);
/// `slidestream info`: the same for people, as an aligned text table.
std::string slide_info_text(const SlideInfo& info);

/// `slidestream read`: one patch at a spacing, written as PNG with a JSON sidecar.
struct ReadJob {
  std::filesystem::path slide;
  OpenOptions open;
  double spacing_um = 0;           ///< output spacing, um/px
  Size size_px;                    ///< output size
  std::optional<Point> center_l0;  ///< exactly one of center_l0 / origin_l0
  std::optional<Point> origin_l0;
  std::filesystem::path output;                      ///< .png (or any OpenCV-writable extension)
  std::optional<std::filesystem::path> mask_output;  ///< validity mask PNG (255 = on slide)

  /// Throws kInvalidArgument for inconsistent options or outputs that would overwrite the
  /// slide or each other, kOutputError for outputs that cannot be written.
  void validate() const;
  /// `<output>.json`
  std::filesystem::path sidecar_path() const;
};

/// What `run_read` wrote; also the content of its sidecar `<output>.json`.
struct ReadResult {
  Patch patch;
  std::filesystem::path sidecar;
};

ReadResult run_read(const ReadJob& job);

/// `slidestream read --associated NAME`: an associated image (thumbnail, label, macro) as PNG.
void run_read_associated(const std::filesystem::path& slide, const OpenOptions& open,
                         const std::string& name, const std::filesystem::path& output);

/// `slidestream tissue`: the tissue mask of a slide as PNG (255 = tissue) and its JSON report.
struct TissueJob {
  std::filesystem::path slide;
  OpenOptions open;
  TissueOptions tissue;
  std::filesystem::path output;  ///< mask PNG; the report goes to <output>.json
  bool print_json = false;       ///< also print the report on stdout
};
/// Writes the mask and report atomically; returns the mask.
TissueMask run_tissue(const TissueJob& job);

/// How a whole slide is sampled to fit its stains (fit_stain_on_slide).
struct SlideStainFitOptions {
  double spacing_um = 2.0;  ///< tiles are read at this spacing (um/px)
  int tile_px = 128;        ///< tile side in output pixels
  int max_tiles = 64;       ///< at most this many tissue tiles (spread over the slide)
  /// Of a tile's FoV under the tissue mask; when no tile reaches it, every tile with some tissue.
  double min_tissue_fraction = 0.5;
  StainFitOptions fit;

  /// Throws kInvalidConfig naming the bad field.
  void validate() const;
};

/// Fits `method` on a whole slide: the tiles (tile_px at spacing_um, row-major grid) whose tissue
/// fraction under `mask` is at least min_tissue_fraction, at most max_tiles of them evenly
/// spread over that list (deterministic), fitted together as one mosaic. Throws
/// kInvalidArgument when no tile has any tissue.
StainParams fit_stain_on_slide(const SlideReader& slide, const TissueMask& mask, StainMethod method,
                               const SlideStainFitOptions& options = {});

/// `slidestream stain fit`: stain parameters fitted on an image or a whole slide, saved as JSON.
struct StainFitJob {
  /// An RGB(A) image (.png, .jpg, .jpeg, .bmp), or any slide open_slide opens (fitted on its
  /// tissue tiles, see fit_stain_on_slide).
  std::filesystem::path input;
  StainMethod method = StainMethod::kMacenko;
  StainFitOptions options;       ///< fitted_on defaults to the input's file name
  std::filesystem::path output;  ///< parameters JSON (docs/FORMATS.md)
  std::optional<double> mpp_um;  ///< the slide's spacing (um/px) when its metadata has none
  OpenOptions open;              ///< how a slide is opened (mpp_um wins)
  SlideStainFitOptions slide;    ///< sampling of a slide (its `fit` is `options`)
  TissueOptions tissue;          ///< the slide's tissue mask

  /// Throws kInvalidConfig / kInvalidArgument naming the bad option.
  void validate() const;
};
StainParams run_stain_fit(const StainFitJob& job);

/// Whether `path` is fitted as a plain image (by its extension) rather than opened as a slide.
bool is_plain_image(const std::filesystem::path& path);

/// The parameters named by `stain apply --target`: "macenko-reference", a .json parameters
/// file, or an image fitted with `method` (Macenko when absent). A method given with a
/// preset or file switches Macenko <-> Vahadane (same stain matrix).
StainParams resolve_stain_target(const std::string& target, std::optional<StainMethod> method);

/// `slidestream stain apply`: one image normalized onto a target, written atomically.
struct StainApplyJob {
  std::string target;  ///< see resolve_stain_target
  std::optional<StainMethod> method;
  std::filesystem::path input;
  std::filesystem::path output;
};
ApplyStats run_stain_apply(const StainApplyJob& job);

/// Where a stain stage gets the stains it maps onto the target.
enum class StainFitScope {
  kSlide,  ///< fitted once per slide on its tissue tiles (fit_stain_on_slide), the default
  kTile,   ///< fitted on every tile
};

/// The `stain:` section of a job config (extract; segment will share it).
struct StainConfig {
  bool enabled = false;                      ///< the section is present
  std::optional<StainMethod> method;         ///< default: the target's (macenko for an image)
  std::string target = "macenko-reference";  ///< params JSON, preset name, or an image to fit
  StainFitScope fit = StainFitScope::kSlide;
  double fit_spacing_um = 2.0;  ///< spacing of the slide-level fit's tiles (um/px)

  /// Throws kInvalidConfig naming the key.
  void validate() const;
};

/// Tile counters of a stain stage, added to from many threads.
struct StainCounts {
  std::int64_t tiles = 0;
  std::int64_t normalized = 0;
  std::int64_t without_tissue = 0;  ///< returned unchanged: no tissue pixel
  std::int64_t degenerate = 0;      ///< returned unchanged: too few stain pixels / one colour
};

/// A pipeline stage normalizing tiles: built once per job (the target is resolved once), then
/// prepared per slide, then `apply` from the parallel stage of run_tile_pipeline.
class StainStage {
 public:
  explicit StainStage(const StainConfig& config);
  ~StainStage();
  StainStage(const StainStage&) = delete;
  StainStage& operator=(const StainStage&) = delete;

  /// With fit slide, fits the slide's own stains on its tissue (mask) at fit_spacing_um; the
  /// counters restart. Not thread-safe: call it before the slide's tiles.
  void begin_slide(const SlideReader& slide, const TissueMask& mask, const std::string& slide_id);
  /// The normalized RGB tile (CV_8UC3, same size). Const and thread-safe.
  cv::Mat apply(const cv::Mat& rgb) const;
  /// The counters since begin_slide.
  StainCounts counts() const;
  const StainParams& target() const { return target_; }

 private:
  struct Counters;
  StainConfig config_;
  StainParams target_;
  std::unique_ptr<StainNormalizer> normalizer_;
  std::unique_ptr<Counters> counters_;
};

/// `slidestream stain normalize-slide`: the whole slide normalized at level 0 into a pyramidal
/// JPEG TIFF (same size and spacing), streamed through the tile scheduler in bounded memory.
struct NormalizeSlideJob {
  std::filesystem::path input;
  std::filesystem::path output;  ///< .tif
  StainConfig stain;             ///< enabled is ignored (always on)
  OpenOptions open;
  TissueOptions tissue;  ///< tiles with no tissue under this mask are copied as they are
  int tile_size = 512;   ///< output tile side (px), a multiple of 16
  int jpeg_quality = 90;
  SchedulerOptions scheduler;

  /// Throws kInvalidArgument naming the bad option.
  void validate() const;
};

struct NormalizeSlideReport {
  std::int64_t tiles = 0;
  std::int64_t tiles_copied = 0;  ///< no tissue under the mask: copied as they are
  StainCounts stain;              ///< of the tiles with tissue
};
NormalizeSlideReport run_stain_normalize_slide(const NormalizeSlideJob& job);

/// `slidestream stain show`: a people-readable summary of stain parameters ...
std::string stain_params_text(const StainParams& params);
/// ... and a swatch PNG: H, E and H + E at their max concentrations (Reinhard: the LAB mean).
void write_stain_swatch(const StainParams& params, const std::filesystem::path& output);

/// Writes an RGB (or grey) image with OpenCV through a temporary file renamed on success.
void write_image_atomically(const cv::Mat& image, const std::filesystem::path& path, bool is_rgb);
/// Writes an image to `file` (e.g. an AtomicOutput's temporary; its extension picks the
/// format); errors name `shown_as`. Throws kOutputError.
void write_image_file(const cv::Mat& image, const std::filesystem::path& file,
                      const std::filesystem::path& shown_as, bool is_rgb);
/// Throws kOutputError, before any work, when OpenCV has no writer for `path`'s extension;
/// `role` names the option ("-o", "--mask").
void require_image_writer(const std::filesystem::path& path, const std::string& role);

/// One slide of a batch: its file, its name in outputs, and an optional spacing override.
struct SlideInput {
  std::filesystem::path path;
  std::string id;  ///< unique in the batch; the file stem unless a manifest names it
  std::optional<double> mpp_um;
};

/// Expands files, glob patterns, folders (slide and image files inside, not recursive) and CSV
/// manifests (header `path[,mpp][,id]`, relative paths from the manifest's folder) into slides,
/// in the order given (folders and globs sorted). Throws kNotFound for an input that matches
/// nothing, kInvalidConfig for a bad manifest or duplicate ids.
std::vector<SlideInput> expand_slide_inputs(const std::vector<std::string>& inputs);

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

/// How one slide of a batch went.
struct SlideOutcome {
  std::string id;
  std::filesystem::path path;
  bool ok = false;
  bool skipped = false;  ///< already in the output (resume)
  ErrorCode code = ErrorCode::kInternal;
  std::string error;
  std::size_t patches = 0;
  double seconds = 0;
  std::optional<StainCounts> stain;  ///< branch patches normalized (config with `stain:`)
};

struct BatchReport {
  std::vector<SlideOutcome> slides;
  std::size_t failed() const;
  /// A table for the terminal: one line per slide, failures with their reason.
  std::string summary() const;
};

/// Runs the extraction slide by slide; a failing slide is reported and the batch goes on.
/// Throws only for problems that concern the whole batch (config, output, no inputs).
BatchReport run_extract(const ExtractJob& job);

/// `slidestream evaluate`: a predicted label image against a truth label image (8-bit, PNG or
/// TIFF, level 0 of a pyramid), read through libvips in strips so memory stays bounded.
struct EvaluateJob {
  std::filesystem::path prediction;
  std::filesystem::path truth;
  /// Label value -> class name. Empty: every value found in either image, named by its value.
  std::vector<LabelClass> classes;
  std::optional<int> ignore;  ///< truth pixels with this value are left out
  std::optional<std::filesystem::path> json_output;
  int strip_rows = 256;  ///< rows read at a time from each image
  /// Throws kInvalidArgument for a bad option.
  void validate() const;
};

/// Per-class Dice and IoU, pixel accuracy and the confusion matrix (rows truth, columns
/// prediction, class order of `classes`). A predicted value that `classes` does not list is
/// counted in an extra column/row "(unlisted)"; unlisted truth values are skipped and counted.
struct EvaluationReport {
  std::filesystem::path prediction;
  std::filesystem::path truth;
  Size size;
  std::vector<LabelClass> classes;
  ConfusionMatrix confusion{1};
  std::int64_t ignored_pixels = 0;  ///< truth == ignore
  std::int64_t unlisted_truth_pixels = 0;
  std::string json() const;   ///< schema slidestream.evaluate/1 (docs/FORMATS.md)
  std::string table() const;  ///< for people: per-class rows and the matrix
};

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

/// "background=0,nucleus=1" -> classes; throws kInvalidArgument naming the bad item.
std::vector<LabelClass> parse_class_list(const std::string& text);

/// Throws kNotFound, kUnsupportedFormat (not 8-bit) or kInvalidArgument (sizes differ).
EvaluationReport run_evaluate(const EvaluateJob& job);

}  // namespace slidestream
