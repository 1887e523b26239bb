#include "slidestream/store.hpp"

#include <array>
#include <cmath>
#include <sstream>
#include <system_error>
#include <utility>

#include "slidestream/core.hpp"
#include "slidestream/h5.hpp"

namespace fs = std::filesystem;

namespace slidestream {

namespace {

constexpr const char* kFormat = "slidestream.patches/1";

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
  h5::Group group;
  std::optional<h5::Rows> coords;
  std::optional<h5::Rows> center_l0;
  std::optional<h5::Rows> tile_index;
  std::optional<h5::Rows> tissue_fraction;
  std::vector<h5::Rows> pixels;
  std::vector<h5::Rows> valid;
  std::vector<h5::Rows> labels;
};

}  // namespace

struct PatchDatasetWriter::Impl {
  Impl(const fs::path& path, const Options& writer_options)
      : options(writer_options), output(path), file_name(path.string()) {}

  void open();
  void scan_existing_slides();
  void validate_append(const PatchSet& patches, const std::vector<cv::Mat>& labels) const;

  Options options;
  AtomicOutput output;  // declared before `file`: the file closes before the temp is removed
  std::string file_name;
  h5::File file;
  std::vector<std::string> existing;
  std::optional<std::string> existing_geometry;  // of the first complete slide, when recorded
  std::optional<SlideGroup> slide;               // declared after `file`: its objects close first
  bool committed = false;
};

void PatchDatasetWriter::Impl::open() {
  if (options.gzip_level < 0 || options.gzip_level > 9) {
    throw invalid("gzip level " + std::to_string(options.gzip_level) + " is outside 0..9");
  }
  if (options.gzip_level > 0 && !h5::gzip_available()) {
    throw Error(ErrorCode::kOutputError,
                "this HDF5 library has no gzip filter; write with gzip level 0");
  }
  std::error_code ec;
  if (options.resume && fs::exists(output.final_path(), ec)) {
    fs::copy_file(output.final_path(), output.temp_path(), fs::copy_options::overwrite_existing,
                  ec);
    if (ec) {
      throw Error(ErrorCode::kOutputError,
                  "cannot copy '" + file_name + "' to resume it: " + ec.message());
    }
    auto opened = h5::File::try_open(output.temp_path(), h5::File::Access::kReadWrite, file_name);
    if (!opened) {
      throw Error(ErrorCode::kCorruptData,
                  "'" + file_name +
                      "' is not a readable HDF5 file (damaged, or another format), "
                      "so --resume cannot add to it: give another -o, or delete it to start again");
    }
    file = std::move(*opened);
    const auto format = file.string_attribute("format");
    if (format != std::string(kFormat)) {
      throw Error(ErrorCode::kOutputError,
                  "'" + file_name + "' is not a " + kFormat + " file (its 'format' attribute is '" +
                      format.value_or("") + "'); choose another output or drop --resume");
    }
    scan_existing_slides();
    return;
  }
  h5::File::CreateOptions creation;
  creation.name = file_name;
  creation.root_times = false;
  file = h5::File::create(output.temp_path(), creation);
  file.set_attribute("format", std::string(kFormat));
  file.set_attribute("slidestream_version", std::string(kVersion));
}

void PatchDatasetWriter::Impl::scan_existing_slides() {
  for (const std::string& name : file.link_names()) {
    if (!file.has_group(name)) {
      continue;
    }
    h5::Group group = file.open_group(name);
    if (group.int_attribute("complete") == 1) {
      if (existing.empty()) {
        existing_geometry = group.string_attribute("geometry");
      }
      existing.push_back(name);
    } else {
      // An unfinished slide is dropped so it can be written again (closed first, as the
      // datasets of an abandoned slide are).
      group.reset();
      file.remove_link(name);
    }
  }
}

namespace {

void write_slide_attributes(const SlideRecord& record, h5::Group& group) {
  const SlideInfo& info = record.info;
  const BranchGeometry& out = record.geometry.output;
  group.set_attribute("slide_path", info.path.string());
  group.set_attribute("quickhash", info.quickhash);
  group.set_attribute("mpp", std::array<double, 2>{info.spacing.x_um, info.spacing.y_um});
  group.set_attribute("mpp_source", spacing_source_name(info.spacing_source));
  group.set_attribute("config_yaml", record.config_yaml);
  group.set_attribute("complete", std::int64_t{0});
  group.set_attribute("output_spacing_um", out.spacing_um);
  group.set_attribute("output_size_px",
                      std::array<std::int64_t, 2>{out.size_px.width, out.size_px.height});
  group.set_attribute("geometry", geometry_text(record.geometry));
}

// One patch per chunk, so a reader reads one patch without decompressing its neighbours.
h5::Rows create_patch_rows(h5::Location& parent, const char* name, h5::Type type,
                           const h5::Dims& row_shape, int gzip_level) {
  return parent.create_rows(name, type, row_shape, 1, gzip_level);
}

void create_branch(SlideGroup& new_slide, std::size_t b, int gzip) {
  h5::Group group = new_slide.group.create_group("branch_" + std::to_string(b));
  const BranchGeometry& branch = new_slide.record.geometry.branches[b];
  group.set_attribute("spacing_um", branch.spacing_um);
  group.set_attribute("size_px",
                      std::array<std::int64_t, 2>{branch.size_px.width, branch.size_px.height});
  group.set_attribute("fov_um", std::array<double, 2>{branch.fov_um_x(), branch.fov_um_y()});
  group.set_attribute("level", std::int64_t{new_slide.record.branch_levels[b]});

  const auto height = static_cast<std::uint64_t>(branch.size_px.height);
  const auto width = static_cast<std::uint64_t>(branch.size_px.width);
  const h5::Type u8 = h5::Type::kUInt8;
  new_slide.pixels.push_back(create_patch_rows(group, "pixels", u8, {height, width, 3}, gzip));
  new_slide.valid.push_back(create_patch_rows(group, "valid", u8, {height, width}, gzip));
  if (new_slide.record.with_labels) {
    new_slide.labels.push_back(create_patch_rows(group, "labels", u8, {height, width}, gzip));
  }
}

}  // namespace

