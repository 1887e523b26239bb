// Truncation check of TIFF-based slides: every tile or strip must end within the file.
#include <tiffio.h>

#include <algorithm>
#include <system_error>

#include "backends.hpp"

namespace fs = std::filesystem;

namespace slidestream::detail {

namespace {

// The end (in bytes) of the last tile or strip of the current directory; 0 when it has none.
std::uint64_t data_end(TIFF* tiff) {
  std::uint64_t* offsets = nullptr;
  std::uint64_t* counts = nullptr;
  const bool tiled = TIFFIsTiled(tiff) != 0;
  const ttag_t offset_tag = tiled ? TIFFTAG_TILEOFFSETS : TIFFTAG_STRIPOFFSETS;
  const ttag_t count_tag = tiled ? TIFFTAG_TILEBYTECOUNTS : TIFFTAG_STRIPBYTECOUNTS;
  if (TIFFGetField(tiff, offset_tag, &offsets) != 1 ||
      TIFFGetField(tiff, count_tag, &counts) != 1) {
    return 0;
  }
  const std::uint32_t chunks = tiled ? TIFFNumberOfTiles(tiff) : TIFFNumberOfStrips(tiff);
  std::uint64_t end = 0;
  for (std::uint32_t i = 0; i < chunks; ++i) {
    end = std::max(end, offsets[i] + counts[i]);
  }
  return end;
}

}  // namespace

std::string tiff_truncation(const fs::path& path) {
  std::error_code ec;
  const std::uintmax_t size = fs::file_size(path, ec);
  if (ec) {
    return {};
  }
  // "h": read the header and directories only; libtiff's messages go to the debug log.
  TIFF* tiff = TIFFOpen(path.c_str(), "rh");
  if (tiff == nullptr) {
    return {};
  }
  std::uint64_t end = 0;
  do {
    end = std::max(end, data_end(tiff));
  } while (TIFFReadDirectory(tiff) == 1);
  TIFFClose(tiff);
  if (end <= size) {
    return {};
  }
  return "its image data extends to byte " + std::to_string(end) + " but the file has only " +
         std::to_string(size) + " bytes";
}

}  // namespace slidestream::detail
