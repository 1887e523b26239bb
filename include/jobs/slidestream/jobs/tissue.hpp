// `slidestream tissue`: a slide's tissue mask as PNG with its JSON report.
#pragma once

#include <filesystem>

#include "slidestream/io.hpp"
#include "slidestream/tissue.hpp"

namespace slidestream {

/// `slidestream tissue`: the tissue mask of a slide as PNG (255 = tissue) and its JSON report.
struct TissueJob {
  std::filesystem::path slide;
  OpenOptions open;
  TissueOptions tissue;
  std::filesystem::path output;  ///< mask PNG; the report goes to <output>.json
  bool print_json = false;       ///< also print the report on stdout
};
/// Writes the mask and report atomically; returns the mask.
TissueMask run_tissue(const TissueJob& job);

}  // namespace slidestream
