// Tissue masks: threshold a whole slide read in strips at a coarse spacing, then clean the mask
// with morphology expressed in microns so the result does not depend on the working spacing.
#include "slidestream/tissue.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <opencv2/imgproc.hpp>
#include <utility>
#include <vector>

#include "slidestream/core.hpp"
#include "slidestream/enum_names.hpp"

namespace slidestream {

namespace {

/// At most this many mask rows are read at once, so memory is one strip for any slide size.
constexpr int kMaxStripRows = 256;
/// Otsu never goes below these floors: a blank (white) slide then has no tissue at all
/// instead of Otsu splitting its scanner noise in two.
constexpr double kSaturationFloor = 20.0;
constexpr double kOpticalDensityFloor = 0.05;
/// Optical density is stored as 8-bit OD * kOdScale (max OD -log10(1/256) = 2.41 fits).
constexpr double kOdScale = 100.0;
/// Pixels with every channel below this are scanner artefacts or out-of-focus black, not tissue.
constexpr int kBlackLevel = 30;
/// Pen marks: saturated well beyond H&E (eosin pink reaches ~110, haematoxylin ~130).
constexpr int kPenMinSaturation = 150;
constexpr int kPenMinValue = 50;
/// Pen hues on OpenCV's 0..180 scale. Red sits around 0/180; eosin's pink is at 155..172.
constexpr int kPenRedBelowHue = 8;
constexpr int kPenRedAboveHue = 173;
constexpr std::array<int, 2> kPenGreenHues{35, 85};
constexpr std::array<int, 2> kPenBlueHues{95, 130};
/// The blurred fringe of a pen stroke is removed too.
constexpr double kPenMarginUm = 16.0;

/// The per-pixel maps of the whole mask, filled strip by strip.
struct SlideMaps {
  cv::Mat feature;   ///< saturation (0..255) or OD * kOdScale, CV_8UC1
  cv::Mat on_slide;  ///< 255 where the pixel centre lies on the slide
  cv::Mat black;     ///< 255 for near-black pixels
  cv::Mat pen;       ///< 255 for pen-coloured pixels (only when excluding pen)
};

cv::Mat optical_density_lut() {
  // Each channel contributes a third of the mean OD, pre-scaled for 8-bit storage.
  cv::Mat lut(1, 256, CV_32F);
  for (int value = 0; value < 256; ++value) {
    lut.at<float>(0, value) = static_cast<float>(-std::log10((value + 1) / 256.0) * kOdScale / 3.0);
  }
  return lut;
}

cv::Mat pen_pixels(const cv::Mat& hsv) {
  const auto hue_band = [&hsv](int low, int high) {
    cv::Mat band;
    cv::inRange(hsv, cv::Scalar(low, kPenMinSaturation, kPenMinValue), cv::Scalar(high, 255, 255),
                band);
    return band;
  };
  return hue_band(0, kPenRedBelowHue) | hue_band(kPenRedAboveHue, 180) |
         hue_band(kPenGreenHues[0], kPenGreenHues[1]) | hue_band(kPenBlueHues[0], kPenBlueHues[1]);
}

/// Fills the maps of mask rows [row0, row0 + strip.rgb.rows) from one strip read.
void add_strip(const Patch& strip, int row0, const TissueOptions& options, SlideMaps& maps) {
  const cv::Rect rows(0, row0, strip.rgb.cols, strip.rgb.rows);
  cv::Mat hsv;
  if (options.method == TissueMethod::kSaturation || options.exclude_pen) {
    cv::cvtColor(strip.rgb, hsv, cv::COLOR_RGB2HSV);
  }
  cv::Mat feature;
  if (options.method == TissueMethod::kSaturation) {
    cv::extractChannel(hsv, feature, 1);
  } else {
    static const cv::Mat lut = optical_density_lut();
    cv::Mat channel_od;
    cv::LUT(strip.rgb, lut, channel_od);
    cv::Mat mean_od;
    cv::transform(channel_od, mean_od, cv::Matx13f(1.0F, 1.0F, 1.0F));
    mean_od.convertTo(feature, CV_8U);
  }
  // Each map is computed whole and then copied: OpenCV outputs into a temporary ROI header are
  // not reliably written in place.
  feature.copyTo(maps.feature(rows));
  strip.valid.copyTo(maps.on_slide(rows));
  cv::Mat black;
  cv::inRange(strip.rgb, cv::Scalar(0, 0, 0),
              cv::Scalar(kBlackLevel - 1, kBlackLevel - 1, kBlackLevel - 1), black);
  black.copyTo(maps.black(rows));
  if (options.exclude_pen) {
    pen_pixels(hsv).copyTo(maps.pen(rows));
  }
}

SlideMaps read_maps(const SlideReader& slide, const TissueOptions& options, cv::Size mask_size,
                    double l0_per_px_x, double l0_per_px_y) {
  SlideMaps maps;
  maps.feature = cv::Mat::zeros(mask_size, CV_8U);
  maps.on_slide = cv::Mat::zeros(mask_size, CV_8U);
  maps.black = cv::Mat::zeros(mask_size, CV_8U);
  if (options.exclude_pen) {
    maps.pen = cv::Mat::zeros(mask_size, CV_8U);
  }
  const int strip_count = (mask_size.height + kMaxStripRows - 1) / kMaxStripRows;
  ProgressBar progress("tissue", static_cast<std::uint64_t>(strip_count),
                       strip_count > 1 && ProgressBar::globally_enabled());
  for (int row0 = 0; row0 < mask_size.height; row0 += kMaxStripRows) {
    const int rows = std::min(kMaxStripRows, mask_size.height - row0);
    const RectF fov_l0{0.0, row0 * l0_per_px_y, mask_size.width * l0_per_px_x, rows * l0_per_px_y};
    add_strip(slide.read_fov(fov_l0, Size{mask_size.width, rows}), row0, options, maps);
    progress.advance();
  }
  progress.finish();
  return maps;
}

/// Otsu's threshold over `candidates` pixels of the 8-bit `feature`; 0 when there are none.
double otsu_threshold(const cv::Mat& feature, const cv::Mat& candidates) {
  std::vector<std::uint8_t> values;
  values.reserve(static_cast<std::size_t>(cv::countNonZero(candidates)));
  for (int row = 0; row < feature.rows; ++row) {
    const auto* feature_row = feature.ptr<std::uint8_t>(row);
    const auto* candidate_row = candidates.ptr<std::uint8_t>(row);
    for (int col = 0; col < feature.cols; ++col) {
      if (candidate_row[col] != 0) {
        values.push_back(feature_row[col]);
      }
    }
  }
  if (values.empty()) {
    return 0.0;
  }
  const cv::Mat column(static_cast<int>(values.size()), 1, CV_8U, values.data());
  cv::Mat ignored;
  return cv::threshold(column, ignored, 0, 255, cv::THRESH_BINARY | cv::THRESH_OTSU);
}

/// Radius in microns -> elliptical structuring element in mask pixels (empty when 0 px).
cv::Mat disk(double radius_um, double spacing_um) {
  const int radius_px = static_cast<int>(std::lround(radius_um / spacing_um));
  if (radius_px <= 0) {
    return {};
  }
  return cv::getStructuringElement(cv::MORPH_ELLIPSE,
                                   cv::Size(2 * radius_px + 1, 2 * radius_px + 1));
}

/// Keeps the components of `binary` that `keep(stats row)` accepts.
template <typename Keep>
cv::Mat filter_components(const cv::Mat& binary, int connectivity, Keep keep) {
  cv::Mat labels;
  cv::Mat stats;
  cv::Mat centroids;
  const int count =
      cv::connectedComponentsWithStats(binary, labels, stats, centroids, connectivity, CV_32S);
  std::vector<std::uint8_t> kept(static_cast<std::size_t>(count), 0);
  for (int label = 1; label < count; ++label) {
    kept[static_cast<std::size_t>(label)] = keep(stats.row(label)) ? 255 : 0;
  }
  cv::Mat result(binary.size(), CV_8U);
  for (int row = 0; row < binary.rows; ++row) {
    const auto* label_row = labels.ptr<std::int32_t>(row);
    auto* result_row = result.ptr<std::uint8_t>(row);
    for (int col = 0; col < binary.cols; ++col) {
      result_row[col] = kept[static_cast<std::size_t>(label_row[col])];
    }
  }
  return result;
}

/// Closing, opening, small-component removal and hole filling, all sized in microns (in place:
/// `mask` is the caller's, moved in).
cv::Mat clean_mask(cv::Mat mask, const TissueOptions& options) {
  if (const cv::Mat kernel = disk(options.close_radius_um, options.spacing_um); !kernel.empty()) {
    cv::morphologyEx(mask, mask, cv::MORPH_CLOSE, kernel);
  }
  if (const cv::Mat kernel = disk(options.open_radius_um, options.spacing_um); !kernel.empty()) {
    cv::morphologyEx(mask, mask, cv::MORPH_OPEN, kernel);
  }
  const double pixel_area_um2 = options.spacing_um * options.spacing_um;
  const auto area_um2 = [pixel_area_um2](const cv::Mat& stats) {
    return stats.at<std::int32_t>(0, cv::CC_STAT_AREA) * pixel_area_um2;
  };
  mask = filter_components(mask, 8, [&](const cv::Mat& stats) {
    return area_um2(stats) >= options.min_tissue_area_um2;
  });
  // Holes are the background components (4-connected, the dual of 8-connected tissue) that do
  // not touch the mask border; small ones are filled.
  const cv::Mat background = mask == 0;
  const cv::Mat small_holes = filter_components(background, 4, [&](const cv::Mat& stats) {
    const int left = stats.at<std::int32_t>(0, cv::CC_STAT_LEFT);
    const int top = stats.at<std::int32_t>(0, cv::CC_STAT_TOP);
    const bool touches_border = left == 0 || top == 0 ||
                                left + stats.at<std::int32_t>(0, cv::CC_STAT_WIDTH) == mask.cols ||
                                top + stats.at<std::int32_t>(0, cv::CC_STAT_HEIGHT) == mask.rows;
    return !touches_border && area_um2(stats) < options.max_hole_area_um2;
  });
  return mask | small_holes;
}

void require_non_negative(double value, const char* field) {
  if (!(value >= 0) || !std::isfinite(value)) {
    throw Error(ErrorCode::kInvalidConfig,
                std::string("tissue.") + field + " must be a finite number >= 0 (0 turns it off)");
  }
}

}  // namespace

constexpr EnumNames<TissueMethod, 2> kTissueMethodNames{
    {{TissueMethod::kSaturation, "saturation"}, {TissueMethod::kOpticalDensity, "od"}}};

std::string tissue_method_name(TissueMethod method) {
  return std::string(enum_name(kTissueMethodNames, method));
}

TissueMethod parse_tissue_method(const std::string& name) {
  return parse_enum(kTissueMethodNames, name, "tissue method", ErrorCode::kInvalidConfig);
}

void TissueOptions::validate() const {
  if (!(spacing_um > 0) || !std::isfinite(spacing_um) || spacing_um > 1e4) {
    throw Error(ErrorCode::kInvalidConfig,
                "tissue.spacing_um (--spacing) must be a positive number of um/px up to 1e4, "
                "e.g. 8");
  }
  require_non_negative(close_radius_um, "close_radius_um");
  require_non_negative(open_radius_um, "open_radius_um");
  require_non_negative(min_tissue_area_um2, "min_tissue_area_um2");
  require_non_negative(max_hole_area_um2, "max_hole_area_um2");
  if (threshold) {
    require_non_negative(*threshold, "threshold");
    const double most = method == TissueMethod::kSaturation ? 255.0 : 5.0;
    if (*threshold > most) {
      throw Error(
          ErrorCode::kInvalidConfig,
          "tissue.threshold (--threshold) " + std::to_string(*threshold) + " is beyond what the " +
              tissue_method_name(method) + " method measures (" +
              (method == TissueMethod::kSaturation ? "saturation 0..255" : "optical density 0..5") +
              "); every pixel would be background");
    }
  }
  if (!is_within(max_mask_megapixels, 1e-3, 1024)) {
    throw Error(ErrorCode::kInvalidConfig, "tissue.max_mask_megapixels must be in (0, 1024]");
  }
}

double TissueMask::fraction_in(const RectF& fov_l0) const {
  if (mask.empty() || !(spacing_um > 0) || !(slide_spacing.x_um > 0) || !(slide_spacing.y_um > 0)) {
    return 0.0;
  }
  // Mask pixel i has its centre at level-0 (i + 0.5) * l0_per_px; it counts when
  // fov.x <= centre < fov.x + fov.width.
  const auto first_and_end = [](double start, double length, double l0_per_px, int count) {
    const double first = std::ceil(start / l0_per_px - 0.5);
    const double end = std::ceil((start + length) / l0_per_px - 0.5);
    return std::pair<int, int>(static_cast<int>(std::clamp(first, 0.0, double(count))),
                               static_cast<int>(std::clamp(end, 0.0, double(count))));
  };
  const auto [col0, col1] =
      first_and_end(fov_l0.x, fov_l0.width, spacing_um / slide_spacing.x_um, mask.cols);
  const auto [row0, row1] =
      first_and_end(fov_l0.y, fov_l0.height, spacing_um / slide_spacing.y_um, mask.rows);
  if (col1 <= col0 || row1 <= row0) {
    return 0.0;
  }
  const cv::Mat window = mask(cv::Range(row0, row1), cv::Range(col0, col1));
  return static_cast<double>(cv::countNonZero(window)) / static_cast<double>(window.total());
}

namespace {

// The options with the working spacing coarsened, if needed, to keep the mask within
// max_mask_megapixels: the mask and its temporaries are the only per-slide memory that would
// otherwise grow with slide area.
TissueOptions bounded(const TissueOptions& requested, const SlideInfo& info) {
  TissueOptions options = requested;
  const double area_um2 = static_cast<double>(info.size().width) * info.spacing.x_um *
                          static_cast<double>(info.size().height) * info.spacing.y_um;
  const double finest_um = std::sqrt(area_um2 / (requested.max_mask_megapixels * 1e6));
  if (finest_um > requested.spacing_um) {
    options.spacing_um = finest_um;
    spdlog::info("{}: tissue mask at {:.3g} um/px instead of {} so it stays within {} MP",
                 info.path.string(), finest_um, requested.spacing_um,
                 requested.max_mask_megapixels);
  }
  return options;
}

}  // namespace

TissueMask compute_tissue_mask(const SlideReader& slide, const TissueOptions& requested) {
  requested.validate();
  const SlideInfo& info = slide.info();
  const TissueOptions options = bounded(requested, info);
  const double l0_per_px_x = options.spacing_um / info.spacing.x_um;
  const double l0_per_px_y = options.spacing_um / info.spacing.y_um;
  const cv::Size mask_size(
      static_cast<int>(std::ceil(static_cast<double>(info.size().width) / l0_per_px_x)),
      static_cast<int>(std::ceil(static_cast<double>(info.size().height) / l0_per_px_y)));
  // Each map is released as soon as it is used up: the mask step's peak (in clean_mask, with
  // its 32-bit component labels) is what bounds the memory of a job on a large slide.
  SlideMaps maps = read_maps(slide, options, mask_size, l0_per_px_x, l0_per_px_y);
  cv::Mat pen_dilated;  // empty unless pen is excluded
  if (options.exclude_pen) {
    const double margin_um = std::max(kPenMarginUm, options.spacing_um);
    cv::dilate(maps.pen, pen_dilated, disk(margin_um, options.spacing_um));
    pen_dilated &= maps.on_slide;
    maps.pen.release();
  }
  cv::Mat candidates = maps.on_slide & ~maps.black;
  maps.black.release();
  if (!pen_dilated.empty()) {
    candidates &= ~pen_dilated;
  }

  const bool is_od = options.method == TissueMethod::kOpticalDensity;
  const double feature_scale = is_od ? kOdScale : 1.0;
  double threshold = 0.0;
  if (options.threshold) {
    threshold = *options.threshold;
  } else {
    const double floor = is_od ? kOpticalDensityFloor : kSaturationFloor;
    threshold = std::max(otsu_threshold(maps.feature, candidates) / feature_scale, floor);
  }
  cv::Mat raw = (maps.feature > threshold * feature_scale) & candidates;
  maps.feature.release();
  candidates.release();
  // Closing and hole filling may reach into pen marks or off the slide: remove them again.
  cv::Mat mask = clean_mask(std::move(raw), options) & maps.on_slide;
  if (!pen_dilated.empty()) {
    mask &= ~pen_dilated;
  }

  TissueMask result;
  result.mask = mask;
  result.spacing_um = options.spacing_um;
  result.slide_spacing = info.spacing;
  result.method = tissue_method_name(options.method);
  result.threshold = threshold;
  const auto total = static_cast<double>(mask.total());
  const auto tissue_pixels = static_cast<double>(cv::countNonZero(mask));
  result.tissue_fraction = total > 0 ? tissue_pixels / total : 0.0;
  result.tissue_area_mm2 = tissue_pixels * options.spacing_um * options.spacing_um / 1e6;
  result.pen_fraction =
      total > 0 && !pen_dilated.empty() ? cv::countNonZero(pen_dilated) / total : 0.0;
  spdlog::info(
      "tissue mask of {}: {}x{} px at {} um/px, {} threshold {:.3g}{}, tissue {:.1f} % "
      "({:.3f} mm2), pen {:.1f} %",
      info.path.string(), mask.cols, mask.rows, options.spacing_um, result.method, threshold,
      options.threshold ? " (fixed)" : " (Otsu)", 100.0 * result.tissue_fraction,
      result.tissue_area_mm2, 100.0 * result.pen_fraction);
  return result;
}

}  // namespace slidestream
