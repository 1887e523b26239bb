#include "commands.hpp"

#include <iostream>
#include <memory>
#include <sstream>

#include "checks.hpp"
#include "slidestream/core.hpp"
#include "slidestream/jobs/batch.hpp"
#include "slidestream/jobs/extract.hpp"
#include "slidestream/jobs/info.hpp"
#include "slidestream/jobs/read.hpp"
#include "slidestream/jobs/tissue.hpp"
#include "slidestream/synth.hpp"

namespace slidestream::cli {

void SlideOptions::add_to(CLI::App& app) {
  app.add_option("--mpp", mpp,
                 "Level-0 spacing in um/px, overriding the slide's metadata (needed for "
                 "images without it; 0.25 is typical at 40x, 0.5 at 20x)")
      ->check(number_in(0.01, 200, "um/px"));
  app.add_option("--backend", backend, "Reader: auto (OpenSlide, then libvips), openslide, vips")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "openslide", "vips"}));
  app.add_option("--channels", channels,
                 "Multi-channel images: channel indices shown as R,G,B (e.g. 0,1,2) or one "
                 "index shown as grey (default: channel 0 as grey)");
}

void finish_batch(const BatchReport& report, const std::string& see) {
  std::cout << report.summary();
  if (report.failed() == 0) {
    return;
  }
  const ErrorCode code =
      report.slides.size() == 1 ? report.slides.front().code : ErrorCode::kPartialFailure;
  throw Error(code, std::to_string(report.failed()) + " of " +
                        std::to_string(report.slides.size()) + " slides failed (see " + see + ")");
}

OpenOptions SlideOptions::to_open_options() const {
  OpenOptions options;
  options.backend = parse_backend(backend);
  options.mpp_override_um = mpp;
  std::stringstream list(channels);
  for (std::string item; std::getline(list, item, ',');) {
    try {
      options.channels.push_back(std::stoi(item));
    } catch (const std::exception&) {
      throw Error(ErrorCode::kInvalidArgument,
                  "--channels '" + channels + "' must be integers separated by commas");
    }
  }
  return options;
}

