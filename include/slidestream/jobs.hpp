// slidestream jobs: each user-facing job takes a validated options struct and does all the
// work; the CLI only fills the struct (docs/CLI.md).
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "slidestream/io.hpp"
#include "slidestream/synth.hpp"

namespace slidestream {

/// `slidestream info`: the slide's metadata as stable JSON (schema in docs/FORMATS.md).
std::string slide_info_json(const SlideInfo& info);
/// `slidestream info`: the same for people, as an aligned text table.
std::string slide_info_text(const SlideInfo& info);

/// `slidestream read`: one patch at a spacing, written as PNG with a JSON sidecar.
struct ReadJob {
  std::filesystem::path slide;
  OpenOptions open;
  double spacing_um = 0;           ///< output spacing, um/px
  Size size_px;                    ///< output size
  std::optional<Point> center_l0;  ///< exactly one of center_l0 / origin_l0
  std::optional<Point> origin_l0;
  std::filesystem::path output;                      ///< .png (or any OpenCV-writable extension)
  std::optional<std::filesystem::path> mask_output;  ///< validity mask PNG (255 = on slide)

  /// Throws kInvalidArgument for inconsistent options.
  void validate() const;
};

/// What `run_read` wrote; also the content of its sidecar `<output>.json`.
struct ReadResult {
  Patch patch;
  std::filesystem::path sidecar;
};

ReadResult run_read(const ReadJob& job);

/// `slidestream read --associated NAME`: an associated image (thumbnail, label, macro) as PNG.
void run_read_associated(const std::filesystem::path& slide, const OpenOptions& open,
                         const std::string& name, const std::filesystem::path& output);

/// Writes an RGB (or grey) image with OpenCV through a temporary file renamed on success.
void write_image_atomically(const cv::Mat& image, const std::filesystem::path& path, bool is_rgb);

}  // namespace slidestream
