// slidestream raster: streaming writer of pyramidal tiled TIFFs in constant memory.
//
// Tiles are pushed in Morton (Z) order over the level-0 tile grid (`tile_order`), so every tile
// of a coarser level is complete as soon as its four children are: the writer keeps at most one
// partial tile per level, whatever the image size. Level 0 is encoded straight into the first
// directory of the output's temporary file; every coarser level goes to its own temporary
// single-directory TIFF while tiles arrive. `commit` appends those levels' compressed tiles (raw
// copies, no re-encoding) as the next directories of the main chain, like libvips' `tiffsave
// --pyramid`, with resolution tags in px/cm, and renames the file into place (AtomicOutput).
// OpenSlide (generic-tiff), libvips, QuPath and ASAP read the result. Writing level 0 in place
// (rather than to a temporary of its own, as the other levels) saves copying the largest level.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "slidestream/geometry.hpp"

namespace slidestream {

enum class TiffCompression { kJpeg, kDeflate, kLzw, kNone };

struct PyramidTiffOptions {
  int tile_size = 512;  ///< square tiles in pixels, a multiple of 16
  TiffCompression compression = TiffCompression::kDeflate;
  int jpeg_quality = 90;  ///< 1..100; RGB JPEG is stored as YCbCr 4:2:0
  /// Level-0 spacing in um/px, written as XResolution/YResolution in px/cm (0: no tags).
  Spacing spacing;
  /// Pyramid levels are added (each 2x smaller) until both sides fit in one tile.
  bool pyramid = true;
  /// How a 2x2 block becomes one pixel of the next level: mean (images, probabilities) or
  /// the most frequent value (label maps, so classes are never blended into other values).
  enum class Downsample { kMean, kMode } downsample = Downsample::kMean;
  /// ImageDescription of level 0 (e.g. the producing command), informative.
  std::string description;
  /// Throws kInvalidArgument naming the bad field.
  void validate() const;
};

/// Writes `size` level-0 pixels of CV_8UC1 or CV_8UC3 (RGB) data. BigTIFF is used when the
/// uncompressed pyramid could exceed ~2 GB (compressed sizes are not known up front).
class PyramidTiffWriter {
 public:
  /// Throws kOutputError when `path` cannot be written (its folder is checked up front).
  PyramidTiffWriter(const std::filesystem::path& path, Size size, int channels,
                    PyramidTiffOptions options);
  ~PyramidTiffWriter();  ///< without commit(), every temporary file is removed
  PyramidTiffWriter(const PyramidTiffWriter&) = delete;
  PyramidTiffWriter& operator=(const PyramidTiffWriter&) = delete;

  /// Level-0 tile grid (columns, rows).
  Size grid() const;
  /// The level-0 rectangle of tile (column, row), cropped to the image at the right/bottom.
  Rect tile_rect(std::int64_t column, std::int64_t row) const;
  /// Writes one level-0 tile: `pixels` has tile_rect(column, row)'s size (or the full tile size,
  /// cropped). Tiles must come in tile_order(); throws kInvalidArgument otherwise.
  void write_tile(std::int64_t column, std::int64_t row, const cv::Mat& pixels);
  /// After the last tile: assembles the pyramid and renames it onto `path`. Throws
  /// kInvalidArgument when tiles are missing, kOutputError when writing fails.
  void commit();

  /// Number of pyramid levels (level 0 included), known from the size and options.
  int levels() const;
  /// Size in pixels of pyramid level `level` (ceil(level-0 size / 2^level)).
  Size level_size(int level) const;
  /// Bytes of pixel data the writer holds right now (its partial coarser-level tiles), for
  /// tests of the constant-memory contract; libtiff's own one-tile buffers are not counted.
  std::size_t held_bytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The Morton (Z) order of a columns x rows grid: the (column, row) of each tile in write order.
/// Computed lazily by `MortonWalker` for big grids; this helper is for tests and small grids.
std::vector<Point> tile_order(Size grid);

/// Walks a grid in Morton order one cell at a time, in O(1) memory.
class MortonWalker {
 public:
  explicit MortonWalker(Size grid);
  /// The next cell as (x = column, y = row), false after the last.
  bool next(Point& cell);

 private:
  Size grid_;
  std::uint64_t code_ = 0;
  std::uint64_t end_ = 0;
};

}  // namespace slidestream
