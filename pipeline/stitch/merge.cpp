// Journal parts -> predictions.h5: tile by tile in plan order, blending overlaps on disk.
#include <spdlog/spdlog.h>

#include <cmath>
#include <opencv2/imgproc.hpp>

#include "slidestream/core.hpp"
#include "slidestream/h5.hpp"
#include "slidestream/stitch.hpp"
#include "stitch_internal.hpp"

namespace fs = std::filesystem;

namespace slidestream {

namespace {

std::uint64_t u(std::int64_t value) {
  return static_cast<std::uint64_t>(value);
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
void write_u8(h5::Dataset& dataset, const cv::Mat& tile, const Crop& crop, int plane, bool planar) {
  if (crop.raster.empty()) {
    return;
  }
  const cv::Mat part = tile(cv_rect(crop.tile)).clone();
  h5::Dims start{u(crop.raster.y), u(crop.raster.x)};
  h5::Dims count{u(crop.raster.height), u(crop.raster.width)};
  if (planar) {
    start.insert(start.begin(), u(plane));
    count.insert(count.begin(), 1);
  }
  dataset.write(h5::Type::kUInt8, start, count, part.data);
}

// The final file's datasets.
struct Outputs {
  h5::File file;
  h5::Dataset labels;
  h5::Dataset probabilities;
  h5::Dataset entropy;
  h5::Dataset done;
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
    write_u8(labels, tile_labels, crop, 0, false);
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
        write_u8(probabilities, planar.rowRange(c_int * plane_rows, (c_int + 1) * plane_rows), heat,
                 c_int, true);
      }
    }
    if (entropy.valid() && !ent.empty()) {
      write_u8(entropy, ent, crop, 0, false);
    }
  }

  void mark_done(std::int64_t column, std::int64_t row) {
    const std::uint8_t one = 1;
    done.write(h5::Type::kUInt8, {u(row), u(column)}, {1, 1}, &one);
    ++stats.tiles;
  }
};

Outputs create_outputs(const fs::path& path, const PredictionLayout& layout) {
  Outputs out;
  out.layout = &layout;
  // predictions.h5 has always had HDF5's default root group (it stores no times either way).
  out.file = h5::File::create(path, {});
  const Size raster = layout.raster_px;
  const h5::Dims dims{u(raster.height), u(raster.width)};
  const h5::Dims chunk{u(std::min(layout.stride_px.height, raster.height)),
                       u(std::min(layout.stride_px.width, raster.width))};
  const h5::Type u8 = h5::Type::kUInt8;
  out.labels = out.file.create_dataset("labels", u8, dims, chunk, 4);
  if (layout.probabilities) {
    const Size heat = out.heatmap();
    const int k = layout.heatmap_downsample;
    out.probabilities = out.file.create_dataset(
        "probabilities", u8,
        {u(static_cast<std::int64_t>(layout.classes.size())), u(heat.height), u(heat.width)},
        {1, u(std::min(layout.stride_px.height / k, heat.height)),
         u(std::min(layout.stride_px.width / k, heat.width))},
        4);
  }
  if (layout.entropy) {
    out.entropy = out.file.create_dataset("entropy", u8, dims, chunk, 4);
  }
  const Size grid = layout.grid;
  out.done = out.file.create_dataset(
      "tiles_done", u8, {u(grid.height), u(grid.width)},
      {u(std::min<std::int64_t>(grid.height, 256)), u(std::min<std::int64_t>(grid.width, 256))}, 4);
  return out;
}

// A row `index` of a part's dataset as a Mat of `rows` x `cols` with `type`.
cv::Mat read_row(const h5::Dataset& dataset, std::uint64_t index, int rows, int cols, int type) {
  cv::Mat row(rows, cols, type);
  h5::Dims dims = dataset.dims();
  h5::Dims start(dims.size(), 0);
  start[0] = index;
  dims[0] = 1;
  const h5::Type memory = CV_MAT_DEPTH(type) == CV_32F   ? h5::Type::kFloat32
                          : CV_MAT_DEPTH(type) == CV_64F ? h5::Type::kFloat64
                                                         : h5::Type::kUInt8;
  dataset.read(memory, start, dims, row.data);
  return row;
}

