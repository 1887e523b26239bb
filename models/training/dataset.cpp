// Reading `slidestream extract` patch datasets (slidestream.patches/1) and splitting slides.
#include <H5Cpp.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <mutex>
#include <random>
#include <set>

#include "config_reader.hpp"
#include "slidestream/core.hpp"
#include "slidestream/training.hpp"

namespace fs = std::filesystem;

namespace slidestream {

namespace {

Error corrupt(const fs::path& path, const std::string& what) {
  return Error(ErrorCode::kCorruptData,
               "'" + path.string() + "' is not a readable slidestream patch dataset: " + what +
                   " (write one with 'slidestream extract')");
}

std::string string_attribute(const H5::H5Object& object, const char* name) {
  const H5::Attribute attribute = object.openAttribute(name);
  std::string value;
  attribute.read(attribute.getStrType(), value);
  return value;
}

template <typename T, std::size_t N>
std::array<T, N> array_attribute(const H5::H5Object& object, const char* name,
                                 const H5::PredType& type) {
  std::array<T, N> value{};
  object.openAttribute(name).read(type, value.data());
  return value;
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

DatasetSlide read_slide(const H5::Group& group, const std::string& id) {
  DatasetSlide slide;
  slide.id = id;
  const H5::DataSet coords = group.openDataSet("coords");
  hsize_t dims[2] = {0, 0};
  coords.getSpace().getSimpleExtentDims(dims);
  slide.patches = static_cast<std::size_t>(dims[0]);
  slide.with_labels = true;
  for (int b = 0;; ++b) {
    const std::string name = "branch_" + std::to_string(b);
    if (!group.nameExists(name)) {
      break;
    }
    const H5::Group branch = group.openGroup(name);
    const auto size =
        array_attribute<std::int64_t, 2>(branch, "size_px", H5::PredType::NATIVE_INT64);
    double spacing = 0;
    branch.openAttribute("spacing_um").read(H5::PredType::NATIVE_DOUBLE, &spacing);
    slide.geometry.branches.push_back(BranchGeometry{spacing, Size{size[0], size[1]}});
    slide.with_labels = slide.with_labels && branch.nameExists("labels");
  }
  if (slide.geometry.branches.empty()) {
    throw H5::Exception("read_slide", "slide group has no branch_0");
  }
  double out_spacing = 0;
  group.openAttribute("output_spacing_um").read(H5::PredType::NATIVE_DOUBLE, &out_spacing);
  const auto out_size =
      array_attribute<std::int64_t, 2>(group, "output_size_px", H5::PredType::NATIVE_INT64);
  slide.geometry.output = BranchGeometry{out_spacing, Size{out_size[0], out_size[1]}};
  slide.classes = classes_of(string_attribute(group, "config_yaml"));
  return slide;
}

// Reads row `index` of an N x H x W [x C] uint8 dataset into a Mat of H x W x C.
cv::Mat read_row(const H5::DataSet& dataset, std::size_t index, int channels) {
  const H5::DataSpace space = dataset.getSpace();
  std::array<hsize_t, 4> dims{};
  const int rank = space.getSimpleExtentDims(dims.data());
  cv::Mat row(static_cast<int>(dims[1]), static_cast<int>(dims[2]), CV_8UC(channels));
  std::array<hsize_t, 4> start{index, 0, 0, 0};
  std::array<hsize_t, 4> count{1, dims[1], dims[2], rank == 4 ? dims[3] : 1};
  space.selectHyperslab(H5S_SELECT_SET, count.data(), start.data());
  const H5::DataSpace memory(rank, count.data());
  dataset.read(row.data, H5::PredType::NATIVE_UINT8, memory, space);
  return row;
}

}  // namespace

struct PatchDatasetReader::Impl {
  fs::path path;
  H5::H5File file;
  std::vector<DatasetSlide> slides;
  mutable std::mutex mutex;
};

PatchDatasetReader::PatchDatasetReader(const fs::path& path) : impl_(std::make_unique<Impl>()) {
  require_readable_file(path);
  impl_->path = path;
  H5::Exception::dontPrint();
  try {
    try {
      impl_->file.openFile(path.string(), H5F_ACC_RDONLY);
    } catch (const H5::Exception&) {
      throw corrupt(path, "it is not an HDF5 file, or its HDF5 structure is damaged");
    }
    if (!impl_->file.attrExists("format") ||
        string_attribute(impl_->file, "format") != "slidestream.patches/1") {
      throw corrupt(path, "no 'format' attribute slidestream.patches/1");
    }
    const H5::Group root = impl_->file.openGroup("/");
    for (hsize_t i = 0; i < root.getNumObjs(); ++i) {
      const std::string id = root.getObjnameByIdx(i);
      const H5::Group group = root.openGroup(id);
      std::int64_t complete = 0;
      if (group.attrExists("complete")) {
        group.openAttribute("complete").read(H5::PredType::NATIVE_INT64, &complete);
      }
      if (complete == 1) {
        impl_->slides.push_back(read_slide(group, id));
      }
    }
  } catch (const H5::Exception& error) {
    throw corrupt(path, error.getDetailMsg());
  }
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
  try {
    const H5::Group group = impl_->file.openGroup(info.id);
    std::uint64_t tile = 0;
    {
      const H5::DataSet tiles = group.openDataSet("tile_index");
      H5::DataSpace space = tiles.getSpace();
      const hsize_t start = index;
      const hsize_t one = 1;
      space.selectHyperslab(H5S_SELECT_SET, &one, &start);
      tiles.read(&tile, H5::PredType::NATIVE_UINT64, H5::DataSpace(1, &one), space);
    }
    set.spec.index = tile;
    for (std::size_t b = 0; b < count; ++b) {
      const H5::Group branch = group.openGroup("branch_" + std::to_string(b));
      set.branches.push_back(read_row(branch.openDataSet("pixels"), index, 3));
      set.valid.push_back(read_row(branch.openDataSet("valid"), index, 1));
      if (info.with_labels) {
        set.labels.push_back(read_row(branch.openDataSet("labels"), index, 1));
      }
    }
  } catch (const H5::Exception& error) {
    throw corrupt(impl_->path, "slide '" + info.id + "': " + error.getDetailMsg());
  }
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
