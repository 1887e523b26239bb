// PyramidTiffWriter: level 0 encoded in place, coarser levels built from their four children
// and written to temporary TIFFs, then appended to the output by raw tile copies on commit.
#include <tiffio.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <opencv2/imgproc.hpp>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "slidestream/core.hpp"
#include "slidestream/raster.hpp"

namespace fs = std::filesystem;

namespace slidestream {

namespace {

/// Classic TIFF offsets stop at 4 GB; pyramids whose raw size exceeds this are BigTIFF.
constexpr double kBigTiffBytes = 2.0e9;
constexpr double kMicronsPerCentimetre = 1.0e4;

struct TiffCloser {
  void operator()(TIFF* tiff) const {
    if (tiff != nullptr) {
      TIFFClose(tiff);
    }
  }
};
using TiffHandle = std::unique_ptr<TIFF, TiffCloser>;

std::uint16_t compression_tag(TiffCompression compression) {
  switch (compression) {
    case TiffCompression::kJpeg:
      return COMPRESSION_JPEG;
    case TiffCompression::kDeflate:
      return COMPRESSION_ADOBE_DEFLATE;
    case TiffCompression::kLzw:
      return COMPRESSION_LZW;
    case TiffCompression::kNone:
      return COMPRESSION_NONE;
  }
  return COMPRESSION_NONE;
}

std::int64_t ceil_div(std::int64_t value, std::int64_t divisor) {
  return (value + divisor - 1) / divisor;
}

/// A file removed when this goes out of scope (the temporary of one coarser level).
struct TempFile {
  fs::path path;
  TempFile() = default;
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  TempFile(TempFile&& other) noexcept : path(std::exchange(other.path, {})) {}
  TempFile& operator=(TempFile&& other) = delete;
  ~TempFile() {
    if (!path.empty()) {
      std::error_code ignored;
      fs::remove(path, ignored);
    }
  }
};

/// Every tag of one level's directory. `encoding` is false for raw copies (no codec options).
void set_level_tags(TIFF* tiff, Size size, int channels, const PyramidTiffOptions& options,
                    int level, bool encoding) {
  const auto tile = static_cast<std::uint32_t>(options.tile_size);
  TIFFSetField(tiff, TIFFTAG_IMAGEWIDTH, static_cast<std::uint32_t>(size.width));
  TIFFSetField(tiff, TIFFTAG_IMAGELENGTH, static_cast<std::uint32_t>(size.height));
  TIFFSetField(tiff, TIFFTAG_TILEWIDTH, tile);
  TIFFSetField(tiff, TIFFTAG_TILELENGTH, tile);
  TIFFSetField(tiff, TIFFTAG_BITSPERSAMPLE, 8);
  TIFFSetField(tiff, TIFFTAG_SAMPLESPERPIXEL, channels);
  TIFFSetField(tiff, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
  TIFFSetField(tiff, TIFFTAG_ORIENTATION, ORIENTATION_TOPLEFT);
  TIFFSetField(tiff, TIFFTAG_COMPRESSION, compression_tag(options.compression));
  const bool jpeg = options.compression == TiffCompression::kJpeg;
  if (channels == 3) {
    TIFFSetField(tiff, TIFFTAG_PHOTOMETRIC, jpeg ? PHOTOMETRIC_YCBCR : PHOTOMETRIC_RGB);
  } else {
    TIFFSetField(tiff, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
  }
  if (jpeg && channels == 3) {
    TIFFSetField(tiff, TIFFTAG_YCBCRSUBSAMPLING, 2, 2);
  }
  if (encoding && jpeg) {
    TIFFSetField(tiff, TIFFTAG_JPEGQUALITY, options.jpeg_quality);
    if (channels == 3) {
      TIFFSetField(tiff, TIFFTAG_JPEGCOLORMODE,
                   JPEGCOLORMODE_RGB);  // we pass RGB, libjpeg converts
    }
  }
  if (options.compression == TiffCompression::kDeflate ||
      options.compression == TiffCompression::kLzw) {
    TIFFSetField(tiff, TIFFTAG_PREDICTOR, PREDICTOR_HORIZONTAL);
  }
  if (level > 0) {
    TIFFSetField(tiff, TIFFTAG_SUBFILETYPE, FILETYPE_REDUCEDIMAGE);
  } else if (!options.description.empty()) {
    TIFFSetField(tiff, TIFFTAG_IMAGEDESCRIPTION, options.description.c_str());
  }
  if (options.spacing.x_um > 0 && options.spacing.y_um > 0) {
    const double downsample = std::ldexp(1.0, level);
    TIFFSetField(tiff, TIFFTAG_XRESOLUTION,
                 static_cast<float>(kMicronsPerCentimetre / (options.spacing.x_um * downsample)));
    TIFFSetField(tiff, TIFFTAG_YRESOLUTION,
                 static_cast<float>(kMicronsPerCentimetre / (options.spacing.y_um * downsample)));
    TIFFSetField(tiff, TIFFTAG_RESOLUTIONUNIT, RESUNIT_CENTIMETER);
  }
}

/// The most frequent value of each 2x2 block (ties: the first in raster order), so a label map's
/// coarser levels only hold values of the input. `even` has even width and height.
template <typename Pixel>
void mode_reduce(const cv::Mat& even, cv::Mat& half) {
  for (int row = 0; row < half.rows; ++row) {
    const auto* top = even.ptr<Pixel>(2 * row);
    const auto* bottom = even.ptr<Pixel>(2 * row + 1);
    auto* out = half.ptr<Pixel>(row);
    for (int col = 0; col < half.cols; ++col) {
      const std::array<Pixel, 4> block{top[2 * col], top[2 * col + 1], bottom[2 * col],
                                       bottom[2 * col + 1]};
      int best = 0;
      int best_count = 0;
      for (int i = 0; i < 4; ++i) {
        const auto count = static_cast<int>(std::count(block.begin(), block.end(), block[i]));
        if (count > best_count) {
          best = i;
          best_count = count;
        }
      }
      out[col] = block[static_cast<std::size_t>(best)];
    }
  }
}

/// A tile halved in each direction (odd sizes: the last row/column is repeated first).
cv::Mat reduce_tile(const cv::Mat& tile, PyramidTiffOptions::Downsample downsample) {
  cv::Mat even = tile;
  if (tile.cols % 2 != 0 || tile.rows % 2 != 0) {
    cv::copyMakeBorder(tile, even, 0, tile.rows % 2, 0, tile.cols % 2, cv::BORDER_REPLICATE);
  }
  cv::Mat half;
  if (downsample == PyramidTiffOptions::Downsample::kMean) {
    cv::resize(even, half, cv::Size(even.cols / 2, even.rows / 2), 0, 0, cv::INTER_AREA);
    return half;
  }
  half.create(even.rows / 2, even.cols / 2, even.type());
  if (even.channels() == 1) {
    mode_reduce<std::uint8_t>(even, half);
  } else {
    mode_reduce<cv::Vec3b>(even, half);
  }
  return half;
}

/// One pyramid level: its geometry, its file and the one parent tile being assembled.
struct LevelFile {
  Size size;
  Size grid;
  TiffHandle tiff;
  TempFile temp;  // empty for level 0 (written into the output's temporary)
  cv::Mat pending;
  std::optional<Point> pending_cell;
  int pending_children = 0;
  int pending_received = 0;
};

}  // namespace

void PyramidTiffOptions::validate() const {
  if (tile_size < 16 || tile_size % 16 != 0 || tile_size > 8192) {
    throw Error(ErrorCode::kInvalidArgument,
                "tile size must be a multiple of 16 between 16 and 8192 px (got " +
                    std::to_string(tile_size) + ")");
  }
  if (jpeg_quality < 1 || jpeg_quality > 100) {
    throw Error(ErrorCode::kInvalidArgument,
                "JPEG quality must be 1..100 (got " + std::to_string(jpeg_quality) + ")");
  }
  if (!std::isfinite(spacing.x_um) || !std::isfinite(spacing.y_um) || spacing.x_um < 0 ||
      spacing.y_um < 0) {
    throw Error(ErrorCode::kInvalidArgument, "spacing must be finite and >= 0 um/px");
  }
}

struct PyramidTiffWriter::Impl {
  AtomicOutput output;
  int channels;
  PyramidTiffOptions options;
  std::vector<LevelFile> levels;
  MortonWalker walker;
  std::optional<Point> expected;  // the next level-0 tile, nullopt when all were written
  bool committed = false;

  Impl(const fs::path& path, Size size, int channel_count, PyramidTiffOptions settings)
      : output(path),
        channels(channel_count),
        options(std::move(settings)),
        walker(Size{ceil_div(size.width, options.tile_size),
                    ceil_div(size.height, options.tile_size)}) {}

  Rect rect(int level, Point cell) const {
    const std::int64_t tile = options.tile_size;
    const Size& size = levels[static_cast<std::size_t>(level)].size;
    const std::int64_t x = cell.x * tile;
    const std::int64_t y = cell.y * tile;
    return Rect{x, y, std::min(tile, size.width - x), std::min(tile, size.height - y)};
  }

  TIFF* open(const fs::path& path, const char* mode) const {
    TIFF* tiff = TIFFOpen(path.c_str(), mode);
    if (tiff == nullptr) {
      throw Error(ErrorCode::kOutputError, "cannot create the TIFF '" + path.string() +
                                               "'; check the folder's free space and permissions");
    }
    return tiff;
  }

  void encode(int level, Point cell, const cv::Mat& tile) {
    LevelFile& target = levels[static_cast<std::size_t>(level)];
    cv::Mat full = tile;
    if (tile.cols != options.tile_size || tile.rows != options.tile_size) {
      // Edge tiles are padded by repetition: JPEG blocks across the edge then do not ring.
      cv::copyMakeBorder(tile, full, 0, options.tile_size - tile.rows, 0,
                         options.tile_size - tile.cols, cv::BORDER_REPLICATE);
    } else if (!tile.isContinuous()) {
      full = tile.clone();
    }
    const std::uint32_t index =
        TIFFComputeTile(target.tiff.get(), static_cast<std::uint32_t>(cell.x * options.tile_size),
                        static_cast<std::uint32_t>(cell.y * options.tile_size), 0, 0);
    const auto bytes = static_cast<tmsize_t>(full.total() * full.elemSize());
    if (TIFFWriteEncodedTile(target.tiff.get(), index, full.data, bytes) < 0) {
      throw Error(ErrorCode::kOutputError, "cannot write a tile of '" +
                                               output.final_path().string() + "' (level " +
                                               std::to_string(level) + "); is the disk full?");
    }
  }

  /// Tile `cell` of `level` is complete: write it and hand its half to the parent tile.
  void complete(int level, Point cell, const cv::Mat& tile) {
    encode(level, cell, tile);
    const auto next = static_cast<std::size_t>(level) + 1;
    if (next >= levels.size()) {
      return;
    }
    LevelFile& parent = levels[next];
    const Point parent_cell{cell.x / 2, cell.y / 2};
    if (!parent.pending_cell) {
      parent.pending_cell = parent_cell;
      parent.pending =
          cv::Mat(options.tile_size, options.tile_size, CV_8UC(channels), cv::Scalar(0));
      const Size& grid = levels[next - 1].grid;
      parent.pending_children = 0;
      parent.pending_received = 0;
      for (std::int64_t dy = 0; dy < 2; ++dy) {
        for (std::int64_t dx = 0; dx < 2; ++dx) {
          parent.pending_children +=
              (2 * parent_cell.x + dx < grid.width && 2 * parent_cell.y + dy < grid.height) ? 1 : 0;
        }
      }
    } else if (!(*parent.pending_cell == parent_cell)) {
      throw Error(ErrorCode::kInternal, "pyramid writer: two partial tiles on one level");
    }
    const cv::Mat half = reduce_tile(tile, options.downsample);
    const int half_tile = options.tile_size / 2;
    half.copyTo(
        parent.pending(cv::Rect(static_cast<int>(cell.x % 2) * half_tile,
                                static_cast<int>(cell.y % 2) * half_tile, half.cols, half.rows)));
    if (++parent.pending_received < parent.pending_children) {
      return;
    }
    const Rect parent_rect = rect(static_cast<int>(next), parent_cell);
    const cv::Mat done = parent.pending(
        cv::Rect(0, 0, static_cast<int>(parent_rect.width), static_cast<int>(parent_rect.height)));
    parent.pending_cell.reset();
    complete(static_cast<int>(next), parent_cell, done);
    parent.pending.release();
  }

  /// Appends temporary level `level` to the output as its next directory (raw tile copies).
  void append_level(int level) {
    LevelFile& source = levels[static_cast<std::size_t>(level)];
    source.tiff.reset();  // flushes and closes the written temporary
    const TiffHandle input(open(source.temp.path, "r"));
    TIFF* out = levels[0].tiff.get();
    set_level_tags(out, source.size, channels, options, level, false);
    std::uint32_t table_bytes = 0;
    void* tables = nullptr;
    if (options.compression == TiffCompression::kJpeg &&
        TIFFGetField(input.get(), TIFFTAG_JPEGTABLES, &table_bytes, &tables) != 0) {
      TIFFSetField(out, TIFFTAG_JPEGTABLES, table_bytes, tables);
    }
    std::vector<std::uint8_t> buffer;
    const std::uint32_t tiles = TIFFNumberOfTiles(input.get());
    for (std::uint32_t index = 0; index < tiles; ++index) {
      const std::uint64_t raw_bytes = TIFFGetStrileByteCount(input.get(), index);
      buffer.resize(static_cast<std::size_t>(std::max<std::uint64_t>(raw_bytes, 1)));
      const tmsize_t read =
          TIFFReadRawTile(input.get(), index, buffer.data(), static_cast<tmsize_t>(buffer.size()));
      if (read < 0 || TIFFWriteRawTile(out, index, buffer.data(), read) != read) {
        throw Error(ErrorCode::kOutputError, "cannot copy level " + std::to_string(level) +
                                                 " into '" + output.final_path().string() + "'");
      }
    }
    if (TIFFWriteDirectory(out) == 0) {
      throw Error(ErrorCode::kOutputError, "cannot write the directory of level " +
                                               std::to_string(level) + " of '" +
                                               output.final_path().string() + "'");
    }
  }
};

PyramidTiffWriter::PyramidTiffWriter(const fs::path& path, Size size, int channels,
                                     PyramidTiffOptions options) {
  options.validate();
  if (channels != 1 && channels != 3) {
    throw Error(ErrorCode::kInvalidArgument,
                "pyramid TIFF: 1 or 3 channels (got " + std::to_string(channels) + ")");
  }
  constexpr std::int64_t kMaxSide = 0xFFFFFFFFLL;  // TIFF image sizes are 32-bit
  if (size.width <= 0 || size.height <= 0 || size.width > kMaxSide || size.height > kMaxSide) {
    throw Error(ErrorCode::kInvalidArgument, "pyramid TIFF: image size must be positive");
  }
  impl_ = std::make_unique<Impl>(path, size, channels, std::move(options));
  Impl& impl = *impl_;
  const std::int64_t tile = impl.options.tile_size;
  double raw_bytes = 0;
  for (Size level = size;; level = Size{ceil_div(level.width, 2), ceil_div(level.height, 2)}) {
    LevelFile entry;
    entry.size = level;
    entry.grid = Size{ceil_div(level.width, tile), ceil_div(level.height, tile)};
    raw_bytes += static_cast<double>(level.width) * static_cast<double>(level.height) * channels;
    impl.levels.push_back(std::move(entry));
    if (!impl.options.pyramid || (level.width <= tile && level.height <= tile)) {
      break;
    }
  }
  const bool big = raw_bytes > kBigTiffBytes;
  for (std::size_t level = 0; level < impl.levels.size(); ++level) {
    LevelFile& entry = impl.levels[level];
    fs::path file = impl.output.temp_path();
    if (level > 0) {
      entry.temp.path = file.concat(".level" + std::to_string(level) + ".tif");
    }
    entry.tiff.reset(impl.open(file, big ? "w8" : "w"));
    set_level_tags(entry.tiff.get(), entry.size, channels, impl.options, static_cast<int>(level),
                   true);
  }
  Point first;
  if (impl.walker.next(first)) {
    impl.expected = first;
  }
}

PyramidTiffWriter::~PyramidTiffWriter() {
  if (impl_) {
    // Close every handle before the temporaries are removed (LevelFile and AtomicOutput do that).
    for (LevelFile& level : impl_->levels) {
      level.tiff.reset();
    }
  }
}

Size PyramidTiffWriter::grid() const {
  return impl_->levels[0].grid;
}

Rect PyramidTiffWriter::tile_rect(std::int64_t column, std::int64_t row) const {
  const Size& grid = impl_->levels[0].grid;
  if (column < 0 || row < 0 || column >= grid.width || row >= grid.height) {
    throw Error(ErrorCode::kInvalidArgument, "tile (" + std::to_string(column) + ", " +
                                                 std::to_string(row) + ") is outside the grid");
  }
  return impl_->rect(0, Point{column, row});
}

int PyramidTiffWriter::levels() const {
  return static_cast<int>(impl_->levels.size());
}

Size PyramidTiffWriter::level_size(int level) const {
  if (level < 0 || level >= levels()) {
    throw Error(ErrorCode::kInvalidArgument, "no pyramid level " + std::to_string(level));
  }
  return impl_->levels[static_cast<std::size_t>(level)].size;
}

std::size_t PyramidTiffWriter::held_bytes() const {
  std::size_t bytes = 0;
  for (const LevelFile& level : impl_->levels) {
    bytes += level.pending.empty() ? 0 : level.pending.total() * level.pending.elemSize();
  }
  return bytes;
}

void PyramidTiffWriter::write_tile(std::int64_t column, std::int64_t row, const cv::Mat& pixels) {
  Impl& impl = *impl_;
  if (impl.committed) {
    throw Error(ErrorCode::kInvalidArgument, "write_tile after commit");
  }
  if (!impl.expected || impl.expected->x != column || impl.expected->y != row) {
    throw Error(ErrorCode::kInvalidArgument,
                "tile (" + std::to_string(column) + ", " + std::to_string(row) +
                    ") is out of Morton order" +
                    (impl.expected ? "; expected (" + std::to_string(impl.expected->x) + ", " +
                                         std::to_string(impl.expected->y) + ")"
                                   : ": every tile was written"));
  }
  const Rect rect = tile_rect(column, row);
  const bool exact = pixels.cols == rect.width && pixels.rows == rect.height;
  const bool full = pixels.cols == impl.options.tile_size && pixels.rows == impl.options.tile_size;
  if (pixels.type() != CV_8UC(impl.channels) || !(exact || full)) {
    throw Error(ErrorCode::kInvalidArgument,
                "tile (" + std::to_string(column) + ", " + std::to_string(row) + ") must be " +
                    std::to_string(rect.width) + " x " + std::to_string(rect.height) +
                    " (or the full tile) of 8-bit, " + std::to_string(impl.channels) +
                    "-channel pixels; got " + std::to_string(pixels.cols) + " x " +
                    std::to_string(pixels.rows) + ", " + std::to_string(pixels.channels()) +
                    " channel(s), OpenCV depth " + std::to_string(pixels.depth()));
  }
  const cv::Mat tile =
      pixels(cv::Rect(0, 0, static_cast<int>(rect.width), static_cast<int>(rect.height)));
  impl.complete(0, Point{column, row}, tile);
  Point next;
  if (impl.walker.next(next)) {
    impl.expected = next;
  } else {
    impl.expected.reset();
  }
}

void PyramidTiffWriter::commit() {
  Impl& impl = *impl_;
  if (impl.committed) {
    return;
  }
  if (impl.expected) {
    throw Error(ErrorCode::kInvalidArgument,
                "commit of '" + impl.output.final_path().string() +
                    "' before every tile was written (next expected: (" +
                    std::to_string(impl.expected->x) + ", " + std::to_string(impl.expected->y) +
                    "))");
  }
  TIFF* out = impl.levels[0].tiff.get();
  if (TIFFWriteDirectory(out) == 0) {
    throw Error(ErrorCode::kOutputError,
                "cannot write level 0 of '" + impl.output.final_path().string() + "'");
  }
  for (std::size_t level = 1; level < impl.levels.size(); ++level) {
    impl.append_level(static_cast<int>(level));
  }
  if (TIFFFlush(out) == 0) {
    throw Error(ErrorCode::kOutputError,
                "cannot finish '" + impl.output.final_path().string() + "'; is the disk full?");
  }
  impl.levels[0].tiff.reset();
  impl.output.commit();
  impl.committed = true;
}

}  // namespace slidestream