namespace {

void define_info(CLI::App& app) {
  auto slide = std::make_shared<std::string>();
  auto options = std::make_shared<SlideOptions>();
  auto json = std::make_shared<bool>(false);
  app.add_option("SLIDE", *slide, "Slide file")->required();
  app.add_flag("--json", *json, "Print stable JSON (schema in docs/FORMATS.md)");
  options->add_to(app);
  app.callback([=] {
    OpenOptions open = options->to_open_options();
    open.require_spacing = false;  // show what the file has, even without MPP
    const auto reader = open_slide(*slide, open);
    std::cout << (*json ? slide_info_json(reader->info()) + "\n" : slide_info_text(reader->info()));
  });
}

void define_read(CLI::App& app) {
  auto slide = std::make_shared<std::string>();
  auto options = std::make_shared<SlideOptions>();
  auto job = std::make_shared<ReadJob>();
  auto spacing = std::make_shared<std::optional<double>>();
  auto size = std::make_shared<std::string>();
  auto center = std::make_shared<std::string>();
  auto origin = std::make_shared<std::string>();
  auto output = std::make_shared<std::string>();
  auto mask = std::make_shared<std::string>();
  auto associated = std::make_shared<std::string>();
  app.add_option("SLIDE", *slide, "Slide file")->required();
  app.add_option("--spacing", *spacing, "Output spacing in um/px (e.g. 0.5, 2, 8)")
      ->check(positive_number(1e6, "um/px"));
  app.add_option("--size", *size, "Output size in pixels: W or WxH");
  app.add_option("--center", *center, "Patch centre X,Y in level-0 pixels");
  app.add_option("--origin", *origin, "Patch top-left X,Y in level-0 pixels");
  app.add_option("-o,--output", *output,
                 "Output image (.png); a .json sidecar records spacing, "
                 "field of view and MPP source")
      ->required();
  app.add_option("--mask", *mask, "Also write the validity mask (255 = on the slide) here");
  app.add_option("--associated", *associated,
                 "Write an associated image instead (thumbnail, label, macro; see 'info')");
  options->add_to(app);
  app.callback([=] {
    if (!associated->empty()) {
      run_read_associated(*slide, options->to_open_options(), *associated, *output);
      return;
    }
    if (size->empty() || !spacing->has_value()) {
      throw Error(ErrorCode::kInvalidArgument,
                  "read needs --spacing and --size (or --associated NAME)");
    }
    job->slide = *slide;
    job->open = options->to_open_options();
    job->spacing_um = **spacing;
    job->size_px = parse_flag("--size", *size, parse_size);
    if (!center->empty()) {
      job->center_l0 = parse_flag("--center", *center, parse_point);
    }
    if (!origin->empty()) {
      job->origin_l0 = parse_flag("--origin", *origin, parse_point);
    }
    job->output = *output;
    if (!mask->empty()) {
      job->mask_output = std::filesystem::path(*mask);
    }
    run_read(*job);
  });
}

void define_tissue(CLI::App& app) {
  auto slide = std::make_shared<std::string>();
  auto options = std::make_shared<SlideOptions>();
  auto job = std::make_shared<TissueJob>();
  auto output = std::make_shared<std::string>();
  auto method = std::make_shared<std::string>("saturation");
  auto threshold = std::make_shared<std::optional<double>>();
  app.add_option("SLIDE", *slide, "Slide file")->required();
  app.add_option("-o,--output", *output,
                 "Mask image (.png, 255 = tissue); the report goes to OUTPUT.json")
      ->required();
  app.add_flag("--json", job->print_json, "Also print the report (JSON) on stdout");
  app.add_option("--spacing", job->tissue.spacing_um, "Mask spacing in um/px")
      ->capture_default_str()
      ->check(positive_number(1e4, "um/px"));
  app.add_option("--method", *method,
                 "saturation (HSV saturation, for H&E) or od (mean optical density)")
      ->capture_default_str()
      ->check(CLI::IsMember({"saturation", "od"}));
  app.add_option("--threshold", *threshold,
                 "Fixed threshold instead of Otsu's (saturation 0-255, or optical density 0-5)")
      ->check(number_in(0, 255));
  app.add_flag("--exclude-pen", job->tissue.exclude_pen,
               "Remove strongly saturated red, green and blue pen marks");
  app.add_option("--min-area", job->tissue.min_tissue_area_um2,
                 "Drop connected tissue smaller than this (um^2)")
      ->capture_default_str()
      ->check(number_in(0, 1e12, "um^2"));
  app.add_option("--max-hole", job->tissue.max_hole_area_um2,
                 "Fill holes in the tissue smaller than this (um^2)")
      ->capture_default_str()
      ->check(number_in(0, 1e12, "um^2"));
  options->add_to(app);
  app.callback([=] {
    job->slide = *slide;
    job->open = options->to_open_options();
    job->output = *output;
    job->tissue.method = parse_tissue_method(*method);
    job->tissue.threshold = *threshold;
    run_tissue(*job);
  });
}

void define_synth(CLI::App& app) {
  auto options = std::make_shared<SynthOptions>();
  auto output = std::make_shared<std::string>();
  auto size = std::make_shared<std::string>("8192x6144");
  auto mpp = std::make_shared<double>(0.5);
  auto no_mpp = std::make_shared<bool>(false);
  auto truth = std::make_shared<std::string>();
  auto annotations = std::make_shared<std::string>();
  app.add_option("-o,--output", *output, "Output slide (.tif)")->required();
  app.add_option("--size", *size, "Level-0 size, WxH pixels")->capture_default_str();
  app.add_option("--mpp", *mpp, "Level-0 spacing in um/px written to the resolution tags")
      ->capture_default_str()
      ->check(number_in(0.01, 200, "um/px"));
  app.add_flag("--no-mpp", *no_mpp, "Write no usable spacing (to test the missing-MPP path)");
  app.add_option("--seed", options->seed, "Random seed; the same seed gives the same slide")
      ->capture_default_str();
  app.add_option("--truth", *truth,
                 "Also write the truth raster (0 background, 1 stroma, "
                 "2 tumour) as a pyramidal TIFF");
  app.add_option("--annotations", *annotations,
                 "Also write the regions as QuPath GeoJSON (level-0 pixel coordinates)");
  app.add_option("--compression", options->compression, "jpeg, deflate or lzw")
      ->capture_default_str()
      ->check(CLI::IsMember({"jpeg", "deflate", "lzw"}));
  app.add_option("--quality", options->jpeg_quality, "JPEG quality 1-100")
      ->capture_default_str()
      ->check(integer_in(1, 100));
  app.callback([=] {
    options->size = parse_flag("--size", *size, parse_size);
    options->mpp_um = *no_mpp ? std::nullopt : std::optional<double>(*mpp);
    if (!truth->empty()) {
      options->truth_path = std::filesystem::path(*truth);
    }
    if (!annotations->empty()) {
      options->annotations_path = std::filesystem::path(*annotations);
    }
    options->progress = ProgressBar::globally_enabled();
    synthesize_slide(*output, *options);
  });
}

void define_extract(CLI::App& app) {
  struct Options {
    std::vector<std::string> slides;
    std::string config;
    std::string output;
    std::string annotations;
    std::string label_raster;
    std::string format;
    std::vector<std::string> overrides;
    std::optional<int> threads;
    std::optional<int> max_inflight;
    bool resume = false;
    SlideOptions slide;
  };
  auto options = std::make_shared<Options>();
  app.add_option("SLIDES", options->slides,
                 "Slide files, glob patterns, folders, or CSV manifests (path[,mpp][,id])")
      ->required();
  app.add_option("-c,--config", options->config,
                 "Extraction config YAML (configs/extract-*.yaml); defaults: HookNet breast "
                 "geometry, tissue >= 50 %");
  app.add_option("-o,--output", options->output, "Dataset .h5 file (or a folder with --format png)")
      ->required();
  app.add_option("--annotations", options->annotations,
                 "Annotation file, or a folder with <slide stem>.geojson/.xml per slide "
                 "(QuPath GeoJSON, ASAP XML, ImageScope XML)");
  app.add_option("--label-raster", options->label_raster,
                 "Label image per slide aligned with level 0, '{stem}' replaced by the slide's "
                 "file stem (rule: labels.raster_rule, default nonzero:1)");
  app.add_option("--format", options->format,
                 "hdf5 (default) or png (PNG files + index.csv); sets output.format");
  app.add_option("--set", options->overrides,
                 "Override a config value: section.key=value (repeatable), e.g. "
                 "tiling.min_tissue_fraction=0.3");
  app.add_option("--threads", options->threads, "Worker threads reading patch sets (0 = all cores)")
      ->check(thread_count());
  app.add_option("--max-inflight", options->max_inflight,
                 "Patch sets in flight at once; bounds memory (0 = 2 x threads)")
      ->check(integer_in(0, 65536));
  app.add_flag("--resume", options->resume, "Keep slides already in the output; add the others");
  options->slide.add_to(app);
  app.callback([options] {
    ExtractJob job;
    job.inputs = options->slides;
    job.config = load_extract_config(options->config.empty()
                                         ? std::nullopt
                                         : std::optional<std::filesystem::path>(options->config),
                                     options->overrides);
    // Typed flags go onto the loaded config, after the file and --set (they win). run_extract
    // validates the result (a bad --format is the output.format error, exit 7), and the
    // recorded config is made from these fields.
    if (!options->format.empty()) {
      job.config.format = options->format;
    }
    job.config.scheduler.threads = options->threads.value_or(job.config.scheduler.threads);
    job.config.scheduler.max_inflight =
        options->max_inflight.value_or(job.config.scheduler.max_inflight);
    job.config.scheduler.progress = ProgressBar::globally_enabled();
    job.output = options->output;
    if (!options->annotations.empty()) {
      job.annotations = std::filesystem::path(options->annotations);
    }
    if (!options->label_raster.empty()) {
      job.label_raster_pattern = options->label_raster;
    }
    job.open = options->slide.to_open_options();
    job.resume = options->resume;
    finish_batch(run_extract(job), "the table above");
  });
}

}  // namespace

