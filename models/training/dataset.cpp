// Reading `slidestream extract` patch datasets (slidestream.patches/1) and splitting slides.
#include "slidestream/training/dataset.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <random>
#include <set>

#include "config_reader.hpp"
#include "slidestream/core.hpp"
#include "slidestream/h5.hpp"
#include "slidestream/training/config.hpp"

namespace fs = std::filesystem;

namespace slidestream {

namespace {

Error corrupt(const fs::path& path, const std::string& what) {
  return Error(ErrorCode::kCorruptData,
               "'" + path.string() + "' is not a readable slidestream patch dataset: " + what +
                   " (write one with 'slidestream extract')");
}

// Something the format requires that the file lacks.
struct Unreadable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <typename T>
T required(std::optional<T> value, const std::string& object, const char* name) {
  if (!value) {
    throw Unreadable(object + " has no attribute '" + name + "'");
  }
  return *std::move(value);
}

// Runs `read`, turning what it lacks and the HDF5 layer's failures (kOutputError, naming the
// file and HDF5's reason) into kCorruptData: a dataset that opened but cannot be read is a
// damaged input, not an output problem.
template <typename Read>
void read_or_corrupt(const fs::path& path, const std::string& prefix, Read&& read) {
  try {
    read();
  } catch (const Unreadable& error) {
    throw corrupt(path, prefix + error.what());
  } catch (const Error& error) {
    if (error.code() != ErrorCode::kOutputError) {
      throw;
    }
    throw corrupt(path, prefix + error.what());
  }
}

// The extraction config's classes (labels.classes), so train can check them against its own.
// The config reader reads them as extract did (a recorded config is an extract config).
std::vector<LabelClass> classes_of(const std::string& config_yaml) {
  try {
    const config::Node root(YAML::Load(config_yaml), "");
    return config::label_classes(root["labels"]["classes"], 0, 255, "must be 0..255");
  } catch (const YAML::Exception&) {
    // An old or hand-made file without a parsable config: nothing to check against.
  } catch (const Error&) {
    // Its labels section is not one extract writes: nothing to check against either.
  }
  return {};
}

DatasetSlide read_slide(const h5::Group& group, const std::string& id) {
  DatasetSlide slide;
  slide.id = id;
  slide.patches = static_cast<std::size_t>(group.open_dataset("coords").dims().at(0));
  slide.with_labels = true;
  const std::string slide_group = "slide group '" + id + "'";
  for (int b = 0;; ++b) {
    const std::string name = "branch_" + std::to_string(b);
    if (!group.has_link(name)) {
      break;
    }
    const h5::Group branch = group.open_group(name);
    std::string where = slide_group;
    where += " " + name;
    const auto size = required(branch.int_pair_attribute("size_px"), where, "size_px");
    const double spacing = required(branch.double_attribute("spacing_um"), where, "spacing_um");
    slide.geometry.branches.push_back(BranchGeometry{spacing, Size{size[0], size[1]}});
    slide.with_labels = slide.with_labels && branch.has_link("labels");
  }
  if (slide.geometry.branches.empty()) {
    throw Unreadable(slide_group + " has no branch_0");
  }
  const double out_spacing =
      required(group.double_attribute("output_spacing_um"), slide_group, "output_spacing_um");
  const auto out_size =
      required(group.int_pair_attribute("output_size_px"), slide_group, "output_size_px");
  slide.geometry.output = BranchGeometry{out_spacing, Size{out_size[0], out_size[1]}};
  slide.classes =
      classes_of(required(group.string_attribute("config_yaml"), slide_group, "config_yaml"));
  return slide;
}

// Reads row `index` of an N x H x W [x C] uint8 dataset into a Mat of H x W x C.
cv::Mat read_row(const h5::Dataset& dataset, std::size_t index, int channels) {
  const h5::Dims dims = dataset.dims();
  if (dims.size() != 3 && dims.size() != 4) {
    throw Unreadable("a patch dataset of rank " + std::to_string(dims.size()));
  }
  cv::Mat row(static_cast<int>(dims[1]), static_cast<int>(dims[2]), CV_8UC(channels));
  h5::Dims start(dims.size(), 0);
  start[0] = index;
  h5::Dims count = dims;
  count[0] = 1;
  dataset.read(h5::Type::kUInt8, start, count, row.data);
  return row;
}

}  // namespace

struct PatchDatasetReader::Impl {
  fs::path path;
  h5::File file;
  std::vector<DatasetSlide> slides;
  mutable std::mutex mutex;
};

PatchDatasetReader::PatchDatasetReader(const fs::path& path) : impl_(std::make_unique<Impl>()) {
  require_readable_file(path);
  impl_->path = path;
  auto file = h5::File::try_open(path, h5::File::Access::kReadOnly);
  if (!file) {
    throw corrupt(path, "it is not an HDF5 file, or its HDF5 structure is damaged");
  }
  impl_->file = std::move(*file);
  read_or_corrupt(path, "", [&] {
    if (impl_->file.string_attribute("format") != std::string("slidestream.patches/1")) {
      throw Unreadable("no 'format' attribute slidestream.patches/1");
    }
    for (const std::string& id : impl_->file.link_names()) {
      const h5::Group group = impl_->file.open_group(id);
      if (group.int_attribute("complete").value_or(0) == 1) {
        impl_->slides.push_back(read_slide(group, id));
      }
    }
  });
}

PatchDatasetReader::~PatchDatasetReader() = default;

const fs::path& PatchDatasetReader::path() const {
  return impl_->path;
}

const std::vector<DatasetSlide>& PatchDatasetReader::slides() const {
  return impl_->slides;
}

PatchSet PatchDatasetReader::read(std::size_t slide, std::size_t index,
                                  std::size_t branches) const {
  if (slide >= impl_->slides.size() || index >= impl_->slides[slide].patches) {
    throw Error(ErrorCode::kInvalidArgument, "'" + impl_->path.string() + "': patch " +
                                                 std::to_string(index) + " of slide " +
                                                 std::to_string(slide) + " does not exist");
  }
  const DatasetSlide& info = impl_->slides[slide];
  const std::size_t count = branches == 0 ? info.geometry.branches.size()
                                          : std::min(branches, info.geometry.branches.size());
  const std::lock_guard<std::mutex> lock(impl_->mutex);
  PatchSet set;
  read_or_corrupt(impl_->path, "slide '" + info.id + "': ", [&] {
    const h5::Group group = impl_->file.open_group(info.id);
    std::uint64_t tile = 0;
    group.open_dataset("tile_index").read(h5::Type::kUInt64, {index}, {1}, &tile);
    set.spec.index = tile;
    for (std::size_t b = 0; b < count; ++b) {
      const h5::Group branch = group.open_group("branch_" + std::to_string(b));
      set.branches.push_back(read_row(branch.open_dataset("pixels"), index, 3));
      set.valid.push_back(read_row(branch.open_dataset("valid"), index, 1));
      if (info.with_labels) {
        set.labels.push_back(read_row(branch.open_dataset("labels"), index, 1));
      }
    }
  });
  return set;
}

SlideSplit split_slides(const std::vector<std::string>& slide_ids, const ValidationSplit& split,
                        std::uint64_t seed) {
  SlideSplit result;
  std::set<std::string> held_out(split.slide_ids.begin(), split.slide_ids.end());
  if (!held_out.empty()) {
    for (const std::string& id : held_out) {
      if (std::find(slide_ids.begin(), slide_ids.end(), id) == slide_ids.end()) {
        throw Error(ErrorCode::kInvalidConfig,
                    "config key 'training.validation.slide_ids': slide '" + id +
                        "' is not in the training data; use ids of its slide groups");
      }
    }
  } else if (split.fraction > 0 && slide_ids.size() >= 2) {
    auto count = static_cast<std::size_t>(
        std::llround(split.fraction * static_cast<double>(slide_ids.size())));
    count = std::clamp<std::size_t>(count, 1, slide_ids.size() - 1);
    std::vector<std::string> shuffled = slide_ids;
    std::sort(shuffled.begin(), shuffled.end());
    std::mt19937_64 random(seed);
    std::shuffle(shuffled.begin(), shuffled.end(), random);
    held_out.insert(shuffled.begin(), shuffled.begin() + static_cast<std::ptrdiff_t>(count));
  }
  for (const std::string& id : slide_ids) {
    (held_out.count(id) ? result.validation : result.train).push_back(id);
  }
  return result;
}

}  // namespace slidestream
