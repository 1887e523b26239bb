#include "hdf5_util.hpp"

#include <utility>

#include "slidestream/core.hpp"

namespace slidestream::detail::h5 {

namespace {

// Collects the error stack from the innermost function (the cause) outwards (the API call).
herr_t collect_error(unsigned /*depth*/, const H5E_error2_t* entry, void* messages) {
  auto& lines = *static_cast<std::vector<std::string>*>(messages);
  if (entry != nullptr && entry->desc != nullptr && entry->desc[0] != '\0') {
    lines.emplace_back(entry->desc);
  }
  return 0;
}

std::string current_hdf5_message() {
  std::vector<std::string> lines;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, collect_error, &lines);
  H5Eclear2(H5E_DEFAULT);
  if (lines.empty()) {
    return "unknown HDF5 error";
  }
  // The cause, then the API call's own summary when it differs.
  std::string message = lines.front();
  if (lines.size() > 1 && lines.back() != lines.front()) {
    message += " (" + lines.back() + ")";
  }
  return message;
}

void write_raw(hid_t object, const char* name, hid_t file_type, hid_t memory_type,
               const std::vector<hsize_t>& dims, const void* data, const std::string& file) {
  const std::string what = std::string("write attribute '") + name + "'";
  Handle attribute;
  if (check(H5Aexists(object, name), file, what.c_str()) > 0) {
    attribute = Handle(check(H5Aopen(object, name, H5P_DEFAULT), file, what.c_str()), H5Aclose);
  } else {
    const Handle space = dims.empty()
                             ? Handle(check(H5Screate(H5S_SCALAR), file, what.c_str()), H5Sclose)
                             : dataspace(dims, dims, file);
    attribute =
        Handle(check(H5Acreate2(object, name, file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT),
                     file, what.c_str()),
               H5Aclose);
  }
  check(H5Awrite(attribute.get(), memory_type, data), file, what.c_str());
}

// Opens an attribute for reading; an invalid handle when it is absent.
Handle open_if_present(hid_t object, const char* name, const std::string& file) {
  const std::string what = std::string("read attribute '") + name + "'";
  if (check(H5Aexists(object, name), file, what.c_str()) <= 0) {
    return {};
  }
  return {check(H5Aopen(object, name, H5P_DEFAULT), file, what.c_str()), H5Aclose};
}

herr_t collect_link_name(hid_t /*group*/, const char* name, const H5L_info_t* /*info*/,
                         void* names) {
  static_cast<std::vector<std::string>*>(names)->emplace_back(name);
  return 0;
}

}  // namespace

void silence_automatic_errors() {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

void fail(const std::string& file, const std::string& what) {
  throw Error(ErrorCode::kOutputError,
              "HDF5 file '" + file + "': cannot " + what + ": " + current_hdf5_message());
}

Handle::Handle(Handle&& other) noexcept
    : id_(std::exchange(other.id_, -1)), closer_(other.closer_) {}

Handle& Handle::operator=(Handle&& other) noexcept {
  if (this != &other) {
    reset();
    id_ = std::exchange(other.id_, -1);
    closer_ = other.closer_;
  }
  return *this;
}

herr_t Handle::close() {
  herr_t status = 0;
  // The analyzer loses id_'s initializer through structured bindings of moved handles.
  // NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult)
  if (id_ >= 0 && closer_ != nullptr) {
    status = closer_(id_);
  }
  id_ = -1;
  return status;
}

Handle property_list(hid_t property_class, const std::string& file) {
  return {check(H5Pcreate(property_class), file, "create a property list"), H5Pclose};
}

Handle dataspace(const std::vector<hsize_t>& dims, const std::vector<hsize_t>& max_dims,
                 const std::string& file) {
  return {check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), max_dims.data()), file,
                "create a dataspace"),
          H5Sclose};
}

Handle string_type(const std::string& file) {
  Handle type(check(H5Tcopy(H5T_C_S1), file, "create a string type"), H5Tclose);
  check(H5Tset_size(type.get(), H5T_VARIABLE), file, "create a string type");
  check(H5Tset_cset(type.get(), H5T_CSET_UTF8), file, "create a string type");
  return type;
}

