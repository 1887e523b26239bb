// `slidestream segment` and `slidestream export`.
#include <iostream>
#include <memory>

#include "checks.hpp"
#include "commands.hpp"
#include "slidestream/core.hpp"
#include "slidestream/jobs/segment.hpp"

namespace fs = std::filesystem;

namespace slidestream::cli {

void define_segment(CLI::App& app) {
  struct Options {
    std::vector<std::string> slides;
    std::string model;
    std::string config;
    std::string output;
    std::vector<std::string> overrides;
    std::optional<int> threads;
    std::optional<int> torch_threads;
    std::string device;
    std::string precision;
    std::optional<int> batch_size;
    bool resume = false;
    std::string shard;
    bool heatmaps = false;
    bool uncertainty = false;
    std::optional<double> overlay_spacing;
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
  app.add_option("--threads", options->threads, "Threads reading patch sets (0 = all cores)")
      ->check(thread_count());
  app.add_option("--torch-threads", options->torch_threads,
                 "Torch intra-op CPU threads of the model (= --set inference.intra_op_threads=N; "
                 "0 = torch's default)")
      ->check(thread_count());
  app.add_option("--device", options->device, "auto (CUDA if present), cpu, cuda or cuda:N")
      ->check(device_name());
  app.add_option("--precision", options->precision,
                 "fp32, fp16 or bf16 (half precisions on CUDA only; CPU runs fp32)")
      ->check(CLI::IsMember({"fp32", "fp16", "bf16"}));
  app.add_option("--batch-size", options->batch_size, "Patch sets per forward pass (default 8)")
      ->check(integer_in(1, 4096));
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
                 "Spacing of overlay.png in um/px (default: 2048 px on the long side)")
      ->check(positive_number(1e5, "um/px"));
  options->slide.add_to(app);
  app.callback([options] {
    SegmentJob job;
    job.inputs = options->slides;
    job.model_dir = options->model;
    job.config = load_segment_config(
        options->config.empty() ? std::nullopt : std::optional<fs::path>(options->config),
        options->overrides);
    // Typed flags go onto the loaded config, after the file and --set (they win).
    SegmentConfig& config = job.config;
    config.scheduler.threads = options->threads.value_or(config.scheduler.threads);
    config.inference.intra_op_threads =
        options->torch_threads.value_or(config.inference.intra_op_threads);
    if (!options->device.empty()) {
      config.inference.device = options->device;
    }
    if (!options->precision.empty()) {
      config.inference.precision = parse_precision(options->precision);
    }
    config.batch_size = options->batch_size.value_or(config.batch_size);
    config.outputs.heatmaps = config.outputs.heatmaps || options->heatmaps;
    config.outputs.uncertainty = config.outputs.uncertainty || options->uncertainty;
    config.outputs.overlay_spacing_um =
        options->overlay_spacing.value_or(config.outputs.overlay_spacing_um);
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
      ->capture_default_str()
      ->check(CLI::IsMember({"viridis", "magma", "inferno", "jet", "turbo"}));
  app.add_option("--overlay-spacing", options->overlay_spacing,
                 "Overlay spacing in um/px (default: 2048 px on the long side)")
      ->check(positive_number(1e5, "um/px"));
  app.add_option("--vector-spacing", options->vector_spacing,
                 "Spacing the polygons are traced at, um/px (default: 2 x output spacing)")
      ->check(positive_number(1e5, "um/px"));
  app.add_option("--min-area", options->min_area, "Leave out regions smaller than this many um^2")
      ->check(number_in(0, 1e15, "um^2"));
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
