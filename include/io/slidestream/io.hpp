// slidestream io: open a whole-slide image and read patches at a physical resolution.
//
// `open_slide` probes an ordered table of backends, OpenSlide first (vendor formats) and
// libvips last (OME-TIFF/QPTIFF pyramids, plain TIFF/PNG/JPEG). A `SlideReader` is immutable
// after opening and safe to read from many threads at once.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <opencv2/core.hpp>
#include <optional>
#include <string>
#include <vector>

#include "slidestream/geometry.hpp"

namespace slidestream {

/// Which reader opens a slide.
enum class Backend { kAuto, kOpenSlide, kVips };

/// "auto", "openslide" or "vips".
std::string backend_name(Backend backend);
/// Parses a --backend value; throws kInvalidArgument for anything else.
Backend parse_backend(const std::string& name);

struct OpenOptions {
  Backend backend = Backend::kAuto;
  /// The user's spacing in um/px (--mpp). It overrides the slide's own metadata (with a
  /// warning when the two disagree by more than 1 %).
  std::optional<double> mpp_override_um;
  /// For multi-channel images (fluorescence): the channels shown as R, G, B (three indices)
  /// or as grey (one index). Empty: the first channel as grey. See docs/FORMATS.md.
  std::vector<int> channels;
  /// Colour of pixels outside the slide (RGB).
  cv::Vec3b background{255, 255, 255};
  LevelChoiceOptions level_choice;
  /// When false, a slide without usable spacing still opens (spacing_source "none") so its
  /// metadata can be shown; reading patches from it then fails with kMissingMetadata.
  bool require_spacing = true;
};

/// A named extra image stored with the slide (thumbnail, label, macro).
struct AssociatedImage {
  std::string name;
  Size size;
};

/// Where a slide's pixel spacing came from, recorded with every output (`spacing_source`,
/// `mpp_source`). The names are those outputs' values.
enum class SpacingSource {
  kNone,               ///< "none": no usable spacing (opened without requiring one)
  kUser,               ///< "user": --mpp
  kOpenSlideMpp,       ///< "openslide.mpp": OpenSlide's openslide.mpp-x/y
  kTiffResolution,     ///< "tiff-resolution": TIFF XResolution/YResolution with a unit
  kQptiffXml,          ///< "qptiff-xml": a Vectra QPTIFF's ScanProfile XML
  kAperioDescription,  ///< "aperio-description": MPP in an Aperio ImageDescription
  kOmeXml,             ///< "ome-xml": OME-XML PhysicalSizeX/Y
};

/// The output name of `source` ("openslide.mpp", ...).
std::string spacing_source_name(SpacingSource source);
/// Parses an output name back (a cache record); throws kCorruptData for anything else.
SpacingSource parse_spacing_source(const std::string& name);

/// Everything `slidestream info` reports. Every output records `spacing` and `spacing_source`.
struct SlideInfo {
  std::filesystem::path path;
  Backend backend = Backend::kAuto;  ///< the backend that opened it (openslide or vips)
  std::string vendor;  ///< e.g. "aperio", "hamamatsu", "generic-tiff", "qptiff", "png"
  std::vector<Level> levels;
  Spacing spacing;  ///< level-0 um/px
  SpacingSource spacing_source = SpacingSource::kNone;
  std::optional<double> objective_power;
  std::vector<AssociatedImage> associated_images;
  std::string quickhash;     ///< openslide.quickhash-1, empty when the backend has none
  int channel_count = 3;     ///< channels in the file (before mapping to RGB)
  std::string channel_rule;  ///< how the file's channels become RGB
  std::map<std::string, std::string> properties;  ///< raw metadata key -> value

  Size size() const { return levels.front().size; }
};

/// A patch read at a spacing: pixels plus which of them lie on the slide.
struct Patch {
  cv::Mat rgb;    ///< CV_8UC3, RGB order, size_px
  cv::Mat valid;  ///< CV_8UC1, 255 where the pixel centre lies on the slide, 0 in the padding
  int level = 0;  ///< pyramid level the pixels came from
  double spacing_um = 0;  ///< output spacing
  RectF fov_l0;           ///< exact field of view in level-0 pixels
};

class SlideReader {
 public:
  virtual ~SlideReader() = default;
  SlideReader(const SlideReader&) = delete;
  SlideReader& operator=(const SlideReader&) = delete;

  const SlideInfo& info() const { return info_; }
  const OpenOptions& options() const { return options_; }

  /// `size_px` output pixels at `spacing_um` (um/px) centred on the level-0 point `center_l0`.
  Patch read_centered(Point center_l0, Size size_px, double spacing_um) const;
  /// `size_px` output pixels at `spacing_um` whose top-left corner is level-0 `origin_l0`.
  Patch read_from_origin(Point origin_l0, Size size_px, double spacing_um) const;
  /// The exact level-0 field of view `fov_l0` resampled to `size_px` output pixels: the level is
  /// chosen by `choose_level`, the level pixels covering the FoV are read and area-resampled.
  /// When the level already has the output's pixel size (within half a pixel over the patch)
  /// the pixels are copied as they are, from the origin rounded to that level's grid. Parts off
  /// the slide take the background colour and are 0 in `valid`. Throws kInvalidArgument when
  /// the FoV lies entirely outside the slide.
  Patch read_fov(const RectF& fov_l0, Size size_px) const;
  /// The level `read_fov` uses for `spacing_um` (see choose_level).
  int level_for_spacing(double spacing_um) const;
  /// Raw pixels of `rect` (in `level`'s pixels), RGB8; parts off the slide are background.
  cv::Mat read_level(int level, const Rect& rect) const;
  /// An associated image by name (see info().associated_images), RGB8.
  cv::Mat read_associated(const std::string& name) const;

 protected:
  SlideReader(SlideInfo info, OpenOptions options);
  /// Backend hook: RGB8 pixels of `rect`, which lies inside `level`.
  virtual cv::Mat read_level_pixels(int level, const Rect& rect) const = 0;
  virtual cv::Mat read_associated_pixels(const std::string& name) const = 0;

 private:
  void require_spacing_known() const;

  SlideInfo info_;
  OpenOptions options_;
};

/// Opens `path` with the first backend that recognises it (or the one forced in `options`),
/// and resolves its spacing. Throws kNotFound, kUnsupportedFormat, kCorruptData or
/// kMissingMetadata with a message that names the file and the fix.
std::unique_ptr<SlideReader> open_slide(const std::filesystem::path& path,
                                        const OpenOptions& options = {});

/// Area resampling with a fractional origin: output pixel (i, j) is the area-weighted mean of
/// `src` over [x0 + i*scale_x, x0 + (i+1)*scale_x) x [y0 + j*scale_y, ...), in `src` pixels.
/// OpenCV's INTER_AREA needs an integer source rectangle; exact fields of view do not have one.
/// `src` is 8-bit with any channel count.
cv::Mat resample_area(const cv::Mat& src, double x0, double y0, double scale_x, double scale_y,
                      cv::Size out_size);

/// Plausible level-0 spacings in um/px; metadata outside this range is treated as absent
/// (e.g. a 72 dpi tag, or libvips' default 1 px/mm).
inline constexpr double kMinPlausibleSpacingUm = 0.01;
inline constexpr double kMaxPlausibleSpacingUm = 200.0;

}  // namespace slidestream
