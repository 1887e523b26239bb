// Image files written atomically through OpenCV, checked before any work.
#pragma once

#include <filesystem>
#include <opencv2/core.hpp>
#include <string>

namespace slidestream {

/// Writes an RGB (or grey) image with OpenCV through a temporary file renamed on success.
void write_image_atomically(const cv::Mat& image, const std::filesystem::path& path, bool is_rgb);
/// Writes an image to `file` (e.g. an AtomicOutput's temporary; its extension picks the
/// format); errors name `shown_as`. Throws kOutputError.
void write_image_file(const cv::Mat& image, const std::filesystem::path& file,
                      const std::filesystem::path& shown_as, bool is_rgb);
/// Throws kOutputError, before any work, when OpenCV has no writer for `path`'s extension;
/// `role` names the option ("-o", "--mask").
void require_image_writer(const std::filesystem::path& path, const std::string& role);

}  // namespace slidestream
