// Journal parts -> predictions.h5: tile by tile in plan order, blending overlaps on disk.
#include <spdlog/spdlog.h>

#include <cmath>
#include <opencv2/imgproc.hpp>

#include "../store/hdf5_util.hpp"
#include "slidestream/core.hpp"
#include "slidestream/stitch.hpp"
#include "stitch_internal.hpp"

namespace fs = std::filesystem;

namespace slidestream {

namespace {

using detail::h5::check;
using detail::h5::create_chunked;
using detail::h5::Handle;
using detail::h5::read_block;
using detail::h5::write_block;

hsize_t u(std::int64_t value) {
  return static_cast<hsize_t>(value);
}

// The overlap of a tile with the raster, in raster and in tile coordinates.
struct Crop {
  Rect raster;
  Rect tile;
};

Crop crop_to(const Rect& tile_rect, Size raster) {
  const Rect inside = intersect(tile_rect, Rect{0, 0, raster.width, raster.height});
  return {inside,
          Rect{inside.x - tile_rect.x, inside.y - tile_rect.y, inside.width, inside.height}};
}

cv::Rect cv_rect(const Rect& rect) {
  return {static_cast<int>(rect.x), static_cast<int>(rect.y), static_cast<int>(rect.width),
          static_cast<int>(rect.height)};
}

// Writes a 2-D uint8 block (a crop of `tile`) into dataset [H, W] or plane `plane` of [C, H, W].
void write_u8(hid_t dataset, const cv::Mat& tile, const Crop& crop, int plane, bool planar,
              const std::string& file) {
  if (crop.raster.empty()) {
    return;
  }
  const cv::Mat part = tile(cv_rect(crop.tile)).clone();
  std::vector<hsize_t> start{u(crop.raster.y), u(crop.raster.x)};
  std::vector<hsize_t> count{u(crop.raster.height), u(crop.raster.width)};
  if (planar) {
    start.insert(start.begin(), u(plane));
    count.insert(count.begin(), 1);
  }
  write_block(dataset, H5T_NATIVE_UINT8, start, count, part.data, file);
}

// The final file's datasets.
struct Outputs {
  std::string path;
  Handle file;
  Handle labels;
  Handle probabilities;
  Handle entropy;
  Handle done;
  const PredictionLayout* layout = nullptr;
  MergeStats stats;

  Size heatmap() const {
    const int k = layout->heatmap_downsample;
    return {(layout->raster_px.width + k - 1) / k, (layout->raster_px.height + k - 1) / k};
  }

  // Stores one tile's (or block's) labels, planar uint8 probabilities and entropy at `rect`.
  void store(const Rect& rect, const cv::Mat& tile_labels, const cv::Mat& planar,
             const cv::Mat& ent) {
    const Crop crop = crop_to(rect, layout->raster_px);
    write_u8(labels.get(), tile_labels, crop, 0, false, path);
    for (int y = 0; y < crop.tile.height; ++y) {
      const auto* row = tile_labels.ptr<std::uint8_t>(static_cast<int>(crop.tile.y + y));
      for (std::int64_t x = crop.tile.x; x < crop.tile.right(); ++x) {
        ++stats.label_pixels[row[x]];
      }
    }
    if (probabilities.valid() && !planar.empty()) {
      const int k = layout->heatmap_downsample;
      const Rect small{rect.x / k, rect.y / k, rect.width / k, rect.height / k};
      const Crop heat = crop_to(small, heatmap());
      const int plane_rows = planar.rows / static_cast<int>(layout->classes.size());
      for (std::size_t c = 0; c < layout->classes.size(); ++c) {
        const int c_int = static_cast<int>(c);
        write_u8(probabilities.get(), planar.rowRange(c_int * plane_rows, (c_int + 1) * plane_rows),
                 heat, c_int, true, path);
      }
    }
    if (entropy.valid() && !ent.empty()) {
      write_u8(entropy.get(), ent, crop, 0, false, path);
    }
  }

