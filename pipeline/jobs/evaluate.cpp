// `slidestream evaluate`: label images compared strip by strip through libvips.
#include "slidestream/jobs/evaluate.hpp"

#include <spdlog/spdlog.h>

#include <array>
#include <cmath>
#include <iomanip>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vips/vips8>

#include "slidestream/core.hpp"

namespace fs = std::filesystem;

namespace slidestream {

namespace {

void init_vips() {
  static std::once_flag once;
  static bool failed = false;
  std::call_once(once, [] { failed = VIPS_INIT("slidestream") != 0; });
  if (failed) {
    throw Error(ErrorCode::kInternal, "libvips failed to initialise");
  }
}

// Band 0 of an 8-bit label image, opened for top-to-bottom strip reads.
vips::VImage open_labels(const fs::path& path, const char* role) {
  require_readable_file(path);
  vips::VImage image;
  try {
    image = vips::VImage::new_from_file(
        path.c_str(), vips::VImage::option()->set("access", VIPS_ACCESS_SEQUENTIAL));
  } catch (const vips::VError& error) {
    throw Error(ErrorCode::kUnsupportedFormat,
                std::string(role) + " '" + path.string() +
                    "' is not an image libvips reads: " + error.what());
  }
  if (image.format() != VIPS_FORMAT_UCHAR) {
    throw Error(ErrorCode::kUnsupportedFormat,
                std::string(role) + " '" + path.string() +
                    "' is not an 8-bit label image (one uint8 label value per pixel)");
  }
  // Labels have one value per pixel; grey + alpha keeps its grey band. A colour image is a
  // picture (or a slide), not labels, and scoring its red channel would be silently wrong.
  if (image.bands() > 2) {
    throw Error(ErrorCode::kUnsupportedFormat,
                std::string(role) + " '" + path.string() + "' has " +
                    std::to_string(image.bands()) +
                    " channels (a colour image or a slide), not one label value per pixel; give "
                    "a single-channel label image such as labels.tif from segment");
  }
  return image.bands() > 1 ? image.extract_band(0) : image;
}

// Counts of (truth value, predicted value) over the whole images.
using RawCounts = std::vector<std::int64_t>;  // 256 x 256

RawCounts count_pairs(const vips::VImage& truth, const vips::VImage& prediction, int strip_rows) {
  RawCounts counts(256 * 256, 0);
  const int width = truth.width();
  const int height = truth.height();
  // One region per image, prepared strip after strip in the calling thread: the reads only
  // move forward, as sequential access requires, and hold one strip at a time.
  vips::VRegion truth_region = vips::VRegion::new_from_image(truth);
  vips::VRegion prediction_region = vips::VRegion::new_from_image(prediction);
  for (int y = 0; y < height; y += strip_rows) {
    const int rows = std::min(strip_rows, height - y);
    truth_region.prepare(0, y, width, rows);
    prediction_region.prepare(0, y, width, rows);
    for (int row = 0; row < rows; ++row) {
      const auto* t = static_cast<const std::uint8_t*>(truth_region.addr(0, y + row));
      const auto* p = static_cast<const std::uint8_t*>(prediction_region.addr(0, y + row));
      for (int x = 0; x < width; ++x) {
        ++counts[static_cast<std::size_t>(t[x]) * 256 + p[x]];
      }
    }
  }
  return counts;
}

std::string number(double value) {
  if (std::isnan(value)) {
    return "-";
  }
  std::ostringstream out;
  out << std::fixed << std::setprecision(4) << value;
  return out.str();
}

nlohmann::json json_number(double value) {
  return std::isnan(value) ? nlohmann::json(nullptr) : nlohmann::json(value);
}

}  // namespace

void EvaluateJob::validate() const {
  if (prediction.empty() || truth.empty()) {
    throw Error(ErrorCode::kInvalidArgument, "evaluate needs --pred and --truth label images");
  }
  if (ignore && (*ignore < 0 || *ignore > 255)) {
    throw Error(ErrorCode::kInvalidArgument, "--ignore must be a label value 0..255");
  }
  if (strip_rows < 1) {
    throw Error(ErrorCode::kInvalidArgument, "strip_rows must be >= 1");
  }
  if (json_output) {
    require_distinct_files({{"--pred", prediction}, {"--truth", truth}},
                           {{"--json", *json_output}});
    require_writable_output(*json_output);
  }
}

std::vector<LabelClass> parse_class_list(const std::string& text) {
  std::vector<LabelClass> classes;
  std::stringstream items(text);
  for (std::string item; std::getline(items, item, ',');) {
    const std::size_t equals = item.find('=');
    int value = -1;
    try {
      value = equals == std::string::npos ? -1 : std::stoi(item.substr(equals + 1));
    } catch (const std::exception&) {
      value = -1;
    }
    if (equals == 0 || value < 0 || value > 255) {
      throw Error(ErrorCode::kInvalidArgument, "--classes item '" + item +
                                                   "' must be name=value with value 0..255, e.g. "
                                                   "background=0,nucleus=1");
    }
    LabelClass label;
    label.name = item.substr(0, equals);
    label.value = static_cast<std::uint8_t>(value);
    for (const LabelClass& earlier : classes) {
      if (earlier.name == label.name || earlier.value == label.value) {
        throw Error(ErrorCode::kInvalidArgument,
                    "--classes names " +
                        (earlier.name == label.name ? "'" + label.name + "'"
                                                    : "the value " + std::to_string(value)) +
                        " twice; give each class one name and one value");
      }
    }
    classes.push_back(label);
  }
  return classes;
}

EvaluationReport run_evaluate(const EvaluateJob& job) {
  job.validate();
  init_vips();
  const vips::VImage prediction = open_labels(job.prediction, "--pred");
  const vips::VImage truth = open_labels(job.truth, "--truth");
  if (prediction.width() != truth.width() || prediction.height() != truth.height()) {
    throw Error(ErrorCode::kInvalidArgument,
                "--pred '" + job.prediction.string() + "' is " +
                    std::to_string(prediction.width()) + "x" + std::to_string(prediction.height()) +
                    " px but --truth '" + job.truth.string() + "' is " +
                    std::to_string(truth.width()) + "x" + std::to_string(truth.height()) +
                    " px; both must be label images of the same size (same spacing)");
  }
  RawCounts raw;
  try {
    raw = count_pairs(truth, prediction, job.strip_rows);
  } catch (const vips::VError& error) {
    throw Error(ErrorCode::kCorruptData,
                "cannot read the label images: " + std::string(error.what()));
  }
  EvaluationReport report;
  report.prediction = job.prediction;
  report.truth = job.truth;
  report.size = Size{truth.width(), truth.height()};
  report.classes = job.classes;
  if (report.classes.empty()) {  // every value seen in either image
    for (int v = 0; v < 256; ++v) {
      bool seen = false;
      for (int w = 0; w < 256 && !seen; ++w) {
        seen = raw[static_cast<std::size_t>(v) * 256 + w] > 0 ||
               raw[static_cast<std::size_t>(w) * 256 + v] > 0;
      }
      if (seen && !(job.ignore && *job.ignore == v)) {
        report.classes.push_back(LabelClass{std::to_string(v), static_cast<std::uint8_t>(v), {}});
      }
    }
  }
  std::array<int, 256> index{};
  index.fill(-1);
  for (std::size_t k = 0; k < report.classes.size(); ++k) {
    index[report.classes[k].value] = static_cast<int>(k);
  }
  const int listed = static_cast<int>(report.classes.size());
  bool unlisted_prediction = false;
  for (int v = 0; v < 256 && !unlisted_prediction; ++v) {
    for (int t = 0; t < 256; ++t) {
      unlisted_prediction = unlisted_prediction || (index[v] < 0 && index[t] >= 0 &&
                                                    raw[static_cast<std::size_t>(t) * 256 + v] > 0);
    }
  }
  report.confusion = ConfusionMatrix(std::max(1, listed + (unlisted_prediction ? 1 : 0)));
  for (int t = 0; t < 256; ++t) {
    for (int p = 0; p < 256; ++p) {
      const std::int64_t n = raw[static_cast<std::size_t>(t) * 256 + p];
      if (n == 0) {
        continue;
      }
      if (job.ignore && *job.ignore == t) {
        report.ignored_pixels += n;
      } else if (index[t] < 0) {
        report.unlisted_truth_pixels += n;
      } else {
        report.confusion.add_count(index[t], index[p] >= 0 ? index[p] : listed, n);
      }
    }
  }
  if (unlisted_prediction) {
    report.classes.push_back(LabelClass{"(unlisted)", 0, {}});
  }
  if (report.unlisted_truth_pixels > 0) {
    spdlog::warn("evaluate: {} truth pixels have values --classes does not list; left out",
                 report.unlisted_truth_pixels);
  }
  if (job.json_output) {
    write_text_atomically(*job.json_output, report.json());
  }
  return report;
}

std::string EvaluationReport::json() const {
  nlohmann::json j;
  j["schema"] = "slidestream.evaluate/1";
  j["prediction"] = prediction.string();
  j["truth"] = truth.string();
  j["width"] = size.width;
  j["height"] = size.height;
  j["pixels"] = confusion.total();
  j["ignored_pixels"] = ignored_pixels;
  j["unlisted_truth_pixels"] = unlisted_truth_pixels;
  j["pixel_accuracy"] = json_number(confusion.accuracy());
  j["mean_dice"] = json_number(confusion.mean_dice(false));
  double iou_sum = 0;
  int iou_count = 0;
  j["classes"] = nlohmann::json::array();
  for (int k = 0; k < confusion.classes(); ++k) {
    std::int64_t truth_pixels = 0;
    std::int64_t predicted_pixels = 0;
    for (int m = 0; m < confusion.classes(); ++m) {
      truth_pixels += confusion.count(k, m);
      predicted_pixels += confusion.count(m, k);
    }
    const double iou = confusion.iou(k);
    if (!std::isnan(iou)) {
      iou_sum += iou;
      ++iou_count;
    }
    j["classes"].push_back(
        {{"name", classes[k].name},
         {"value", classes[k].name == "(unlisted)" ? nlohmann::json(nullptr)
                                                   : nlohmann::json(classes[k].value)},
         {"dice", json_number(confusion.dice(k))},
         {"iou", json_number(iou)},
         {"truth_pixels", truth_pixels},
         {"predicted_pixels", predicted_pixels}});
  }
  j["mean_iou"] = iou_count > 0 ? nlohmann::json(iou_sum / iou_count) : nlohmann::json(nullptr);
  j["confusion_matrix"] = nlohmann::json::array();
  for (int t = 0; t < confusion.classes(); ++t) {
    nlohmann::json row = nlohmann::json::array();
    for (int p = 0; p < confusion.classes(); ++p) {
      row.push_back(confusion.count(t, p));
    }
    j["confusion_matrix"].push_back(row);
  }
  return j.dump(2) + "\n";
}

std::string EvaluationReport::table() const {
  std::ostringstream out;
  out << "class                 value    Dice     IoU\n";
  for (int k = 0; k < confusion.classes(); ++k) {
    out << std::left << std::setw(20) << classes[k].name << std::right << std::setw(7)
        << (classes[k].name == "(unlisted)" ? std::string("-") : std::to_string(classes[k].value))
        << std::setw(8) << number(confusion.dice(k)) << std::setw(8) << number(confusion.iou(k))
        << "\n";
  }
  out << "pixel accuracy " << number(confusion.accuracy()) << ", mean Dice "
      << number(confusion.mean_dice(false)) << " over " << confusion.total() << " pixels";
  if (ignored_pixels > 0) {
    out << " (" << ignored_pixels << " ignored)";
  }
  out << "\nconfusion matrix (rows truth, columns prediction):\n";
  for (int t = 0; t < confusion.classes(); ++t) {
    out << std::left << std::setw(20) << classes[t].name << std::right;
    for (int p = 0; p < confusion.classes(); ++p) {
      out << std::setw(12) << confusion.count(t, p);
    }
    out << "\n";
  }
  return out.str();
}

}  // namespace slidestream
