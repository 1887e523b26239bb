#include "slidestream/store.hpp"

#include <array>
#include <cmath>
#include <sstream>
#include <system_error>
#include <utility>

#include "hdf5_util.hpp"
#include "slidestream/core.hpp"

namespace fs = std::filesystem;

namespace slidestream {

namespace {

constexpr const char* kFormat = "slidestream.patches/1";

using detail::h5::check;
using detail::h5::Handle;
using detail::h5::RowDataset;
using detail::h5::write_attribute;

Error invalid(const std::string& message) {
  return Error(ErrorCode::kInvalidArgument, message);
}

Error misuse(const std::string& message) {
  return Error(ErrorCode::kInternal, "PatchDatasetWriter: " + message);
}

// Checks what begin_slide needs before anything is written.
void validate_record(const SlideRecord& record) {
  const std::string& id = record.slide_id;
  if (id.empty() || id == "." || id.find('/') != std::string::npos) {
    throw invalid("slide id '" + id +
                  "' cannot name an HDF5 group: it must be non-empty and contain no '/'");
  }
  const ModelGeometry& geometry = record.geometry;
  if (geometry.branches.empty()) {
    throw invalid("slide '" + id + "': the model geometry has no branches");
  }
  if (record.branch_levels.size() != geometry.branches.size()) {
    throw invalid("slide '" + id + "': " + std::to_string(record.branch_levels.size()) +
                  " branch levels for " + std::to_string(geometry.branches.size()) + " branches");
  }
  for (std::size_t b = 0; b < geometry.branches.size(); ++b) {
    const BranchGeometry& branch = geometry.branches[b];
    if (branch.size_px.width <= 0 || branch.size_px.height <= 0 || !(branch.spacing_um > 0)) {
      throw invalid("slide '" + id + "': branch " + std::to_string(b) +
                    " needs a positive size and spacing");
    }
    const int level = record.branch_levels[b];
    if (level < 0 || static_cast<std::size_t>(level) >= record.info.levels.size()) {
      throw invalid("slide '" + id + "': branch " + std::to_string(b) + " reads level " +
                    std::to_string(level) + " but the slide has " +
                    std::to_string(record.info.levels.size()) + " levels");
    }
  }
  if (!(record.info.spacing.x_um > 0) || !(record.info.spacing.y_um > 0)) {
    throw invalid("slide '" + id + "' has no pixel spacing; the patch dataset records it");
  }
}

void require_raster(const cv::Mat& raster, int type, const Size& size, const std::string& what) {
  if (raster.type() != type || raster.cols != size.width || raster.rows != size.height) {
    throw invalid("append: " + what + " is " + std::to_string(raster.cols) + "x" +
                  std::to_string(raster.rows) + " of type " + std::to_string(raster.type()) +
                  ", expected " + std::to_string(size.width) + "x" + std::to_string(size.height) +
                  " of type " + std::to_string(type));
  }
}

// The row bytes of a raster in HDF5's C order (H x W x C), without copying when continuous.
cv::Mat contiguous(const cv::Mat& raster) {
  return raster.isContinuous() ? raster : raster.clone();
}

// The geometry in words, stored per slide ("geometry") so a resumed file keeps one geometry.
std::string geometry_text(const ModelGeometry& geometry) {
  std::ostringstream text;
  const auto branch = [&](const BranchGeometry& b) {
    text << b.size_px.width << "x" << b.size_px.height << " px at " << b.spacing_um << " um/px";
  };
  for (std::size_t b = 0; b < geometry.branches.size(); ++b) {
    text << (b == 0 ? "branches " : ", ");
    branch(geometry.branches[b]);
  }
  text << "; output ";
  branch(geometry.output);
  return text.str();
}

// The datasets of the slide being written.
struct SlideGroup {
  SlideRecord record;
  Handle group;
  std::optional<RowDataset> coords;
  std::optional<RowDataset> center_l0;
  std::optional<RowDataset> tile_index;
  std::optional<RowDataset> tissue_fraction;
  std::vector<RowDataset> pixels;
  std::vector<RowDataset> valid;
  std::vector<RowDataset> labels;
};

}  // namespace

struct PatchDatasetWriter::Impl {
  Impl(const fs::path& path, const Options& writer_options)
      : options(writer_options), output(path), file_name(path.string()) {}