void write_attribute(hid_t object, const char* name, std::int64_t value, const std::string& file) {
  write_raw(object, name, H5T_STD_I64LE, H5T_NATIVE_INT64, {}, &value, file);
}

void write_attribute(hid_t object, const char* name, double value, const std::string& file) {
  write_raw(object, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {}, &value, file);
}

void write_attribute(hid_t object, const char* name, const std::array<std::int64_t, 2>& value,
                     const std::string& file) {
  write_raw(object, name, H5T_STD_I64LE, H5T_NATIVE_INT64, {2}, value.data(), file);
}

void write_attribute(hid_t object, const char* name, const std::array<double, 2>& value,
                     const std::string& file) {
  write_raw(object, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {2}, value.data(), file);
}

void write_attribute(hid_t object, const char* name, const std::string& value,
                     const std::string& file) {
  const Handle type = string_type(file);
  const char* text = value.c_str();
  write_raw(object, name, type.get(), type.get(), {}, static_cast<const void*>(&text), file);
}

std::optional<std::int64_t> read_int_attribute(hid_t object, const char* name,
                                               const std::string& file) {
  const Handle attribute = open_if_present(object, name, file);
  if (!attribute.valid()) {
    return std::nullopt;
  }
  std::int64_t value = 0;
  check(H5Aread(attribute.get(), H5T_NATIVE_INT64, &value), file,
        (std::string("read attribute '") + name + "'").c_str());
  return value;
}

std::optional<std::string> read_string_attribute(hid_t object, const char* name,
                                                 const std::string& file) {
  const Handle attribute = open_if_present(object, name, file);
  if (!attribute.valid()) {
    return std::nullopt;
  }
  const std::string what = std::string("read attribute '") + name + "'";
  const Handle type(check(H5Aget_type(attribute.get()), file, what.c_str()), H5Tclose);
  if (H5Tget_class(type.get()) != H5T_STRING) {
    return std::nullopt;
  }
  if (check(H5Tis_variable_str(type.get()), file, what.c_str()) > 0) {
    char* text = nullptr;
    check(H5Aread(attribute.get(), type.get(), static_cast<void*>(&text)), file, what.c_str());
    std::string value = text != nullptr ? std::string(text) : std::string();
    H5free_memory(text);
    return value;
  }
  std::string value(H5Tget_size(type.get()), '\0');
  check(H5Aread(attribute.get(), type.get(), value.data()), file, what.c_str());
  value.resize(value.find('\0') == std::string::npos ? value.size() : value.find('\0'));
  return value;
}

std::vector<std::string> link_names(hid_t group, const std::string& file) {
  std::vector<std::string> names;
  check(H5Literate(group, H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_link_name, &names), file,
        "list the slide groups");
  return names;
}

RowDataset::RowDataset(hid_t parent, const char* name, hid_t file_type, hid_t memory_type,
                       std::vector<hsize_t> row_shape, int gzip_level, const std::string& file)
    : memory_type_(memory_type), row_shape_(std::move(row_shape)) {
  const std::string what = std::string("create dataset '") + name + "'";
  std::vector<hsize_t> dims{0};
  dims.insert(dims.end(), row_shape_.begin(), row_shape_.end());
  std::vector<hsize_t> max_dims{H5S_UNLIMITED};
  max_dims.insert(max_dims.end(), row_shape_.begin(), row_shape_.end());
  std::vector<hsize_t> chunk{1};
  chunk.insert(chunk.end(), row_shape_.begin(), row_shape_.end());

  const Handle space = dataspace(dims, max_dims, file);
  const Handle creation = property_list(H5P_DATASET_CREATE, file);
  check(H5Pset_chunk(creation.get(), static_cast<int>(chunk.size()), chunk.data()), file,
        what.c_str());
  if (gzip_level > 0) {
    check(H5Pset_shuffle(creation.get()), file, what.c_str());
    check(H5Pset_deflate(creation.get(), static_cast<unsigned>(gzip_level)), file, what.c_str());
  }
  // No modification times in the object header: the same calls give the same bytes.
  check(H5Pset_obj_track_times(creation.get(), 0), file, what.c_str());
  dataset_ = Handle(check(H5Dcreate2(parent, name, file_type, space.get(), H5P_DEFAULT,
                                     creation.get(), H5P_DEFAULT),
                          file, what.c_str()),
                    H5Dclose);
}

