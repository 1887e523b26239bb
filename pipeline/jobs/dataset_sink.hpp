// Private to the jobs module: where extracted patch sets go (HDF5 file or PNG folder).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "slidestream/store.hpp"

namespace slidestream::detail {

class DatasetSink {
 public:
  virtual ~DatasetSink() = default;
  virtual std::vector<std::string> existing_slides() const = 0;
  /// Throws kInvalidConfig when resumed output holds patches of another geometry.
  virtual void require_geometry(const ModelGeometry& /*geometry*/) const {}
  virtual void begin_slide(const SlideRecord& record) = 0;
  virtual void append(const PatchSet& patches) = 0;
  virtual void end_slide() = 0;
  /// Drops a slide that failed part-way, so the output holds only complete slides.
  virtual void abandon_slide() = 0;
  virtual void commit() = 0;
};

/// `format: hdf5`: one HDF5 file (docs/FORMATS.md).
std::unique_ptr<DatasetSink> make_hdf5_sink(const std::filesystem::path& path, int gzip_level,
                                            bool resume);
/// `format: png`: <folder>/<slide id>/ with one PNG per branch and patch, and index.csv.
std::unique_ptr<DatasetSink> make_png_sink(const std::filesystem::path& folder, bool resume);

}  // namespace slidestream::detail