// Calls `visit(column, row, part_file, dataset_row)` for every tile of every part, in order.
template <typename Visit>
void for_each_tile(const fs::path& folder, Visit&& visit) {
  for (const fs::path& part : detail::committed_parts(folder)) {
    const h5::File file = h5::File::open(part, h5::File::Access::kReadOnly);
    const h5::Dataset tiles = file.open_dataset("tiles");
    const std::uint64_t count = tiles.dims()[0];
    for (std::uint64_t i = 0; i < count; ++i) {
      std::int64_t ids[3] = {0, 0, 0};
      tiles.read(h5::Type::kInt64, {i, 0}, {1, 3}, ids);
      visit(ids[1], ids[2], file, i);
    }
  }
}

void merge_abutting(const fs::path& folder, const PredictionLayout& layout, Outputs& out) {
  const int h = static_cast<int>(layout.tile_px.height);
  const int w = static_cast<int>(layout.tile_px.width);
  const int k = layout.heatmap_downsample;
  const int classes = static_cast<int>(layout.classes.size());
  for_each_tile(folder, [&](std::int64_t column, std::int64_t row, const h5::File& part,
                            std::uint64_t i) {
    const cv::Mat labels = read_row(part.open_dataset("labels"), i, h, w, CV_8UC1);
    cv::Mat planar;
    if (layout.probabilities) {
      planar = read_row(part.open_dataset("probabilities"), i, classes * (h / k), w / k, CV_8UC1);
    }
    cv::Mat entropy;
    if (layout.entropy) {
      entropy = read_row(part.open_dataset("entropy"), i, h, w, CV_8UC1);
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
  h5::File scratch = h5::File::create(scratch_output.temp_path(), {});
  const h5::Dims chunk{u(std::min(layout.stride_px.height, raster.height)),
                       u(std::min(layout.stride_px.width, raster.width))};
  const h5::Type f32 = h5::Type::kFloat32;
  h5::Dataset sum =
      scratch.create_dataset("sum", f32, {u(raster.height), u(raster.width), u(classes)},
                             {chunk[0], chunk[1], u(classes)}, 0);
  h5::Dataset weight_sum =
      scratch.create_dataset("weight", f32, {u(raster.height), u(raster.width)}, chunk, 0);
  const cv::Mat weights = blend_weights(layout);
  const int h = static_cast<int>(layout.tile_px.height);
  const int w = static_cast<int>(layout.tile_px.width);
  for_each_tile(
      folder, [&](std::int64_t column, std::int64_t row, const h5::File& part, std::uint64_t i) {
        const cv::Mat probs =
            read_row(part.open_dataset("probabilities_f32"), i, h, w, CV_32FC(classes));
        const Crop crop = crop_to(layout.tile_rect(column, row), raster);
        if (!crop.raster.empty()) {
          const h5::Dims start{u(crop.raster.y), u(crop.raster.x)};
          const h5::Dims count{u(crop.raster.height), u(crop.raster.width)};
          cv::Mat acc(static_cast<int>(count[0]), static_cast<int>(count[1]), CV_32FC(classes));
          cv::Mat acc_weight(acc.size(), CV_32FC1);
          sum.read(f32, {start[0], start[1], 0}, {count[0], count[1], u(classes)}, acc.data);
          weight_sum.read(f32, start, count, acc_weight.data);
          const cv::Mat tile_weights = weights(cv_rect(crop.tile));
          std::vector<cv::Mat> weight_planes(static_cast<std::size_t>(classes), tile_weights);
          cv::Mat weights_n;
          cv::merge(weight_planes, weights_n);
          acc += probs(cv_rect(crop.tile)).mul(weights_n);
          acc_weight += tile_weights;
          sum.write(f32, {start[0], start[1], 0}, {count[0], count[1], u(classes)}, acc.data);
          weight_sum.write(f32, start, count, acc_weight.data);
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
      const h5::Dims start{u(crop.raster.y), u(crop.raster.x)};
      const h5::Dims count{u(crop.raster.height), u(crop.raster.width)};
      sum.read(f32, {start[0], start[1], 0}, {count[0], count[1], u(classes)}, acc_part.data);
      weight_sum.read(f32, start, count, weight_part.data);
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
  AtomicOutput atomic(output);
  Outputs out = create_outputs(atomic.temp_path(), layout);
  if (layout.blend == BlendMode::kNone) {
    merge_abutting(journal_folder, layout, out);
  } else {
    merge_blended(journal_folder, layout, out);
  }
  detail::write_prediction_record(out.file, layout, record, out.stats);
  out.labels.reset();
  out.probabilities.reset();
  out.entropy.reset();
  out.done.reset();
  out.file.close();
  atomic.commit();
  spdlog::debug("{}: {} tiles merged", output.string(), out.stats.tiles);
  return out.stats;
}

}  // namespace slidestream
