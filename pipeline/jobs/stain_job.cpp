// `slidestream stain fit|apply|show`: stain parameters from an image, normalizing an image, and
// a summary (with an optional colour swatch) of a parameters file.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <iomanip>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <sstream>

#include "slidestream/core.hpp"
#include "slidestream/jobs/image_output.hpp"
#include "slidestream/jobs/stain.hpp"

namespace fs = std::filesystem;

namespace slidestream {

namespace {

constexpr const char* kReferencePreset = "macenko-reference";

cv::Mat read_rgb_image(const fs::path& path) {
  require_readable_file(path);
  cv::Mat bgr;
  try {
    bgr = cv::imread(path.string(), cv::IMREAD_COLOR);
  } catch (const cv::Exception& error) {
    throw Error(ErrorCode::kCorruptData, "cannot read '" + path.string() + "': " + error.what());
  }
  if (bgr.empty()) {
    throw Error(ErrorCode::kUnsupportedFormat,
                "cannot read '" + path.string() + "' as an image (use PNG, TIFF or JPEG)");
  }
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

}  // namespace

bool is_plain_image(const fs::path& path) {
  std::string extension = path.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return extension == ".png" || extension == ".jpg" || extension == ".jpeg" || extension == ".bmp";
}

void StainFitJob::validate() const {
  options.validate();
  slide.validate();
  tissue.validate();
  if (mpp_um && !(*mpp_um > 0.0)) {
    throw Error(ErrorCode::kInvalidArgument, "--mpp must be positive");
  }
}

namespace {

// The input's name in front of a fit's error, which knows pixels but not files.
StainParams fit_image_file(const fs::path& image, StainMethod method,
                           const StainFitOptions& options) {
  const cv::Mat rgb = read_rgb_image(image);
  try {
    return fit_stain(rgb, method, options);
  } catch (const Error& error) {
    throw Error(error.code(), "'" + image.string() + "': " + error.what());
  }
}

}  // namespace

StainParams run_stain_fit(const StainFitJob& job) {
  job.validate();
  require_distinct_files({{"the input", job.input}}, {{"-o", job.output}});
  require_writable_output(job.output);
  StainFitOptions options = job.options;
  if (options.fitted_on.empty()) {
    options.fitted_on = job.input.filename().string();
  }
  StainParams params;
  if (is_plain_image(job.input)) {
    params = fit_image_file(job.input, job.method, options);
  } else {
    // A slide: its own tissue tiles, sampled under its tissue mask (fit_stain_on_slide).
    OpenOptions open = job.open;
    if (job.mpp_um) {
      open.mpp_override_um = job.mpp_um;
    }
    const auto reader = open_slide(job.input, open);
    const TissueMask mask = compute_tissue_mask(*reader, job.tissue);
    SlideStainFitOptions sampling = job.slide;
    sampling.fit = options;
    params = fit_stain_on_slide(*reader, mask, job.method, sampling);
  }
  params.save(job.output);
  spdlog::info("wrote {} ({} fitted on {})", job.output.string(), stain_method_name(job.method),
               options.fitted_on);
  return params;
}

StainParams resolve_stain_target(const std::string& target, std::optional<StainMethod> method) {
  StainParams params;
  const fs::path path(target);
  if (target == kReferencePreset) {
    params = macenko_reference();
  } else if (path.extension() == ".json") {
    params = StainParams::load(path);
  } else {
    StainFitOptions options;
    options.fitted_on = path.filename().string();
    return fit_image_file(path, method.value_or(StainMethod::kMacenko), options);
  }
  if (method && *method != params.method) {
    if (*method == StainMethod::kReinhard) {
      throw Error(ErrorCode::kInvalidArgument,
                  "--method reinhard needs LAB statistics: give a Reinhard parameters file or a "
                  "target image, not " +
                      target);
    }
    params.method = *method;  // Macenko and Vahadane share the stain matrix and maxima
  }
  return params;
}

ApplyStats run_stain_apply(const StainApplyJob& job) {
  require_distinct_files({{"the input", job.input}, {"--target", job.target}},
                         {{"-o", job.output}});
  require_writable_output(job.output);
  require_image_writer(job.output, "-o");
  const cv::Mat input = read_rgb_image(job.input);
  const StainNormalizer normalizer(resolve_stain_target(job.target, job.method));
  ApplyStats stats;
  const cv::Mat output = normalizer.apply(input, &stats);
  write_image_atomically(output, job.output, true);
  spdlog::info("wrote {} ({} normalization{})", job.output.string(),
               stain_method_name(normalizer.target().method),
               stats.tiles_without_tissue + stats.tiles_degenerate > 0
                   ? "; no usable tissue, written unchanged"
                   : "");
  return stats;
}

std::string stain_params_text(const StainParams& params) {
  std::ostringstream text;
  text << std::fixed << std::setprecision(4);
  text << "method              " << stain_method_name(params.method) << "\n";
  text << "fitted on           " << (params.fitted_on.empty() ? "-" : params.fitted_on) << "\n";
  text << "io, beta, alpha     " << params.io << ", " << params.beta << ", " << params.alpha
       << "\n";
  if (params.method == StainMethod::kReinhard) {
    text << "LAB mean            " << params.lab_mean[0] << ", " << params.lab_mean[1] << ", "
         << params.lab_mean[2] << "\n";
    text << "LAB std             " << params.lab_std[0] << ", " << params.lab_std[1] << ", "
         << params.lab_std[2] << "\n";
    return text.str();
  }
  for (int stain = 0; stain < 2; ++stain) {
    text << (stain == 0 ? "H (R, G, B)         " : "E (R, G, B)         ")
         << params.stain_matrix(0, stain) << ", " << params.stain_matrix(1, stain) << ", "
         << params.stain_matrix(2, stain) << "   max concentration "
         << params.max_concentrations[static_cast<std::size_t>(stain)] << "\n";
  }
  text << "quality (deg)       " << params.quality_deg << "\n";
  return text.str();
}

void write_stain_swatch(const StainParams& params, const fs::path& output) {
  require_writable_output(output);
  require_image_writer(output, "--swatch");
  // Three 64 px squares: H alone, E alone and H + E, each at its max concentration.
  constexpr int kSquare = 64;
  cv::Mat swatch(kSquare, 3 * kSquare, CV_8UC3);
  const std::array<cv::Vec2d, 3> mixes{
      cv::Vec2d(params.max_concentrations[0], 0.0), cv::Vec2d(0.0, params.max_concentrations[1]),
      cv::Vec2d(params.max_concentrations[0], params.max_concentrations[1])};
  for (std::size_t square = 0; square < mixes.size(); ++square) {
    const cv::Vec3d od = params.stain_matrix * mixes[square];
    cv::Scalar colour;
    for (int channel = 0; channel < 3; ++channel) {
      colour[channel] = std::clamp(params.io * std::exp(-od[channel]) - 1.0, 0.0, 255.0);
    }
    if (params.method == StainMethod::kReinhard) {
      cv::Mat lab(1, 1, CV_32FC3,
                  cv::Scalar(params.lab_mean[0], params.lab_mean[1], params.lab_mean[2]));
      cv::Mat rgb;
      cv::cvtColor(lab, rgb, cv::COLOR_Lab2RGB);
      const auto value = rgb.at<cv::Vec3f>(0, 0);
      colour = cv::Scalar(value[0] * 255.0, value[1] * 255.0, value[2] * 255.0);
    }
    swatch(cv::Rect(static_cast<int>(square) * kSquare, 0, kSquare, kSquare)).setTo(colour);
  }
  write_image_atomically(swatch, output, true);
}

}  // namespace slidestream
