// `slidestream stain ...`: fit parameters on an image or a slide, apply them to an image, show
// them, and normalize a whole slide into a pyramidal TIFF.
#include <iostream>
#include <memory>

#include "checks.hpp"
#include "commands.hpp"
#include "slidestream/core.hpp"
#include "slidestream/jobs/stain.hpp"
#include "slidestream/jobs/stain_stage.hpp"

namespace slidestream::cli {

namespace {

// A function, not a global: CLI11's validator allocates, which must not happen before main.
CLI::IsMember stain_methods() {
  return CLI::IsMember({"macenko", "reinhard", "vahadane"});
}

void define_stain_fit(CLI::App& app) {
  auto job = std::make_shared<StainFitJob>();
  auto input = std::make_shared<std::string>();
  auto output = std::make_shared<std::string>();
  auto method = std::make_shared<std::string>("macenko");
  auto slide = std::make_shared<SlideOptions>();
  app.add_option("INPUT", *input,
                 "Reference image (.png, .jpg, .jpeg, .bmp) or a whole slide (any format "
                 "'slidestream info' opens): a slide is fitted on its tissue tiles")
      ->required();
  app.add_option("-o,--output", *output, "Parameters file (.json, docs/FORMATS.md)")->required();
  app.add_option("--method", *method, "macenko, reinhard or vahadane")
      ->capture_default_str()
      ->check(stain_methods());
  slide->add_to(app);
  app.add_option("--io", job->options.io, "Background intensity Io (1-255)")
      ->capture_default_str()
      ->check(number_in(1, 255));
  app.add_option("--beta", job->options.beta,
                 "Optical density threshold of stain pixels (natural-log OD)")
      ->capture_default_str()
      ->check(number_in(0, 2));
  app.add_option("--fit-spacing", job->slide.spacing_um,
                 "Slides: spacing in um/px at which tissue tiles are sampled")
      ->capture_default_str()
      ->check(positive_number(1000, "um/px"));
  app.add_option("--fit-tiles", job->slide.max_tiles,
                 "Slides: at most this many 128 px tissue tiles, spread over the slide")
      ->capture_default_str()
      ->check(integer_in(1, 100000));
  app.callback([=] {
    job->input = *input;
    job->output = *output;
    job->method = parse_stain_method(*method);
    job->open = slide->to_open_options();
    job->mpp_um = slide->mpp;
    const StainParams params = run_stain_fit(*job);
    std::cout << stain_params_text(params);
  });
}

void define_stain_apply(CLI::App& app) {
  auto job = std::make_shared<StainApplyJob>();
  auto input = std::make_shared<std::string>();
  auto output = std::make_shared<std::string>();
  auto method = std::make_shared<std::string>();
  app.add_option("INPUT", *input, "Image to normalize (PNG, TIFF, JPEG)")->required();
  app.add_option("-o,--output", *output, "Normalized image (.png)")->required();
  app.add_option("--target", job->target,
                 "Parameters file (.json), macenko-reference, or a reference image to fit")
      ->required();
  app.add_option("--method", *method,
                 "macenko, reinhard or vahadane (default: the parameters' method; macenko for "
                 "an image)")
      ->check(stain_methods());
  app.callback([=] {
    job->input = *input;
    job->output = *output;
    if (!method->empty()) {
      job->method = parse_stain_method(*method);
    }
    run_stain_apply(*job);
  });
}

void define_stain_show(CLI::App& app) {
  auto params_path = std::make_shared<std::string>();
  auto swatch = std::make_shared<std::string>();
  app.add_option("PARAMS", *params_path, "Parameters file (.json)")->required();
  app.add_option("--swatch", *swatch, "Also write a colour swatch PNG: H, E and H + E");
  app.callback([=] {
    if (!swatch->empty()) {
      require_distinct_files({{"PARAMS", *params_path}}, {{"--swatch", *swatch}});
    }
    const StainParams params = StainParams::load(*params_path);
    std::cout << stain_params_text(params);
    if (!swatch->empty()) {
      write_stain_swatch(params, *swatch);
    }
  });
}

void define_stain_normalize_slide(CLI::App& app) {
  auto job = std::make_shared<NormalizeSlideJob>();
  auto input = std::make_shared<std::string>();
  auto output = std::make_shared<std::string>();
  auto method = std::make_shared<std::string>();
  auto fit = std::make_shared<std::string>("slide");
  auto slide = std::make_shared<SlideOptions>();
  app.add_option("SLIDE", *input, "The slide to normalize (any format 'slidestream info' opens)")
      ->required();
  app.add_option("-o,--output", *output,
                 "Normalized slide: a pyramidal tiled JPEG TIFF (.tif) with the input's level-0 "
                 "size and spacing")
      ->required();
  app.add_option("--target", job->stain.target,
                 "Parameters file (.json), macenko-reference, or a reference image to fit")
      ->required();
  app.add_option("--method", *method,
                 "macenko, reinhard or vahadane (default: the parameters' method; macenko for "
                 "an image)")
      ->check(stain_methods());
  app.add_option("--fit", *fit,
                 "slide: fit the slide's own stains once on its tissue tiles; tile: fit every "
                 "tile")
      ->capture_default_str()
      ->check(CLI::IsMember({"slide", "tile"}));
  app.add_option("--fit-spacing", job->stain.fit_spacing_um,
                 "Spacing (um/px) of the slide-level fit's tissue tiles")
      ->capture_default_str()
      ->check(positive_number(1000, "um/px"));
  slide->add_to(app);
  app.add_option("--threads", job->scheduler.threads, "Worker threads (0 = all cores)")
      ->capture_default_str()
      ->check(thread_count());
  app.add_option("--tile-size", job->tile_size, "Output tile side in px (a multiple of 16)")
      ->capture_default_str()
      ->check(integer_in(16, 8192) & multiple_of(16));
  app.add_option("--quality", job->jpeg_quality, "JPEG quality 1-100")
      ->capture_default_str()
      ->check(integer_in(1, 100));
  app.callback([=] {
    job->input = *input;
    job->output = *output;
    if (!method->empty()) {
      job->stain.method = parse_stain_method(*method);
    }
    job->stain.fit = parse_stain_fit_scope(*fit, "--fit", ErrorCode::kInvalidArgument);
    job->stain.enabled = true;
    job->open = slide->to_open_options();
    job->scheduler.progress = ProgressBar::globally_enabled();
    const NormalizeSlideReport report = run_stain_normalize_slide(*job);
    std::cout << report.tiles << " tiles: " << report.stain.normalized << " normalized, "
              << report.tiles_copied << " without tissue copied, "
              << report.stain.without_tissue + report.stain.degenerate
              << " kept (no stain to fit)\n";
  });
}

}  // namespace

void define_stain(CLI::App& app) {
  app.require_subcommand(1);
  define_stain_fit(
      *app.add_subcommand("fit", "Fit stain parameters on a reference image or a whole slide"));
  define_stain_apply(
      *app.add_subcommand("apply", "Normalize an image's stains onto a reference (PNG)"));
  define_stain_show(*app.add_subcommand("show", "Print stain parameters (and a swatch PNG)"));
  define_stain_normalize_slide(*app.add_subcommand(
      "normalize-slide", "Normalize a whole slide into a pyramidal JPEG TIFF (same spacing)"));
}

}  // namespace slidestream::cli