  void mark_done(std::int64_t column, std::int64_t row) {
    const std::uint8_t one = 1;
    write_block(done.get(), H5T_NATIVE_UINT8, {u(row), u(column)}, {1, 1}, &one, path);
    ++stats.tiles;
  }
};

Outputs create_outputs(const std::string& path, const PredictionLayout& layout) {
  Outputs out;
  out.path = path;
  out.layout = &layout;
  const Handle access = detail::h5::property_list(H5P_FILE_ACCESS, path);
  out.file = Handle(check(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, access.get()), path,
                          "create predictions"),
                    H5Fclose);
  const Size raster = layout.raster_px;
  const std::vector<hsize_t> dims{u(raster.height), u(raster.width)};
  const std::vector<hsize_t> chunk{u(std::min(layout.stride_px.height, raster.height)),
                                   u(std::min(layout.stride_px.width, raster.width))};
  out.labels = create_chunked(out.file.get(), "labels", H5T_STD_U8LE, dims, chunk, 4, path);
  if (layout.probabilities) {
    const Size heat = out.heatmap();
    const int k = layout.heatmap_downsample;
    out.probabilities = create_chunked(
        out.file.get(), "probabilities", H5T_STD_U8LE,
        {u(static_cast<std::int64_t>(layout.classes.size())), u(heat.height), u(heat.width)},
        {1, u(std::min(layout.stride_px.height / k, heat.height)),
         u(std::min(layout.stride_px.width / k, heat.width))},
        4, path);
  }
  if (layout.entropy) {
    out.entropy = create_chunked(out.file.get(), "entropy", H5T_STD_U8LE, dims, chunk, 4, path);
  }
  const Size grid = layout.grid;
  out.done = create_chunked(
      out.file.get(), "tiles_done", H5T_STD_U8LE, {u(grid.height), u(grid.width)},
      {u(std::min<std::int64_t>(grid.height, 256)), u(std::min<std::int64_t>(grid.width, 256))}, 4,
      path);
  return out;
}

// A row `index` of a part's dataset as a Mat of `rows` x `cols` with `type`.
cv::Mat read_row(hid_t dataset, std::uint64_t index, int rows, int cols, int type,
                 const std::string& file) {
  cv::Mat row(rows, cols, type);
  std::vector<hsize_t> dims = detail::h5::dataset_dims(dataset, file);
  std::vector<hsize_t> start(dims.size(), 0);
  start[0] = index;
  dims[0] = 1;
  const hid_t memory = CV_MAT_DEPTH(type) == CV_32F   ? H5T_NATIVE_FLOAT
                       : CV_MAT_DEPTH(type) == CV_64F ? H5T_NATIVE_DOUBLE
                                                      : H5T_NATIVE_UINT8;
  read_block(dataset, memory, start, dims, row.data, file);
  return row;
}

Handle open_dataset(hid_t file, const char* name, const std::string& path) {
  return {check(H5Dopen2(file, name, H5P_DEFAULT), path,
                (std::string("open dataset '") + name + "'").c_str()),
          H5Dclose};
}

// Calls `visit(column, row, part_file, dataset_row)` for every tile of every part, in order.
template <typename Visit>
void for_each_tile(const fs::path& folder, Visit&& visit) {
  for (const fs::path& part : detail::committed_parts(folder)) {
    const std::string path = part.string();
    const Handle file(
        check(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), path, "open a journal part"),
        H5Fclose);
    const Handle tiles = open_dataset(file.get(), "tiles", path);
    const hsize_t count = detail::h5::dataset_dims(tiles.get(), path)[0];
    for (hsize_t i = 0; i < count; ++i) {
      std::int64_t ids[3] = {0, 0, 0};
      read_block(tiles.get(), H5T_NATIVE_INT64, {i, 0}, {1, 3}, ids, path);
      visit(ids[1], ids[2], file.get(), i, path);
    }
  }
}

