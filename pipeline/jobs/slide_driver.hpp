// The start and the read stage every per-slide flow shares (extract, segment, features,
// stain normalize-slide): the slide opened with its own spacing, and one tile read and normalized.
// The flows differ only in their plan, their infer stage and their sink (docs/ARCHITECTURE.md).
#pragma once

#include <memory>

#include "slidestream/jobs/batch.hpp"
#include "slidestream/jobs/stain_stage.hpp"
#include "slidestream/models/model.hpp"
#include "slidestream/tile_pipeline.hpp"

namespace slidestream::detail {

/// `open` with the slide's own spacing: a manifest's mpp wins over the file's metadata.
OpenOptions open_options_for(const SlideInput& input, OpenOptions open);

/// Opens `input` with open_options_for(input, open).
std::unique_ptr<SlideReader> open_input(const SlideInput& input, const OpenOptions& open);

/// The pipeline's read stage: every branch of `spec`, normalized by `stain` when it is set.
PatchSet read_tile(const SlideReader& reader, const TileSpec& spec, const ModelGeometry& geometry,
                   const StainStage* stain);

/// The infer stage of segment and predict: `model` over the batch's patch sets; outputs = the
/// probabilities, one per tile; the pixels are freed. Throws kModelError when the model returns
/// a different number of outputs.
void predict_batch(SegmentationModel& model, TileBatch& batch);

/// A source walking `planner` from its current position.
std::function<std::optional<TileSpec>()> source_of(TilePlanner& planner);

}  // namespace slidestream::detail
