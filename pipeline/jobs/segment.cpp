// `slidestream segment`: the batch around segment_slide: shards, locks, failures that do not stop
// the batch, and the batch report.
#include <fcntl.h>
#include <openslide.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <unistd.h>
#include <vips/vips.h>

#include <chrono>
#include <cstdlib>
#include <opencv2/core.hpp>

#include "batch.hpp"
#include "segment_internal.hpp"
#include "slidestream/core.hpp"
#include "slidestream/h5.hpp"

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace slidestream {

namespace {

// An exclusive advisory lock on <slide dir>/.lock, released when the process ends (even when
// killed), so two processes never write the same slide.
class SlideLock {
 public:
  explicit SlideLock(const fs::path& slide_dir) {
    const fs::path path = slide_dir / ".lock";
    descriptor_ = ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    if (descriptor_ < 0) {
      throw Error(ErrorCode::kOutputError, "cannot create the lock file '" + path.string() +
                                               "'; check that the output folder is writable");
    }
    if (::flock(descriptor_, LOCK_EX | LOCK_NB) != 0) {
      ::close(descriptor_);
      descriptor_ = -1;
      throw Error(ErrorCode::kOutputError,
                  "'" + slide_dir.string() +
                      "' is being written by another slidestream process (locked); wait for it "
                      "or give another output folder");
    }
  }
  ~SlideLock() {
    if (descriptor_ >= 0) {
      ::close(descriptor_);  // releases the lock
    }
  }
  SlideLock(const SlideLock&) = delete;
  SlideLock& operator=(const SlideLock&) = delete;

 private:
  int descriptor_ = -1;
};

std::string fnv1a_hex(const std::string& text) {
  std::uint64_t hash = 1469598103934665603ULL;  // FNV-1a 64: stable across runs and platforms
  for (const unsigned char byte : text) {
    hash = (hash ^ byte) * 1099511628211ULL;
  }
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(hash));
  return hex;
}

std::optional<int> env_int(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') {
    return std::nullopt;
  }
  const std::string text(value);
  try {
    size_t used = 0;
    const int number = std::stoi(text, &used);
    if (used == text.size()) {
      return number;
    }
  } catch (const std::exception&) {
  }
  throw Error(ErrorCode::kInvalidArgument, std::string("environment variable ") + name + "='" +
                                               text + "' is not a whole number");
}

std::string batch_report_name(const std::optional<Shard>& shard) {
  if (!shard || shard->count == 1) {
    return "batch_report.json";
  }
  return "batch_report.shard-" + std::to_string(shard->index) + "-of-" +
         std::to_string(shard->count) + ".json";
}

void write_batch_report(const SegmentJob& job, const BatchReport& report,
                        const std::optional<Shard>& shard) {
  json out;
  out["schema"] = "slidestream.segment-batch-report/1";
  out["slidestream_version"] = kVersion;
  out["model"] = job.model_dir.string();
  out["output_dir"] = job.output_dir.string();
  out["shard"] = shard ? json{{"index", shard->index}, {"count", shard->count}} : json(nullptr);
  out["slides"] = json::array();
  for (const SlideOutcome& slide : report.slides) {
    out["slides"].push_back(
        {{"id", slide.id},
         {"path", slide.path.string()},
         {"status", slide.skipped ? "skipped"
                    : slide.ok    ? "ok"
                                  : "failed"},
         {"tiles", slide.patches},
         {"seconds", slide.seconds},
         {"error_code", slide.ok || slide.skipped ? json(nullptr)
                                                  : json(std::string(error_code_name(slide.code)))},
         {"error", slide.error},
         {"report", slide.ok ? (job.output_dir / slide.id / "report.json").string() : ""}});
  }
  out["failed"] = report.failed();
  out["peak_rss_mib"] = detail::peak_rss_mib();
  write_text_atomically(job.output_dir / batch_report_name(shard), out.dump(2) + "\n");
}

void require_output_dir(const fs::path& dir) {
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec)) {
    throw Error(ErrorCode::kOutputError, "the output folder '" + dir.string() +
                                             "' is a file, not a folder; choose another -o");
  }
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) {
    throw Error(ErrorCode::kOutputError, "cannot create the output folder '" + dir.string() + "'" +
                                             (ec ? ": " + ec.message() : std::string()));
  }
  if (::access(dir.c_str(), W_OK) != 0) {
    throw Error(ErrorCode::kOutputError,
                "the output folder '" + dir.string() + "' is not writable; choose another one");
  }
}

}  // namespace

std::string detail::run_fingerprint(const SegmentationModel& model, const SegmentConfig& config) {
  return model.weights_sha256() + ":" + fnv1a_hex(config.resolved_yaml());
}

double detail::peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux reports KiB
}

