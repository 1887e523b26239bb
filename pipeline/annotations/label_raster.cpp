// Label images aligned with level 0 (e.g. MoNuSeg instance maps), mapped to labels by a rule and
// sampled nearest-neighbour for any field of view.
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <opencv2/imgcodecs.hpp>

#include "slidestream/annotations.hpp"
#include "slidestream/core.hpp"

namespace fs = std::filesystem;

namespace slidestream {

namespace {

constexpr const char* kNonzeroPrefix = "nonzero:";

/// The label given to non-zero pixels by "nonzero:V", or nullopt for "identity".
std::optional<std::uint8_t> parse_rule(const std::string& rule) {
  if (rule == "identity") {
    return std::nullopt;
  }
  const std::string prefix = kNonzeroPrefix;
  if (rule.compare(0, prefix.size(), prefix) == 0) {
    const std::string digits = rule.substr(prefix.size());
    char* end = nullptr;
    errno = 0;
    const long value = std::strtol(digits.c_str(), &end, 10);
    if (!digits.empty() && end == digits.c_str() + digits.size() && errno == 0 && value >= 1 &&
        value <= 255) {
      return static_cast<std::uint8_t>(value);
    }
  }
  throw Error(ErrorCode::kInvalidConfig, "label raster rule '" + rule +
                                             "' is not valid; use 'identity' or 'nonzero:V' "
                                             "with V in 1..255 (e.g. nonzero:1)");
}

/// For each output index, the raster index its centre falls in, or -1 off the raster.
std::vector<int> nearest_indices(double origin, double extent, std::int64_t count, int limit) {
  std::vector<int> indices(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) {
    const double position =
        origin + (static_cast<double>(i) + 0.5) * extent / static_cast<double>(count);
    const double pixel = std::floor(position);
    indices[static_cast<std::size_t>(i)] =
        pixel >= 0 && pixel < limit ? static_cast<int>(pixel) : -1;
  }
  return indices;
}

}  // namespace

LabelRaster::LabelRaster(const fs::path& path, const std::string& rule) {
  const std::optional<std::uint8_t> nonzero_label = parse_rule(rule);
  require_readable_file(path);
  const cv::Mat image = cv::imread(path.string(), cv::IMREAD_UNCHANGED);
  if (image.empty()) {
    throw Error(ErrorCode::kUnsupportedFormat,
                "label raster '" + path.string() + "' cannot be decoded by OpenCV");
  }
  if (image.channels() != 1 || (image.depth() != CV_8U && image.depth() != CV_16U)) {
    throw Error(ErrorCode::kInvalidConfig,
                "label raster '" + path.string() + "' has " + std::to_string(image.channels()) +
                    " channel(s) of OpenCV depth " + std::to_string(image.depth()) +
                    "; labels must be one 8- or 16-bit channel (a grayscale image)");
  }
  if (nonzero_label) {
    cv::compare(image, 0, labels_, cv::CMP_NE);  // 255 where non-zero
    labels_ &= *nonzero_label;
    return;
  }
  double max_value = 0;
  cv::minMaxLoc(image, nullptr, &max_value);
  if (max_value > 255) {
    throw Error(ErrorCode::kInvalidConfig,
                "label raster '" + path.string() + "' holds values up to " +
                    std::to_string(static_cast<long>(max_value)) +
                    ", beyond the 8-bit labels of rule 'identity'; use 'nonzero:V' for "
                    "instance maps");
  }
  image.convertTo(labels_, CV_8U);
}

Size LabelRaster::size() const {
  return Size{labels_.cols, labels_.rows};
}

cv::Mat LabelRaster::sample(const RectF& fov_l0, Size size_px) const {
  if (size_px.width <= 0 || size_px.height <= 0) {
    throw Error(ErrorCode::kInvalidArgument, "LabelRaster::sample: empty output size");
  }
  const std::vector<int> columns =
      nearest_indices(fov_l0.x, fov_l0.width, size_px.width, labels_.cols);
  const std::vector<int> rows =
      nearest_indices(fov_l0.y, fov_l0.height, size_px.height, labels_.rows);
  cv::Mat output =
      cv::Mat::zeros(static_cast<int>(size_px.height), static_cast<int>(size_px.width), CV_8UC1);
  for (int r = 0; r < output.rows; ++r) {
    const int source_row = rows[static_cast<std::size_t>(r)];
    if (source_row < 0) {
      continue;
    }
    const auto* source = labels_.ptr<std::uint8_t>(source_row);
    auto* target = output.ptr<std::uint8_t>(r);
    for (int c = 0; c < output.cols; ++c) {
      const int source_column = columns[static_cast<std::size_t>(c)];
      if (source_column >= 0) {
        target[c] = source[source_column];
      }
    }
  }
  return output;
}

}  // namespace slidestream