const std::vector<Command>& commands() {
  static const std::vector<Command> table{
      {"info", "Show a slide's format, levels, spacing (MPP) and its source", define_info},
      {"read", "Read a patch at a physical spacing (um/px) into a PNG", define_read},
      {"synth", "Write a synthetic H&E-like pyramidal slide with ground truth", define_synth},
      {"tissue", "Compute a slide's tissue mask (PNG) with its fraction and area", define_tissue},
      {"extract", "Extract target/context patch sets (+ labels) into an HDF5 dataset",
       define_extract},
      {"stain", "Stain normalization: fit parameters, apply them to an image, show them",
       define_stain},
      {"predict", "Run a segmentation model on one image or region: label PNG (+ probabilities)",
       define_predict},
      {"train", "Train a HookNet or U-Net on extracted patch sets into a model directory",
       define_train},
      {"evaluate", "Per-class Dice, IoU and confusion matrix of a label image against truth",
       define_evaluate},
      {"features", "Per-slide HDF5 of a model's tile embeddings and coordinates (CLAM layout)",
       define_features},
      {"segment", "Segment slides with a model: label map, heatmaps, overlay, GeoJSON, ASAP XML",
       define_segment},
      {"export", "Redraw a segmented slide's outputs from its predictions.h5 (no model needed)",
       define_export},
  };
  return table;
}

}  // namespace slidestream::cli
