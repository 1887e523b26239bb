#include "slidestream/jobs/info.hpp"

#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>

namespace slidestream {

std::string slide_info_json(const SlideInfo& info) {
  nlohmann::ordered_json json;
  json["schema"] = "slidestream.info/1";
  json["path"] = info.path.string();
  json["backend"] = backend_name(info.backend);
  json["vendor"] = info.vendor;
  json["width"] = info.size().width;
  json["height"] = info.size().height;
  const bool known = info.spacing_source != SpacingSource::kNone;
  const auto microns = [known](double um) {
    return known ? nlohmann::ordered_json(um) : nlohmann::ordered_json(nullptr);
  };
  json["mpp"] = {{"x", microns(info.spacing.x_um)},
                 {"y", microns(info.spacing.y_um)},
                 {"source", spacing_source_name(info.spacing_source)},
                 {"anisotropic", info.spacing.is_anisotropic()}};
  json["objective_power"] =
      info.objective_power ? nlohmann::ordered_json(*info.objective_power) : nullptr;
  json["quickhash"] = info.quickhash.empty() ? nlohmann::ordered_json(nullptr)
                                             : nlohmann::ordered_json(info.quickhash);
  json["channels"] = {{"count", info.channel_count}, {"rule", info.channel_rule}};
  json["levels"] = nlohmann::ordered_json::array();
  for (const Level& level : info.levels) {
    json["levels"].push_back({{"width", level.size.width},
                              {"height", level.size.height},
                              {"downsample", level.downsample},
                              {"mpp_x", microns(level.spacing.x_um)},
                              {"mpp_y", microns(level.spacing.y_um)},
                              {"tile_width", level.tile_size.width},
                              {"tile_height", level.tile_size.height}});
  }
  json["associated_images"] = nlohmann::ordered_json::array();
  for (const AssociatedImage& image : info.associated_images) {
    json["associated_images"].push_back(
        {{"name", image.name}, {"width", image.size.width}, {"height", image.size.height}});
  }
  json["properties"] = info.properties;
  return json.dump(2);
}

std::string slide_info_text(const SlideInfo& info) {
  std::ostringstream text;
  text << "slide      " << info.path.string() << "\n"
       << "format     " << info.vendor << " (backend " << backend_name(info.backend) << ")\n"
       << "size       " << info.size().width << " x " << info.size().height << " px\n"
       << "mpp        ";
  if (info.spacing_source == SpacingSource::kNone) {
    text << "unknown (from none): the metadata has no usable spacing; pass --mpp\n";
  } else {
    text << info.spacing.x_um << " x " << info.spacing.y_um << " um/px (from "
         << spacing_source_name(info.spacing_source)
         << (info.spacing.is_anisotropic() ? ", ANISOTROPIC" : "") << ")\n";
  }
  if (info.objective_power) {
    text << "objective  " << *info.objective_power << "x\n";
  }
  text << "channels   " << info.channel_count << " (" << info.channel_rule << ")\n";
  if (!info.quickhash.empty()) {
    text << "quickhash  " << info.quickhash << "\n";
  }
  text << "levels\n"
       << "  level      width     height  downsample   um/px\n";
  for (size_t i = 0; i < info.levels.size(); ++i) {
    const Level& level = info.levels[i];
    text << "  " << std::setw(5) << i << std::setw(11) << level.size.width << std::setw(11)
         << level.size.height << std::setw(12) << std::fixed << std::setprecision(3)
         << level.downsample << std::setw(8) << std::setprecision(4);
    if (info.spacing_source == SpacingSource::kNone) {
      text << "-";
    } else {
      text << level.spacing.x_um;
    }
    text << "\n";
    text.unsetf(std::ios::fixed);
  }
  if (!info.associated_images.empty()) {
    text << "associated";
    for (const AssociatedImage& image : info.associated_images) {
      text << "  " << image.name << " (" << image.size.width << "x" << image.size.height << ")";
    }
    text << "\n";
  }
  return text.str();
}

}  // namespace slidestream
