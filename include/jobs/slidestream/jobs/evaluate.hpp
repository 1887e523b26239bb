// `slidestream evaluate`: a predicted label image against the truth: Dice, IoU, confusion.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "slidestream/geometry.hpp"
#include "slidestream/label_class.hpp"
#include "slidestream/training/metrics.hpp"

namespace slidestream {

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

/// "background=0,nucleus=1" -> classes; throws kInvalidArgument naming the bad item.
std::vector<LabelClass> parse_class_list(const std::string& text);

/// Throws kNotFound, kUnsupportedFormat (not 8-bit) or kInvalidArgument (sizes differ).
EvaluationReport run_evaluate(const EvaluateJob& job);

}  // namespace slidestream
