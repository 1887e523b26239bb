// The training plot: loss and mean validation Dice per epoch, drawn with OpenCV.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "slidestream/core.hpp"
#include "slidestream/training/log.hpp"

namespace fs = std::filesystem;

namespace slidestream {

namespace {

constexpr int kWidth = 900;
constexpr int kHeight = 520;
constexpr int kLeft = 80;
constexpr int kRight = 80;
constexpr int kTop = 40;
constexpr int kBottom = 60;
// Colours (BGR) as functions: cv::Scalar constructors may throw, so no static objects.
cv::Scalar axis_colour() {
  return {40, 40, 40};
}
cv::Scalar train_colour() {
  return {200, 80, 20};
}  // blue
cv::Scalar val_colour() {
  return {230, 170, 90};
}  // light blue
cv::Scalar dice_colour() {
  return {30, 30, 210};
}  // red

std::string number(double value, const char* format) {
  char text[32];
  std::snprintf(text, sizeof(text), format, value);
  return text;
}

void text(cv::Mat& canvas, const std::string& s, cv::Point at, const cv::Scalar& colour) {
  cv::putText(canvas, s, at, cv::FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv::LINE_AA);
}

// Polyline of (epoch, value) mapped into the plot area; NaN values break the line.
void curve(cv::Mat& canvas, const std::vector<EpochRecord>& records, double max_epoch,
           double max_value, const cv::Scalar& colour, double (*value)(const EpochRecord&)) {
  const double w = kWidth - kLeft - kRight;
  const double h = kHeight - kTop - kBottom;
  std::vector<cv::Point> points;
  auto flush = [&] {
    if (points.size() == 1) {
      cv::circle(canvas, points[0], 3, colour, cv::FILLED, cv::LINE_AA);
    }
    cv::polylines(canvas, points, false, colour, 2, cv::LINE_AA);
    points.clear();
  };
  for (const EpochRecord& r : records) {
    const double v = value(r);
    if (!std::isfinite(v)) {
      flush();
      continue;
    }
    const double x = kLeft + w * (max_epoch <= 1 ? 0.5 : (r.epoch - 1) / (max_epoch - 1));
    const double y = kTop + h * (1 - std::clamp(v / max_value, 0.0, 1.0));
    points.emplace_back(static_cast<int>(std::lround(x)), static_cast<int>(std::lround(y)));
  }
  flush();
}

}  // namespace

void write_training_plot(const std::vector<EpochRecord>& records, const fs::path& path) {
  cv::Mat canvas(kHeight, kWidth, CV_8UC3, cv::Scalar::all(255));
  const cv::Point origin(kLeft, kHeight - kBottom);
  cv::rectangle(canvas, cv::Point(kLeft, kTop), cv::Point(kWidth - kRight, kHeight - kBottom),
                axis_colour(), 1);
  double max_loss = 0;
  for (const EpochRecord& r : records) {
    for (const double v : {r.train_loss, r.val_loss}) {
      if (std::isfinite(v)) {
        max_loss = std::max(max_loss, v);
      }
    }
  }
  max_loss = max_loss > 0 ? max_loss * 1.05 : 1;
  const double max_epoch = records.empty() ? 1 : records.back().epoch;
  const int h = kHeight - kTop - kBottom;
  for (int i = 0; i <= 5; ++i) {
    const int y = kTop + h * (5 - i) / 5;
    cv::line(canvas, cv::Point(kLeft - 5, y), cv::Point(kLeft, y), axis_colour());
    cv::line(canvas, cv::Point(kWidth - kRight, y), cv::Point(kWidth - kRight + 5, y),
             axis_colour());
    text(canvas, number(max_loss * i / 5, "%.3f"), cv::Point(8, y + 4), train_colour());
    text(canvas, number(i / 5.0, "%.1f"), cv::Point(kWidth - kRight + 10, y + 4), dice_colour());
  }
  const int ticks = static_cast<int>(std::min(10.0, max_epoch));
  for (int i = 0; i < ticks; ++i) {
    const double epoch = ticks <= 1 ? 1 : 1 + (max_epoch - 1) * i / (ticks - 1);
    const int x = kLeft + static_cast<int>((kWidth - kLeft - kRight) *
                                           (max_epoch <= 1 ? 0.5 : (epoch - 1) / (max_epoch - 1)));
    cv::line(canvas, cv::Point(x, origin.y), cv::Point(x, origin.y + 5), axis_colour());
    text(canvas, number(std::round(epoch), "%.0f"), cv::Point(x - 6, origin.y + 20), axis_colour());
  }
  text(canvas, "epoch", cv::Point(kWidth / 2 - 20, kHeight - 15), axis_colour());
  text(canvas, "loss", cv::Point(8, kTop - 15), train_colour());
  text(canvas, "mean Dice", cv::Point(kWidth - kRight - 10, kTop - 15), dice_colour());
  curve(canvas, records, max_epoch, max_loss, train_colour(),
        [](const EpochRecord& r) { return r.train_loss; });
  curve(canvas, records, max_epoch, max_loss, val_colour(),
        [](const EpochRecord& r) { return r.val_loss; });
  curve(canvas, records, max_epoch, 1.0, dice_colour(),
        [](const EpochRecord& r) { return r.val_mean_dice; });
  // Legend, top right inside the plot.
  const cv::Scalar colours[] = {train_colour(), val_colour(), dice_colour()};
  const char* names[] = {"train loss", "validation loss", "validation mean Dice"};
  for (int i = 0; i < 3; ++i) {
    const cv::Point at(kWidth - kRight - 210, kTop + 20 + 20 * i);
    cv::line(canvas, at, at + cv::Point(30, 0), colours[i], 2, cv::LINE_AA);
    text(canvas, names[i], at + cv::Point(38, 4), axis_colour());
  }
  AtomicOutput output(path);
  if (!cv::imwrite(output.temp_path().string(), canvas)) {
    throw Error(ErrorCode::kOutputError, "cannot write the training plot '" + path.string() + "'");
  }
  output.commit();
}

}  // namespace slidestream
