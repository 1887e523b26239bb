#include <spdlog/spdlog.h>

#include <array>
#include <cmath>
#include <fstream>
#include <sstream>

#include "backends.hpp"
#include "slidestream/core.hpp"
#include "slidestream/enum_names.hpp"
#include "slidestream/io.hpp"

namespace fs = std::filesystem;

namespace slidestream {

constexpr EnumNames<Backend, 3> kBackendNames{
    {{Backend::kAuto, "auto"}, {Backend::kOpenSlide, "openslide"}, {Backend::kVips, "vips"}}};

std::string backend_name(Backend backend) {
  return std::string(enum_name(kBackendNames, backend));
}

Backend parse_backend(const std::string& name) {
  return parse_enum(kBackendNames, name, "backend", ErrorCode::kInvalidArgument);
}

constexpr EnumNames<SpacingSource, 7> kSpacingSourceNames{
    {{SpacingSource::kNone, "none"},
     {SpacingSource::kUser, "user"},
     {SpacingSource::kOpenSlideMpp, "openslide.mpp"},
     {SpacingSource::kTiffResolution, "tiff-resolution"},
     {SpacingSource::kQptiffXml, "qptiff-xml"},
     {SpacingSource::kAperioDescription, "aperio-description"},
     {SpacingSource::kOmeXml, "ome-xml"}}};

std::string spacing_source_name(SpacingSource source) {
  return std::string(enum_name(kSpacingSourceNames, source));
}

SpacingSource parse_spacing_source(const std::string& name) {
  return parse_enum(kSpacingSourceNames, name, "spacing source", ErrorCode::kCorruptData);
}

SlideReader::SlideReader(SlideInfo info, OpenOptions options)
    : info_(std::move(info)), options_(std::move(options)) {}

void SlideReader::require_spacing_known() const {
  if (info_.spacing_source == SpacingSource::kNone) {
    throw Error(
        ErrorCode::kMissingMetadata,
        "'" + info_.path.string() +
            "' has no pixel spacing (MPP); pass it with --mpp (e.g. 0.25 at 40x, 0.5 at 20x)");
  }
}

Patch SlideReader::read_centered(Point center_l0, Size size_px, double spacing_um) const {
  require_spacing_known();
  Patch patch = read_fov(fov_from_center(center_l0, size_px, spacing_um, info_.spacing), size_px);
  patch.spacing_um = spacing_um;  // exactly as asked, not recomputed through the FoV
  return patch;
}

Patch SlideReader::read_from_origin(Point origin_l0, Size size_px, double spacing_um) const {
  require_spacing_known();
  Patch patch = read_fov(fov_from_origin(origin_l0, size_px, spacing_um, info_.spacing), size_px);
  patch.spacing_um = spacing_um;
  return patch;
}

namespace {

// `source` (in `level`'s pixels) area-resampled to width x height. A source larger than
// kMaxResampleSourcePixels is split into blocks of output pixels, each resampled from its own
// part of the level, so memory stays bounded whatever the cover (e.g. the thumbnail of a slide
// stored without a pyramid).
cv::Mat read_resampled(const SlideReader& slide, int level, const RectF& source, int width,
                       int height) {
  const double scale_x = source.width / width;
  const double scale_y = source.height / height;
  const double cover_pixels = (source.width + 2.0) * (source.height + 2.0);
  const Size bounds = slide.info().levels[static_cast<size_t>(level)].size;
  if (source.x >= static_cast<double>(bounds.width) ||
      source.y >= static_cast<double>(bounds.height) || source.x + source.width <= 0.0 ||
      source.y + source.height <= 0.0) {
    // Off the slide: the background colour, without reading or resampling anything.
    return cv::Mat(height, width, CV_8UC3, slide.options().background);
  }
  if (cover_pixels <= detail::kMaxResampleSourcePixels || (width == 1 && height == 1)) {
    const Rect cover = enclosing_rect(source);
    const cv::Mat pixels = slide.read_level(level, cover);
    return resample_area(pixels, source.x - static_cast<double>(cover.x),
                         source.y - static_cast<double>(cover.y), scale_x, scale_y,
                         cv::Size(width, height));
  }
  // 0.9: the blocks' covers include their edge pixels too.
  const double shrink = 0.9 * std::sqrt(detail::kMaxResampleSourcePixels / cover_pixels);
  const int block_width = std::max(1, static_cast<int>(width * shrink));
  const int block_height = std::max(1, static_cast<int>(height * shrink));
  cv::Mat output(height, width, CV_8UC3);
  for (int y = 0; y < height; y += block_height) {
    for (int x = 0; x < width; x += block_width) {
      const int w = std::min(block_width, width - x);
      const int h = std::min(block_height, height - y);
      const RectF part{source.x + x * scale_x, source.y + y * scale_y, w * scale_x, h * scale_y};
      read_resampled(slide, level, part, w, h).copyTo(output(cv::Rect(x, y, w, h)));
    }
  }
  return output;
}

// Output pixels whose centre falls inside [0, extent) along one axis, as [first, last).
std::pair<int, int> valid_span(double origin, double step, int count, std::int64_t extent) {
  int first = count;
  int last = 0;
  for (int i = 0; i < count; ++i) {
    const double centre = origin + (i + 0.5) * step;
    if (centre >= 0.0 && centre < static_cast<double>(extent)) {
      first = std::min(first, i);
      last = i + 1;
    }
  }
  return {first, std::max(first, last)};
}

void require_readable_size(Size size_px, const fs::path& path) {
  if (size_px.width <= 0 || size_px.height <= 0) {
    throw Error(ErrorCode::kInvalidArgument, "patch size " + std::to_string(size_px.width) + "x" +
                                                 std::to_string(size_px.height) +
                                                 " is not positive; give a size such as 256");
  }
  if (size_px.area() > detail::kMaxReadPixels) {
    throw Error(ErrorCode::kInvalidArgument,
                "a read of " + std::to_string(size_px.width) + "x" +
                    std::to_string(size_px.height) + " pixels from '" + path.string() +
                    "' is too large for one patch; read a smaller region or a coarser spacing");
  }
}

}  // namespace

Patch SlideReader::read_fov(const RectF& fov_l0, Size size_px) const {
  require_readable_size(size_px, info_.path);
  require_spacing_known();
  const Size slide = info_.size();
  if (!(fov_l0.width > 0) || !(fov_l0.height > 0) || !std::isfinite(fov_l0.x) ||
      !std::isfinite(fov_l0.y)) {
    throw Error(ErrorCode::kInvalidArgument, "the field of view to read is empty or not finite");
  }
  if (fov_l0.x >= static_cast<double>(slide.width) ||
      fov_l0.y >= static_cast<double>(slide.height) || fov_l0.x + fov_l0.width <= 0.0 ||
      fov_l0.y + fov_l0.height <= 0.0) {
    std::ostringstream text;
    text << "the region at level-0 (" << fov_l0.x << ", " << fov_l0.y << ") of " << fov_l0.width
         << " x " << fov_l0.height << " px lies entirely outside '" << info_.path.string() << "' ("
         << slide.width << " x " << slide.height
         << " px); check the coordinates are level-0 pixels";
    throw Error(ErrorCode::kInvalidArgument, text.str());
  }

  Patch patch;
  patch.fov_l0 = fov_l0;
  patch.spacing_um = fov_l0.width * info_.spacing.x_um / static_cast<double>(size_px.width);
  patch.level = level_for_spacing(patch.spacing_um);
  const double downsample = info_.levels[static_cast<size_t>(patch.level)].downsample;
  const RectF source{fov_l0.x / downsample, fov_l0.y / downsample, fov_l0.width / downsample,
                     fov_l0.height / downsample};
  if (source.width * source.height > detail::kMaxSourcePixels) {
    std::ostringstream text;
    text << "reading " << size_px.width << "x" << size_px.height << " px at " << patch.spacing_um
         << " um/px from '" << info_.path.string() << "' would cover " << source.width << " x "
         << source.height << " px of level " << patch.level << " (its coarsest level that fits is "
         << info_.levels[static_cast<size_t>(patch.level)].downsample
         << "x downsampled; at most 2^34 source pixels per read); read a smaller size or region";
    throw Error(ErrorCode::kInvalidArgument, text.str());
  }
  const auto width = static_cast<int>(size_px.width);
  const auto height = static_cast<int>(size_px.height);
  if (std::abs(source.width - width) < 0.5 && std::abs(source.height - height) < 0.5) {
    // Same pixel size: copy level pixels as stored rather than blur them by a sub-pixel shift.
    const Rect direct{std::llround(source.x), std::llround(source.y), size_px.width,
                      size_px.height};
    patch.rgb = read_level(patch.level, direct);
  } else {
    patch.rgb = read_resampled(*this, patch.level, source, width, height);
  }

  patch.valid = cv::Mat::zeros(height, width, CV_8UC1);
  const auto [col_first, col_last] = valid_span(fov_l0.x, fov_l0.width / width, width, slide.width);
  const auto [row_first, row_last] =
      valid_span(fov_l0.y, fov_l0.height / height, height, slide.height);
  if (col_last > col_first && row_last > row_first) {
    patch.valid(cv::Range(row_first, row_last), cv::Range(col_first, col_last)).setTo(255);
  }
  return patch;
}

int SlideReader::level_for_spacing(double spacing_um) const {
  return choose_level(info_.levels, info_.spacing, spacing_um, options_.level_choice).level;
}

cv::Mat SlideReader::read_level(int level, const Rect& rect) const {
  if (level < 0 || level >= static_cast<int>(info_.levels.size())) {
    throw Error(ErrorCode::kInvalidArgument,
                "level " + std::to_string(level) + " does not exist in '" + info_.path.string() +
                    "' (it has " + std::to_string(info_.levels.size()) + ")");
  }
  require_readable_size(Size{rect.width, rect.height}, info_.path);
  const Size bounds = info_.levels[static_cast<size_t>(level)].size;
  const Rect inside = intersect(rect, Rect{0, 0, bounds.width, bounds.height});
  if (inside == rect) {
    return read_level_pixels(level, rect);
  }
  const cv::Vec3b& background = options_.background;
  cv::Mat pixels(static_cast<int>(rect.height), static_cast<int>(rect.width), CV_8UC3,
                 cv::Scalar(background[0], background[1], background[2]));
  if (!inside.empty()) {
    const cv::Mat part = read_level_pixels(level, inside);
    part.copyTo(
        pixels(cv::Rect(static_cast<int>(inside.x - rect.x), static_cast<int>(inside.y - rect.y),
                        static_cast<int>(inside.width), static_cast<int>(inside.height))));
  }
  return pixels;
}

cv::Mat SlideReader::read_associated(const std::string& name) const {
  for (const AssociatedImage& image : info_.associated_images) {
    if (image.name == name) {
      return read_associated_pixels(name);
    }
  }
  std::string names;
  for (const AssociatedImage& image : info_.associated_images) {
    names += (names.empty() ? "" : ", ") + image.name;
  }
  throw Error(ErrorCode::kInvalidArgument,
              "'" + info_.path.string() + "' has no associated image '" + name + "'" +
                  (names.empty() ? std::string(" (it has none)") : " (it has: " + names + ")"));
}

namespace {

const std::array<detail::BackendDescriptor, 2> kBackends{{
    {Backend::kOpenSlide, "openslide", detail::detect_openslide, detail::open_with_openslide},
    {Backend::kVips, "vips", detail::detect_vips, detail::open_with_vips},
}};

bool has_tiff_signature(const std::array<char, 132>& head, std::streamsize got) {
  const std::string magic(head.data(), static_cast<size_t>(std::min<std::streamsize>(got, 4)));
  return magic == std::string("II*\0", 4) || magic == std::string("MM\0*", 4) ||
         magic == std::string("II+\0", 4) || magic == std::string("MM\0+", 4);
}

// Formats that no backend reads yet but that users will try; each gets a specific answer.
// Returns whether the file starts like a TIFF.
bool reject_known_unsupported(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::array<char, 132> head{};
  file.read(head.data(), head.size());
  const std::streamsize got = file.gcount();
  if (got == 0) {
    throw Error(ErrorCode::kUnsupportedFormat,
                "'" + path.string() + "' is empty (0 bytes); the copy or download is incomplete");
  }
  if (got == 132 && std::string(head.data() + 128, 4) == "DICM") {
    throw Error(ErrorCode::kUnsupportedFormat,
                "'" + path.string() +
                    "' is a DICOM file: DICOM WSI is not supported yet (planned); convert the "
                    "series to a pyramidal TIFF (e.g. with the scanner's export or wsidicomizer) "
                    "and open that");
  }
  return has_tiff_signature(head, got);
}

// A truncated slide may still open (its first directories intact) and fail only on the missing
// tiles; say so up front rather than let the user meet it as a decode error mid-job.
void warn_if_truncated(const fs::path& path, const char* backend) {
  const std::string why = detail::tiff_truncation(path);
  if (!why.empty()) {
    spdlog::warn(
        "'{}' looks truncated ({}); it opens through {}, but reads of the missing part "
        "will fail: copy the file again and compare its checksum",
        path.string(), why, backend);
  }
}

}  // namespace

std::unique_ptr<SlideReader> open_slide(const fs::path& path, const OpenOptions& options) {
  detail::initialise_io_libraries();
  require_readable_file(path);
  const bool looks_like_tiff = reject_known_unsupported(path);
  std::string reasons;
  for (const detail::BackendDescriptor& backend : kBackends) {
    if (options.backend != Backend::kAuto && options.backend != backend.id) {
      continue;
    }
    const std::string why_not = backend.detect(path);
    if (why_not.empty()) {
      spdlog::debug("{}: opening with the {} backend", path.string(), backend.name);
      if (looks_like_tiff) {
        warn_if_truncated(path, backend.name);
      }
      return backend.open(path, options);
    }
    reasons += std::string(reasons.empty() ? "" : "; ") + backend.name + ": " + why_not;
  }
  if (looks_like_tiff && options.backend == Backend::kAuto) {
    throw Error(ErrorCode::kCorruptData,
                "'" + path.string() +
                    "' starts like a TIFF but neither OpenSlide nor libvips can parse it (" +
                    reasons +
                    "); the file is probably truncated or damaged: copy it again and compare its "
                    "checksum");
  }
  throw Error(ErrorCode::kUnsupportedFormat,
              "'" + path.string() + "' is not a slide format slidestream can read (" + reasons +
                  "); supported: Aperio, Hamamatsu, Leica, MIRAX, Philips, Sakura, Trestle, "
                  "Ventana, tiled TIFF (OpenSlide), OME-TIFF, QPTIFF, TIFF, PNG, JPEG (libvips)");
}

}  // namespace slidestream
