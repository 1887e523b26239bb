// Overlay PNG: class colours or a probability heatmap blended over the slide thumbnail, and a
// legend panel to its right (class swatches with names and figures, or a colour bar with ticks),
// all drawn with OpenCV; text is sized from the image so it reads the same at any thumbnail size.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "format.hpp"
#include "slidestream/core.hpp"
#include "slidestream/export.hpp"

namespace fs = std::filesystem;

namespace slidestream {

namespace {

struct ColormapEntry {
  Colormap colormap;
  std::string_view name;
  cv::ColormapTypes opencv;
};

constexpr std::array<ColormapEntry, 5> kColormaps{{
    {Colormap::kViridis, "viridis", cv::COLORMAP_VIRIDIS},
    {Colormap::kMagma, "magma", cv::COLORMAP_MAGMA},
    {Colormap::kInferno, "inferno", cv::COLORMAP_INFERNO},
    {Colormap::kJet, "jet", cv::COLORMAP_JET},
    {Colormap::kTurbo, "turbo", cv::COLORMAP_TURBO},
}};

const ColormapEntry& entry_of(Colormap colormap) {
  for (const ColormapEntry& entry : kColormaps) {
    if (entry.colormap == colormap) {
      return entry;
    }
  }
  throw Error(ErrorCode::kInternal, "colormap without a table entry");
}

/// Text and line sizes for an image whose longer side is `longer_side_px`: text ~1/45 of it,
/// 12..64 px, so a 300 px thumbnail still gets legible 12 px text.
struct LegendStyle {
  explicit LegendStyle(int longer_side_px)
      : text_px(std::clamp(static_cast<int>(std::lround(longer_side_px / 45.0)), 12, 64)),
        font_scale(text_px / 22.0),  // FONT_HERSHEY_SIMPLEX is ~22 px tall at scale 1
        thickness(std::max(1, static_cast<int>(std::lround(text_px / 14.0)))),
        padding(text_px) {}

  cv::Size text_size(const std::string& text) const {
    int baseline = 0;
    return cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, font_scale, thickness, &baseline);
  }
  /// Draws `text` with its top-left corner at `top_left`.
  void put(cv::Mat& canvas, const std::string& text, cv::Point top_left) const {
    cv::putText(canvas, text, top_left + cv::Point(0, text_size(text).height),
                cv::FONT_HERSHEY_SIMPLEX, font_scale, cv::Scalar(0, 0, 0), thickness, cv::LINE_AA);
  }

  int text_px;
  double font_scale;
  int thickness;
  int padding;
};

/// A legend value with about four significant figures.
std::string legend_figure(double value, const std::string& unit) {
  const double magnitude = std::abs(value);
  const int decimals = magnitude >= 1000 ? 0 : magnitude >= 100 ? 1 : magnitude >= 10 ? 2 : 3;
  return export_detail::fixed(value, decimals) + (unit.empty() ? "" : " " + unit);
}

cv::Mat class_legend(const OverlayOptions& options, const LegendStyle& style) {
  std::vector<std::string> lines;
  int text_width = 0;
  for (std::size_t i = 0; i < options.classes.size(); ++i) {
    std::string line = options.classes[i].name;
    if (!options.legend_values.empty()) {
      line += "  " + legend_figure(options.legend_values[i], options.legend_unit);
    }
    text_width = std::max(text_width, style.text_size(line).width);
    lines.push_back(std::move(line));
  }
  const int row_px = style.text_px * 2;
  const int swatch_px = style.text_px + style.text_px / 2;
  const int width = style.padding * 3 + swatch_px + text_width;
  const int height = style.padding * 2 + row_px * static_cast<int>(lines.size());
  cv::Mat panel(height, width, CV_8UC3, cv::Scalar(255, 255, 255));
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const int top = style.padding + row_px * static_cast<int>(i);
    const cv::Rect swatch(style.padding, top, swatch_px, swatch_px);
    const cv::Vec3b& rgb = options.classes[i].colour;
    cv::rectangle(panel, swatch, cv::Scalar(rgb[0], rgb[1], rgb[2]), cv::FILLED);
    cv::rectangle(panel, swatch, cv::Scalar(0, 0, 0), std::max(1, style.thickness / 2));
    style.put(panel, lines[i],
              {style.padding * 2 + swatch_px, top + (swatch_px - style.text_px) / 2});
  }
  return panel;
}

