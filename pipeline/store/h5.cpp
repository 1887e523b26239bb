// The one HDF5 layer (slidestream/h5.hpp) over the HDF5 C API. The property lists are those
// every slidestream file has been written with: chunked datasets, shuffle before gzip, no object
// timestamps, HDF5's default file access (the earliest file format, so version-1 object headers).
#include "slidestream/h5.hpp"

#include <hdf5.h>

#include <type_traits>
#include <utility>

#include "slidestream/core.hpp"

namespace slidestream::h5 {

static_assert(std::is_same_v<hid_t, std::int64_t>, "h5.hpp holds identifiers as int64");
static_assert(sizeof(hsize_t) == sizeof(std::uint64_t), "Dims converts to hsize_t");

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

[[noreturn]] void fail(const std::string& file, const std::string& what) {
  throw Error(ErrorCode::kOutputError,
              "HDF5 file '" + file + "': cannot " + what + ": " + current_hdf5_message());
}

// Throws (via `fail`) when an HDF5 call returned a negative id or status.
hid_t check(hid_t id, const std::string& file, const std::string& what) {
  if (id < 0) {
    fail(file, what);
  }
  return id;
}

// HDF5 prints its error stack to stderr unless told not to (process-wide, idempotent); our
// messages carry it instead.
void silence_automatic_errors() {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

// A transient identifier (dataspace, datatype, property list, attribute) closed on scope exit.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  Handle(Handle&& other) noexcept : id_(std::exchange(other.id_, -1)), closer_(other.closer_) {}
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = std::exchange(other.id_, -1);
      closer_ = other.closer_;
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() { reset(); }

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset() {
    if (id_ >= 0 && closer_ != nullptr) {
      closer_(id_);
    }
    id_ = -1;
  }

 private:
  hid_t id_ = -1;
  Closer closer_ = nullptr;
};

std::vector<hsize_t> hdims(const Dims& dims) {
  return {dims.begin(), dims.end()};
}

hid_t file_type(Type type) {
  switch (type) {
    case Type::kUInt8:
      return H5T_STD_U8LE;
    case Type::kInt64:
      return H5T_STD_I64LE;
    case Type::kUInt64:
      return H5T_STD_U64LE;
    case Type::kFloat32:
      return H5T_IEEE_F32LE;
    case Type::kFloat64:
      return H5T_IEEE_F64LE;
  }
  return H5T_STD_U8LE;
}

hid_t memory_type(Type type) {
  switch (type) {
    case Type::kUInt8:
      return H5T_NATIVE_UINT8;
    case Type::kInt64:
      return H5T_NATIVE_INT64;
    case Type::kUInt64:
      return H5T_NATIVE_UINT64;
    case Type::kFloat32:
      return H5T_NATIVE_FLOAT;
    case Type::kFloat64:
      return H5T_NATIVE_DOUBLE;
  }
  return H5T_NATIVE_UINT8;
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

// Variable-length UTF-8 string type (what h5py writes for a Python str).
Handle string_type(const std::string& file) {
  Handle type(check(H5Tcopy(H5T_C_S1), file, "create a string type"), H5Tclose);
  check(H5Tset_size(type.get(), H5T_VARIABLE), file, "create a string type");
  check(H5Tset_cset(type.get(), H5T_CSET_UTF8), file, "create a string type");
  return type;
}

// A dataset creation list: chunks, shuffle + gzip when `gzip_level` > 0, no timestamps.
Handle dataset_creation(const std::vector<hsize_t>& chunk, int gzip_level, const std::string& file,
                        const std::string& what) {
  Handle creation = property_list(H5P_DATASET_CREATE, file);
  check(H5Pset_chunk(creation.get(), static_cast<int>(chunk.size()), chunk.data()), file, what);
  if (gzip_level > 0) {
    check(H5Pset_shuffle(creation.get()), file, what);
    check(H5Pset_deflate(creation.get(), static_cast<unsigned>(gzip_level)), file, what);
  }
  // No modification times in the object header: the same calls give the same bytes.
  check(H5Pset_obj_track_times(creation.get(), 0), file, what);
  return creation;
}

// The file dataspace of `dataset` with the block `count` at `start` selected.
Handle block_space(hid_t dataset, const Dims& start, const Dims& count, const std::string& file,
                   const std::string& what) {
  const std::vector<hsize_t> offset = hdims(start);
  const std::vector<hsize_t> size = hdims(count);
  if (offset.size() != size.size()) {
    throw Error(ErrorCode::kInternal,
                "HDF5 file '" + file + "': cannot " + what + ": start and count differ in rank");
  }
  Handle file_space(check(H5Dget_space(dataset), file, what), H5Sclose);
  if (H5Sget_simple_extent_ndims(file_space.get()) != static_cast<int>(size.size())) {
    throw Error(ErrorCode::kInternal, "HDF5 file '" + file + "': cannot " + what +
                                          ": the block's rank is not the dataset's");
  }
  check(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, offset.data(), nullptr, size.data(),
                            nullptr),
        file, what);
  return file_space;
}

// Contiguous memory holding the block `count`.
Handle memory_space(const Dims& count, const std::string& file) {
  const std::vector<hsize_t> size = hdims(count);
  return dataspace(size, size, file);
}

void write_raw(hid_t object, const std::string& name, hid_t type_in_file, hid_t type_in_memory,
               const std::vector<hsize_t>& dims, const void* data, const std::string& file) {
  const std::string what = "write attribute '" + name + "'";
  Handle attribute;
  if (check(H5Aexists(object, name.c_str()), file, what) > 0) {
    attribute = Handle(check(H5Aopen(object, name.c_str(), H5P_DEFAULT), file, what), H5Aclose);
  } else {
    const Handle space = dims.empty() ? Handle(check(H5Screate(H5S_SCALAR), file, what), H5Sclose)
                                      : dataspace(dims, dims, file);
    attribute = Handle(
        check(H5Acreate2(object, name.c_str(), type_in_file, space.get(), H5P_DEFAULT, H5P_DEFAULT),
              file, what),
        H5Aclose);
  }
  check(H5Awrite(attribute.get(), type_in_memory, data), file, what);
}

// Opens an attribute for reading; an invalid handle when it is absent.
Handle open_if_present(hid_t object, const std::string& name, const std::string& file) {
  const std::string what = "read attribute '" + name + "'";
  if (check(H5Aexists(object, name.c_str()), file, what) <= 0) {
    return {};
  }
  return {check(H5Aopen(object, name.c_str(), H5P_DEFAULT), file, what), H5Aclose};
}

// Reads `count` values of an attribute as `type`; false when it is absent.
bool read_numbers(hid_t object, const std::string& name, hid_t type, std::size_t count, void* data,
                  const std::string& file) {
  const Handle attribute = open_if_present(object, name, file);
  if (!attribute.valid()) {
    return false;
  }
  const std::string what = "read attribute '" + name + "'";
  const Handle space(check(H5Aget_space(attribute.get()), file, what), H5Sclose);
  const hssize_t points = H5Sget_simple_extent_npoints(space.get());
  if (points != static_cast<hssize_t>(count)) {
    throw Error(ErrorCode::kOutputError, "HDF5 file '" + file + "': attribute '" + name +
                                             "' holds " + std::to_string(points) +
                                             " values, expected " + std::to_string(count));
  }
  check(H5Aread(attribute.get(), type, data), file, what);
  return true;
}

herr_t collect_link_name(hid_t /*group*/, const char* name, const H5L_info_t* /*info*/,
                         void* names) {
  static_cast<std::vector<std::string>*>(names)->emplace_back(name);
  return 0;
}

}  // namespace

