// `slidestream tissue`: the tissue mask as PNG plus a JSON report (schema in docs/FORMATS.md).
#include <spdlog/spdlog.h>

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "slidestream/core.hpp"
#include "slidestream/jobs.hpp"

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
  json["slide_mpp"] = {
      {"x", info.spacing.x_um}, {"y", info.spacing.y_um}, {"source", info.spacing_source}};
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
  require_writable_output(job.output);
  require_writable_output(report_path);
  const auto reader = open_slide(job.slide, job.open);
  TissueMask mask = compute_tissue_mask(*reader, job.tissue);
  write_image_atomically(mask.mask, job.output, false);
  const std::string report = tissue_report(job, reader->info(), mask).dump(2) + "\n";
  write_text_atomically(report_path, report);
  if (job.print_json) {
    std::cout << report;
  }
  spdlog::info("wrote {} ({}x{} px at {} um/px) and {}", job.output.string(), mask.mask.cols,
               mask.mask.rows, mask.spacing_um, report_path.string());
  return mask;
}

}  // namespace slidestream
