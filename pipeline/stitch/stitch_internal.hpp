// Pieces shared by the journal, the merge and the cache reader.
#pragma once

#include <cstdint>
#include <filesystem>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "slidestream/h5.hpp"
#include "slidestream/stitch.hpp"

namespace slidestream::detail {

/// Label values (argmax over channels, ties to the lower channel) of CV_32FC(n) probabilities.
cv::Mat labels_of(const cv::Mat& probs, const std::vector<LabelClass>& classes);
/// Softmax entropy scaled so that 255 = ln(channels) (the maximum), CV_8UC1.
cv::Mat entropy_u8_of(const cv::Mat& probs);
/// Probabilities area-downsampled by `downsample`, as planes stacked vertically (C*h x w, 0..255).
cv::Mat planar_u8_of(const cv::Mat& probs, int downsample);

/// The committed parts of a journal folder, in order.
std::vector<std::filesystem::path> committed_parts(const std::filesystem::path& folder);

struct PartInfo {
  std::string fingerprint;
  std::uint64_t first = 0;  ///< plan position of the part's first tile
  std::uint64_t count = 0;
};
/// Throws kCorruptData naming the part when it cannot be read.
PartInfo read_part_info(const std::filesystem::path& part);

}  // namespace slidestream::detail

namespace slidestream::detail {

/// Writes the layout, record and stats of predictions.h5 as attributes (docs/FORMATS.md).
void write_prediction_record(h5::File& file, const PredictionLayout& layout,
                             const PredictionRecord& record, const MergeStats& stats);

}  // namespace slidestream::detail