/// The colormap as RGB for values 0..255 of `values8` (CV_8UC1).
cv::Mat colormap_rgb(const cv::Mat& values8, Colormap colormap) {
  cv::Mat bgr;
  cv::applyColorMap(values8, bgr, entry_of(colormap).opencv);
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

cv::Mat colour_bar_legend(const OverlayOptions& options, const LegendStyle& style,
                          int image_height) {
  const int bar_height = std::max(style.text_px * 8, image_height * 6 / 10);
  const int bar_width = style.text_px * 2;
  const std::string title =
      options.heatmap_title + " (shown >= " + export_detail::fixed(options.threshold, 2) + ")";
  const int tick_px = style.text_px / 2;
  const int label_width = style.text_size("0.00").width;
  const int width = std::max(style.padding * 2 + style.text_size(title).width,
                             style.padding * 3 + bar_width + tick_px + label_width);
  const int bar_top = style.padding * 2 + style.text_px + style.text_px / 2;
  const int height = bar_top + bar_height + style.padding * 2;
  cv::Mat panel(height, width, CV_8UC3, cv::Scalar(255, 255, 255));
  style.put(panel, title, {style.padding, style.padding});
  // Top of the bar is 1.0, bottom 0.0; values below the threshold are washed out (transparent).
  cv::Mat ramp(bar_height, 1, CV_8UC1);
  for (int row = 0; row < bar_height; ++row) {
    ramp.at<std::uint8_t>(row) =
        cv::saturate_cast<std::uint8_t>(255.0 * (bar_height - 1 - row) / (bar_height - 1));
  }
  cv::Mat bar = colormap_rgb(ramp, options.colormap);
  const int threshold_row =
      static_cast<int>(std::lround((1.0 - options.threshold) * (bar_height - 1)));
  cv::Mat below = bar.rowRange(std::min(threshold_row + 1, bar_height), bar_height);
  below.convertTo(below, -1, 0.35, 255.0 * 0.65);
  const cv::Rect bar_rect(style.padding, bar_top, bar_width, bar_height);
  cv::resize(bar, panel(bar_rect), bar_rect.size(), 0, 0, cv::INTER_NEAREST);
  cv::rectangle(panel, bar_rect, cv::Scalar(0, 0, 0), 1);
  for (int tick = 0; tick <= 4; ++tick) {
    const double value = tick / 4.0;
    const int y = bar_top + static_cast<int>(std::lround((1.0 - value) * (bar_height - 1)));
    const int x = bar_rect.x + bar_width;
    cv::line(panel, {x, y}, {x + tick_px, y}, cv::Scalar(0, 0, 0), style.thickness);
    style.put(panel, export_detail::fixed(value, 2),
              {x + tick_px + style.padding / 2, y - style.text_px / 2});
  }
  return panel;
}

/// The thumbnail with the legend panel to its right (white below the shorter of the two).
cv::Mat with_panel(const cv::Mat& image, const cv::Mat& panel) {
  cv::Mat canvas(std::max(image.rows, panel.rows), image.cols + panel.cols, CV_8UC3,
                 cv::Scalar(255, 255, 255));
  image.copyTo(canvas(cv::Rect(0, 0, image.cols, image.rows)));
  panel.copyTo(canvas(cv::Rect(image.cols, 0, panel.cols, panel.rows)));
  return canvas;
}

/// `values` at the thumbnail's size, after checking that only rounding separates them.
cv::Mat fit_to(const cv::Mat& values, cv::Size size, int interpolation) {
  if (values.size() == size) {
    return values;
  }
  const double aspect_values = static_cast<double>(values.cols) / values.rows;
  const double aspect_thumbnail = static_cast<double>(size.width) / size.height;
  if (std::abs(aspect_values / aspect_thumbnail - 1.0) > 0.02) {
    throw Error(ErrorCode::kInvalidArgument,
                "overlay: the map (" + std::to_string(values.cols) + "x" +
                    std::to_string(values.rows) + ") and the thumbnail (" +
                    std::to_string(size.width) + "x" + std::to_string(size.height) +
                    ") do not cover the same area; read both at the overlay spacing");
  }
  spdlog::debug("overlay: map {}x{} resized to the thumbnail {}x{}", values.cols, values.rows,
                size.width, size.height);
  cv::Mat fitted;
  cv::resize(values, fitted, size, 0, 0, interpolation);
  return fitted;
}

/// Class colours over the thumbnail (filled and blended, or opaque outlines).
cv::Mat draw_classes(const cv::Mat& thumbnail, const cv::Mat& labels,
                     const OverlayOptions& options) {
  cv::Mat colour_lut(1, 256, CV_8UC3, cv::Scalar(0, 0, 0));
  cv::Mat known_lut(1, 256, CV_8UC1, cv::Scalar(0));
  for (const LabelClass& label_class : options.classes) {
    if (label_class.value != 0) {
      colour_lut.at<cv::Vec3b>(label_class.value) = label_class.colour;
      known_lut.at<std::uint8_t>(label_class.value) = 255;
    }
  }
  cv::Mat labels3;
  cv::merge(std::vector<cv::Mat>{labels, labels, labels}, labels3);
  cv::Mat colours;
  cv::LUT(labels3, colour_lut, colours);
  cv::Mat drawn_mask;
  cv::LUT(labels, known_lut, drawn_mask);
  cv::Mat out = thumbnail.clone();
  if (options.outline_only) {
    const int longer = std::max(thumbnail.cols, thumbnail.rows);
    const int thickness = options.outline_thickness_px > 0
                              ? options.outline_thickness_px
                              : std::max(1, static_cast<int>(std::lround(longer / 500.0)));
    const cv::Mat kernel =
        cv::getStructuringElement(cv::MORPH_RECT, cv::Size(2 * thickness + 1, 2 * thickness + 1));
    cv::Mat highest;
    cv::Mat lowest;
    cv::dilate(labels, highest, kernel, {-1, -1}, 1, cv::BORDER_REPLICATE);
    cv::erode(labels, lowest, kernel, {-1, -1}, 1, cv::BORDER_REPLICATE);
    drawn_mask &= (highest != lowest);  // pixels of a class within `thickness` of a change
    colours.copyTo(out, drawn_mask);
    return out;
  }
  cv::Mat blended;
  cv::addWeighted(thumbnail, 1.0 - options.alpha, colours, options.alpha, 0.0, blended);
  blended.copyTo(out, drawn_mask);
  return out;
}

/// A heatmap over the thumbnail: colormapped probabilities, transparent below the threshold.
cv::Mat draw_heatmap(const cv::Mat& thumbnail, const cv::Mat& probabilities,
                     const OverlayOptions& options) {
  cv::Mat unit;  // CV_32F 0..1
  probabilities.convertTo(unit, CV_32F, probabilities.depth() == CV_8U ? 1.0 / 255.0 : 1.0);
  cv::Mat values8;
  unit.convertTo(values8, CV_8U, 255.0);
  cv::Mat shown = unit >= options.threshold;
  cv::Mat blended;
  cv::addWeighted(thumbnail, 1.0 - options.alpha, colormap_rgb(values8, options.colormap),
                  options.alpha, 0.0, blended);
  cv::Mat out = thumbnail.clone();
  blended.copyTo(out, shown);
  return out;
}

}  // namespace