void merge_abutting(const fs::path& folder, const PredictionLayout& layout, Outputs& out) {
  const int h = static_cast<int>(layout.tile_px.height);
  const int w = static_cast<int>(layout.tile_px.width);
  const int k = layout.heatmap_downsample;
  const int classes = static_cast<int>(layout.classes.size());
  for_each_tile(folder, [&](std::int64_t column, std::int64_t row, hid_t part, hsize_t i,
                            const std::string& path) {
    const cv::Mat labels =
        read_row(open_dataset(part, "labels", path).get(), i, h, w, CV_8UC1, path);
    cv::Mat planar;
    if (layout.probabilities) {
      planar = read_row(open_dataset(part, "probabilities", path).get(), i, classes * (h / k),
                        w / k, CV_8UC1, path);
    }
    cv::Mat entropy;
    if (layout.entropy) {
      entropy = read_row(open_dataset(part, "entropy", path).get(), i, h, w, CV_8UC1, path);
    }
    out.store(layout.tile_rect(column, row), labels, planar, entropy);
    out.mark_done(column, row);
  });
}

// Per-pixel blending weights of a tile: flat, or a Gaussian with sigma = 1/8 of the tile.
cv::Mat blend_weights(const PredictionLayout& layout) {
  const cv::Size size(static_cast<int>(layout.tile_px.width),
                      static_cast<int>(layout.tile_px.height));
  cv::Mat weights(size, CV_32FC1, cv::Scalar(1.0f));
  if (layout.blend == BlendMode::kGaussian) {
    const double sx = size.width / 8.0;
    const double sy = size.height / 8.0;
    for (int y = 0; y < size.height; ++y) {
      for (int x = 0; x < size.width; ++x) {
        const double dx = (x + 0.5 - size.width / 2.0) / sx;
        const double dy = (y + 0.5 - size.height / 2.0) / sy;
        weights.at<float>(y, x) =
            static_cast<float>(std::max(std::exp(-0.5 * (dx * dx + dy * dy)), 1e-3));
      }
    }
  }
  return weights;
}

