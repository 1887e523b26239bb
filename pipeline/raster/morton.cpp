// Morton (Z) order over a tile grid: the order in which PyramidTiffWriter accepts tiles.
#include <algorithm>

#include "slidestream/core.hpp"
#include "slidestream/raster.hpp"

namespace slidestream {

namespace {

/// The even bits of `code` packed together (the x of a Morton code; y is code >> 1).
std::uint64_t compact_bits(std::uint64_t code) {
  code &= 0x5555555555555555ULL;
  code = (code | (code >> 1U)) & 0x3333333333333333ULL;
  code = (code | (code >> 2U)) & 0x0F0F0F0F0F0F0F0FULL;
  code = (code | (code >> 4U)) & 0x00FF00FF00FF00FFULL;
  code = (code | (code >> 8U)) & 0x0000FFFF0000FFFFULL;
  code = (code | (code >> 16U)) & 0x00000000FFFFFFFFULL;
  return code;
}

}  // namespace

MortonWalker::MortonWalker(Size grid) : grid_(grid) {
  if (grid.width < 0 || grid.height < 0) {
    throw Error(ErrorCode::kInvalidArgument, "MortonWalker: negative grid size");
  }
  constexpr std::int64_t kMaxSide = std::int64_t{1} << 31;
  const std::int64_t longest = std::max(grid.width, grid.height);
  if (longest > kMaxSide) {
    throw Error(ErrorCode::kInvalidArgument, "MortonWalker: grid too large");
  }
  if (grid.width == 0 || grid.height == 0) {
    return;  // end_ = 0: nothing to walk
  }
  std::uint64_t side = 1;
  while (side < static_cast<std::uint64_t>(longest)) {
    side <<= 1U;
  }
  end_ = side * side;
}

bool MortonWalker::next(Point& cell) {
  // Codes outside the grid (a non-square or non-power-of-two grid) are skipped; for the grids
  // of slides (at most a few thousand tiles a side) that costs little.
  while (code_ < end_) {
    const auto x = static_cast<std::int64_t>(compact_bits(code_));
    const auto y = static_cast<std::int64_t>(compact_bits(code_ >> 1U));
    ++code_;
    if (x < grid_.width && y < grid_.height) {
      cell = Point{x, y};
      return true;
    }
  }
  return false;
}

std::vector<Point> tile_order(Size grid) {
  std::vector<Point> order;
  MortonWalker walker(grid);
  Point cell;
  while (walker.next(cell)) {
    order.push_back(cell);
  }
  return order;
}

}  // namespace slidestream