Colormap parse_colormap(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::string valid;
  for (const ColormapEntry& entry : kColormaps) {
    if (entry.name == lower) {
      return entry.colormap;
    }
    valid += (valid.empty() ? "" : ", ") + std::string(entry.name);
  }
  throw Error(ErrorCode::kInvalidArgument,
              "unknown colormap '" + std::string(name) + "'; valid: " + valid);
}

std::string_view colormap_name(Colormap colormap) {
  return entry_of(colormap).name;
}

void OverlayOptions::validate() const {
  if (!(alpha >= 0.0 && alpha <= 1.0)) {
    throw Error(
        ErrorCode::kInvalidArgument,
        "overlay: alpha must be in 0..1 (0 invisible, 1 opaque), got " + std::to_string(alpha));
  }
  if (!(threshold >= 0.0 && threshold <= 1.0)) {
    throw Error(ErrorCode::kInvalidArgument,
                "overlay: the heatmap threshold must be a probability in 0..1, got " +
                    std::to_string(threshold));
  }
  if (outline_thickness_px < 0) {
    throw Error(ErrorCode::kInvalidArgument,
                "overlay: outline_thickness_px must be >= 0 (0 = from the image size)");
  }
  if (!legend_values.empty() && legend_values.size() != classes.size()) {
    throw Error(ErrorCode::kInvalidArgument,
                "overlay: " + std::to_string(legend_values.size()) + " legend values for " +
                    std::to_string(classes.size()) + " classes; give one per class or none");
  }
}