void merge_blended(const fs::path& folder, const PredictionLayout& layout, Outputs& out) {
  const int classes = static_cast<int>(layout.classes.size());
  const Size raster = layout.raster_px;
  // On-disk accumulators (sum of weight * p, and of weight) in a hidden scratch file.
  AtomicOutput scratch_output(folder / "blend-scratch.h5");
  const std::string scratch_path = scratch_output.temp_path().string();
  const Handle scratch(
      check(H5Fcreate(scratch_path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), scratch_path,
            "create the blending scratch file"),
      H5Fclose);
  const std::vector<hsize_t> chunk{u(std::min(layout.stride_px.height, raster.height)),
                                   u(std::min(layout.stride_px.width, raster.width))};
  const Handle sum = create_chunked(scratch.get(), "sum", H5T_NATIVE_FLOAT,
                                    {u(raster.height), u(raster.width), u(classes)},
                                    {chunk[0], chunk[1], u(classes)}, 0, scratch_path);
  const Handle weight_sum =
      create_chunked(scratch.get(), "weight", H5T_NATIVE_FLOAT, {u(raster.height), u(raster.width)},
                     chunk, 0, scratch_path);
  const cv::Mat weights = blend_weights(layout);
  const int h = static_cast<int>(layout.tile_px.height);
  const int w = static_cast<int>(layout.tile_px.width);
  for_each_tile(folder, [&](std::int64_t column, std::int64_t row, hid_t part, hsize_t i,
                            const std::string& path) {
    const cv::Mat probs = read_row(open_dataset(part, "probabilities_f32", path).get(), i, h, w,
                                   CV_32FC(classes), path);
    const Crop crop = crop_to(layout.tile_rect(column, row), raster);
    if (!crop.raster.empty()) {
      const std::vector<hsize_t> start{u(crop.raster.y), u(crop.raster.x)};
      const std::vector<hsize_t> count{u(crop.raster.height), u(crop.raster.width)};
      cv::Mat acc(static_cast<int>(count[0]), static_cast<int>(count[1]), CV_32FC(classes));
      cv::Mat acc_weight(acc.size(), CV_32FC1);
      read_block(sum.get(), H5T_NATIVE_FLOAT, {start[0], start[1], 0},
                 {count[0], count[1], u(classes)}, acc.data, scratch_path);
      read_block(weight_sum.get(), H5T_NATIVE_FLOAT, start, count, acc_weight.data, scratch_path);
      const cv::Mat tile_weights = weights(cv_rect(crop.tile));
      std::vector<cv::Mat> weight_planes(static_cast<std::size_t>(classes), tile_weights);
      cv::Mat weights_n;
      cv::merge(weight_planes, weights_n);
      acc += probs(cv_rect(crop.tile)).mul(weights_n);
      acc_weight += tile_weights;
      write_block(sum.get(), H5T_NATIVE_FLOAT, {start[0], start[1], 0},
                  {count[0], count[1], u(classes)}, acc.data, scratch_path);
      write_block(weight_sum.get(), H5T_NATIVE_FLOAT, start, count, acc_weight.data, scratch_path);
    }
    out.mark_done(column, row);
  });
  // Normalise block by block on the stride grid (blocks padded past the raster with zeros, so
  // their sizes stay divisible by the heatmap downsample).
  const Size block = layout.stride_px;
  for (std::int64_t by = 0; by * block.height < raster.height; ++by) {
    for (std::int64_t bx = 0; bx * block.width < raster.width; ++bx) {
      const Rect rect{bx * block.width, by * block.height, block.width, block.height};
      const Crop crop = crop_to(rect, raster);
      const cv::Size size(static_cast<int>(block.width), static_cast<int>(block.height));
      cv::Mat acc(size, CV_32FC(classes), cv::Scalar::all(0));
      cv::Mat acc_weight(size, CV_32FC1, cv::Scalar(0));
      cv::Mat acc_part = acc(cv_rect(crop.tile)).clone();
      cv::Mat weight_part = acc_weight(cv_rect(crop.tile)).clone();
      const std::vector<hsize_t> start{u(crop.raster.y), u(crop.raster.x)};
      const std::vector<hsize_t> count{u(crop.raster.height), u(crop.raster.width)};
      read_block(sum.get(), H5T_NATIVE_FLOAT, {start[0], start[1], 0},
                 {count[0], count[1], u(classes)}, acc_part.data, scratch_path);
      read_block(weight_sum.get(), H5T_NATIVE_FLOAT, start, count, weight_part.data, scratch_path);
      acc_part.copyTo(acc(cv_rect(crop.tile)));
      weight_part.copyTo(acc_weight(cv_rect(crop.tile)));
      const cv::Mat covered = acc_weight > 0;
      cv::Mat safe_weight = cv::max(acc_weight, 1e-12);
      std::vector<cv::Mat> weight_planes(static_cast<std::size_t>(classes), safe_weight);
      cv::Mat weights_n;
      cv::merge(weight_planes, weights_n);
      const cv::Mat probs = acc / weights_n;
      cv::Mat labels = detail::labels_of(probs, layout.classes);
      labels.setTo(0, ~covered);
      const cv::Mat planar =
          layout.probabilities ? detail::planar_u8_of(probs, layout.heatmap_downsample) : cv::Mat();
      cv::Mat entropy;
      if (layout.entropy) {
        entropy = detail::entropy_u8_of(probs);
        entropy.setTo(0, ~covered);
      }
      out.store(rect, labels, planar, entropy);
    }
  }
}

}  // namespace

MergeStats merge_predictions(const fs::path& journal_folder, const PredictionLayout& layout,
                             const PredictionRecord& record, const fs::path& output) {
  layout.validate();
  detail::h5::silence_automatic_errors();
  AtomicOutput atomic(output);
  Outputs out = create_outputs(atomic.temp_path().string(), layout);
  if (layout.blend == BlendMode::kNone) {
    merge_abutting(journal_folder, layout, out);
  } else {
    merge_blended(journal_folder, layout, out);
  }
  detail::write_prediction_record(out.file.get(), layout, record, out.stats, out.path);
  out.labels.reset();
  out.probabilities.reset();
  out.entropy.reset();
  out.done.reset();
  check(out.file.close(), out.path, "close predictions");
  atomic.commit();
  spdlog::debug("{}: {} tiles merged", output.string(), out.stats.tiles);
  return out.stats;
}

}  // namespace slidestream
