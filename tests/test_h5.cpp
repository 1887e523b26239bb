// The HDF5 layer (slidestream/h5.hpp): attributes, rows, blocks and links round-trip, equal
// calls give equal bytes, and failures are errors that name the file.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iterator>
#include <thread>

#include "slidestream/core.hpp"
#include "slidestream/h5.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;

namespace slidestream {
namespace {

using testing::TempDir;

h5::File create_file(const fs::path& path) {
  h5::File::CreateOptions options;
  options.root_times = false;
  return h5::File::create(path, options);
}

std::string file_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The error `action` throws, which must be one.
template <typename Action>
Error error_of(Action&& action) {
  try {
    action();
  } catch (const Error& error) {
    return error;
  }
  ADD_FAILURE() << "no error";
  return Error(ErrorCode::kInternal, "");
}

TEST(Hdf5, AttributesRoundTripOnFilesGroupsAndDatasets) {
  TempDir dir;
  const fs::path path = dir / "attributes.h5";
  {
    h5::File file = create_file(path);
    file.set_attribute("text", std::string("h\xc3\xa9matoxylin"));
    file.set_attribute("count", std::int64_t{-7});
    h5::Group group = file.create_group("slide");
    group.set_attribute("spacing", 0.25);
    group.set_attribute("size", std::array<std::int64_t, 2>{640, 480});
    group.set_attribute("count", std::int64_t{1});
    group.set_attribute("count", std::int64_t{2});  // overwritten in place
    h5::Dataset data = group.create_dataset("data", h5::Type::kUInt8, {2, 3}, {2, 3}, 0);
    data.set_attribute("fov", std::array<double, 2>{1.5, 2.5});
    file.close();
  }
  const h5::File file = h5::File::open(path, h5::File::Access::kReadOnly);
  EXPECT_EQ(file.string_attribute("text"), "h\xc3\xa9matoxylin");
  EXPECT_EQ(file.int_attribute("count"), -7);
  const h5::Group group = file.open_group("slide");
  EXPECT_EQ(group.double_attribute("spacing"), 0.25);
  EXPECT_EQ(group.int_pair_attribute("size"), (std::array<std::int64_t, 2>{640, 480}));
  EXPECT_EQ(group.int_attribute("count"), 2);
  EXPECT_EQ(group.open_dataset("data").double_pair_attribute("fov"),
            (std::array<double, 2>{1.5, 2.5}));
  EXPECT_TRUE(group.has_attribute("spacing"));
  EXPECT_FALSE(group.has_attribute("absent"));
  EXPECT_EQ(group.int_attribute("absent"), std::nullopt);
  EXPECT_EQ(group.string_attribute("spacing"), std::nullopt) << "a number is not a string";
  // A pair read from a scalar is an error, not a read past the value.
  const Error error = error_of([&] { static_cast<void>(group.int_pair_attribute("count")); });
  EXPECT_EQ(error.code(), ErrorCode::kOutputError);
  EXPECT_NE(std::string(error.what()).find("'count' holds 1 values, expected 2"), std::string::npos)
      << error.what();
}

TEST(Hdf5, RowsGrowAlongTheFirstDimensionAndBlocksReadBack) {
  TempDir dir;
  const fs::path path = dir / "rows.h5";
  {
    h5::File file = create_file(path);
    h5::Rows rows = file.create_rows("rows", h5::Type::kInt64, {2}, 4, 1);
    const std::int64_t first[2] = {1, 2};
    const std::int64_t more[6] = {3, 4, 5, 6, 7, 8};
    rows.append(first);
    rows.append(more, 3);
    EXPECT_EQ(rows.size(), 4u);
    h5::Dataset raster = file.create_dataset("raster", h5::Type::kFloat32, {4, 4}, {2, 2}, 4);
    const float block[2] = {0.5F, 1.5F};
    raster.write(h5::Type::kFloat32, {1, 2}, {1, 2}, block);
  }
  const h5::File file = h5::File::open(path, h5::File::Access::kReadOnly);
  const h5::Dataset rows = file.open_dataset("rows");
  EXPECT_EQ(rows.dims(), (h5::Dims{4, 2}));
  EXPECT_EQ(rows.type(), h5::Type::kInt64);
  std::int64_t middle[4] = {};
  rows.read(h5::Type::kInt64, {1, 0}, {2, 2}, middle);
  EXPECT_EQ((std::vector<std::int64_t>(middle, middle + 4)),
            (std::vector<std::int64_t>{3, 4, 5, 6}));
  const h5::Dataset raster = file.open_dataset("raster");
  EXPECT_EQ(raster.type(), h5::Type::kFloat32);
  double values[16] = {};
  raster.read(h5::Type::kFloat64, {0, 0}, {4, 4}, values);  // converted by HDF5
  EXPECT_EQ(values[6], 0.5);
  EXPECT_EQ(values[7], 1.5);
  EXPECT_EQ(values[0], 0.0) << "unwritten chunks read as the fill value";
}

TEST(Hdf5, LinksListInNameOrderAndCanBeRemoved) {
  TempDir dir;
  const fs::path path = dir / "links.h5";
  {
    h5::File file = create_file(path);
    file.create_group("b");
    file.create_group("a");
    file.create_dataset("c", h5::Type::kUInt8, {1}, {1}, 0);
  }
  h5::File file = h5::File::open(path, h5::File::Access::kReadWrite);
  EXPECT_EQ(file.link_names(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(file.has_group("a"));
  EXPECT_FALSE(file.has_group("c")) << "a dataset";
  EXPECT_FALSE(file.has_group("d")) << "absent";
  file.remove_link("b");
  EXPECT_FALSE(file.has_link("b"));
  EXPECT_EQ(file.link_names(), (std::vector<std::string>{"a", "c"}));
}

TEST(Hdf5, EqualCallsGiveEqualBytesAcrossASecond) {
  TempDir dir;
  const auto write = [](const fs::path& path) {
    h5::File file = create_file(path);
    h5::Group group = file.create_group("g");
    h5::Rows rows = group.create_rows("r", h5::Type::kUInt8, {3}, 1, 4);
    const std::uint8_t row[3] = {1, 2, 3};
    rows.append(row);
    group.set_attribute("name", std::string("g"));
  };
  write(dir / "one.h5");
  // HDF5 object timestamps have one-second resolution: cross a second so they would differ.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  write(dir / "two.h5");
  EXPECT_EQ(file_bytes(dir / "one.h5"), file_bytes(dir / "two.h5"));
}

TEST(Hdf5, FailuresNameTheFileAndWhatCouldNotBeDone) {
  TempDir dir;
  const fs::path text = dir / "notes.h5";
  std::ofstream(text) << "not an HDF5 file";
  EXPECT_FALSE(h5::File::try_open(text, h5::File::Access::kReadOnly).has_value());
  const Error not_hdf5 =
      error_of([&] { h5::File::open(text, h5::File::Access::kReadOnly, "shown.h5"); });
  EXPECT_EQ(not_hdf5.code(), ErrorCode::kOutputError);
  EXPECT_NE(std::string(not_hdf5.what()).find("HDF5 file 'shown.h5': cannot open the file: "),
            std::string::npos)
      << not_hdf5.what();

  const h5::File file = create_file(dir / "empty.h5");
  const Error missing = error_of([&] { file.open_dataset("nothing"); });
  EXPECT_NE(std::string(missing.what()).find("empty.h5': cannot open dataset 'nothing'"),
            std::string::npos)
      << missing.what();
  EXPECT_EQ(std::string(missing.what()).find("HDF5-DIAG"), std::string::npos);
}

TEST(Hdf5, ReportsItsLibraryVersion) {
  const std::string version = h5::library_version();
  EXPECT_EQ(std::count(version.begin(), version.end(), '.'), 2) << version;
  EXPECT_TRUE(h5::gzip_available());
}

}  // namespace
}  // namespace slidestream
