// libvips backend: what OpenSlide cannot open. OME-TIFF and QPTIFF pyramids, plain TIFF, PNG,
// JPEG, JPEG 2000 and WebP. Each level is one lazy libvips image that already maps the file's
// channels to RGB8; reads prepare a private VipsRegion, so threads share no mutable state.
#include <spdlog/spdlog.h>
#include <tiffio.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <mutex>
#include <sstream>
#include <vips/vips8>

#include "backends.hpp"
#include "slidestream/core.hpp"

namespace fs = std::filesystem;
using vips::VImage;

namespace slidestream::detail {

namespace {

// libvips (and libtiff through it) warn on stderr about harmless things in real files, e.g.
// "Raster width of 256 shall not be larger than image width": those go to the debug log.
void log_library_warning(const gchar* domain, GLogLevelFlags /*level*/, const gchar* message,
                         gpointer /*unused*/) {
  spdlog::debug("{}: {}", domain != nullptr ? domain : "glib", message);
}

void log_tiff_warning(const char* module, const char* format, va_list arguments) {
  std::array<char, 512> message{};
  std::vsnprintf(message.data(), message.size(), format, arguments);
  spdlog::debug("libtiff: {}: {}", module != nullptr ? module : "", message.data());
}

void ensure_vips() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (VIPS_INIT("slidestream") != 0) {
      throw Error(ErrorCode::kInternal,
                  "libvips failed to start: " + std::string(vips_error_buffer()));
    }
    g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING, log_library_warning, nullptr);
    TIFFSetWarningHandler(log_tiff_warning);
    // libtiff prints its errors to stderr by default; the error that reaches the user is ours.
    TIFFSetErrorHandler(log_tiff_warning);
  });
}

// The loaders this backend trusts, with the vendor name reported for each. ImageMagick and
// OpenSlide loaders are left out on purpose: OpenSlide is the other backend, and ImageMagick
// would "open" formats (DICOM, PDF) with the wrong geometry.
struct Loader {
  const char* name;
  const char* vendor;
  VImage (*load)(const char* filename, vips::VOption* options);
};
const Loader kLoaders[] = {{"tiffload", "tiff", VImage::tiffload},
                           {"pngload", "png", VImage::pngload},
                           {"jpegload", "jpeg", VImage::jpegload},
                           {"jp2kload", "jpeg2000", VImage::jp2kload},
                           {"webpload", "webp", VImage::webpload}};

const Loader* find_loader(const fs::path& path) {
  for (const Loader& loader : kLoaders) {
    if (vips_foreign_is_a(loader.name, path.c_str()) != 0) {
      return &loader;
    }
  }
  return nullptr;
}

std::string xml_text(const std::string& xml, const std::string& tag) {
  const std::string open = "<" + tag + ">";
  const size_t begin = xml.find(open);
  if (begin == std::string::npos) {
    return {};
  }
  const size_t end = xml.find("</" + tag + ">", begin);
  return end == std::string::npos ? std::string()
                                  : xml.substr(begin + open.size(), end - begin - open.size());
}

std::string xml_attribute(const std::string& xml, const std::string& name) {
  const std::string key = " " + name + "=\"";
  const size_t begin = xml.find(key);
  if (begin == std::string::npos) {
    return {};
  }
  const size_t end = xml.find('"', begin + key.size());
  return end == std::string::npos ? std::string()
                                  : xml.substr(begin + key.size(), end - begin - key.size());
}

std::optional<double> to_number(const std::string& text) {
  std::istringstream stream(text);
  double value = 0;
  if (text.empty() || !(stream >> value)) {
    return std::nullopt;
  }
  return value;
}

std::string description_of(const VImage& image) {
  if (image.get_typeof("image-description") == 0) {
    return {};
  }
  return image.get_string("image-description");
}

// One page (IFD) of a TIFF, or the only image of other formats.
struct Page {
  int index = 0;
  VImage image;
  std::string description;
  std::string qptiff_type;  // "FullResolution", "ReducedResolution", "Thumbnail", ...
};

VImage load_page(const fs::path& path, const Loader& loader, int page) {
  auto options = VImage::option()->set("access", VIPS_ACCESS_RANDOM);
  if (std::string(loader.name) == "tiffload") {
    options->set("page", page);
  }
  // The loader is named, not sniffed: libvips would hand vendor TIFFs to its OpenSlide loader.
  return loader.load(path.c_str(), options);
}

// How pages become levels: same size as page 0 -> another channel of level 0; smaller by a
// near-integer factor with the same bands and format -> a level (its channels likewise);
// anything else -> an associated image when the vendor XML names it, else ignored.
struct Layout {
  std::vector<std::vector<Page>> levels;  // levels[l] = channel pages of level l
  std::vector<std::pair<std::string, VImage>> associated;
};

