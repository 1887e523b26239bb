#include "slide_driver.hpp"

#include <string>

#include "slidestream/core.hpp"

namespace slidestream::detail {

OpenOptions open_options_for(const SlideInput& input, OpenOptions open) {
  if (input.mpp_um) {
    open.mpp_override_um = input.mpp_um;
  }
  return open;
}

std::unique_ptr<SlideReader> open_input(const SlideInput& input, const OpenOptions& open) {
  return open_slide(input.path, open_options_for(input, open));
}

PatchSet read_tile(const SlideReader& reader, const TileSpec& spec, const ModelGeometry& geometry,
                   const StainStage* stain) {
  PatchSet patches = read_patch_set(reader, spec, geometry);
  if (stain != nullptr) {
    for (cv::Mat& branch : patches.branches) {
      branch = stain->apply(branch);
    }
  }
  return patches;
}

void predict_batch(SegmentationModel& model, TileBatch& batch) {
  std::vector<const PatchSet*> inputs;
  inputs.reserve(batch.patches.size());
  for (const PatchSet& patches : batch.patches) {
    inputs.push_back(&patches);
  }
  std::vector<ModelOutput> outputs = model.predict(inputs);
  if (outputs.size() != batch.specs.size()) {
    throw Error(ErrorCode::kModelError, "the model returned " + std::to_string(outputs.size()) +
                                            " outputs for a batch of " +
                                            std::to_string(batch.specs.size()));
  }
  batch.outputs.clear();
  for (ModelOutput& output : outputs) {
    batch.outputs.push_back(std::move(output.probs));
  }
  batch.patches.clear();  // the pixels are no longer needed
}

std::function<std::optional<TileSpec>()> source_of(TilePlanner& planner) {
  return [&planner] { return planner.next(); };
}

}  // namespace slidestream::detail
