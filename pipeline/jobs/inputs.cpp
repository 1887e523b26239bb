// Slide inputs of a batch: files, globs, folders and CSV manifests.
#include <glob.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "slidestream/core.hpp"
#include "slidestream/jobs/batch.hpp"

namespace fs = std::filesystem;

namespace slidestream {

namespace {

bool is_slide_file(const fs::path& path) {
  static const std::set<std::string> kExtensions{
      ".svs",     ".tif", ".tiff",   ".ndpi", ".vms", ".vmu",  ".scn", ".mrxs",
      ".svslide", ".bif", ".qptiff", ".png",  ".jpg", ".jpeg", ".jp2", ".webp"};
  std::string extension = path.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(), ::tolower);
  return kExtensions.count(extension) > 0;
}

std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> cells;
  std::stringstream stream(line);
  for (std::string cell; std::getline(stream, cell, ',');) {
    cell.erase(0, cell.find_first_not_of(" \t\r"));
    cell.erase(cell.find_last_not_of(" \t\r") + 1);
    cells.push_back(cell);
  }
  return cells;
}

std::vector<SlideInput> read_manifest(const fs::path& manifest) {
  std::ifstream file(manifest);
  std::string line;
  if (!std::getline(file, line)) {
    throw Error(ErrorCode::kInvalidConfig, "manifest '" + manifest.string() + "' is empty");
  }
  const std::vector<std::string> header = split_csv_line(line);
  const auto column = [&](const std::string& name) -> int {
    const auto found = std::find(header.begin(), header.end(), name);
    return found == header.end() ? -1 : static_cast<int>(found - header.begin());
  };
  const int path_column = column("path");
  if (path_column < 0) {
    throw Error(ErrorCode::kInvalidConfig, "manifest '" + manifest.string() +
                                               "' needs a header line with a 'path' column "
                                               "(optional: mpp, id)");
  }
  const int mpp_column = column("mpp");
  const int id_column = column("id");
  std::vector<SlideInput> slides;
  for (int number = 2; std::getline(file, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) {
      continue;
    }
    const std::vector<std::string> cells = split_csv_line(line);
    const auto cell = [&](int index) {
      return index >= 0 && static_cast<size_t>(index) < cells.size()
                 ? cells[static_cast<size_t>(index)]
                 : std::string();
    };
    SlideInput slide;
    slide.path = cell(path_column);
    if (slide.path.empty()) {
      throw Error(ErrorCode::kInvalidConfig, "manifest '" + manifest.string() + "' line " +
                                                 std::to_string(number) + " has no path");
    }
    if (slide.path.is_relative()) {
      slide.path = manifest.parent_path() / slide.path;
    }
    if (!cell(mpp_column).empty()) {
      const std::string text = cell(mpp_column);
      double mpp = std::nan("");
      try {
        size_t used = 0;
        mpp = std::stod(text, &used);
        mpp = used == text.size() ? mpp : std::nan("");
      } catch (const std::exception&) {
        mpp = std::nan("");
      }
      if (!is_within(mpp, 0.01, 200)) {
        throw Error(ErrorCode::kInvalidConfig,
                    "manifest '" + manifest.string() + "' line " + std::to_string(number) +
                        ": mpp '" + text +
                        "' is not a spacing in um/px within 0.01..200 (e.g. 0.25 or 0.5); "
                        "leave the cell empty to use the slide's own");
      }
      slide.mpp_um = mpp;
    }
    slide.id = cell(id_column);
    slides.push_back(slide);
  }
  return slides;
}

std::vector<fs::path> glob_paths(const std::string& pattern) {
  glob_t matches{};
  std::vector<fs::path> paths;
  if (::glob(pattern.c_str(), 0, nullptr, &matches) == 0) {
    for (size_t i = 0; i < matches.gl_pathc; ++i) {
      paths.emplace_back(matches.gl_pathv[i]);
    }
  }
  globfree(&matches);
  return paths;  // glob() sorts its matches
}

}  // namespace

std::vector<SlideInput> expand_slide_inputs(const std::vector<std::string>& inputs) {
  std::vector<SlideInput> slides;
  for (const std::string& input : inputs) {
    const fs::path path(input);
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      std::vector<fs::path> files;
      std::error_code list_error;
      for (const auto& entry : fs::directory_iterator(path, list_error)) {
        // A slide-named entry that cannot be resolved (a link loop, a dangling link) stays in
        // the batch, so it fails alone with its own reason instead of stopping the others.
        std::error_code entry_error;
        const bool regular = entry.is_regular_file(entry_error);
        if ((regular || entry_error) && is_slide_file(entry.path())) {
          files.push_back(entry.path());
        }
      }
      if (list_error) {
        throw Error(ErrorCode::kNotFound,
                    "cannot list the folder '" + input + "': " + list_error.message());
      }
      std::sort(files.begin(), files.end());
      for (const fs::path& file : files) {
        slides.push_back({file, "", std::nullopt});
      }
    } else if (path.extension() == ".csv" && fs::is_regular_file(path, ec)) {
      require_readable_file(path);
      const auto listed = read_manifest(path);
      slides.insert(slides.end(), listed.begin(), listed.end());
    } else if (input.find_first_of("*?[") != std::string::npos) {
      const auto matches = glob_paths(input);
      if (matches.empty()) {
        throw Error(ErrorCode::kNotFound, "the pattern '" + input + "' matches no file");
      }
      for (const fs::path& match : matches) {
        slides.push_back({match, "", std::nullopt});
      }
    } else {
      // A plain path is kept even if missing: that slide fails alone, the batch goes on.
      slides.push_back({path, "", std::nullopt});
    }
  }
  if (slides.empty()) {
    throw Error(ErrorCode::kNotFound, "no slides found in the inputs given");
  }
  std::set<std::string> ids;
  for (SlideInput& slide : slides) {
    if (slide.id.empty()) {
      slide.id = slide.path.stem().string();
    }
    // Ids name HDF5 groups and output folders: "" and "." name none, ".." and "/" escape.
    if (slide.id.empty() || slide.id == "." || slide.id == ".." ||
        slide.id.find('/') != std::string::npos) {
      throw Error(ErrorCode::kInvalidConfig,
                  "slide '" + slide.path.string() + "' has no usable id ('" + slide.id +
                      "'): ids name output groups and folders; give it one without '/' in a "
                      "CSV manifest (columns path,id)");
    }
    if (!ids.insert(slide.id).second) {
      throw Error(ErrorCode::kInvalidConfig,
                  "two slides share the id '" + slide.id +
                      "'; give them distinct ids in a CSV manifest (columns path,id)");
    }
  }
  return slides;
}

}  // namespace slidestream
