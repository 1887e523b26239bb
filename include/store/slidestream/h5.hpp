// slidestream store: the one HDF5 layer of the library (RAII files, groups, datasets and
// attributes over the HDF5 C API). Every module that reads or writes HDF5 (the patch datasets,
// features, the prediction journal and cache, training) goes through it, so the rules that keep
// outputs reproducible live in one place: no object timestamps, the same chunking and filters,
// and one error style. No HDF5 header leaks out: callers neither include HDF5's headers nor link
// it.
//
// Every failure throws Error(kOutputError, "HDF5 file '<name>': cannot <what>: <HDF5's message>");
// HDF5's own printing of its error stack is switched off. Not thread-safe (neither is the serial
// HDF5 build): one thread at a time per process.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace slidestream::h5 {

/// Element types, stored little-endian in the file (what h5py and CLAM read) and native in memory.
enum class Type { kUInt8, kInt64, kUInt64, kFloat32, kFloat64 };

/// A shape, a position or a block size, one entry per dimension (slowest first, C order).
using Dims = std::vector<std::uint64_t>;

/// "1.10.8": the HDF5 library in use (for reports).
std::string library_version();
/// Whether this HDF5 has the gzip (deflate) filter.
bool gzip_available();

/// An open HDF5 object (a file, group or dataset) with its attributes; closed on destruction.
class Object {
 public:
  Object() = default;
  Object(Object&& other) noexcept;
  Object& operator=(Object&& other) noexcept;
  Object(const Object&) = delete;
  Object& operator=(const Object&) = delete;
  ~Object();

  bool valid() const noexcept { return id_ >= 0; }
  /// The name messages give the file (its path unless the creator named it otherwise).
  const std::string& file_name() const noexcept { return file_; }
  /// Closes now and throws when HDF5 fails (for a file: its last writes); destruction ignores it.
  /// A file closed while its groups or datasets are open stays open until they close.
  void close();
  /// Closes now, ignoring failures.
  void reset() noexcept;

  /// Creates the attribute, or overwrites it when it exists with the same type and shape.
  /// Integers are int64, reals float64, pairs 1-D of 2, strings variable-length UTF-8 (h5py's str).
  void set_attribute(const std::string& name, std::int64_t value);
  void set_attribute(const std::string& name, double value);
  void set_attribute(const std::string& name, const std::array<std::int64_t, 2>& value);
  void set_attribute(const std::string& name, const std::array<double, 2>& value);
  void set_attribute(const std::string& name, const std::string& value);

  bool has_attribute(const std::string& name) const;
  /// Each read is nullopt when the attribute is absent, and throws when it holds another number
  /// of values. Numbers are converted to the asked type by HDF5.
  std::optional<std::int64_t> int_attribute(const std::string& name) const;
  std::optional<double> double_attribute(const std::string& name) const;
  std::optional<std::array<std::int64_t, 2>> int_pair_attribute(const std::string& name) const;
  std::optional<std::array<double, 2>> double_pair_attribute(const std::string& name) const;
  /// A variable- or fixed-length string; nullopt also when the attribute is not a string.
  std::optional<std::string> string_attribute(const std::string& name) const;

 protected:
  enum class Kind { kFile, kGroup, kDataset };
  Object(std::int64_t id, Kind kind, std::string file)
      : id_(id), kind_(kind), file_(std::move(file)) {}
  /// The HDF5 identifier (hid_t), for the implementation in pipeline/store.
  std::int64_t id() const noexcept { return id_; }

 private:
  std::int64_t id_ = -1;
  Kind kind_ = Kind::kFile;
  std::string file_;
};

/// A dataset: its shape and blocks (hyperslabs) written and read from contiguous memory.
class Dataset : public Object {
 public:
  Dataset() = default;
  /// The current shape.
  Dims dims() const;
  /// The stored element type; nullopt for one this layer does not write.
  std::optional<Type> type() const;
  /// Writes / reads the block of `count` elements at `start` (both of the dataset's rank) from /
  /// into contiguous memory of `memory` elements in C order.
  void write(Type memory, const Dims& start, const Dims& count, const void* data);
  void read(Type memory, const Dims& start, const Dims& count, void* data) const;
  /// Grows (or shrinks) a dataset created with unlimited dimensions.
  void set_extent(const Dims& dims);

