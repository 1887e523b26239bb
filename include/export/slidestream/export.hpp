// slidestream export: what a segmentation becomes for people and other tools. An overlay PNG
// (class colours or a probability heatmap over the slide thumbnail, with a legend), polygons
// traced from a label raster, and those polygons as QuPath GeoJSON and ASAP XML.
//
// Frames: rasters given here are whole label maps at one coarse spacing; polygons are in
// continuous level-0 pixels (pixel i spans [i, i + 1), so integer values are pixel corners).
// Torch-free: it depends on core, geometry, annotations and OpenCV only.
#pragma once

#include <cstdint>
#include <filesystem>
#include <opencv2/core.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "slidestream/annotations.hpp"
#include "slidestream/geometry.hpp"

namespace slidestream {

// --- overlay PNG ---------------------------------------------------------------------------------

/// OpenCV colormaps offered for probability heatmaps.
enum class Colormap { kViridis, kMagma, kInferno, kJet, kTurbo };

/// "viridis", "magma", "inferno", "jet" or "turbo" (case-insensitive). Throws kInvalidArgument
/// naming the valid ones for anything else.
Colormap parse_colormap(std::string_view name);
/// The lower-case name of a colormap (inverse of parse_colormap).
std::string_view colormap_name(Colormap colormap);

/// What render_overlay draws over the thumbnail.
enum class OverlayMode {
  kClasses,  ///< a class map (CV_8UC1 label values) in the class colours
  kHeatmap,  ///< a probability map (CV_8UC1 0..255 or CV_32FC1 0..1) through a colormap
};

struct OverlayOptions {
  OverlayMode mode = OverlayMode::kClasses;
  /// Opacity of the class colours / heatmap over the thumbnail, 0 (invisible) .. 1 (opaque).
  double alpha = 0.5;
  /// A legend panel to the right of the image (class swatches, or the colour bar).
  bool draw_legend = true;

  // Class mode.
  /// Classes drawn, in their `colour` (RGB). Label 0 and values not listed stay transparent.
  std::vector<LabelClass> classes;
  /// Draw only each class's boundary (opaque, in its colour) instead of filling it.
  bool outline_only = false;
  /// Outline width in output pixels; 0 picks one from the image size (1 px per 500 px).
  int outline_thickness_px = 0;
  /// A figure per class shown in the legend after its name, in the order of `classes` (empty:
  /// none), e.g. areas in mm^2 or fractions in %.
  std::vector<double> legend_values;
  /// The unit printed after each legend value (ASCII: OpenCV's Hershey fonts), e.g. "mm^2".
  std::string legend_unit = "mm^2";

  // Heatmap mode.
  Colormap colormap = Colormap::kViridis;
  /// Probabilities below this (0..1) stay transparent.
  double threshold = 0.5;
  /// Title over the colour bar, e.g. the class name.
  std::string heatmap_title = "probability";

  /// Throws kInvalidArgument for alpha or threshold outside 0..1, a negative thickness, or
  /// legend_values whose count differs from the classes.
  void validate() const;
};

/// The overlay image (RGB CV_8UC3): `thumbnail_rgb` (CV_8UC3, RGB, at the overlay spacing)
/// with `values` blended on top, per `options.mode`, plus a legend panel on the right when
/// asked (the image part keeps the thumbnail's size and position: output pixel (x, y) for
/// x < thumbnail width is thumbnail pixel (x, y)). `values` is resized to the thumbnail
/// (nearest for labels, linear for probabilities) when their sizes differ by rounding; aspect
/// ratios differing by more than 2 % are kInvalidArgument, as are wrong types. Text is scaled
/// to the image size so that legends stay readable from 300 to 4000+ px wide thumbnails.
cv::Mat render_overlay(const cv::Mat& thumbnail_rgb, const cv::Mat& values,
                       const OverlayOptions& options);

/// Writes an RGB image as PNG (or any extension OpenCV knows) through an AtomicOutput. Throws
/// kOutputError when the folder is missing or not writable.
void write_png_atomically(const cv::Mat& image_rgb, const std::filesystem::path& path);

// --- vectors from a label raster -----------------------------------------------------------------

struct TraceOptions {
  /// Level-0 position of the raster's top-left corner (level-0 px).
  cv::Point2d origin_l0{0.0, 0.0};
  /// Level-0 pixels per raster pixel along x and y: raster pixel (i, j) covers level-0
  /// [x0 + i * dx, x0 + (i + 1) * dx) x [y0 + j * dy, y0 + (j + 1) * dy).
  double downsample_x = 1.0;
  double downsample_y = 1.0;
  /// Level-0 pixel spacing (um/px), for areas.
  Spacing level0_spacing{0.0, 0.0};
  /// Douglas-Peucker tolerance (cv::approxPolyDP) in raster pixels; 0 keeps every pixel corner
  /// (collinear corners are always merged, which loses nothing).
  double simplify_tolerance_px = 1.0;
  /// Regions smaller than this (um^2, exact pixel area net of holes) are dropped.
  double min_area_um2 = 0.0;
  /// Holes smaller than this (um^2) are filled (left out of the polygon).
  double min_hole_area_um2 = 0.0;

