#include "dataset_sink.hpp"

#include <spdlog/spdlog.h>

#include <fstream>
#include <iomanip>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "slidestream/core.hpp"

namespace fs = std::filesystem;

namespace slidestream::detail {

namespace {

class Hdf5Sink final : public DatasetSink {
 public:
  Hdf5Sink(const fs::path& path, int gzip_level, bool resume)
      : writer_(path, PatchDatasetWriter::Options{gzip_level, resume}) {}

  std::vector<std::string> existing_slides() const override { return writer_.existing_slides(); }
  void begin_slide(const SlideRecord& record) override { writer_.begin_slide(record); }
  void append(const PatchSet& patches) override { writer_.append(patches, patches.labels); }
  void end_slide() override { writer_.end_slide(); }
  void require_geometry(const ModelGeometry& geometry) const override {
    writer_.require_geometry(geometry);
  }
  // Called while the slide's own error propagates: a failure to remove its group is logged,
  // not thrown over that error (the group then stays incomplete, which readers skip).
  void abandon_slide() override {
    try {
      writer_.abandon_slide();
    } catch (const std::exception& error) {
      spdlog::warn("{}", error.what());
    }
  }
  void commit() override { writer_.commit(); }

 private:
  PatchDatasetWriter writer_;
};

// Each slide is written to "<folder>/.<id>.partial" and renamed to "<folder>/<id>" when
// complete, so a folder named after a slide is always a whole slide.
class PngSink final : public DatasetSink {
 public:
  PngSink(fs::path folder, bool resume) : folder_(std::move(folder)) {
    std::error_code ec;
    if (fs::exists(folder_, ec) && !fs::is_directory(folder_, ec)) {
      throw Error(ErrorCode::kOutputError,
                  "'" + folder_.string() + "' is a file; with output.format png give a folder");
    }
    if (fs::is_directory(folder_, ec) && !resume && !fs::is_empty(folder_, ec)) {
      throw Error(ErrorCode::kOutputError, "'" + folder_.string() +
                                               "' is not empty; choose a new folder or pass "
                                               "--resume to add the missing slides");
    }
    if (!fs::is_directory(folder_, ec)) {
      require_writable_output(folder_);  // its parent exists and is writable
      create_output_folder(folder_);
    }
  }

  std::vector<std::string> existing_slides() const override {
    std::vector<std::string> ids;
    for (const auto& entry : fs::directory_iterator(folder_)) {
      if (entry.is_directory() && entry.path().filename().string().front() != '.') {
        ids.push_back(entry.path().filename().string());
      }
    }
    std::sort(ids.begin(), ids.end());
    return ids;
  }

  void begin_slide(const SlideRecord& record) override {
    id_ = record.slide_id;
    partial_ = folder_ / ("." + id_ + ".partial");
    fs::remove_all(partial_);
    fs::create_directories(partial_);
    index_.open(partial_ / "index.csv");
    index_ << "tile_index,column,row,x_l0,y_l0,center_x_l0,center_y_l0,tissue_fraction";
    for (size_t b = 0; b < record.geometry.branches.size(); ++b) {
      index_ << ",branch_" << b << (record.with_labels ? ",labels_" + std::to_string(b) : "");
    }
    index_ << "\n";
    std::ofstream(partial_ / "config.yaml") << record.config_yaml;
  }

  void append(const PatchSet& patches) override {
    const TileSpec& spec = patches.spec;
    const RectF& target = spec.branch_l0.front();
    index_ << spec.index << "," << spec.column << "," << spec.row << "," << std::fixed
           << std::setprecision(2) << target.x << "," << target.y << ","
           << target.x + target.width / 2 << "," << target.y + target.height / 2 << ","
           << std::setprecision(4) << spec.tissue_fraction;
    for (size_t b = 0; b < patches.branches.size(); ++b) {
      const std::string stem = std::to_string(spec.index) + "_b" + std::to_string(b);
      cv::Mat bgr;
      cv::cvtColor(patches.branches[b], bgr, cv::COLOR_RGB2BGR);
      write(partial_ / (stem + ".png"), bgr);
      index_ << "," << stem << ".png";
      if (!patches.labels.empty()) {
        write(partial_ / (stem + "_labels.png"), patches.labels[b]);
        index_ << "," << stem << "_labels.png";
      }
    }
    index_ << "\n";
  }

  void end_slide() override {
    index_.close();
    if (!index_) {
      throw Error(ErrorCode::kOutputError, "cannot write " + (partial_ / "index.csv").string());
    }
    fs::rename(partial_, folder_ / id_);
  }

  void abandon_slide() override {
    index_.close();
    std::error_code ignored;
    fs::remove_all(partial_, ignored);
  }

  void commit() override {}

 private:
  static void write(const fs::path& path, const cv::Mat& image) {
    if (!cv::imwrite(path.string(), image)) {
      throw Error(ErrorCode::kOutputError, "cannot write '" + path.string() + "'");
    }
  }

  fs::path folder_;
  fs::path partial_;
  std::string id_;
  std::ofstream index_;
};

}  // namespace

std::unique_ptr<DatasetSink> make_hdf5_sink(const fs::path& path, int gzip_level, bool resume) {
  return std::make_unique<Hdf5Sink>(path, gzip_level, resume);
}

std::unique_ptr<DatasetSink> make_png_sink(const fs::path& folder, bool resume) {
  return std::make_unique<PngSink>(folder, resume);
}

}  // namespace slidestream::detail
