// Fuzzes the spacing (MPP) metadata parsers and their resolution (pipeline/io/spacing.cpp),
// plus the --size / --center parsers of geometry. The input has sections split by lines "%%":
//   0: page 0's image description (libvips backend: QPTIFF XML, Aperio, OME-XML)
//   1: OpenSlide properties, one "key=value" per line
//   2: settings, one per line: "tiff-resolution X Y" (px/mm, as libvips reports them),
//      "mpp V" (the --mpp override), "downsamples D..." (levels), "optional" (no spacing
//      required, as `info` opens slides)
//   3: lines given to parse_size and parse_point
// Bad metadata is kMissingMetadata, a bad --mpp or size/point kInvalidArgument; a resolved
// spacing is always plausible.
#include <cstdlib>
#include <sstream>

#include "backends.hpp"
#include "fuzz_support.hpp"

namespace {

using namespace slidestream;
namespace fuzz = slidestream::fuzz;

struct Settings {
  std::optional<Spacing> tiff_resolution_um;
  OpenOptions options;
  std::vector<double> downsamples{1.0};
};

Settings settings_of(const std::string& text) {
  Settings settings;
  for (const std::string& line : fuzz::split_lines(text)) {
    std::istringstream words(line);
    std::string key;
    words >> key;
    std::vector<double> numbers;
    for (std::string word; words >> word;) {
      numbers.push_back(std::strtod(word.c_str(), nullptr));
    }
    if (key == "tiff-resolution" && numbers.size() >= 2 && numbers[0] > 0 && numbers[1] > 0) {
      // As the libvips backend turns the resolution tags (px/mm) into um/px.
      settings.tiff_resolution_um = Spacing{1000.0 / numbers[0], 1000.0 / numbers[1]};
    } else if (key == "mpp" && !numbers.empty()) {
      settings.options.mpp_override_um = numbers[0];
    } else if (key == "downsamples" && !numbers.empty()) {
      settings.downsamples = numbers;
    } else if (key == "optional") {
      settings.options.require_spacing = false;
    }
  }
  return settings;
}

std::map<std::string, std::string> properties_of(const std::string& text) {
  std::map<std::string, std::string> properties;
  for (const std::string& line : fuzz::split_lines(text)) {
    const std::size_t equals = line.find('=');
    if (equals != std::string::npos) {
      properties[line.substr(0, equals)] = line.substr(equals + 1);
    }
  }
  return properties;
}

void check_resolution(const std::vector<detail::SpacingCandidate>& candidates,
                      const Settings& settings) {
  SlideInfo info;
  info.path = "fuzz.tif";
  for (const double downsample : settings.downsamples) {
    info.levels.push_back(Level{Size{1000, 1000}, downsample, {}, {}});
  }
  fuzz::expect_clean(
      [&] {
        detail::resolve_spacing(info, candidates, settings.options);
        const Spacing& spacing = info.spacing;
        const bool plausible =
            spacing.x_um >= kMinPlausibleSpacingUm && spacing.x_um <= kMaxPlausibleSpacingUm &&
            spacing.y_um >= kMinPlausibleSpacingUm && spacing.y_um <= kMaxPlausibleSpacingUm;
        if (info.spacing_source != SpacingSource::kNone && !plausible) {
          fuzz::finding("resolved an implausible spacing from " +
                        spacing_source_name(info.spacing_source));
        }
      },
      {ErrorCode::kMissingMetadata, ErrorCode::kInvalidArgument});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::string> sections = fuzz::split_sections(fuzz::as_text(data, size), "%%");
  sections.resize(std::max<std::size_t>(sections.size(), 4));
  std::string description = sections[0];
  if (!description.empty()) {
    description.pop_back();  // the newline split_sections ends each section with
  }
  const Settings settings = settings_of(sections[2]);
  std::vector<detail::SpacingCandidate> vips;
  std::vector<detail::SpacingCandidate> openslide;
  fuzz::expect_clean(
      [&] {
        vips = detail::vips_spacing_candidates(description, settings.tiff_resolution_um);
        openslide = detail::openslide_spacing_candidates(properties_of(sections[1]));
      },
      {});
  check_resolution(vips, settings);
  check_resolution(openslide, settings);
  for (const std::string& line : fuzz::split_lines(sections[3])) {
    fuzz::expect_clean([&] { parse_size(line); }, {ErrorCode::kInvalidArgument});
    fuzz::expect_clean([&] { parse_point(line); }, {ErrorCode::kInvalidArgument});
  }
  return 0;
}