bool same_kind(const VImage& a, const VImage& b) {
  return a.bands() == b.bands() && a.format() == b.format();
}

std::optional<double> pyramid_downsample(const VImage& base, const VImage& page) {
  const double dx = static_cast<double>(base.width()) / page.width();
  const double dy = static_cast<double>(base.height()) / page.height();
  const double downsample = (dx + dy) / 2.0;
  if (downsample < 1.5 || std::abs(dx - dy) > 0.02 * downsample ||
      std::abs(downsample - std::round(downsample)) > 0.02 * downsample) {
    return std::nullopt;
  }
  return downsample;
}

std::string associated_name(const std::string& qptiff_type) {
  if (qptiff_type == "Thumbnail") {
    return "thumbnail";
  }
  if (qptiff_type == "Overview") {
    return "macro";
  }
  if (qptiff_type == "Label") {
    return "label";
  }
  return {};
}

Layout layout_pages(std::vector<Page> pages) {
  Layout layout;
  const VImage& base = pages.front().image;
  for (Page& page : pages) {
    const bool qptiff_associated = !associated_name(page.qptiff_type).empty();
    auto level =
        std::find_if(layout.levels.begin(), layout.levels.end(), [&](const auto& pages_of) {
          return pages_of.front().image.width() == page.image.width() &&
                 pages_of.front().image.height() == page.image.height();
        });
    if (!qptiff_associated && same_kind(base, page.image) &&
        (level != layout.levels.end() || page.index == 0 || pyramid_downsample(base, page.image))) {
      if (level == layout.levels.end()) {
        layout.levels.push_back({page});
      } else {
        level->push_back(page);
      }
    } else if (qptiff_associated) {
      layout.associated.emplace_back(associated_name(page.qptiff_type), page.image);
    }
  }
  // Every level must carry as many channels as level 0; a partial one is not a level.
  const size_t channels = layout.levels.front().size();
  layout.levels.erase(std::remove_if(layout.levels.begin(), layout.levels.end(),
                                     [&](const auto& level) { return level.size() != channels; }),
                      layout.levels.end());
  std::sort(layout.levels.begin(), layout.levels.end(), [](const auto& a, const auto& b) {
    return a.front().image.width() > b.front().image.width();
  });
  return layout;
}

struct ChannelMapping {
  int channel_count = 0;
  std::vector<int> selected;  // indices into the channel list, 1 (grey) or 3 (RGB)
  std::string rule;
};

ChannelMapping map_channels(const Layout& layout, const OpenOptions& options,
                            const fs::path& path) {
  const auto& level0 = layout.levels.front();
  const bool channel_pages = level0.size() > 1;
  ChannelMapping mapping;
  mapping.channel_count =
      channel_pages ? static_cast<int>(level0.size()) : level0.front().image.bands();
  if (!options.channels.empty()) {
    if (options.channels.size() != 1 && options.channels.size() != 3) {
      throw Error(ErrorCode::kInvalidArgument,
                  "--channels takes one index (grey) or three (R,G,B), e.g. --channels 0,1,2");
    }
    for (const int channel : options.channels) {
      if (channel < 0 || channel >= mapping.channel_count) {
        throw Error(ErrorCode::kInvalidArgument,
                    "--channels " + std::to_string(channel) + " does not exist: '" + path.string() +
                        "' has channels 0.." + std::to_string(mapping.channel_count - 1));
      }
    }
    mapping.selected = options.channels;
    mapping.rule = options.channels.size() == 1
                       ? "channel " + std::to_string(options.channels[0]) + " as grey (--channels)"
                       : "channels as R,G,B (--channels)";
    return mapping;
  }
  switch (channel_pages ? 0 : mapping.channel_count) {
    case 1:
      mapping.selected = {0};
      mapping.rule = "grey replicated to RGB";
      break;
    case 2:
      mapping.selected = {0};
      mapping.rule = "grey with alpha: alpha dropped, grey replicated to RGB";
      break;
    case 3:
      mapping.selected = {0, 1, 2};
      mapping.rule = "rgb";
      break;
    case 4:
      mapping.selected = {0, 1, 2};
      mapping.rule = "rgba: alpha dropped";
      break;
    default:
      mapping.selected = {0};
      mapping.rule = "channel 0 of " + std::to_string(mapping.channel_count) +
                     " as grey replicated to RGB (choose others with --channels)";
  }
  return mapping;
}

