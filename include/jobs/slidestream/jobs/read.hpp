// `slidestream read`: one patch at a spacing, or an associated image, as PNG.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "slidestream/geometry.hpp"
#include "slidestream/io.hpp"

namespace slidestream {

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

  /// Throws kInvalidArgument for inconsistent options or outputs that would overwrite the
  /// slide or each other, kOutputError for outputs that cannot be written.
  void validate() const;
  /// `<output>.json`
  std::filesystem::path sidecar_path() const;
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

}  // namespace slidestream