std::string library_version() {
  unsigned major = 0;
  unsigned minor = 0;
  unsigned release = 0;
  H5get_libversion(&major, &minor, &release);
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(release);
}

bool gzip_available() {
  return H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0;
}

// --- Object -------------------------------------------------------------------------------

Object::Object(Object&& other) noexcept
    : id_(std::exchange(other.id_, -1)), kind_(other.kind_), file_(std::move(other.file_)) {}

Object& Object::operator=(Object&& other) noexcept {
  if (this != &other) {
    reset();
    id_ = std::exchange(other.id_, -1);
    kind_ = other.kind_;
    file_ = std::move(other.file_);
  }
  return *this;
}

Object::~Object() {
  reset();
}

void Object::close() {
  if (id_ < 0) {
    return;
  }
  const hid_t id = std::exchange(id_, -1);
  switch (kind_) {
    case Kind::kFile:
      check(H5Fclose(id), file_, "close the file");
      break;
    case Kind::kGroup:
      check(H5Gclose(id), file_, "close a group");
      break;
    case Kind::kDataset:
      check(H5Dclose(id), file_, "close a dataset");
      break;
  }
}

void Object::reset() noexcept {
  try {
    close();
  } catch (const Error&) {
    // Destruction and error paths: the failure that brought us here is the one to report.
  }
}

