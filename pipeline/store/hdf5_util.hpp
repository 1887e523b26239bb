// Small RAII wrappers over the HDF5 C API for the patch dataset writer. Every failure becomes a
// slidestream::Error(kOutputError) that names the file and carries HDF5's own message; HDF5's
// automatic error printing is turned off so users see only that message.
#pragma once

#include <hdf5.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace slidestream::detail::h5 {

/// Turns off HDF5's printing of its error stack to stderr (process-wide, idempotent).
void silence_automatic_errors();

/// Throws Error(kOutputError, "'<file>': cannot <what>: <HDF5 message>").
[[noreturn]] void fail(const std::string& file, const std::string& what);

/// Throws (via `fail`) when an HDF5 call returned a negative id or status.
inline hid_t check(hid_t id, const std::string& file, const char* what) {
  if (id < 0) {
    fail(file, what);
  }
  return id;
}

/// An owned HDF5 identifier closed with its matching H5?close on destruction.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  Handle(Handle&& other) noexcept;
  Handle& operator=(Handle&& other) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() { reset(); }

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  /// Closes now; returns the close status (negative on failure), 0 when nothing was open.
  herr_t close();
  /// Closes now, ignoring failures (destructor path).
  void reset() { static_cast<void>(close()); }

 private:
  hid_t id_ = -1;
  Closer closer_ = nullptr;
};

/// Each opens or creates its object and throws on failure.
Handle property_list(hid_t property_class, const std::string& file);
Handle dataspace(const std::vector<hsize_t>& dims, const std::vector<hsize_t>& max_dims,
                 const std::string& file);
/// Variable-length UTF-8 string type (what h5py writes for a Python str).
Handle string_type(const std::string& file);

/// Attribute writers: create the attribute, or overwrite it when it exists with the same shape.
void write_attribute(hid_t object, const char* name, std::int64_t value, const std::string& file);
void write_attribute(hid_t object, const char* name, double value, const std::string& file);
void write_attribute(hid_t object, const char* name, const std::array<std::int64_t, 2>& value,
                     const std::string& file);
void write_attribute(hid_t object, const char* name, const std::array<double, 2>& value,
                     const std::string& file);
void write_attribute(hid_t object, const char* name, const std::string& value,
                     const std::string& file);

/// Scalar integer attribute, nullopt when absent.
std::optional<std::int64_t> read_int_attribute(hid_t object, const char* name,
                                               const std::string& file);
/// Variable- or fixed-length string attribute, nullopt when absent.
std::optional<std::string> read_string_attribute(hid_t object, const char* name,
                                                 const std::string& file);

/// Names of the links directly in `group`, in name order.
std::vector<std::string> link_names(hid_t group, const std::string& file);

/// A dataset of rows extendible along its first dimension (N), one row per chunk.
class RowDataset {
 public:
  /// Creates `name` in `parent` with shape (0, row_shape...), unlimited N, chunks of one row,
  /// shuffle + gzip at `gzip_level` (0 = none) and no object timestamps (reproducible bytes).
  RowDataset(hid_t parent, const char* name, hid_t file_type, hid_t memory_type,
             std::vector<hsize_t> row_shape, int gzip_level, const std::string& file);

  hid_t get() const { return dataset_.get(); }
  /// Grows the dataset by one row and writes `row` (memory type, row_shape elements) into it.
  void append_row(const void* row, const std::string& file);

 private:
  Handle dataset_;
  hid_t memory_type_;
  std::vector<hsize_t> row_shape_;
  hsize_t rows_ = 0;
};

/// Creates a fixed-size chunked dataset (fill value 0, shuffle + gzip at `gzip_level`, no
/// timestamps), e.g. a whole-slide raster written block by block.
Handle create_chunked(hid_t parent, const char* name, hid_t file_type,
                      const std::vector<hsize_t>& dims, const std::vector<hsize_t>& chunk,
                      int gzip_level, const std::string& file);
/// Writes / reads the block `count` at `start` of `dataset` from / into contiguous memory.
void write_block(hid_t dataset, hid_t memory_type, const std::vector<hsize_t>& start,
                 const std::vector<hsize_t>& count, const void* data, const std::string& file);
void read_block(hid_t dataset, hid_t memory_type, const std::vector<hsize_t>& start,
                const std::vector<hsize_t>& count, void* data, const std::string& file);
/// The dimensions of a dataset.
std::vector<hsize_t> dataset_dims(hid_t dataset, const std::string& file);

}  // namespace slidestream::detail::h5
