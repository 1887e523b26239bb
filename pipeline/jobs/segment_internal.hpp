// Pieces of the segment job shared by its files (not a public API).
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "slidestream/jobs/segment.hpp"

namespace slidestream::detail {

/// Seconds spent per stage of one slide (read and write are summed over worker threads).
struct StageTimes {
  double tissue_s = 0;
  double plan_s = 0;
  double read_s = 0;
  double inference_s = 0;
  double write_s = 0;
  double pipeline_s = 0;  ///< wall time of the streaming pass
  double merge_s = 0;
  double export_s = 0;
};

/// What segmenting one slide produced, for its report.json and the batch summary.
struct SlideResult {
  std::uint64_t planned = 0;
  std::uint64_t processed = 0;  ///< run in this process
  std::uint64_t resumed = 0;    ///< taken from the journal of an earlier run
  bool skipped = false;         ///< finished earlier with the same model and config (--resume)
  StageTimes times;
};

/// Segments one slide into `slide_dir` (created): journal, predictions.h5, exports and
/// report.json, in that order. Throws Error for anything that fails the slide.
SlideResult segment_slide(const SegmentJob& job, SegmentationModel& model, const SlideInput& input,
                          const std::filesystem::path& slide_dir);

/// The model sha256 and a hash of the resolved config: what makes two runs interchangeable.
std::string run_fingerprint(const SegmentationModel& model, const SegmentConfig& config);

/// Peak resident memory of this process so far, in MiB.
double peak_rss_mib();

/// The exports of `job.slide_dir` drawn from an open cache (run_export and segment share it).
std::vector<std::filesystem::path> export_from_cache(const ExportJob& job,
                                                     const PredictionCache& cache);

/// Versions of the libraries that shape the outputs.
nlohmann::ordered_json library_versions();

}  // namespace slidestream::detail