void write_clam_coords_attributes(h5::Dataset& coords, const SlideInfo& info, int patch_level,
                                  const BranchGeometry& target, const std::string& slide_id) {
  const Level& level = info.levels.at(static_cast<std::size_t>(patch_level));
  // CLAM's patch_size: the target FoV in pixels of the level it is read from.
  const double fov_l0_px = target.fov_um_x() / info.spacing.x_um;
  const auto patch_size = static_cast<std::int64_t>(std::llround(fov_l0_px / level.downsample));
  const std::array<std::int64_t, 2> level_dim{level.size.width, level.size.height};
  coords.set_attribute("patch_size", patch_size);
  coords.set_attribute("patch_level", std::int64_t{patch_level});
  coords.set_attribute("downsample", std::array<double, 2>{level.downsample, level.downsample});
  coords.set_attribute("level_dim", level_dim);
  coords.set_attribute("downsampled_level_dim", level_dim);
  coords.set_attribute("name", slide_id);
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
  if (impl.file.has_link(record.slide_id)) {
    throw invalid("slide '" + record.slide_id + "' is already in '" + impl.file_name +
                  "'; slide ids must be unique in a patch dataset");
  }

  SlideGroup slide;
  slide.record = record;
  slide.group = impl.file.create_group(record.slide_id);
  h5::Group& group = slide.group;
  write_slide_attributes(record, group);

  const int gzip = impl.options.gzip_level;
  slide.coords = create_patch_rows(group, "coords", h5::Type::kInt64, {2}, gzip);
  write_clam_coords_attributes(slide.coords->dataset(), record.info, record.branch_levels.front(),
                               record.geometry.branches.front(), record.slide_id);
  slide.center_l0 = create_patch_rows(group, "center_l0", h5::Type::kFloat64, {2}, gzip);
  slide.tile_index = create_patch_rows(group, "tile_index", h5::Type::kUInt64, {}, gzip);
  slide.tissue_fraction = create_patch_rows(group, "tissue_fraction", h5::Type::kFloat32, {}, gzip);
  for (std::size_t b = 0; b < record.geometry.branches.size(); ++b) {
    create_branch(slide, b, gzip);
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
  const TileSpec& spec = patches.spec;

  // CLAM's coords: the integer level-0 top-left of the target patch.
  const std::array<std::int64_t, 2> top_left{
      static_cast<std::int64_t>(std::floor(spec.branch_l0.front().x)),
      static_cast<std::int64_t>(std::floor(spec.branch_l0.front().y))};
  const std::array<double, 2> center{spec.output_l0.x + spec.output_l0.width / 2.0,
                                     spec.output_l0.y + spec.output_l0.height / 2.0};
  const std::uint64_t index = spec.index;
  const float tissue_fraction = spec.tissue_fraction;
  slide.coords->append(top_left.data());
  slide.center_l0->append(center.data());
  slide.tile_index->append(&index);
  slide.tissue_fraction->append(&tissue_fraction);
  for (std::size_t b = 0; b < slide.pixels.size(); ++b) {
    slide.pixels[b].append(contiguous(patches.branches[b]).data);
    slide.valid[b].append(contiguous(patches.valid[b]).data);
    if (slide.record.with_labels) {
      slide.labels[b].append(contiguous(labels[b]).data);
    }
  }
}

void PatchDatasetWriter::end_slide() {
  Impl& impl = *impl_;
  if (!impl.slide) {
    throw misuse("end_slide without begin_slide");
  }
  impl.slide->group.set_attribute("complete", std::int64_t{1});
  impl.slide.reset();
  impl.file.flush();
}

void PatchDatasetWriter::abandon_slide() {
  Impl& impl = *impl_;
  if (!impl.slide) {
    return;
  }
  const std::string id = impl.slide->record.slide_id;
  impl.slide.reset();  // closes the slide's datasets before its link is removed
  impl.file.remove_link(id);
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
  impl.file.close();
  impl.output.commit();
  impl.committed = true;
}

}  // namespace slidestream
