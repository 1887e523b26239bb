// Private to the io module: the backend table and the spacing resolution shared by backends.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "slidestream/io.hpp"

namespace slidestream::detail {

/// A spacing found in a slide's metadata, and where it was found.
struct SpacingCandidate {
  Spacing spacing;
  SpacingSource source;
};

/// Fills info.spacing, info.spacing_source and every level's spacing: the user's override when
/// given, else the first plausible candidate (in the backend's order of trust). Throws
/// kMissingMetadata naming the slide and --mpp when there is none.
void resolve_spacing(SlideInfo& info, const std::vector<SpacingCandidate>& candidates,
                     const OpenOptions& options);

/// The OpenSlide backend's candidates from the slide's properties, in order of trust:
/// openslide.mpp-x/y, then the TIFF resolution tags (tiff.XResolution, tiff.ResolutionUnit).
std::vector<SpacingCandidate> openslide_spacing_candidates(
    const std::map<std::string, std::string>& properties);

/// The libvips backend's candidates from page 0's image description, in order of trust: QPTIFF
/// XML PixelSizeMicrons, an Aperio description's "|MPP = ", the TIFF resolution tags (the
/// caller reads them from the image, um/px), OME-XML PhysicalSizeX/Y with their unit.
std::vector<SpacingCandidate> vips_spacing_candidates(const std::string& description,
                                                      std::optional<Spacing> tiff_resolution_um);

/// One entry of the probe table: a cheap `detect` and the `open` that goes with it, in the
/// manner of OpenSlide's per-vendor {detect, open} descriptors.
struct BackendDescriptor {
  Backend id;
  const char* name;
  /// Returns an empty string when the backend can read `path`, else why not.
  std::string (*detect)(const std::filesystem::path& path);
  std::unique_ptr<SlideReader> (*open)(const std::filesystem::path& path,
                                       const OpenOptions& options);
};

/// Starts libvips once and routes library warnings to the debug log.
void initialise_io_libraries();

std::string detect_openslide(const std::filesystem::path& path);
std::unique_ptr<SlideReader> open_with_openslide(const std::filesystem::path& path,
                                                 const OpenOptions& options);
std::string detect_vips(const std::filesystem::path& path);
std::unique_ptr<SlideReader> open_with_vips(const std::filesystem::path& path,
                                            const OpenOptions& options);

/// Largest number of pixels one read may produce (a guard against absurd requests).
inline constexpr std::int64_t kMaxReadPixels = std::int64_t{1} << 28;

/// Largest level region one resampled read decodes at once (16 MP, 48 MB of RGB); a larger
/// cover (a thumbnail of a slide without a coarse level) is read and resampled block by block.
inline constexpr double kMaxResampleSourcePixels = 16.0 * 1024 * 1024;
/// Level pixels one read may cover (2^34, e.g. the thumbnail of a 130000 x 130000 slide stored
/// without a pyramid): beyond it a read would decode or resample for hours.
inline constexpr double kMaxSourcePixels = 17179869184.0;

/// Why a TIFF-based file looks truncated (its tiles or strips end past the end of the file),
/// or empty when it does not (or is not a TIFF libtiff can parse).
std::string tiff_truncation(const std::filesystem::path& path);

}  // namespace slidestream::detail