  /// Throws kInvalidArgument for non-positive downsamples or spacing, negative tolerances or
  /// areas, or a non-finite origin.
  void validate() const;
};

/// One connected region of one class: a polygon with holes.
struct TracedRegion {
  std::string class_name;
  std::uint8_t class_value = 0;
  cv::Vec3b colour{0, 0, 0};  ///< RGB
  /// rings[0] is the outer boundary, the rest are holes; continuous level-0 px, not closed
  /// (the first vertex is not repeated). Outer rings have a positive shoelace area in the
  /// y-down image frame (clockwise on screen), holes a negative one.
  std::vector<std::vector<cv::Point2d>> rings;
  /// Exact area of the region's pixels minus its kept holes, in um^2 (from the raster, not
  /// from the simplified polygon).
  double area_um2 = 0.0;
  /// Holes kept in `rings` (= rings.size() - 1).
  int hole_count = 0;
  /// Level-0 corner of the region's first raster pixel in row-major order (its top-left-most
  /// pixel): the sort key after the class, unique per region.
  cv::Point2d first_corner_l0{0.0, 0.0};
};

/// Traces every 8-connected region of every class of `labels` (CV_8UC1 label values) into a
/// polygon with holes (cv::findContours, RETR_CCOMP: outer borders and their holes), with
/// vertices on pixel corners, so that filling the unsimplified polygons at pixel centres (as
/// rasterize_annotations does) gives back exactly the region's pixels. Values not in `classes`
/// (and 0) are background. Regions come sorted by class (order of `classes`), then by their
/// first pixel in row-major order, so the same raster always gives the same list.
///
/// Memory: `labels` is a whole label map held in memory, so the caller caps its size by
/// choosing a coarse vector spacing (e.g. 8 um/px: a 100000^2 px slide at 0.25 um/px is
/// 3125^2 px). Tracing needs about 2 more bytes per raster pixel (a class mask and
/// findContours' copy) plus the contours; an 8000 x 8000 raster with 3000 regions traces in
/// about a second on one core.
std::vector<TracedRegion> trace_regions(const cv::Mat& labels,
                                        const std::vector<LabelClass>& classes,
                                        const TraceOptions& options);

/// The regions as annotations (class name and rings), e.g. for rasterize_annotations.
std::vector<Annotation> to_annotations(const std::vector<TracedRegion>& regions);

// --- writers -------------------------------------------------------------------------------------

struct VectorWriteOptions {
  /// Decimals of level-0 coordinates (fixed notation).
  int coordinate_decimals = 2;
  /// Decimals of measurements (areas in um^2).
  int measurement_decimals = 2;

  /// Throws kInvalidArgument for decimals outside 0..9.
  void validate() const;
};

/// QuPath GeoJSON: a FeatureCollection with one Polygon Feature per region (outer ring then
/// holes, rings closed, [x, y] in level-0 px), properties {objectType: "annotation",
/// classification: {name, color: [r, g, b]}, isLocked: false, measurements: {"Area um^2",
/// "Holes"}}. Features keep the order of `regions` (trace_regions sorts them), and numbers use
/// fixed decimals, so the same regions always give the same bytes. Atomic; kOutputError when the
/// path cannot be written.
void write_geojson(const std::vector<TracedRegion>& regions, const std::filesystem::path& path,
                   const VectorWriteOptions& options = {});

/// ASAP XML (ASAP_Annotations / Annotations / Annotation Type="Polygon" with Coordinates in
/// level-0 px, and AnnotationGroups / Group per class). ASAP polygons cannot have holes, so each
/// hole is written as its own polygon in the group "<class> hole" (PartOfGroup), after
/// CAMELYON16's exclusion groups: ASAP shows them, and the class's pixels are those inside an odd
/// number of the polygons of groups "<class>" and "<class> hole" (for regions without islands in
/// their holes: draw the class, then its hole group as background). docs/FORMATS.md has the
/// layout. Atomic; kOutputError when the path cannot be written.
void write_asap_xml(const std::vector<TracedRegion>& regions, const std::filesystem::path& path,
                    const VectorWriteOptions& options = {});

/// The ASAP group name of the holes of `class_name` ("<class> hole").
std::string asap_hole_group(const std::string& class_name);

}  // namespace slidestream
