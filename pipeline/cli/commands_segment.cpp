// `slidestream segment` and `slidestream export`.
#include <iostream>
#include <memory>

#include "commands.hpp"
#include "slidestream/core.hpp"
#include "slidestream/segment.hpp"

namespace fs = std::filesystem;

namespace slidestream::cli {

void define_segment(CLI::App& app) {
  struct Options {
    std::vector<std::string> slides;
    std::string model;
    std::string config;
    std::string output;
    std::vector<std::string> overrides;
    int threads = -1;
    std::string device;
    std::string precision;
    int batch_size = -1;
    bool resume = false;
    std::string shard;
    bool heatmaps = false;
    bool uncertainty = false;
    double overlay_spacing = -1;
    SlideOptions slide;
  };
  auto options = std::make_shared<Options>();
  app.add_option("SLIDES", options->slides,
                 "Slide files, glob patterns, folders, or CSV manifests (path[,mpp][,id])")
      ->required();
  app.add_option("--model", options->model,
                 "Model folder with model.yaml (slidestream train, or a TorchScript export)")
      ->required();
  app.add_option("-c,--config", options->config,
                 "Segment config YAML (configs/segment.yaml); defaults: tissue >= 5 % per tile, "
                 "labels.tif + overlay.png + GeoJSON + ASAP XML");
  app.add_option("-o,--output", options->output,
                 "Output folder: one sub-folder per slide id, plus batch_report.json")
      ->required();
  app.add_option("--set", options->overrides,
                 "Override a config value: section.key=value (repeatable), e.g. "
                 "outputs.heatmaps=true");
  app.add_option("--threads", options->threads, "Threads reading patch sets (0 = all cores)");
  app.add_option("--device", options->device, "auto (CUDA if present), cpu, cuda or cuda:N");
  app.add_option("--precision", options->precision,
                 "fp32, fp16 or bf16 (half precisions on CUDA only; CPU runs fp32)");
  app.add_option("--batch-size", options->batch_size, "Patch sets per forward pass (default 8)");
  app.add_flag("--resume", options->resume,
               "Skip slides finished with the same model and config; continue partial ones "
               "from their journal");
  app.add_option(
      "--shard", options->shard,
      "Process share I/N of the slides (slide k goes to shard k mod N + 1); default "
      "from SLURM_ARRAY_TASK_ID/COUNT or JOB_COMPLETION_INDEX + SLIDESTREAM_SHARD_COUNT");
  app.add_flag("--heatmaps", options->heatmaps, "Also write prob_<class>.tif per class");
  app.add_flag("--uncertainty", options->uncertainty,
               "Also write uncertainty.tif (softmax entropy)");
  app.add_option("--overlay-spacing", options->overlay_spacing,
                 "Spacing of overlay.png in um/px (default: 2048 px on the long side)");
  options->slide.add_to(app);
  app.callback([options] {
    std::vector<std::string> overrides = options->overrides;
    auto set = [&](const std::string& key, const std::string& value) {
      overrides.push_back(key + "=" + value);
    };
    if (options->threads >= 0) {
      set("scheduler.threads", std::to_string(options->threads));
    }
    if (!options->device.empty()) {
      set("inference.device", options->device);
    }
    if (!options->precision.empty()) {
      set("inference.precision", options->precision);
    }
    if (options->batch_size >= 0) {
      set("inference.batch_size", std::to_string(options->batch_size));
    }
    if (options->heatmaps) {
      set("outputs.heatmaps", "true");
    }
    if (options->uncertainty) {
      set("outputs.uncertainty", "true");
    }
    if (options->overlay_spacing >= 0) {
      set("outputs.overlay_spacing_um", std::to_string(options->overlay_spacing));
    }
    SegmentJob job;
    job.inputs = options->slides;
    job.model_dir = options->model;
    job.config = load_segment_config(
        options->config.empty() ? std::nullopt : std::optional<fs::path>(options->config),
        overrides);
    job.config.scheduler.progress = ProgressBar::globally_enabled();
    job.output_dir = options->output;
    job.open = options->slide.to_open_options();
    job.resume = options->resume;
    if (!options->shard.empty()) {
      job.shard = parse_shard(options->shard);
    }
    finish_batch(run_segment(job), "the table above and batch_report.json");
  });
}

void define_export(CLI::App& app) {
  struct Options {
    std::string slide_dir;
    bool labels = false;
    bool heatmaps = false;
    bool uncertainty = false;
    bool overlay = false;
    bool geojson = false;
    bool asap = false;
    std::string heatmap_class;
    std::string colormap = "viridis";
    double overlay_spacing = 0;
    double vector_spacing = 0;
    double min_area = 0;
    SlideOptions slide;
  };
  auto options = std::make_shared<Options>();
  app.add_option("SLIDE_DIR", options->slide_dir,
                 "A slide's output folder from 'slidestream segment' (holds predictions.h5)")
      ->required();
  app.add_flag("--labels", options->labels, "labels.tif (pyramidal class map)");
  app.add_flag("--heatmaps", options->heatmaps, "prob_<class>.tif (needs a run with --heatmaps)");
  app.add_flag("--uncertainty", options->uncertainty,
               "uncertainty.tif (needs a run with --uncertainty)");
  app.add_flag("--overlay", options->overlay,
               "overlay.png: thumbnail + class colours + legend (reads the slide)");
  app.add_flag("--geojson", options->geojson, "annotations.geojson (QuPath)");
  app.add_flag("--asap", options->asap, "annotations.xml (ASAP)");
  app.add_option("--heatmap-class", options->heatmap_class,
                 "Overlay this class's probability instead of the class colours");
  app.add_option("--colormap", options->colormap,
                 "Heatmap colormap: viridis, magma, inferno, jet, turbo")
      ->capture_default_str();
  app.add_option("--overlay-spacing", options->overlay_spacing,
                 "Overlay spacing in um/px (default: 2048 px on the long side)");
  app.add_option("--vector-spacing", options->vector_spacing,
                 "Spacing the polygons are traced at, um/px (default: 2 x output spacing)");
  app.add_option("--min-area", options->min_area, "Leave out regions smaller than this many um^2");
  options->slide.add_to(app);
  app.callback([options] {
    ExportJob job;
    job.slide_dir = options->slide_dir;
    job.labels = options->labels;
    job.heatmaps = options->heatmaps;
    job.uncertainty = options->uncertainty;
    job.overlay = options->overlay || !options->heatmap_class.empty();
    job.geojson = options->geojson;
    job.asap = options->asap;
    if (!(job.labels || job.heatmaps || job.uncertainty || job.overlay || job.geojson ||
          job.asap)) {
      throw Error(ErrorCode::kInvalidArgument,
                  "nothing to export: give one or more of --labels --heatmaps --uncertainty "
                  "--overlay --geojson --asap");
    }
    if (!options->heatmap_class.empty()) {
      job.heatmap_class = options->heatmap_class;
    }
    job.colormap = options->colormap;
    job.settings.overlay_spacing_um = options->overlay_spacing;
    job.settings.vector_spacing_um = options->vector_spacing;
    job.settings.min_region_area_um2 = options->min_area;
    job.open = options->slide.to_open_options();
    for (const fs::path& path : run_export(job)) {
      std::cout << path.string() << "\n";
    }
  });
}

}  // namespace slidestream::cli