  void open();
  void scan_existing_slides();
  void write_slide_attributes(const SlideRecord& record, hid_t group) const;
  void write_coords_attributes(const SlideRecord& record, hid_t coords) const;
  void create_branch(SlideGroup& new_slide, std::size_t b) const;
  void validate_append(const PatchSet& patches, const std::vector<cv::Mat>& labels) const;

  Handle group_creation_list() const {
    Handle creation = detail::h5::property_list(H5P_GROUP_CREATE, file_name);
    check(H5Pset_obj_track_times(creation.get(), 0), file_name, "create a group");
    return creation;
  }

  Options options;
  AtomicOutput output;  // declared before `file`: the file closes before the temp is removed
  std::string file_name;
  Handle file;
  std::vector<std::string> existing;
  std::optional<std::string> existing_geometry;  // of the first complete slide, when recorded
  std::optional<SlideGroup> slide;               // declared after `file`: its objects close first
  bool committed = false;
};

void PatchDatasetWriter::Impl::open() {
  detail::h5::silence_automatic_errors();
  if (options.gzip_level < 0 || options.gzip_level > 9) {
    throw invalid("gzip level " + std::to_string(options.gzip_level) + " is outside 0..9");
  }
  if (options.gzip_level > 0 && H5Zfilter_avail(H5Z_FILTER_DEFLATE) <= 0) {
    throw Error(ErrorCode::kOutputError,
                "this HDF5 library has no gzip filter; write with gzip level 0");
  }
  const Handle access = detail::h5::property_list(H5P_FILE_ACCESS, file_name);
  const std::string temp = output.temp_path().string();
  std::error_code ec;
  if (options.resume && fs::exists(output.final_path(), ec)) {
    fs::copy_file(output.final_path(), output.temp_path(), fs::copy_options::overwrite_existing,
                  ec);
    if (ec) {
      throw Error(ErrorCode::kOutputError,
                  "cannot copy '" + file_name + "' to resume it: " + ec.message());
    }
    const hid_t opened = H5Fopen(temp.c_str(), H5F_ACC_RDWR, access.get());
    if (opened < 0) {
      throw Error(ErrorCode::kCorruptData,
                  "'" + file_name +
                      "' is not a readable HDF5 file (damaged, or another format), "
                      "so --resume cannot add to it: give another -o, or delete it to start again");
    }
    file = Handle(opened, H5Fclose);
    const auto format = detail::h5::read_string_attribute(file.get(), "format", file_name);
    if (format != std::string(kFormat)) {
      throw Error(ErrorCode::kOutputError,
                  "'" + file_name + "' is not a " + kFormat + " file (its 'format' attribute is '" +
                      format.value_or("") + "'); choose another output or drop --resume");
    }
    scan_existing_slides();
    return;
  }
  // The root group takes its object-creation settings from the file-creation list.
  const Handle creation = detail::h5::property_list(H5P_FILE_CREATE, file_name);
  check(H5Pset_obj_track_times(creation.get(), 0), file_name, "create the file");
  file = Handle(check(H5Fcreate(temp.c_str(), H5F_ACC_TRUNC, creation.get(), access.get()),
                      file_name, "create the file"),
                H5Fclose);
  write_attribute(file.get(), "format", std::string(kFormat), file_name);
  write_attribute(file.get(), "slidestream_version", std::string(kVersion), file_name);
}

void PatchDatasetWriter::Impl::scan_existing_slides() {
  for (const std::string& name : detail::h5::link_names(file.get(), file_name)) {
    std::optional<std::int64_t> complete;
    {
      const Handle object(check(H5Oopen(file.get(), name.c_str(), H5P_DEFAULT), file_name,
                                "open an existing slide group"),
                          H5Oclose);
      if (H5Iget_type(object.get()) != H5I_GROUP) {
        continue;
      }
      complete = detail::h5::read_int_attribute(object.get(), "complete", file_name);
    }
    if (complete == 1) {
      if (existing.empty()) {
        const Handle group(check(H5Gopen2(file.get(), name.c_str(), H5P_DEFAULT), file_name,
                                 "open an existing slide group"),
                           H5Gclose);
        existing_geometry = detail::h5::read_string_attribute(group.get(), "geometry", file_name);
      }
      existing.push_back(name);
    } else {
      // An unfinished slide is dropped so it can be written again.
      check(H5Ldelete(file.get(), name.c_str(), H5P_DEFAULT), file_name,
            "delete the incomplete slide group");
    }
  }
}

void PatchDatasetWriter::Impl::write_slide_attributes(const SlideRecord& record,
                                                      hid_t group) const {
  const SlideInfo& info = record.info;
  const BranchGeometry& out = record.geometry.output;
  write_attribute(group, "slide_path", info.path.string(), file_name);
  write_attribute(group, "quickhash", info.quickhash, file_name);
  write_attribute(group, "mpp", std::array<double, 2>{info.spacing.x_um, info.spacing.y_um},
                  file_name);
  write_attribute(group, "mpp_source", info.spacing_source, file_name);
  write_attribute(group, "config_yaml", record.config_yaml, file_name);
  write_attribute(group, "complete", std::int64_t{0}, file_name);
  write_attribute(group, "output_spacing_um", out.spacing_um, file_name);
  write_attribute(group, "output_size_px",
                  std::array<std::int64_t, 2>{out.size_px.width, out.size_px.height}, file_name);
  write_attribute(group, "geometry", geometry_text(record.geometry), file_name);
}

void PatchDatasetWriter::Impl::write_coords_attributes(const SlideRecord& record,
                                                       hid_t coords) const {
  const int patch_level = record.branch_levels.front();
  const Level& level = record.info.levels.at(static_cast<std::size_t>(patch_level));
  const BranchGeometry& target = record.geometry.branches.front();
  // CLAM's patch_size: the target FoV in pixels of the level it is read from.
  const double fov_l0_px = target.fov_um_x() / record.info.spacing.x_um;
  const auto patch_size = static_cast<std::int64_t>(std::llround(fov_l0_px / level.downsample));
  const std::array<std::int64_t, 2> level_dim{level.size.width, level.size.height};
  write_attribute(coords, "patch_size", patch_size, file_name);
  write_attribute(coords, "patch_level", std::int64_t{patch_level}, file_name);
  write_attribute(coords, "downsample", std::array<double, 2>{level.downsample, level.downsample},
                  file_name);
  write_attribute(coords, "level_dim", level_dim, file_name);
  write_attribute(coords, "downsampled_level_dim", level_dim, file_name);
  write_attribute(coords, "name", record.slide_id, file_name);
}

void PatchDatasetWriter::Impl::create_branch(SlideGroup& new_slide, std::size_t b) const {
  const std::string name = "branch_" + std::to_string(b);
  const Handle creation = group_creation_list();
  const Handle branch_group(check(H5Gcreate2(new_slide.group.get(), name.c_str(), H5P_DEFAULT,
                                             creation.get(), H5P_DEFAULT),
                                  file_name, "create a branch group"),
                            H5Gclose);
  const BranchGeometry& branch = new_slide.record.geometry.branches[b];
  const hid_t group = branch_group.get();
  write_attribute(group, "spacing_um", branch.spacing_um, file_name);
  write_attribute(group, "size_px",
                  std::array<std::int64_t, 2>{branch.size_px.width, branch.size_px.height},
                  file_name);
  write_attribute(group, "fov_um", std::array<double, 2>{branch.fov_um_x(), branch.fov_um_y()},
                  file_name);
  write_attribute(group, "level", std::int64_t{new_slide.record.branch_levels[b]}, file_name);

  const auto height = static_cast<hsize_t>(branch.size_px.height);
  const auto width = static_cast<hsize_t>(branch.size_px.width);
  const int gzip = options.gzip_level;
  new_slide.pixels.emplace_back(group, "pixels", H5T_STD_U8LE, H5T_NATIVE_UINT8,
                                std::vector<hsize_t>{height, width, 3}, gzip, file_name);
  new_slide.valid.emplace_back(group, "valid", H5T_STD_U8LE, H5T_NATIVE_UINT8,
                               std::vector<hsize_t>{height, width}, gzip, file_name);
  if (new_slide.record.with_labels) {
    new_slide.labels.emplace_back(group, "labels", H5T_STD_U8LE, H5T_NATIVE_UINT8,
                                  std::vector<hsize_t>{height, width}, gzip, file_name);
  }
}

void PatchDatasetWriter::Impl::validate_append(const PatchSet& patches,
                                               const std::vector<cv::Mat>& labels) const {
  const SlideRecord& record = slide->record;
  const std::size_t branch_count = record.geometry.branches.size();
  const auto count_text = [](std::size_t n) { return std::to_string(n); };
  if (patches.branches.size() != branch_count || patches.valid.size() != branch_count ||
      patches.spec.branch_l0.size() != branch_count) {
    throw invalid(
        "append to slide '" + record.slide_id + "': the patch set has " +
        count_text(patches.branches.size()) + " branches, " + count_text(patches.valid.size()) +
        " validity masks and " + count_text(patches.spec.branch_l0.size()) +
        " branch FoVs; the slide's geometry has " + count_text(branch_count) + " branches");
  }
  if (record.with_labels && labels.size() != branch_count) {
    throw invalid("append to slide '" + record.slide_id + "': it records labels, so give " +
                  count_text(branch_count) + " label rasters (got " + count_text(labels.size()) +
                  ")");
  }
  if (!record.with_labels && !labels.empty()) {
    throw invalid("append to slide '" + record.slide_id +
                  "': labels given but the slide was begun without labels (with_labels)");
  }
  for (std::size_t b = 0; b < branch_count; ++b) {
    const Size& size = record.geometry.branches[b].size_px;
    const std::string branch = "branch " + std::to_string(b);
    require_raster(patches.branches[b], CV_8UC3, size, branch + " pixels");
    require_raster(patches.valid[b], CV_8UC1, size, branch + " validity mask");
    if (record.with_labels) {
      require_raster(labels[b], CV_8UC1, size, branch + " labels");
    }
  }
}

PatchDatasetWriter::PatchDatasetWriter(const fs::path& path, const Options& options)
    : impl_(std::make_unique<Impl>(path, options)) {
  impl_->open();
}

PatchDatasetWriter::~PatchDatasetWriter() = default;

std::vector<std::string> PatchDatasetWriter::existing_slides() const {
  return impl_->existing;
}

void PatchDatasetWriter::require_geometry(const ModelGeometry& geometry) const {
  const Impl& impl = *impl_;
  const std::string wanted = geometry_text(geometry);
  if (impl.existing_geometry && *impl.existing_geometry != wanted) {
    throw Error(ErrorCode::kInvalidConfig,
                "'" + impl.file_name + "' holds patches of another geometry (" +
                    *impl.existing_geometry + ") than this run's (" + wanted +
                    "); resume with the config that made it, or write to a new file");
  }
}

void PatchDatasetWriter::begin_slide(const SlideRecord& record) {
  Impl& impl = *impl_;
  if (impl.committed) {
    throw misuse("begin_slide after commit");
  }
  if (impl.slide) {
    throw misuse("begin_slide('" + record.slide_id + "') while slide '" +
                 impl.slide->record.slide_id + "' is open; call end_slide first");
  }
  validate_record(record);
  const hid_t file = impl.file.get();
  const std::string& file_name = impl.file_name;
  if (check(H5Lexists(file, record.slide_id.c_str(), H5P_DEFAULT), file_name,
            "look up the slide group") > 0) {
    throw invalid("slide '" + record.slide_id + "' is already in '" + file_name +
                  "'; slide ids must be unique in a patch dataset");
  }

  SlideGroup slide;
  slide.record = record;
  const Handle creation = impl.group_creation_list();
  slide.group = Handle(
      check(H5Gcreate2(file, record.slide_id.c_str(), H5P_DEFAULT, creation.get(), H5P_DEFAULT),
            file_name, "create the slide group"),
      H5Gclose);
  const hid_t group = slide.group.get();
  impl.write_slide_attributes(record, group);

  const int gzip = impl.options.gzip_level;
  slide.coords.emplace(group, "coords", H5T_STD_I64LE, H5T_NATIVE_INT64, std::vector<hsize_t>{2},
                       gzip, file_name);
  impl.write_coords_attributes(record, slide.coords->get());
  slide.center_l0.emplace(group, "center_l0", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                          std::vector<hsize_t>{2}, gzip, file_name);
  slide.tile_index.emplace(group, "tile_index", H5T_STD_U64LE, H5T_NATIVE_UINT64,
                           std::vector<hsize_t>{}, gzip, file_name);
  slide.tissue_fraction.emplace(group, "tissue_fraction", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT,
                                std::vector<hsize_t>{}, gzip, file_name);
  for (std::size_t b = 0; b < record.geometry.branches.size(); ++b) {
    impl.create_branch(slide, b);
  }
  impl.slide = std::move(slide);
}

void PatchDatasetWriter::append(const PatchSet& patches, const std::vector<cv::Mat>& labels) {
  Impl& impl = *impl_;
  if (!impl.slide) {
    throw misuse("append before begin_slide");
  }
  impl.validate_append(patches, labels);
  SlideGroup& slide = *impl.slide;
  const std::string& file_name = impl.file_name;
  const TileSpec& spec = patches.spec;

  // CLAM's coords: the integer level-0 top-left of the target patch.
  const std::array<std::int64_t, 2> top_left{
      static_cast<std::int64_t>(std::floor(spec.branch_l0.front().x)),
      static_cast<std::int64_t>(std::floor(spec.branch_l0.front().y))};
  const std::array<double, 2> center{spec.output_l0.x + spec.output_l0.width / 2.0,
                                     spec.output_l0.y + spec.output_l0.height / 2.0};
  const std::uint64_t index = spec.index;
  const float tissue_fraction = spec.tissue_fraction;
  slide.coords->append_row(top_left.data(), file_name);
  slide.center_l0->append_row(center.data(), file_name);
  slide.tile_index->append_row(&index, file_name);
  slide.tissue_fraction->append_row(&tissue_fraction, file_name);
  for (std::size_t b = 0; b < slide.pixels.size(); ++b) {
    slide.pixels[b].append_row(contiguous(patches.branches[b]).data, file_name);
    slide.valid[b].append_row(contiguous(patches.valid[b]).data, file_name);
    if (slide.record.with_labels) {
      slide.labels[b].append_row(contiguous(labels[b]).data, file_name);
    }
  }
}

void PatchDatasetWriter::end_slide() {
  Impl& impl = *impl_;
  if (!impl.slide) {
    throw misuse("end_slide without begin_slide");
  }
  write_attribute(impl.slide->group.get(), "complete", std::int64_t{1}, impl.file_name);
  impl.slide.reset();
  check(H5Fflush(impl.file.get(), H5F_SCOPE_LOCAL), impl.file_name, "flush the file");
}

void PatchDatasetWriter::abandon_slide() {
  Impl& impl = *impl_;
  if (!impl.slide) {
    return;
  }
  const std::string id = impl.slide->record.slide_id;
  impl.slide.reset();  // closes the slide's datasets before its link is removed
  check(H5Ldelete(impl.file.get(), id.c_str(), H5P_DEFAULT), impl.file_name,
        "remove the failed slide's group");
}

void PatchDatasetWriter::commit() {
  Impl& impl = *impl_;
  if (impl.committed) {
    throw misuse("commit called twice");
  }
  if (impl.slide) {
    throw misuse("commit while slide '" + impl.slide->record.slide_id +
                 "' is open; call end_slide first");
  }
  check(impl.file.close(), impl.file_name, "close the file");
  impl.output.commit();
  impl.committed = true;
}

}  // namespace slidestream
