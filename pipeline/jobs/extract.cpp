// `slidestream extract`: per slide, one streaming pass: tissue mask -> tile plan -> parallel
// read of concentric patch sets (+ labels) -> ordered sink into the dataset.
#include "slidestream/jobs/extract.hpp"

#include <spdlog/spdlog.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "batch.hpp"
#include "dataset_sink.hpp"
#include "slide_driver.hpp"
#include "slidestream/core.hpp"
#include "slidestream/jobs/batch.hpp"
#include "slidestream/jobs/stain_stage.hpp"

namespace fs = std::filesystem;

namespace slidestream {

namespace {

// Where a slide's labels come from: annotations or a label raster (never both).
struct LabelSource {
  std::vector<Annotation> annotations;
  std::optional<LabelRaster> raster;
  bool active() const { return !annotations.empty() || raster.has_value(); }
};

fs::path annotation_file_for(const fs::path& location, const SlideInput& slide) {
  if (!fs::is_directory(location)) {
    return location;
  }
  const std::string stem = slide.path.stem().string();
  for (const char* extension : {".geojson", ".json", ".xml", ".xml.gz", ".geojson.gz"}) {
    fs::path candidate = location / (stem + extension);
    if (fs::exists(candidate)) {
      return candidate;
    }
  }
  throw Error(ErrorCode::kNotFound, "no annotations for slide '" + slide.id + "' in '" +
                                        location.string() + "' (looked for " + stem +
                                        ".geojson, .json, .xml, .xml.gz, .geojson.gz)");
}

// Annotations of classes the label map does not know: an error naming them, or (with
// labels.ignore_unknown) dropped here with one warning per slide, not one per patch.
void drop_unknown_classes(std::vector<Annotation>& annotations, const LabelMap& labels,
                          const std::string& slide_id, const fs::path& file) {
  std::set<std::string> unknown;
  for (const Annotation& annotation : annotations) {
    if (labels.find(annotation.class_name) == nullptr) {
      unknown.insert(annotation.class_name.empty() ? "(unnamed)" : annotation.class_name);
    }
  }
  if (unknown.empty()) {
    return;
  }
  std::string names;
  for (const std::string& name : unknown) {
    names += (names.empty() ? "" : ", ") + name;
  }
  if (!labels.ignore_unknown) {
    throw Error(ErrorCode::kInvalidConfig,
                "'" + file.string() + "' has classes the config's labels.classes do not list: " +
                    names + "; add them, or set labels.ignore_unknown=true (or " +
                    "labels.unnamed_class for unnamed regions)");
  }
  spdlog::warn("{}: ignoring annotations of classes not in the label map: {}", slide_id, names);
  annotations.erase(std::remove_if(annotations.begin(), annotations.end(),
                                   [&](const Annotation& annotation) {
                                     return labels.find(annotation.class_name) == nullptr;
                                   }),
                    annotations.end());
}

LabelSource load_labels(const ExtractJob& job, const SlideInput& slide, const SlideInfo& info) {
  LabelSource source;
  if (job.annotations) {
    const RectF slide_l0{0, 0, static_cast<double>(info.size().width),
                         static_cast<double>(info.size().height)};
    const fs::path file = annotation_file_for(*job.annotations, slide);
    std::vector<Annotation> annotations = read_annotations(file);
    drop_unknown_classes(annotations, job.config.labels, slide.id, file);
    for (Annotation& annotation : annotations) {
      double left = INFINITY, top = INFINITY, right = -INFINITY, bottom = -INFINITY;
      for (const cv::Point2d& point : annotation.rings.front()) {
        left = std::min(left, point.x);
        top = std::min(top, point.y);
        right = std::max(right, point.x);
        bottom = std::max(bottom, point.y);
      }
      if (right <= slide_l0.x || bottom <= slide_l0.y || left >= slide_l0.width ||
          top >= slide_l0.height) {
        spdlog::warn("{}: annotation {} ('{}') lies outside the slide; ignored", slide.id,
                     annotation.source_index, annotation.class_name);
        continue;
      }
      source.annotations.push_back(std::move(annotation));
    }
  }
  if (job.label_raster_pattern) {
    std::string path = *job.label_raster_pattern;
    const std::string placeholder = "{stem}";
    if (const size_t at = path.find(placeholder); at != std::string::npos) {
      path.replace(at, placeholder.size(), slide.path.stem().string());
    }
    source.raster.emplace(path, job.config.label_raster_rule);
    const Size raster = source.raster->size();
    if (raster.width != info.size().width || raster.height != info.size().height) {
      throw Error(ErrorCode::kInvalidConfig,
                  "label raster '" + path + "' is " + std::to_string(raster.width) + "x" +
                      std::to_string(raster.height) + " px but '" + slide.path.string() + "' is " +
                      std::to_string(info.size().width) + "x" + std::to_string(info.size().height) +
                      " px at level 0; a label raster must cover level 0 pixel for pixel");
    }
  }
  return source;
}

std::vector<cv::Mat> labels_for(const LabelSource& source, const TileSpec& spec,
                                const ExtractConfig& config) {
  std::vector<cv::Mat> labels;
  for (size_t b = 0; b < config.geometry.branches.size(); ++b) {
    const Size size = config.geometry.branches[b].size_px;
    labels.push_back(source.raster ? source.raster->sample(spec.branch_l0[b], size)
                                   : rasterize_annotations(source.annotations, config.labels,
                                                           spec.branch_l0[b], size));
  }
  return labels;
}

std::size_t extract_slide(const ExtractJob& job, const SlideInput& slide, detail::DatasetSink& sink,
                          StainStage* stain) {
  const auto reader = detail::open_input(slide, job.open);
  const ExtractConfig& config = job.config;
  const TissueMask mask = compute_tissue_mask(*reader, config.tissue);
  const LabelSource labels = load_labels(job, slide, reader->info());
  if (stain != nullptr) {
    stain->begin_slide(*reader, mask, slide.id);
  }
  PlanOptions plan = config.tiling;
  if (config.tiles_within_annotations) {
    if (labels.annotations.empty()) {
      throw Error(ErrorCode::kInvalidConfig,
                  "tiling.within_annotations needs --annotations with polygons on the slide");
    }
    for (const Annotation& annotation : labels.annotations) {
      plan.restrict_to_polygons_l0.push_back(annotation.rings.front());
    }
  }
  // The plan is walked lazily: memory does not grow with the number of tiles.
  TilePlanner planner(reader->info(), &mask, config.geometry, plan);
  const std::uint64_t tile_count = planner.count();
  spdlog::info("{}: {} tiles with tissue >= {} (tissue {:.1f} % of the slide)", slide.id,
               tile_count, config.tiling.min_tissue_fraction, 100.0 * mask.tissue_fraction);

  SlideRecord record;
  record.slide_id = slide.id;
  record.info = reader->info();
  record.geometry = config.geometry;
  for (const BranchGeometry& branch : config.geometry.branches) {
    record.branch_levels.push_back(reader->level_for_spacing(branch.spacing_um));
  }
  record.config_yaml = config.resolved_yaml();
  record.with_labels = labels.active();

  SchedulerOptions scheduler = config.scheduler;
  scheduler.label = slide.id;
  sink.begin_slide(record);
  try {
    TilePipeline stages;
    stages.source = detail::source_of(planner);
    stages.expected_tiles = tile_count;
    stages.read = [&](const TileSpec& spec) {
      PatchSet patches = detail::read_tile(*reader, spec, config.geometry, stain);
      if (labels.active()) {
        patches.labels = labels_for(labels, spec, config);
      }
      return patches;
    };
    stages.sink = [&](TileBatch&& batch) {
      for (const PatchSet& patches : batch.patches) {
        sink.append(patches);
      }
    };
    run_tile_pipeline(stages, scheduler);
    sink.end_slide();
  } catch (...) {
    sink.abandon_slide();
    throw;
  }
  return static_cast<std::size_t>(tile_count);
}

void write_report(const ExtractJob& job, const BatchReport& report, const fs::path& path) {
  nlohmann::ordered_json json;
  json["schema"] = "slidestream.extract-report/1";
  json["slidestream_version"] = kVersion;
  json["output"] = job.output.string();
  json["config_yaml"] = job.config.resolved_yaml();
  json["slides"] = nlohmann::ordered_json::array();
  for (const SlideOutcome& slide : report.slides) {
    json["slides"].push_back(
        {{"id", slide.id},
         {"path", slide.path.string()},
         {"status", slide.skipped ? "skipped"
                    : slide.ok    ? "ok"
                                  : "failed"},
         {"patches", slide.patches},
         {"seconds", slide.seconds},
         {"error_code", slide.ok || slide.skipped
                            ? nlohmann::ordered_json(nullptr)
                            : nlohmann::ordered_json(std::string(error_code_name(slide.code)))},
         {"error", slide.error}});
    if (slide.stain) {
      json["slides"].back()["stain"] = {{"patches", slide.stain->tiles},
                                        {"normalized", slide.stain->normalized},
                                        {"without_tissue", slide.stain->without_tissue},
                                        {"degenerate", slide.stain->degenerate}};
    }
  }
  json["failed"] = report.failed();
  write_text_atomically(path, json.dump(2) + "\n");
}

// No output may replace a slide, the config or an annotation file of the batch.
void require_outputs_apart(const ExtractJob& job, const std::vector<SlideInput>& slides,
                           const fs::path& report_path) {
  std::vector<NamedPath> inputs;
  inputs.reserve(slides.size() + 2);  // the slides, the config and the annotations
  for (const SlideInput& slide : slides) {
    inputs.push_back({"the slide", slide.path});
  }
  if (job.config.source_path) {
    inputs.push_back({"-c", *job.config.source_path});
  }
  if (job.annotations) {
    inputs.push_back({"--annotations", *job.annotations});
  }
  require_distinct_files(inputs, {{"-o", job.output}, {"the report", report_path}});
}

}  // namespace

BatchReport run_extract(const ExtractJob& job) {
  job.config.validate();
  if (job.annotations && job.label_raster_pattern) {
    throw Error(ErrorCode::kInvalidArgument,
                "give either --annotations or --label-raster, not both");
  }
  const std::vector<SlideInput> slides = expand_slide_inputs(job.inputs);
  const fs::path report_path = job.config.format == "png"
                                   ? job.output / "report.json"
                                   : fs::path(job.output.string() + ".report.json");
  require_outputs_apart(job, slides, report_path);
  std::unique_ptr<detail::DatasetSink> sink =
      job.config.format == "png"
          ? detail::make_png_sink(job.output, job.resume)
          : detail::make_hdf5_sink(job.output, job.config.gzip_level, job.resume);
  sink->require_geometry(job.config.geometry);
  const std::vector<std::string> existing = sink->existing_slides();
  // The stain target is resolved once for the batch; each slide is fitted in begin_slide.
  std::unique_ptr<StainStage> stain;
  if (job.config.stain.enabled) {
    stain = std::make_unique<StainStage>(job.config.stain);
  }

  BatchReport report;
  for (const SlideInput& slide : slides) {
    report.slides.push_back(run_slide(slide, [&](SlideOutcome& result) {
      if (std::find(existing.begin(), existing.end(), slide.id) != existing.end()) {
        result.skipped = true;
        spdlog::info("{}: already in {}, skipped (--resume)", slide.id, job.output.string());
        return;
      }
      result.patches = extract_slide(job, slide, *sink, stain.get());
      if (stain) {
        result.stain = stain->counts();
      }
    }));
  }
  if (report.failed() < report.slides.size()) {
    sink->commit();
    write_report(job, report, report_path);
  }
  return report;
}

}  // namespace slidestream
