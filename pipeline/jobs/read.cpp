#include "slidestream/jobs/read.hpp"

#include <spdlog/spdlog.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "slidestream/core.hpp"
#include "slidestream/jobs/image_output.hpp"

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
  if (!is_within(spacing_um, 1e-6, 1e6)) {
    throw Error(ErrorCode::kInvalidArgument,
                "--spacing must be in (0, 1e6] um/px, e.g. 0.5 (20x) or 2.0");
  }
  if (size_px.width <= 0 || size_px.height <= 0) {
    throw Error(ErrorCode::kInvalidArgument, "--size must be positive, e.g. 512 or 512x256");
  }
  std::vector<NamedPath> outputs{{"-o", output}, {"the sidecar", sidecar_path()}};
  if (mask_output) {
    outputs.push_back({"--mask", *mask_output});
  }
  require_distinct_files({{"the slide", slide}}, outputs);
  for (const NamedPath& named : outputs) {
    require_writable_output(named.path);
  }
  require_image_writer(output, "-o");
  if (mask_output) {
    require_image_writer(*mask_output, "--mask");
  }
}

fs::path ReadJob::sidecar_path() const {
  return fs::path(output.string() + ".json");
}

void require_image_writer(const fs::path& path, const std::string& role) {
  bool writable = false;
  try {
    writable = cv::haveImageWriter(path.string());
  } catch (const cv::Exception&) {
    writable = false;
  }
  if (!writable || path.extension().empty()) {
    throw Error(ErrorCode::kOutputError,
                role + " '" + path.string() + "': no image format has the extension '" +
                    path.extension().string() + "'; name it .png (or .tif, .jpg)");
  }
}

void write_image_file(const cv::Mat& image, const fs::path& file, const fs::path& shown_as,
                      bool is_rgb) {
  cv::Mat to_write = image;
  if (is_rgb) {
    cv::cvtColor(image, to_write, cv::COLOR_RGB2BGR);
  }
  bool written = false;
  try {
    written = cv::imwrite(file.string(), to_write);
  } catch (const cv::Exception& error) {
    spdlog::debug("OpenCV: {}", error.what());
  }
  if (!written) {
    throw Error(ErrorCode::kOutputError, "cannot write '" + shown_as.string() +
                                             "'; check that its extension is an image format "
                                             "(.png, .tif, .jpg) and that the disk has space");
  }
}

void write_image_atomically(const cv::Mat& image, const fs::path& path, bool is_rgb) {
  require_image_writer(path, "the output");
  AtomicOutput output(path);
  write_image_file(image, output.temp_path(), path, is_rgb);
  output.commit();
}

namespace {

void write_sidecar(const ReadJob& job, const SlideInfo& info, const Patch& patch,
                   const fs::path& sidecar_file) {
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
  json["slide_mpp"] = {{"x", info.spacing.x_um},
                       {"y", info.spacing.y_um},
                       {"source", spacing_source_name(info.spacing_source)}};
  json["valid_fraction"] =
      static_cast<double>(cv::countNonZero(patch.valid)) / static_cast<double>(patch.valid.total());
  std::ofstream file(sidecar_file);
  file << json.dump(2) << "\n";
  if (!file) {
    throw Error(ErrorCode::kOutputError, "cannot write '" + job.sidecar_path().string() + "'");
  }
}

}  // namespace

ReadResult run_read(const ReadJob& job) {
  job.validate();
  const auto reader = open_slide(job.slide, job.open);
  ReadResult result;
  result.patch = job.center_l0
                     ? reader->read_centered(*job.center_l0, job.size_px, job.spacing_um)
                     : reader->read_from_origin(*job.origin_l0, job.size_px, job.spacing_um);
  // The image, its sidecar and the mask appear together or not at all.
  AtomicOutput image(job.output);
  AtomicOutput sidecar(job.sidecar_path());
  std::optional<AtomicOutput> mask;
  write_image_file(result.patch.rgb, image.temp_path(), job.output, true);
  write_sidecar(job, reader->info(), result.patch, sidecar.temp_path());
  if (job.mask_output) {
    mask.emplace(*job.mask_output);
    write_image_file(result.patch.valid, mask->temp_path(), *job.mask_output, false);
  }
  image.commit();
  sidecar.commit();
  if (mask) {
    mask->commit();
  }
  result.sidecar = job.sidecar_path();
  spdlog::info("wrote {} ({}x{} px at {} um/px from level {}, mpp from {})", job.output.string(),
               job.size_px.width, job.size_px.height, result.patch.spacing_um, result.patch.level,
               spacing_source_name(reader->info().spacing_source));
  return result;
}

void run_read_associated(const fs::path& slide, const OpenOptions& open, const std::string& name,
                         const fs::path& output) {
  require_distinct_files({{"the slide", slide}}, {{"-o", output}});
  require_writable_output(output);
  require_image_writer(output, "-o");
  const auto reader = open_slide(slide, open);
  write_image_atomically(reader->read_associated(name), output, true);
  spdlog::info("wrote the {} image of {} to {}", name, slide.string(), output.string());
}

}  // namespace slidestream