void Object::set_attribute(const std::string& name, std::int64_t value) {
  write_raw(id_, name, H5T_STD_I64LE, H5T_NATIVE_INT64, {}, &value, file_);
}

void Object::set_attribute(const std::string& name, double value) {
  write_raw(id_, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {}, &value, file_);
}

void Object::set_attribute(const std::string& name, const std::array<std::int64_t, 2>& value) {
  write_raw(id_, name, H5T_STD_I64LE, H5T_NATIVE_INT64, {2}, value.data(), file_);
}

void Object::set_attribute(const std::string& name, const std::array<double, 2>& value) {
  write_raw(id_, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {2}, value.data(), file_);
}

void Object::set_attribute(const std::string& name, const std::string& value) {
  const Handle type = string_type(file_);
  const char* text = value.c_str();
  write_raw(id_, name, type.get(), type.get(), {}, static_cast<const void*>(&text), file_);
}

bool Object::has_attribute(const std::string& name) const {
  return check(H5Aexists(id_, name.c_str()), file_, "look up attribute '" + name + "'") > 0;
}

std::optional<std::int64_t> Object::int_attribute(const std::string& name) const {
  std::int64_t value = 0;
  return read_numbers(id_, name, H5T_NATIVE_INT64, 1, &value, file_) ? std::optional(value)
                                                                     : std::nullopt;
}

std::optional<double> Object::double_attribute(const std::string& name) const {
  double value = 0;
  return read_numbers(id_, name, H5T_NATIVE_DOUBLE, 1, &value, file_) ? std::optional(value)
                                                                      : std::nullopt;
}

std::optional<std::array<std::int64_t, 2>> Object::int_pair_attribute(
    const std::string& name) const {
  std::array<std::int64_t, 2> value{};
  return read_numbers(id_, name, H5T_NATIVE_INT64, 2, value.data(), file_) ? std::optional(value)
                                                                           : std::nullopt;
}

std::optional<std::array<double, 2>> Object::double_pair_attribute(const std::string& name) const {
  std::array<double, 2> value{};
  return read_numbers(id_, name, H5T_NATIVE_DOUBLE, 2, value.data(), file_) ? std::optional(value)
                                                                            : std::nullopt;
}

std::optional<std::string> Object::string_attribute(const std::string& name) const {
  const Handle attribute = open_if_present(id_, name, file_);
  if (!attribute.valid()) {
    return std::nullopt;
  }
  const std::string what = "read attribute '" + name + "'";
  const Handle type(check(H5Aget_type(attribute.get()), file_, what), H5Tclose);
  if (H5Tget_class(type.get()) != H5T_STRING) {
    return std::nullopt;
  }
  if (check(H5Tis_variable_str(type.get()), file_, what) > 0) {
    char* text = nullptr;
    check(H5Aread(attribute.get(), type.get(), static_cast<void*>(&text)), file_, what);
    std::string value = text != nullptr ? std::string(text) : std::string();
    H5free_memory(text);
    return value;
  }
  std::string value(H5Tget_size(type.get()), '\0');
  check(H5Aread(attribute.get(), type.get(), value.data()), file_, what);
  value.resize(value.find('\0') == std::string::npos ? value.size() : value.find('\0'));
  return value;
}

