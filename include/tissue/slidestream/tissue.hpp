// slidestream tissue: a tissue mask of a whole slide at a coarse working spacing.
#pragma once

#include <opencv2/core.hpp>
#include <optional>
#include <string>

#include "slidestream/io.hpp"

namespace slidestream {

enum class TissueMethod {
  kSaturation,      ///< HSV saturation, Otsu threshold (robust for H&E on white)
  kOpticalDensity,  ///< mean optical density, Otsu threshold (also for pale/grey stains)
};

/// "saturation" or "od"; parse throws kInvalidConfig for anything else.
std::string tissue_method_name(TissueMethod method);
TissueMethod parse_tissue_method(const std::string& name);

struct TissueOptions {
  double spacing_um = 8.0;  ///< working spacing of the mask (um/px)
  TissueMethod method = TissueMethod::kSaturation;
  /// A fixed threshold (saturation 0..255, or OD) instead of Otsu's.
  std::optional<double> threshold;
  double close_radius_um = 16.0;       ///< morphological closing (joins fragments)
  double open_radius_um = 8.0;         ///< morphological opening (removes dust)
  double min_tissue_area_um2 = 20000;  ///< connected tissue smaller than this is dropped
  double max_hole_area_um2 = 50000;    ///< holes smaller than this are filled
  bool exclude_pen = false;            ///< remove strongly saturated red/green/blue pen marks
  /// Upper bound on the mask's size: on a slide so large that the mask at `spacing_um` would
  /// exceed it, the working spacing is coarsened to fit, so memory stays bounded whatever the
  /// slide's area (16 MP is a 32 x 32 mm slide at 8 um/px).
  double max_mask_megapixels = 16.0;

  /// Throws kInvalidConfig naming the bad field.
  void validate() const;
};

/// A binary tissue mask covering the whole slide at `spacing_um`. Mask pixel (i, j) covers the
/// level-0 rectangle [i * sx, (i + 1) * sx) x [j * sy, (j + 1) * sy), sx = spacing_um /
/// slide_spacing.x_um (and likewise y).
struct TissueMask {
  cv::Mat mask;  ///< CV_8UC1, 255 = tissue
  double spacing_um = 0;
  Spacing slide_spacing;       ///< level-0 spacing of the slide
  std::string method;          ///< "saturation" or "od"
  double threshold = 0;        ///< the threshold used (Otsu's or the fixed one)
  double tissue_fraction = 0;  ///< tissue pixels / all mask pixels
  double tissue_area_mm2 = 0;
  double pen_fraction = 0;  ///< pixels removed as pen marks / all mask pixels

  /// Fraction of the mask pixels whose centre lies in `fov_l0` that are tissue (0 when none).
  double fraction_in(const RectF& fov_l0) const;
};

/// Reads the slide at the working spacing in strips (bounded memory) and thresholds it. The
/// mask's `spacing_um` may be coarser than asked (see max_mask_megapixels).
TissueMask compute_tissue_mask(const SlideReader& slide, const TissueOptions& requested = {});

}  // namespace slidestream
