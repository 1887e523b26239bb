#include <spdlog/spdlog.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "slidestream/core.hpp"
#include "slidestream/jobs.hpp"

namespace fs = std::filesystem;

namespace slidestream {

void ReadJob::validate() const {
  if (center_l0.has_value() == origin_l0.has_value()) {
    throw Error(ErrorCode::kInvalidArgument,
                "give exactly one of --center X,Y or --origin X,Y (level-0 pixels)");
  }
  if (!(spacing_um > 0)) {
    throw Error(ErrorCode::kInvalidArgument,
                "--spacing must be a positive number of um/px, e.g. 0.5 (20x) or 2.0");
  }
  if (size_px.width <= 0 || size_px.height <= 0) {
    throw Error(ErrorCode::kInvalidArgument, "--size must be positive, e.g. 512 or 512x256");
  }
  require_writable_output(output);
  if (mask_output) {
    require_writable_output(*mask_output);
  }
}

void write_image_atomically(const cv::Mat& image, const fs::path& path, bool is_rgb) {
  AtomicOutput output(path);
  cv::Mat to_write = image;
  if (is_rgb) {
    cv::cvtColor(image, to_write, cv::COLOR_RGB2BGR);
  }
  bool written = false;
  try {
    written = cv::imwrite(output.temp_path().string(), to_write);
  } catch (const cv::Exception& error) {
    throw Error(ErrorCode::kOutputError, "cannot write '" + path.string() + "': " + error.what() +
                                             " (use a .png, .tif or .jpg name)");
  }
  if (!written) {
    throw Error(ErrorCode::kOutputError, "cannot write '" + path.string() +
                                             "'; check the extension (.png, .tif, .jpg) and "
                                             "free disk space");
  }
  output.commit();
}

namespace {

void write_sidecar(const ReadJob& job, const SlideInfo& info, const Patch& patch,
                   const fs::path& sidecar) {
  nlohmann::ordered_json json;
  json["schema"] = "slidestream.read/1";
  json["slide"] = info.path.string();
  json["quickhash"] = info.quickhash.empty() ? nlohmann::ordered_json(nullptr)
                                             : nlohmann::ordered_json(info.quickhash);
  json["output"] = job.output.string();
  json["width"] = job.size_px.width;
  json["height"] = job.size_px.height;
  json["spacing_um"] = patch.spacing_um;
  json["fov_um"] = {patch.fov_l0.width * info.spacing.x_um,
                    patch.fov_l0.height * info.spacing.y_um};
  json["fov_l0"] = {{"x", patch.fov_l0.x},
                    {"y", patch.fov_l0.y},
                    {"width", patch.fov_l0.width},
                    {"height", patch.fov_l0.height}};
  json["level"] = patch.level;
  json["slide_mpp"] = {
      {"x", info.spacing.x_um}, {"y", info.spacing.y_um}, {"source", info.spacing_source}};
  json["valid_fraction"] =
      static_cast<double>(cv::countNonZero(patch.valid)) / static_cast<double>(patch.valid.total());
  write_text_atomically(sidecar, json.dump(2) + "\n");
}

}  // namespace

ReadResult run_read(const ReadJob& job) {
  job.validate();
  const auto reader = open_slide(job.slide, job.open);
  ReadResult result;
  result.patch = job.center_l0
                     ? reader->read_centered(*job.center_l0, job.size_px, job.spacing_um)
                     : reader->read_from_origin(*job.origin_l0, job.size_px, job.spacing_um);
  write_image_atomically(result.patch.rgb, job.output, true);
  if (job.mask_output) {
    write_image_atomically(result.patch.valid, *job.mask_output, false);
  }
  result.sidecar = fs::path(job.output.string() + ".json");
  write_sidecar(job, reader->info(), result.patch, result.sidecar);
  spdlog::info("wrote {} ({}x{} px at {} um/px from level {}, mpp from {})", job.output.string(),
               job.size_px.width, job.size_px.height, result.patch.spacing_um, result.patch.level,
               reader->info().spacing_source);
  return result;
}

void run_read_associated(const fs::path& slide, const OpenOptions& open, const std::string& name,
                         const fs::path& output) {
  require_writable_output(output);
  const auto reader = open_slide(slide, open);
  write_image_atomically(reader->read_associated(name), output, true);
  spdlog::info("wrote the {} image of {} to {}", name, slide.string(), output.string());
}

}  // namespace slidestream