// --- Dataset and Rows ---------------------------------------------------------------------

Dims Dataset::dims() const {
  const Handle space(check(H5Dget_space(id()), file_name(), "read a dataset's shape"), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank > 0 ? rank : 0));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  return {dims.begin(), dims.end()};
}

std::optional<Type> Dataset::type() const {
  const Handle type(check(H5Dget_type(id()), file_name(), "read a dataset's type"), H5Tclose);
  const std::size_t size = H5Tget_size(type.get());
  switch (H5Tget_class(type.get())) {
    case H5T_INTEGER: {
      const bool is_signed = H5Tget_sign(type.get()) == H5T_SGN_2;
      if (size == 1 && !is_signed) {
        return Type::kUInt8;
      }
      if (size == 8) {
        return is_signed ? Type::kInt64 : Type::kUInt64;
      }
      return std::nullopt;
    }
    case H5T_FLOAT:
      if (size == 4 || size == 8) {
        return size == 4 ? Type::kFloat32 : Type::kFloat64;
      }
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

void Dataset::write(Type memory, const Dims& start, const Dims& count, const void* data) {
  const std::string what = "write a block";
  const Handle file_space = block_space(id(), start, count, file_name(), what);
  const Handle memory_block = memory_space(count, file_name());
  check(
      H5Dwrite(id(), memory_type(memory), memory_block.get(), file_space.get(), H5P_DEFAULT, data),
      file_name(), what);
}

void Dataset::read(Type memory, const Dims& start, const Dims& count, void* data) const {
  const std::string what = "read a block";
  const Handle file_space = block_space(id(), start, count, file_name(), what);
  const Handle memory_block = memory_space(count, file_name());
  check(H5Dread(id(), memory_type(memory), memory_block.get(), file_space.get(), H5P_DEFAULT, data),
        file_name(), what);
}

void Dataset::set_extent(const Dims& dims) {
  const std::vector<hsize_t> size = hdims(dims);
  check(H5Dset_extent(id(), size.data()), file_name(), "grow a dataset");
}

void Rows::append(const void* rows, std::uint64_t count) {
  Dims dims{rows_ + count};
  dims.insert(dims.end(), row_shape_.begin(), row_shape_.end());
  dataset_.set_extent(dims);
  Dims start(dims.size(), 0);
  start[0] = rows_;
  dims[0] = count;
  dataset_.write(type_, start, dims, rows);
  rows_ += count;
}

// --- Location -----------------------------------------------------------------------------

Group Location::create_group(const std::string& name) {
  const std::string what = "create group '" + name + "'";
  const Handle creation = property_list(H5P_GROUP_CREATE, file_name());
  check(H5Pset_obj_track_times(creation.get(), 0), file_name(), what);
  return {check(H5Gcreate2(id(), name.c_str(), H5P_DEFAULT, creation.get(), H5P_DEFAULT),
                file_name(), what),
          file_name()};
}

Group Location::open_group(const std::string& name) const {
  return {
      check(H5Gopen2(id(), name.c_str(), H5P_DEFAULT), file_name(), "open group '" + name + "'"),
      file_name()};
}

Dataset Location::open_dataset(const std::string& name) const {
  return {
      check(H5Dopen2(id(), name.c_str(), H5P_DEFAULT), file_name(), "open dataset '" + name + "'"),
      file_name()};
}

Dataset Location::create_dataset(const std::string& name, Type type, const Dims& dims,
                                 const Dims& chunk, int gzip_level) {
  const std::string what = "create dataset '" + name + "'";
  const std::vector<hsize_t> size = hdims(dims);
  const Handle space = dataspace(size, size, file_name());
  const Handle creation = dataset_creation(hdims(chunk), gzip_level, file_name(), what);
  return {check(H5Dcreate2(id(), name.c_str(), file_type(type), space.get(), H5P_DEFAULT,
                           creation.get(), H5P_DEFAULT),
                file_name(), what),
          file_name()};
}

Rows Location::create_rows(const std::string& name, Type type, const Dims& row_shape,
                           std::uint64_t chunk_rows, int gzip_level) {
  const std::string what = "create dataset '" + name + "'";
  std::vector<hsize_t> dims{0};
  std::vector<hsize_t> max_dims{H5S_UNLIMITED};
  std::vector<hsize_t> chunk{chunk_rows};
  for (const std::uint64_t n : row_shape) {
    dims.push_back(n);
    max_dims.push_back(n);
    chunk.push_back(n);
  }
  const Handle space = dataspace(dims, max_dims, file_name());
  const Handle creation = dataset_creation(chunk, gzip_level, file_name(), what);
  Dataset dataset(check(H5Dcreate2(id(), name.c_str(), file_type(type), space.get(), H5P_DEFAULT,
                                   creation.get(), H5P_DEFAULT),
                        file_name(), what),
                  file_name());
  return {std::move(dataset), type, row_shape};
}

bool Location::has_link(const std::string& name) const {
  return check(H5Lexists(id(), name.c_str(), H5P_DEFAULT), file_name(),
               "look up link '" + name + "'") > 0;
}

bool Location::has_group(const std::string& name) const {
  if (!has_link(name)) {
    return false;
  }
  const Handle object(
      check(H5Oopen(id(), name.c_str(), H5P_DEFAULT), file_name(), "open '" + name + "'"),
      H5Oclose);
  return H5Iget_type(object.get()) == H5I_GROUP;
}

std::vector<std::string> Location::link_names() const {
  std::vector<std::string> names;
  check(H5Literate(id(), H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_link_name, &names),
        file_name(), "list the links of a group");
  return names;
}

void Location::remove_link(const std::string& name) {
  check(H5Ldelete(id(), name.c_str(), H5P_DEFAULT), file_name(), "delete '" + name + "'");
}

// --- File ---------------------------------------------------------------------------------

File File::create(const std::filesystem::path& path, const CreateOptions& options) {
  silence_automatic_errors();
  std::string name = options.name.empty() ? path.string() : options.name;
  Handle creation;
  if (!options.root_times) {
    // The root group takes its object-creation settings from the file-creation list.
    creation = property_list(H5P_FILE_CREATE, name);
    check(H5Pset_obj_track_times(creation.get(), 0), name, "create the file");
  }
  const hid_t id = check(H5Fcreate(path.c_str(), H5F_ACC_TRUNC,
                                   creation.valid() ? creation.get() : H5P_DEFAULT, H5P_DEFAULT),
                         name, "create the file");
  return {id, std::move(name)};
}

File File::open(const std::filesystem::path& path, Access access, std::string name) {
  silence_automatic_errors();
  if (name.empty()) {
    name = path.string();
  }
  const unsigned flags = access == Access::kReadWrite ? H5F_ACC_RDWR : H5F_ACC_RDONLY;
  const hid_t id = check(H5Fopen(path.c_str(), flags, H5P_DEFAULT), name, "open the file");
  return {id, std::move(name)};
}

std::optional<File> File::try_open(const std::filesystem::path& path, Access access,
                                   std::string name) {
  silence_automatic_errors();
  if (name.empty()) {
    name = path.string();
  }
  const unsigned flags = access == Access::kReadWrite ? H5F_ACC_RDWR : H5F_ACC_RDONLY;
  const hid_t id = H5Fopen(path.c_str(), flags, H5P_DEFAULT);
  if (id < 0) {
    H5Eclear2(H5E_DEFAULT);
    return std::nullopt;
  }
  return File(id, std::move(name));
}

void File::flush() {
  check(H5Fflush(id(), H5F_SCOPE_LOCAL), file_name(), "flush the file");
}

}  // namespace slidestream::h5
