// What every batch job shares: its slide inputs (files, globs, folders, manifests) and the
// report of how each slide went.
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "slidestream/core.hpp"
#include "slidestream/jobs/stain_stage.hpp"

namespace slidestream {

/// One slide of a batch: its file, its name in outputs, and an optional spacing override.
struct SlideInput {
  std::filesystem::path path;
  std::string id;  ///< unique in the batch; the file stem unless a manifest names it
  std::optional<double> mpp_um;
};

/// Expands files, glob patterns, folders (slide and image files inside, not recursive) and CSV
/// manifests (header `path[,mpp][,id]`, relative paths from the manifest's folder) into slides,
/// in the order given (folders and globs sorted). Throws kNotFound for an input that matches
/// nothing, kInvalidConfig for a bad manifest or duplicate ids.
std::vector<SlideInput> expand_slide_inputs(const std::vector<std::string>& inputs);

/// How one slide of a batch went.
struct SlideOutcome {
  std::string id;
  std::filesystem::path path;
  bool ok = false;
  bool skipped = false;  ///< already in the output (resume)
  ErrorCode code = ErrorCode::kInternal;
  std::string error;
  std::size_t patches = 0;
  double seconds = 0;
  std::optional<StainCounts> stain;  ///< branch patches normalized (config with `stain:`)
};

struct BatchReport {
  std::vector<SlideOutcome> slides;
  std::size_t failed() const;
  /// A table for the terminal: one line per slide, failures with their reason.
  std::string summary() const;
};

}  // namespace slidestream
