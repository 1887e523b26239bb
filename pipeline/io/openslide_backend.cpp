// OpenSlide backend: every vendor format OpenSlide reads. One handle is shared by all threads
// (OpenSlide handles are thread-safe); its sticky error is checked after every call.
#include <openslide.h>
#include <spdlog/spdlog.h>

#include <cstring>
#include <sstream>

#include "backends.hpp"
#include "slidestream/core.hpp"

namespace fs = std::filesystem;

namespace slidestream::detail {

namespace {

struct OpenSlideCloser {
  void operator()(openslide_t* handle) const { openslide_close(handle); }
};
using OpenSlideHandle = std::unique_ptr<openslide_t, OpenSlideCloser>;

void check(openslide_t* handle, const fs::path& path, const std::string& doing) {
  if (const char* error = openslide_get_error(handle); error != nullptr) {
    throw Error(ErrorCode::kCorruptData, "OpenSlide failed " + doing + " '" + path.string() +
                                             "': " + error +
                                             "; the file is probably truncated or damaged: copy "
                                             "it again and compare its checksum");
  }
}

std::optional<double> property_number(const std::map<std::string, std::string>& properties,
                                      const std::string& key) {
  const auto found = properties.find(key);
  if (found == properties.end()) {
    return std::nullopt;
  }
  std::istringstream text(found->second);
  double value = 0;
  if (!(text >> value)) {
    return std::nullopt;
  }
  return value;
}

// Premultiplied ARGB (native-endian uint32, i.e. bytes B, G, R, A) to RGB over `background`.
void argb_to_rgb(const std::uint32_t* argb, cv::Mat& rgb, const cv::Vec3b& background) {
  const size_t count = rgb.total();
  auto* out = rgb.ptr<std::uint8_t>();
  for (size_t i = 0; i < count; ++i, out += 3) {
    const std::uint32_t pixel = argb[i];
    const std::uint32_t alpha = pixel >> 24;
    const std::uint32_t red = (pixel >> 16) & 0xff;
    const std::uint32_t green = (pixel >> 8) & 0xff;
    const std::uint32_t blue = pixel & 0xff;
    if (alpha == 255) {
      out[0] = static_cast<std::uint8_t>(red);
      out[1] = static_cast<std::uint8_t>(green);
      out[2] = static_cast<std::uint8_t>(blue);
    } else {
      // Un-premultiply, then composite over the background: c + (1 - a) * bg.
      const std::uint32_t rest = 255 - alpha;
      out[0] = static_cast<std::uint8_t>(
          std::min<std::uint32_t>(255, red + (rest * background[0] + 127) / 255));
      out[1] = static_cast<std::uint8_t>(
          std::min<std::uint32_t>(255, green + (rest * background[1] + 127) / 255));
      out[2] = static_cast<std::uint8_t>(
          std::min<std::uint32_t>(255, blue + (rest * background[2] + 127) / 255));
    }
  }
}

class OpenSlideReader final : public SlideReader {
 public:
  OpenSlideReader(SlideInfo info, OpenOptions options, OpenSlideHandle handle)
      : SlideReader(std::move(info), std::move(options)), handle_(std::move(handle)) {}

 protected:
  cv::Mat read_level_pixels(int level, const Rect& rect) const override {
    const double downsample = info().levels[static_cast<size_t>(level)].downsample;
    std::vector<std::uint32_t> argb(static_cast<size_t>(rect.area()));
    // OpenSlide takes the origin in level-0 pixels and divides by its downsample again.
    openslide_read_region(
        handle_.get(), argb.data(), std::llround(static_cast<double>(rect.x) * downsample),
        std::llround(static_cast<double>(rect.y) * downsample), level, rect.width, rect.height);
    check(handle_.get(), info().path, "reading level " + std::to_string(level) + " of");
    cv::Mat rgb(static_cast<int>(rect.height), static_cast<int>(rect.width), CV_8UC3);
    argb_to_rgb(argb.data(), rgb, options().background);
    return rgb;
  }

  cv::Mat read_associated_pixels(const std::string& name) const override {
    int64_t width = 0;
    int64_t height = 0;
    openslide_get_associated_image_dimensions(handle_.get(), name.c_str(), &width, &height);
    check(handle_.get(), info().path, "reading the " + name + " image of");
    std::vector<std::uint32_t> argb(static_cast<size_t>(width * height));
    openslide_read_associated_image(handle_.get(), name.c_str(), argb.data());
    check(handle_.get(), info().path, "reading the " + name + " image of");
    cv::Mat rgb(static_cast<int>(height), static_cast<int>(width), CV_8UC3);
    argb_to_rgb(argb.data(), rgb, options().background);
    return rgb;
  }

