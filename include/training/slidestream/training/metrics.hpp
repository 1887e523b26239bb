// Segmentation metrics: the confusion matrix and the Dice and IoU read from it.
#pragma once

#include <cstdint>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

namespace slidestream {

/// Confusion matrix of class indices 0..n-1 (rows truth, columns prediction).
class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(int classes);
  /// Adds two CV_8UC1 index images of the same size; pixels whose truth is `ignore` (or >= n)
  /// are skipped. Throws kInvalidArgument for a size mismatch.
  void add(const cv::Mat& truth, const cv::Mat& prediction, int ignore = 255);
  void merge(const ConfusionMatrix& other);
  /// Adds `pixels` to cell (truth, prediction).
  void add_count(int truth, int prediction, std::int64_t pixels);
  int classes() const { return classes_; }
  std::int64_t count(int truth, int prediction) const;
  std::int64_t total() const;
  /// 2 TP / (2 TP + FP + FN); NaN when the class is absent from both truth and prediction.
  double dice(int k) const;
  /// TP / (TP + FP + FN); NaN as for dice.
  double iou(int k) const;
  double accuracy() const;
  /// Mean over classes whose Dice is defined (not NaN), optionally leaving class 0 out.
  double mean_dice(bool skip_first = false) const;

 private:
  int classes_;
  std::vector<std::int64_t> counts_;
};

}  // namespace slidestream
