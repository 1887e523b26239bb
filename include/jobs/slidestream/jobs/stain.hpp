// The `slidestream stain` jobs: fit, apply, normalize-slide and show.
#pragma once

#include <cstdint>
#include <filesystem>
#include <opencv2/core.hpp>
#include <optional>
#include <string>

#include "slidestream/io.hpp"
#include "slidestream/jobs/stain_stage.hpp"
#include "slidestream/stain.hpp"
#include "slidestream/tile_pipeline.hpp"
#include "slidestream/tissue.hpp"

namespace slidestream {

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

}  // namespace slidestream