void RowDataset::append_row(const void* row, const std::string& file) {
  const char* what = "append a patch";
  std::vector<hsize_t> dims{rows_ + 1};
  dims.insert(dims.end(), row_shape_.begin(), row_shape_.end());
  check(H5Dset_extent(dataset_.get(), dims.data()), file, what);

  std::vector<hsize_t> start(dims.size(), 0);
  start[0] = rows_;
  std::vector<hsize_t> count{1};
  count.insert(count.end(), row_shape_.begin(), row_shape_.end());
  const Handle file_space(check(H5Dget_space(dataset_.get()), file, what), H5Sclose);
  check(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(),
                            nullptr),
        file, what);
  const Handle memory_space = dataspace(count, count, file);
  check(H5Dwrite(dataset_.get(), memory_type_, memory_space.get(), file_space.get(), H5P_DEFAULT,
                 row),
        file, what);
  ++rows_;
}

Handle create_chunked(hid_t parent, const char* name, hid_t file_type,
                      const std::vector<hsize_t>& dims, const std::vector<hsize_t>& chunk,
                      int gzip_level, const std::string& file) {
  const std::string what = std::string("create dataset '") + name + "'";
  const Handle space = dataspace(dims, dims, file);
  const Handle creation = property_list(H5P_DATASET_CREATE, file);
  check(H5Pset_chunk(creation.get(), static_cast<int>(chunk.size()), chunk.data()), file,
        what.c_str());
  if (gzip_level > 0) {
    check(H5Pset_shuffle(creation.get()), file, what.c_str());
    check(H5Pset_deflate(creation.get(), static_cast<unsigned>(gzip_level)), file, what.c_str());
  }
  check(H5Pset_obj_track_times(creation.get(), 0), file, what.c_str());
  return {check(H5Dcreate2(parent, name, file_type, space.get(), H5P_DEFAULT, creation.get(),
                           H5P_DEFAULT),
                file, what.c_str()),
          H5Dclose};
}

namespace {

// The file and memory dataspaces of a block of `dataset`.
std::pair<Handle, Handle> block_spaces(hid_t dataset, const std::vector<hsize_t>& start,
                                       const std::vector<hsize_t>& count, const std::string& file,
                                       const char* what) {
  Handle file_space(check(H5Dget_space(dataset), file, what), H5Sclose);
  check(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(),
                            nullptr),
        file, what);
  return {std::move(file_space), dataspace(count, count, file)};
}

}  // namespace

void write_block(hid_t dataset, hid_t memory_type, const std::vector<hsize_t>& start,
                 const std::vector<hsize_t>& count, const void* data, const std::string& file) {
  const char* what = "write a block";
  const auto [file_space, memory_space] = block_spaces(dataset, start, count, file, what);
  check(H5Dwrite(dataset, memory_type, memory_space.get(), file_space.get(), H5P_DEFAULT, data),
        file, what);
}

void read_block(hid_t dataset, hid_t memory_type, const std::vector<hsize_t>& start,
                const std::vector<hsize_t>& count, void* data, const std::string& file) {
  const char* what = "read a block";
  const auto [file_space, memory_space] = block_spaces(dataset, start, count, file, what);
  check(H5Dread(dataset, memory_type, memory_space.get(), file_space.get(), H5P_DEFAULT, data),
        file, what);
}

std::vector<hsize_t> dataset_dims(hid_t dataset, const std::string& file) {
  const Handle space(check(H5Dget_space(dataset), file, "read a dataset's shape"), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank > 0 ? rank : 0));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  return dims;
}

}  // namespace slidestream::detail::h5
