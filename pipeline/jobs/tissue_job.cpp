// `slidestream tissue`: the tissue mask as PNG plus a JSON report (schema in docs/FORMATS.md).
#include <spdlog/spdlog.h>

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "slidestream/core.hpp"
#include "slidestream/jobs/image_output.hpp"
#include "slidestream/jobs/tissue.hpp"

namespace fs = std::filesystem;

namespace slidestream {

namespace {

nlohmann::ordered_json tissue_report(const TissueJob& job, const SlideInfo& info,
                                     const TissueMask& mask) {
  nlohmann::ordered_json json;
  json["schema"] = "slidestream.tissue/1";
  json["slide"] = info.path.string();
  json["quickhash"] = info.quickhash.empty() ? nlohmann::ordered_json(nullptr)
                                             : nlohmann::ordered_json(info.quickhash);
  json["slide_mpp"] = {{"x", info.spacing.x_um},
                       {"y", info.spacing.y_um},
                       {"source", spacing_source_name(info.spacing_source)}};
  json["output"] = job.output.string();
  json["spacing_um"] = mask.spacing_um;
  json["width"] = mask.mask.cols;
  json["height"] = mask.mask.rows;
  json["method"] = mask.method;
  json["threshold"] = mask.threshold;
  json["tissue_fraction"] = mask.tissue_fraction;
  json["tissue_area_mm2"] = mask.tissue_area_mm2;
  json["pen_fraction"] = mask.pen_fraction;
  const TissueOptions& options = job.tissue;
  json["options"] = {
      {"spacing_um", options.spacing_um},
      {"method", tissue_method_name(options.method)},
      {"threshold", options.threshold ? nlohmann::ordered_json(*options.threshold)
                                      : nlohmann::ordered_json(nullptr)},
      {"close_radius_um", options.close_radius_um},
      {"open_radius_um", options.open_radius_um},
      {"min_tissue_area_um2", options.min_tissue_area_um2},
      {"max_hole_area_um2", options.max_hole_area_um2},
      {"exclude_pen", options.exclude_pen},
  };
  return json;
}

}  // namespace

TissueMask run_tissue(const TissueJob& job) {
  job.tissue.validate();
  const fs::path report_path(job.output.string() + ".json");
  require_distinct_files({{"the slide", job.slide}},
                         {{"-o", job.output}, {"the report", report_path}});
  require_writable_output(job.output);
  require_writable_output(report_path);
  require_image_writer(job.output, "-o");
  const auto reader = open_slide(job.slide, job.open);
  TissueMask mask = compute_tissue_mask(*reader, job.tissue);
  const std::string report = tissue_report(job, reader->info(), mask).dump(2) + "\n";
  // The mask and its report appear together or not at all.
  AtomicOutput mask_output(job.output);
  AtomicOutput report_output(report_path);
  write_image_file(mask.mask, mask_output.temp_path(), job.output, false);
  {
    std::ofstream file(report_output.temp_path());
    file << report;
    if (!file) {
      throw Error(ErrorCode::kOutputError, "cannot write '" + report_path.string() + "'");
    }
  }
  mask_output.commit();
  report_output.commit();
  if (job.print_json) {
    std::cout << report;
  }
  spdlog::info("wrote {} ({}x{} px at {} um/px) and {}", job.output.string(), mask.mask.cols,
               mask.mask.rows, mask.spacing_um, report_path.string());
  return mask;
}

}  // namespace slidestream