cv::Mat render_overlay(const cv::Mat& thumbnail_rgb, const cv::Mat& values,
                       const OverlayOptions& options) {
  options.validate();
  if (thumbnail_rgb.empty() || thumbnail_rgb.type() != CV_8UC3) {
    throw Error(ErrorCode::kInvalidArgument, "overlay: the thumbnail must be an RGB CV_8UC3 image");
  }
  const bool classes = options.mode == OverlayMode::kClasses;
  if (values.empty() || values.channels() != 1 ||
      (values.depth() != CV_8U && (classes || values.depth() != CV_32F))) {
    throw Error(ErrorCode::kInvalidArgument,
                classes ? "overlay: class maps must be CV_8UC1 label values"
                        : "overlay: probability maps must be CV_8UC1 (0..255) or CV_32FC1 (0..1)");
  }
  const cv::Mat fitted =
      fit_to(values, thumbnail_rgb.size(), classes ? cv::INTER_NEAREST : cv::INTER_LINEAR);
  cv::Mat image = classes ? draw_classes(thumbnail_rgb, fitted, options)
                          : draw_heatmap(thumbnail_rgb, fitted, options);
  if (!options.draw_legend || (classes && options.classes.empty())) {
    return image;
  }
  const LegendStyle style(std::max(thumbnail_rgb.cols, thumbnail_rgb.rows));
  return with_panel(image, classes ? class_legend(options, style)
                                   : colour_bar_legend(options, style, image.rows));
}

void write_png_atomically(const cv::Mat& image_rgb, const fs::path& path) {
  require_writable_output(path);
  AtomicOutput output(path);
  cv::Mat bgr;
  cv::cvtColor(image_rgb, bgr, image_rgb.channels() == 3 ? cv::COLOR_RGB2BGR : cv::COLOR_GRAY2BGR);
  bool written = false;
  try {
    written = cv::imwrite(output.temp_path().string(), bgr);
  } catch (const cv::Exception& error) {
    throw Error(ErrorCode::kOutputError,
                "cannot write '" + path.string() + "': " + error.what() + " (use a .png name)");
  }
  if (!written) {
    throw Error(ErrorCode::kOutputError, "cannot write '" + path.string() +
                                             "'; check the extension (.png) and free disk space");
  }
  output.commit();
}

}  // namespace slidestream