 private:
  friend class Location;
  Dataset(std::int64_t id, std::string file) : Object(id, Kind::kDataset, std::move(file)) {}
};

/// A dataset of rows that grows along its first dimension: shape (N, row_shape...).
class Rows {
 public:
  /// Appends `count` rows (count x row_shape elements of the dataset's type, C order).
  void append(const void* rows, std::uint64_t count = 1);
  std::uint64_t size() const noexcept { return rows_; }
  /// For its attributes.
  Dataset& dataset() noexcept { return dataset_; }
  /// Closes the dataset (see Object::reset).
  void reset() noexcept { dataset_.reset(); }

 private:
  friend class Location;
  Rows(Dataset dataset, Type type, Dims row_shape)
      : dataset_(std::move(dataset)), type_(type), row_shape_(std::move(row_shape)) {}
  Dataset dataset_;
  Type type_;
  Dims row_shape_;
  std::uint64_t rows_ = 0;
};

class Group;

/// What holds links: the file's root group or a group.
class Location : public Object {
 public:
  Location() = default;
  /// A new group, without object timestamps (reproducible bytes).
  Group create_group(const std::string& name);
  Group open_group(const std::string& name) const;
  Dataset open_dataset(const std::string& name) const;

  /// A fixed-shape dataset in chunks of `chunk`, shuffled and gzip-compressed at `gzip_level`
  /// (0 = neither), fill value 0, without timestamps: e.g. a whole-slide raster written by blocks.
  Dataset create_dataset(const std::string& name, Type type, const Dims& dims, const Dims& chunk,
                         int gzip_level);
  /// An empty dataset of rows (0, row_shape...) with an unlimited first dimension, in chunks of
  /// `chunk_rows` rows, shuffled and gzip-compressed at `gzip_level` (0 = neither), without
  /// timestamps.
  Rows create_rows(const std::string& name, Type type, const Dims& row_shape,
                   std::uint64_t chunk_rows, int gzip_level);

  bool has_link(const std::string& name) const;
  /// Whether `name` is a link to a group (false when absent or another object).
  bool has_group(const std::string& name) const;
  /// The names of the links directly in this group, in name order.
  std::vector<std::string> link_names() const;
  void remove_link(const std::string& name);

 protected:
  Location(std::int64_t id, Kind kind, std::string file) : Object(id, kind, std::move(file)) {}
};

class Group : public Location {
 public:
  Group() = default;

 private:
  friend class Location;
  Group(std::int64_t id, std::string file) : Location(id, Kind::kGroup, std::move(file)) {}
};

/// An HDF5 file; as a Location, its root group.
class File : public Location {
 public:
  enum class Access { kReadOnly, kReadWrite };

  struct CreateOptions {
    /// The name messages give the file (default: its path), e.g. an AtomicOutput's final path.
    std::string name;
    /// Object modification times on the root group, HDF5's default. The file format written
    /// (version-1 object headers) stores none either way; formats whose bytes are hashed switch
    /// them off all the same.
    bool root_times = true;
  };

  File() = default;
  /// Creates `path`, replacing a file there.
  static File create(const std::filesystem::path& path, const CreateOptions& options);
  /// Opens an existing file; throws when HDF5 cannot (not HDF5, damaged, unreadable).
  static File open(const std::filesystem::path& path, Access access, std::string name = {});
  /// Opens an existing file; nullopt when HDF5 cannot, so the caller can say why in its terms.
  static std::optional<File> try_open(const std::filesystem::path& path, Access access,
                                      std::string name = {});
  /// Writes what is buffered for this file.
  void flush();

 private:
  File(std::int64_t id, std::string file) : Location(id, Kind::kFile, std::move(file)) {}
};

}  // namespace slidestream::h5