// One level as a lazy RGB8 image.
VImage rgb_level(const std::vector<Page>& channel_pages, const ChannelMapping& mapping,
                 const fs::path& path) {
  std::vector<VImage> selected;
  for (const int channel : mapping.selected) {
    selected.push_back(channel_pages.size() > 1
                           ? channel_pages[static_cast<size_t>(channel)].image.extract_band(0)
                           : channel_pages.front().image.extract_band(channel));
  }
  if (selected.size() == 1) {
    selected = {selected[0], selected[0], selected[0]};
  }
  VImage rgb = VImage::bandjoin(selected);
  switch (rgb.format()) {
    case VIPS_FORMAT_UCHAR:
      break;
    case VIPS_FORMAT_USHORT:  // keep the top 8 bits
      rgb = rgb.cast(VIPS_FORMAT_UCHAR, VImage::option()->set("shift", true));
      break;
    default:
      throw Error(ErrorCode::kUnsupportedFormat,
                  "'" + path.string() + "' stores " +
                      vips_enum_nick(VIPS_TYPE_BAND_FORMAT, rgb.format()) +
                      " samples; slidestream reads 8- and 16-bit images: convert it first");
  }
  return rgb;
}

std::vector<SpacingCandidate> spacing_candidates(const Page& page0, const std::string& loader) {
  const VImage& image = page0.image;
  std::optional<Spacing> tiff_resolution;
  if (loader == "tiffload" && image.get_typeof("resolution-unit") != 0 && image.xres() > 0 &&
      image.yres() > 0) {
    tiff_resolution = Spacing{1000.0 / image.xres(), 1000.0 / image.yres()};
  }
  return vips_spacing_candidates(page0.description, tiff_resolution);
}

std::map<std::string, std::string> properties_of(const VImage& image) {
  std::map<std::string, std::string> properties;
  char** fields = vips_image_get_fields(image.get_image());
  for (char** field = fields; *field != nullptr; ++field) {
    char* value = nullptr;
    if (vips_image_get_as_string(image.get_image(), *field, &value) == 0) {
      properties[*field] = value;
      g_free(value);
    }
  }
  g_strfreev(fields);
  return properties;
}

class VipsSlideReader final : public SlideReader {
 public:
  VipsSlideReader(SlideInfo info, OpenOptions options, std::vector<VImage> levels,
                  std::map<std::string, VImage> associated)
      : SlideReader(std::move(info), std::move(options)),
        levels_(std::move(levels)),
        associated_(std::move(associated)) {}

 protected:
  cv::Mat read_level_pixels(int level, const Rect& rect) const override {
    return copy_out(levels_[static_cast<size_t>(level)], rect);
  }

  cv::Mat read_associated_pixels(const std::string& name) const override {
    const VImage& image = associated_.at(name);
    VImage rgb = image.bands() >= 3 ? image.extract_band(0, VImage::option()->set("n", 3))
                                    : VImage::bandjoin({image, image, image});
    return copy_out(rgb.cast(VIPS_FORMAT_UCHAR), Rect{0, 0, rgb.width(), rgb.height()});
  }

 private:
  cv::Mat copy_out(const VImage& image, const Rect& rect) const {
    if (image.bands() != 3 || image.format() != VIPS_FORMAT_UCHAR) {
      throw Error(ErrorCode::kInternal, "vips backend: level image is not RGB8");
    }
    cv::Mat rgb(static_cast<int>(rect.height), static_cast<int>(rect.width), CV_8UC3);
    try {
      // A region of our own: computed in this thread, no locks, no libvips thread pool.
      vips::VRegion region = vips::VRegion::new_from_image(image);
      region.prepare(static_cast<int>(rect.x), static_cast<int>(rect.y),
                     static_cast<int>(rect.width), static_cast<int>(rect.height));
      const size_t row_bytes = static_cast<size_t>(rect.width) * 3;
      for (int row = 0; row < rgb.rows; ++row) {
        const auto* source = static_cast<const std::uint8_t*>(
            region.addr(static_cast<int>(rect.x), static_cast<int>(rect.y) + row));
        std::copy(source, source + row_bytes, rgb.ptr<std::uint8_t>(row));
      }
    } catch (const vips::VError& error) {
      throw Error(ErrorCode::kCorruptData, "libvips failed reading '" + info().path.string() +
                                               "': " + error.what() +
                                               "; the file is probably truncated or damaged");
    }
    return rgb;
  }

  std::vector<VImage> levels_;
  std::map<std::string, VImage> associated_;
};

std::vector<Page> read_pages(const fs::path& path, const Loader& loader) {
  std::vector<Page> pages;
  VImage first = load_page(path, loader, 0);
  const int page_count =
      (std::string(loader.name) == "tiffload" && first.get_typeof("n-pages") != 0)
          ? first.get_int("n-pages")
          : 1;
  for (int index = 0; index < page_count; ++index) {
    Page page;
    page.index = index;
    page.image = index == 0 ? first : load_page(path, loader, index);
    page.description = description_of(page.image);
    page.qptiff_type = xml_text(page.description, "ImageType");
    pages.push_back(std::move(page));
  }
  return pages;
}

}  // namespace