 private:
  OpenSlideHandle handle_;
};

}  // namespace

std::vector<SpacingCandidate> openslide_spacing_candidates(
    const std::map<std::string, std::string>& properties) {
  std::vector<SpacingCandidate> candidates;
  const auto mpp_x = property_number(properties, OPENSLIDE_PROPERTY_NAME_MPP_X);
  const auto mpp_y = property_number(properties, OPENSLIDE_PROPERTY_NAME_MPP_Y);
  if (mpp_x && mpp_y) {
    candidates.push_back({Spacing{*mpp_x, *mpp_y}, SpacingSource::kOpenSlideMpp});
  }
  // OpenSlide 3.4.1's generic-tiff driver does not turn resolution tags into openslide.mpp.
  const auto res_x = property_number(properties, "tiff.XResolution");
  const auto res_y = property_number(properties, "tiff.YResolution");
  const auto unit = properties.find("tiff.ResolutionUnit");
  if (res_x && unit != properties.end() && *res_x > 0) {
    const double microns_per_unit = unit->second == "centimeter" ? 1e4
                                    : unit->second == "inch"     ? 25400.0
                                                                 : 0.0;
    if (microns_per_unit > 0) {
      const double y = (res_y && *res_y > 0) ? *res_y : *res_x;
      candidates.push_back({Spacing{microns_per_unit / *res_x, microns_per_unit / y},
                            SpacingSource::kTiffResolution});
    }
  }
  return candidates;
}

std::string detect_openslide(const fs::path& path) {
  if (openslide_detect_vendor(path.c_str()) == nullptr) {
    return "not a format OpenSlide recognises";
  }
  return {};
}

std::unique_ptr<SlideReader> open_with_openslide(const fs::path& path, const OpenOptions& options) {
  OpenSlideHandle handle(openslide_open(path.c_str()));
  if (!handle) {
    const char* vendor = openslide_detect_vendor(path.c_str());
    throw Error(ErrorCode::kCorruptData,
                "OpenSlide recognised '" + path.string() + "' as " +
                    (vendor != nullptr ? vendor : "a slide") +
                    " but could not open it; the file is probably truncated or damaged: copy it "
                    "again and compare its checksum");
  }
  check(handle.get(), path, "opening");

  SlideInfo info;
  info.path = path;
  info.backend = Backend::kOpenSlide;
  for (const char* const* name = openslide_get_property_names(handle.get()); *name != nullptr;
       ++name) {
    const char* value = openslide_get_property_value(handle.get(), *name);
    info.properties[*name] = value != nullptr ? value : "";
  }
  check(handle.get(), path, "reading the properties of");
  info.vendor = info.properties[OPENSLIDE_PROPERTY_NAME_VENDOR];
  info.quickhash = info.properties[OPENSLIDE_PROPERTY_NAME_QUICKHASH1];
  info.objective_power = property_number(info.properties, OPENSLIDE_PROPERTY_NAME_OBJECTIVE_POWER);
  info.channel_count = 3;
  info.channel_rule = "rgb";

  const int32_t level_count = openslide_get_level_count(handle.get());
  check(handle.get(), path, "reading the levels of");
  for (int32_t level = 0; level < level_count; ++level) {
    Level entry;
    openslide_get_level_dimensions(handle.get(), level, &entry.size.width, &entry.size.height);
    entry.downsample = openslide_get_level_downsample(handle.get(), level);
    const std::string prefix = "openslide.level[" + std::to_string(level) + "].";
    entry.tile_size.width = static_cast<std::int64_t>(
        property_number(info.properties, prefix + "tile-width").value_or(0));
    entry.tile_size.height = static_cast<std::int64_t>(
        property_number(info.properties, prefix + "tile-height").value_or(0));
    // OpenSlide 3.4.1 reads a generic TIFF level narrower or shorter than one tile as blank
    // when its tiles are not JPEG (libtiff's RGBA path). Such a level and the coarser ones after
    // it are left out (so our level indices stay OpenSlide's); reads at their spacing come from
    // the finest level kept instead.
    if (level > 0 && info.vendor == "generic-tiff" &&
        (entry.size.width < entry.tile_size.width || entry.size.height < entry.tile_size.height)) {
      spdlog::debug("{}: levels from {} ({}x{}) are smaller than a tile; not used", path.string(),
                    level, entry.size.width, entry.size.height);
      break;
    }
    info.levels.push_back(entry);
  }
  check(handle.get(), path, "reading the levels of");
  if (info.levels.empty() || info.levels.front().size.area() <= 0) {
    throw Error(ErrorCode::kCorruptData, "'" + path.string() + "' has no readable image levels");
  }

  for (const char* const* name = openslide_get_associated_image_names(handle.get());
       *name != nullptr; ++name) {
    AssociatedImage image{*name, {}};
    openslide_get_associated_image_dimensions(handle.get(), *name, &image.size.width,
                                              &image.size.height);
    info.associated_images.push_back(image);
  }
  check(handle.get(), path, "reading the associated images of");

  if (!options.channels.empty()) {
    spdlog::warn(
        "{}: --channels applies to multi-channel images read by libvips; this RGB slide "
        "is read as it is",
        path.string());
  }
  resolve_spacing(info, openslide_spacing_candidates(info.properties), options);
  auto reader = std::make_unique<OpenSlideReader>(std::move(info), options, std::move(handle));
  // Touch one pixel so a slide whose tile data is missing fails here, at open, with its name.
  reader->read_level(static_cast<int>(reader->info().levels.size()) - 1, Rect{0, 0, 1, 1});
  return reader;
}

}  // namespace slidestream::detail
