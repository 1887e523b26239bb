// The stain stage of the slide jobs (extract, segment, normalize-slide): a job config's `stain:`
// section and the per-tile normalizer built from it.
#pragma once

#include <cstdint>
#include <memory>
#include <opencv2/core.hpp>
#include <optional>
#include <string>

#include "slidestream/core.hpp"
#include "slidestream/io.hpp"
#include "slidestream/stain.hpp"
#include "slidestream/tissue.hpp"

namespace slidestream {

/// Where a stain stage gets the stains it maps onto the target.
enum class StainFitScope {
  kSlide,  ///< fitted once per slide on its tissue tiles (fit_stain_on_slide), the default
  kTile,   ///< fitted on every tile
};

/// "slide" or "tile"; parse throws `code` naming `what` (the config key or the flag).
std::string stain_fit_scope_name(StainFitScope scope);
StainFitScope parse_stain_fit_scope(const std::string& name, const std::string& what,
                                    ErrorCode code = ErrorCode::kInvalidConfig);

/// The `stain:` section of a job config (extract; segment will share it).
struct StainConfig {
  bool enabled = false;                      ///< the section is present
  std::optional<StainMethod> method;         ///< default: the target's (macenko for an image)
  std::string target = "macenko-reference";  ///< params JSON, preset name, or an image to fit
  StainFitScope fit = StainFitScope::kSlide;
  double fit_spacing_um = 2.0;  ///< spacing of the slide-level fit's tiles (um/px)

  /// Throws kInvalidConfig naming the key.
  void validate() const;
};

/// Tile counters of a stain stage, added to from many threads.
struct StainCounts {
  std::int64_t tiles = 0;
  std::int64_t normalized = 0;
  std::int64_t without_tissue = 0;  ///< returned unchanged: no tissue pixel
  std::int64_t degenerate = 0;      ///< returned unchanged: too few stain pixels / one colour
};

/// A pipeline stage normalizing tiles: built once per job (the target is resolved once), then
/// prepared per slide, then `apply` from the parallel stage of run_tile_pipeline.
class StainStage {
 public:
  explicit StainStage(const StainConfig& config);
  ~StainStage();
  StainStage(const StainStage&) = delete;
  StainStage& operator=(const StainStage&) = delete;

  /// With fit slide, fits the slide's own stains on its tissue (mask) at fit_spacing_um; the
  /// counters restart. Not thread-safe: call it before the slide's tiles.
  void begin_slide(const SlideReader& slide, const TissueMask& mask, const std::string& slide_id);
  /// The normalized RGB tile (CV_8UC3, same size). Const and thread-safe.
  cv::Mat apply(const cv::Mat& rgb) const;
  /// The counters since begin_slide.
  StainCounts counts() const;
  const StainParams& target() const { return target_; }

 private:
  struct Counters;
  StainConfig config_;
  StainParams target_;
  std::unique_ptr<StainNormalizer> normalizer_;
  std::unique_ptr<Counters> counters_;
};

}  // namespace slidestream