std::vector<SpacingCandidate> vips_spacing_candidates(const std::string& description,
                                                      std::optional<Spacing> tiff_resolution_um) {
  std::vector<SpacingCandidate> candidates;
  const std::string& xml = description;
  if (auto microns = to_number(xml_text(xml, "PixelSizeMicrons"))) {
    candidates.push_back({Spacing{*microns, *microns}, SpacingSource::kQptiffXml});
  }
  // Aperio SVS forced through libvips: "... |MPP = 0.4990|AppMag = 20|...".
  if (const size_t mpp = xml.find("|MPP = ");
      xml.rfind("Aperio", 0) == 0 && mpp != std::string::npos) {
    if (auto microns = to_number(xml.substr(mpp + 7, xml.find('|', mpp + 7) - mpp - 7))) {
      candidates.push_back({Spacing{*microns, *microns}, SpacingSource::kAperioDescription});
    }
  }
  if (tiff_resolution_um) {
    candidates.push_back({*tiff_resolution_um, SpacingSource::kTiffResolution});
  }
  if (xml.find("<OME") != std::string::npos) {
    const auto x = to_number(xml_attribute(xml, "PhysicalSizeX"));
    const auto y = to_number(xml_attribute(xml, "PhysicalSizeY"));
    const std::string unit = xml_attribute(xml, "PhysicalSizeXUnit");
    const double to_um = unit == "nm" ? 1e-3 : unit == "mm" ? 1e3 : unit == "cm" ? 1e4 : 1.0;
    if (x) {
      candidates.push_back({Spacing{*x * to_um, y.value_or(*x) * to_um}, SpacingSource::kOmeXml});
    }
  }
  return candidates;
}

void initialise_io_libraries() {
  ensure_vips();
}

std::string detect_vips(const fs::path& path) {
  ensure_vips();
  return find_loader(path) != nullptr ? std::string()
                                      : "not a TIFF, PNG, JPEG, JPEG 2000 or WebP file";
}

std::unique_ptr<SlideReader> open_with_vips(const fs::path& path, const OpenOptions& options) {
  ensure_vips();
  const Loader* loader = find_loader(path);
  if (loader == nullptr) {
    throw Error(ErrorCode::kUnsupportedFormat, "libvips cannot read '" + path.string() + "'");
  }
  try {
    const Layout layout = layout_pages(read_pages(path, *loader));
    const ChannelMapping mapping = map_channels(layout, options, path);
    const Page& page0 = layout.levels.front().front();

    SlideInfo info;
    info.path = path;
    info.backend = Backend::kVips;
    info.properties = properties_of(page0.image);
    info.vendor = page0.description.find("PerkinElmer-QPI") != std::string::npos ? "qptiff"
                  : page0.description.find("<OME") != std::string::npos          ? "ome-tiff"
                                                                                 : loader->vendor;
    info.objective_power = to_number(xml_text(page0.description, "Objective"));
    info.channel_count = mapping.channel_count;
    info.channel_rule = mapping.rule;

    std::vector<VImage> levels;
    for (const auto& channel_pages : layout.levels) {
      const VImage& image = channel_pages.front().image;
      Level level;
      level.size = Size{image.width(), image.height()};
      level.downsample = (static_cast<double>(page0.image.width()) / image.width() +
                          static_cast<double>(page0.image.height()) / image.height()) /
                         2.0;
      info.levels.push_back(level);
      levels.push_back(rgb_level(channel_pages, mapping, path));
    }
    std::map<std::string, VImage> associated;
    for (const auto& [name, image] : layout.associated) {
      info.associated_images.push_back(AssociatedImage{name, Size{image.width(), image.height()}});
      associated.emplace(name, image);
    }
    resolve_spacing(info, spacing_candidates(page0, loader->name), options);
    auto reader = std::make_unique<VipsSlideReader>(std::move(info), options, std::move(levels),
                                                    std::move(associated));
    // Load every level once here, single-threaded, so lazy loaders are open before threads read
    // and a damaged file fails at open with its name.
    for (size_t level = 0; level < reader->info().levels.size(); ++level) {
      reader->read_level(static_cast<int>(level), Rect{0, 0, 1, 1});
    }
    return reader;
  } catch (const vips::VError& error) {
    throw Error(ErrorCode::kCorruptData, "libvips could not open '" + path.string() +
                                             "': " + error.what() +
                                             "; the file is probably truncated or damaged");
  }
}

}  // namespace slidestream::detail
