// slidestream predict: one image or slide region through a segmentation model, tiled with the
// model's own geometry and stitched in memory into a label PNG (+ a probability TIFF).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "slidestream/io.hpp"
#include "slidestream/models/model.hpp"
#include "slidestream/tile_pipeline.hpp"

namespace slidestream {

/// `slidestream predict`: a model over one image or a slide region, tiled with the model's
/// geometry (stride = output size for valid models; half of it, averaged, for same-padded ones).
struct PredictJob {
  std::filesystem::path model_dir;
  std::filesystem::path image;
  OpenOptions open;                                   ///< --mpp, --backend, --channels
  std::filesystem::path labels_output;                ///< PNG of class values at the output spacing
  std::optional<std::filesystem::path> probs_output;  ///< multi-page TIFF, one uint8 page/class
  std::optional<Rect> region_l0;                      ///< level-0 px; default: the whole image
  InferenceOptions inference;
  int batch_size = 8;          ///< patch sets per forward pass
  SchedulerOptions scheduler;  ///< threads reading tiles, progress bar

  /// Throws kInvalidArgument naming the bad option.
  void validate() const;
};

struct PredictResult {
  Size labels_size_px;  ///< at the model's output spacing
  double output_spacing_um = 0;
  std::uint64_t tiles = 0;
  std::string device;
};

/// Runs `job`; writes the outputs atomically. Errors as load_model and open_slide.
PredictResult run_predict(const PredictJob& job);

}  // namespace slidestream