json detail::library_versions() {
  return {{"slidestream", kVersion},
          {"openslide", openslide_get_version()},
          {"libvips", vips_version_string()},
          {"opencv", CV_VERSION},
          {"hdf5", h5::library_version()}};
}

namespace {

// The digits of `text` as a positive int, or nullopt (no sign, no fraction, no trailing text).
std::optional<int> strict_int(const std::string& text) {
  if (text.empty() || text.size() > 9 ||
      text.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  return std::stoi(text);
}

Shard make_shard(int index, int count, const std::string& source, const std::string& fix) {
  if (count < 1 || index < 1 || index > count) {
    throw Error(ErrorCode::kInvalidArgument, source + " gives share " + std::to_string(index) +
                                                 " of " + std::to_string(count) +
                                                 ", but shares are numbered 1..N; " + fix);
  }
  return Shard{index, count};
}

}  // namespace

Shard parse_shard(const std::string& text) {
  const std::size_t slash = text.find('/');
  const auto index = strict_int(text.substr(0, slash));
  const auto count = slash == std::string::npos ? std::nullopt : strict_int(text.substr(slash + 1));
  if (!index || !count) {
    throw Error(ErrorCode::kInvalidArgument,
                "--shard '" + text +
                    "' must be I/N with whole numbers, e.g. 1/4 for the first "
                    "of four shares");
  }
  return make_shard(*index, *count, "--shard '" + text + "'", "e.g. --shard 1/4");
}

std::optional<Shard> shard_from_environment() {
  if (const auto task = env_int("SLURM_ARRAY_TASK_ID")) {
    const auto count = env_int("SLURM_ARRAY_TASK_COUNT");
    if (!count) {
      throw Error(ErrorCode::kInvalidArgument,
                  "SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not; pass --shard I/N");
    }
    const int first = env_int("SLURM_ARRAY_TASK_MIN").value_or(0);
    return make_shard(*task - first + 1, *count,
                      "SLURM_ARRAY_TASK_ID=" + std::to_string(*task) +
                          " (minus SLURM_ARRAY_TASK_MIN=" + std::to_string(first) +
                          ") of SLURM_ARRAY_TASK_COUNT=" + std::to_string(*count),
                      "check the array range (--array) or pass --shard I/N");
  }
  if (const auto index = env_int("JOB_COMPLETION_INDEX")) {
    const auto count = env_int("SLIDESTREAM_SHARD_COUNT");
    if (!count) {
      throw Error(ErrorCode::kInvalidArgument,
                  "JOB_COMPLETION_INDEX is set but SLIDESTREAM_SHARD_COUNT is not; set it to "
                  "the job's completions, or pass --shard I/N");
    }
    return make_shard(*index + 1, *count,
                      "JOB_COMPLETION_INDEX=" + std::to_string(*index) +
                          " (0-based) of SLIDESTREAM_SHARD_COUNT=" + std::to_string(*count),
                      "set SLIDESTREAM_SHARD_COUNT to the job's completions, or pass --shard I/N");
  }
  return std::nullopt;
}

BatchReport run_segment(const SegmentJob& job) {
  job.config.validate();
  if (!job.shard) {
    shard_from_environment();  // a bad cluster share fails before the model is loaded
  }
  std::unique_ptr<SegmentationModel> model = load_model(job.model_dir, job.config.inference);
  return run_segment(job, *model);
}

BatchReport run_segment(const SegmentJob& job, SegmentationModel& model) {
  job.config.validate();
  const std::vector<SlideInput> slides = expand_slide_inputs(job.inputs);
  const std::optional<Shard> shard = job.shard ? job.shard : shard_from_environment();
  require_output_dir(job.output_dir);
  spdlog::info("model {} ({}, {} classes) on {}; output tiles {} px at {} um/px",
               job.model_dir.string(), model.architecture(), model.classes().size(), model.device(),
               model.geometry().output.size_px.width, model.geometry().output.spacing_um);

  BatchReport report;
  for (std::size_t k = 0; k < slides.size(); ++k) {
    if (shard && static_cast<int>(k % static_cast<std::size_t>(shard->count)) != shard->index - 1) {
      continue;
    }
    const SlideInput& slide = slides[k];
    report.slides.push_back(run_slide(slide, [&](SlideOutcome& outcome) {
      const fs::path slide_dir = job.output_dir / slide.id;
      require_output_dir(slide_dir);
      const SlideLock lock(slide_dir);
      const detail::SlideResult result = detail::segment_slide(job, model, slide, slide_dir);
      outcome.skipped = result.skipped;
      outcome.patches = static_cast<std::size_t>(result.planned);
      if (result.skipped) {
        spdlog::info("{}: finished earlier with this model and config, skipped (--resume)",
                     slide.id);
      }
    }));
  }
  write_batch_report(job, report, shard);
  return report;
}

}  // namespace slidestream
