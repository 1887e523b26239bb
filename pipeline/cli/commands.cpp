#include "commands.hpp"

#include <iostream>
#include <memory>
#include <sstream>

#include "slidestream/core.hpp"
#include "slidestream/jobs.hpp"

namespace slidestream::cli {

namespace {

// Options every command that opens a slide shares.
struct SlideOptions {
  std::string backend = "auto";
  std::optional<double> mpp;
  std::string channels;

  void add_to(CLI::App& app) {
    app.add_option("--mpp", mpp,
                   "Level-0 spacing in um/px, overriding the slide's metadata (needed for "
                   "images without it; 0.25 is typical at 40x, 0.5 at 20x)");
    app.add_option("--backend", backend, "Reader: auto (OpenSlide, then libvips), openslide, vips")
        ->capture_default_str();
    app.add_option("--channels", channels,
                   "Multi-channel images: channel indices shown as R,G,B (e.g. 0,1,2) or one "
                   "index shown as grey (default: channel 0 as grey)");
  }

  OpenOptions to_open_options() const {
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
};

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
  auto size = std::make_shared<std::string>();
  auto center = std::make_shared<std::string>();
  auto origin = std::make_shared<std::string>();
  auto output = std::make_shared<std::string>();
  auto mask = std::make_shared<std::string>();
  auto associated = std::make_shared<std::string>();
  app.add_option("SLIDE", *slide, "Slide file")->required();
  app.add_option("--spacing", job->spacing_um, "Output spacing in um/px (e.g. 0.5, 2, 8)");
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
    if (size->empty() || job->spacing_um == 0) {
      throw Error(ErrorCode::kInvalidArgument,
                  "read needs --spacing and --size (or --associated NAME)");
    }
    job->slide = *slide;
    job->open = options->to_open_options();
    job->size_px = parse_size(*size);
    if (!center->empty()) {
      job->center_l0 = parse_point(*center);
    }
    if (!origin->empty()) {
      job->origin_l0 = parse_point(*origin);
    }
    job->output = *output;
    if (!mask->empty()) {
      job->mask_output = std::filesystem::path(*mask);
    }
    run_read(*job);
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
      ->capture_default_str();
  app.add_flag("--no-mpp", *no_mpp, "Write no usable spacing (to test the missing-MPP path)");
  app.add_option("--seed", options->seed, "Random seed; the same seed gives the same slide")
      ->capture_default_str();
  app.add_option("--truth", *truth,
                 "Also write the truth raster (0 background, 1 stroma, "
                 "2 tumour) as a pyramidal TIFF");
  app.add_option("--annotations", *annotations,
                 "Also write the regions as QuPath GeoJSON (level-0 pixel coordinates)");
  app.add_option("--compression", options->compression, "jpeg, deflate or lzw")
      ->capture_default_str();
  app.add_option("--quality", options->jpeg_quality, "JPEG quality 1-100")->capture_default_str();
  app.callback([=] {
    options->size = parse_size(*size);
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

}  // namespace

const std::vector<Command>& commands() {
  static const std::vector<Command> table{
      {"info", "Show a slide's format, levels, spacing (MPP) and its source", define_info},
      {"read", "Read a patch at a physical spacing (um/px) into a PNG", define_read},
      {"synth", "Write a synthetic H&E-like pyramidal slide with ground truth", define_synth},
  };
  return table;
}

}  // namespace slidestream::cli
