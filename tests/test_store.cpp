// The HDF5 patch dataset writer: layout and values read back with the HDF5 C++ API, CLAM's
// conventions checked with h5py, reproducible bytes, atomic commit and resume.
#include <H5Cpp.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "slidestream/core.hpp"
#include "slidestream/store.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using slidestream::Error;
using slidestream::ErrorCode;
using slidestream::PatchDatasetWriter;
using slidestream::PatchSet;
using slidestream::SlideRecord;
using slidestream::testing::TempDir;

namespace {

// A 4000x3000 slide at 0.5 um/px with levels at downsample 4 and 16.
slidestream::SlideInfo fake_slide_info(const std::string& name) {
  slidestream::SlideInfo info;
  info.path = "/slides/" + name + ".svs";
  info.backend = slidestream::Backend::kOpenSlide;
  info.vendor = "aperio";
  info.spacing = {0.5, 0.5};
  info.spacing_source = slidestream::SpacingSource::kOpenSlideMpp;
  info.quickhash = "quickhash-" + name;
  info.levels = {{{4000, 3000}, 1.0, {0.5, 0.5}, {256, 256}},
                 {{1000, 750}, 4.0, {2.0, 2.0}, {256, 256}},
                 {{250, 187}, 16.0, {8.0, 8.0}, {256, 256}}};
  return info;
}

// Target 64 px at 0.5 um/px (level 0), context 64 px at 2.0 um/px (level 1), output 32 px.
SlideRecord make_record(const std::string& slide_id, bool with_labels) {
  SlideRecord record;
  record.slide_id = slide_id;
  record.info = fake_slide_info(slide_id);
  record.geometry.branches = {{0.5, {64, 64}}, {2.0, {64, 64}}};
  record.geometry.output = {0.5, {32, 32}};
  record.branch_levels = {0, 1};
  record.config_yaml = "model: test\noutput_spacing_um: 0.5\n";
  record.with_labels = with_labels;
  return record;
}

// Pixel values encode (tile, branch); one marked pixel at row 1, column 2 checks the layout.
std::uint8_t pixel_value(std::uint64_t tile, std::size_t branch) {
  return static_cast<std::uint8_t>(tile * 10 + branch);
}

PatchSet make_patch_set(std::uint64_t tile) {
  PatchSet patches;
  patches.spec.index = tile;
  patches.spec.column = static_cast<std::int64_t>(tile);
  const double center_x = 100.5 + 32.0 * static_cast<double>(tile);
  const double center_y = 300.0;
  patches.spec.output_l0 = {center_x - 16, center_y - 16, 32, 32};
  patches.spec.branch_l0 = {{center_x - 32, center_y - 32, 64, 64},
                            {center_x - 128, center_y - 128, 256, 256}};
  patches.spec.tissue_fraction = 0.25F * static_cast<float>(tile);
  for (std::size_t b = 0; b < 2; ++b) {
    cv::Mat rgb(64, 64, CV_8UC3, cv::Scalar(pixel_value(tile, b), 100, 200));
    rgb.at<cv::Vec3b>(1, 2) = cv::Vec3b(7, 8, 9);
    cv::Mat valid(64, 64, CV_8UC1, cv::Scalar(255));
    valid.row(0).setTo(0);
    patches.branches.push_back(rgb);
    patches.valid.push_back(valid);
    patches.levels.push_back(static_cast<int>(b));
  }
  return patches;
}

std::vector<cv::Mat> make_labels(std::uint64_t tile) {
  return {cv::Mat(64, 64, CV_8UC1, cv::Scalar(static_cast<double>(tile + 1))),
          cv::Mat(64, 64, CV_8UC1, cv::Scalar(static_cast<double>(tile + 2)))};
}

void write_slide(PatchDatasetWriter& writer, const std::string& slide_id, bool with_labels,
                 std::uint64_t tiles) {
  writer.begin_slide(make_record(slide_id, with_labels));
  for (std::uint64_t tile = 0; tile < tiles; ++tile) {
    writer.append(make_patch_set(tile), with_labels ? make_labels(tile) : std::vector<cv::Mat>{});
  }
  writer.end_slide();
}

// Slide "A" (3 tiles, labels) and slide "B" (2 tiles, no labels).
void write_two_slides(const fs::path& path) {
  PatchDatasetWriter writer(path, {});
  write_slide(writer, "A", true, 3);
  write_slide(writer, "B", false, 2);
  writer.commit();
}

std::vector<hsize_t> shape_of(const H5::DataSet& dataset) {
  const H5::DataSpace space = dataset.getSpace();
  std::vector<hsize_t> dims(static_cast<std::size_t>(space.getSimpleExtentNdims()));
  space.getSimpleExtentDims(dims.data());
  return dims;
}

template <typename T>
std::vector<T> read_all(const H5::DataSet& dataset, const H5::PredType& type) {
  std::size_t count = 1;
  for (hsize_t dim : shape_of(dataset)) {
    count *= dim;
  }
  std::vector<T> values(count);
  dataset.read(values.data(), type);
  return values;
}

std::int64_t int_attribute(const H5::H5Object& object, const char* name) {
  std::int64_t value = 0;
  object.openAttribute(name).read(H5::PredType::NATIVE_INT64, &value);
  return value;
}

template <std::size_t N, typename T>
std::array<T, N> array_attribute(const H5::H5Object& object, const char* name,
                                 const H5::PredType& type) {
  const H5::Attribute attribute = object.openAttribute(name);
  EXPECT_EQ(attribute.getSpace().getSimpleExtentNpoints(), static_cast<hssize_t>(N)) << name;
  std::array<T, N> value{};
  attribute.read(type, value.data());
  return value;
}

std::string string_attribute(const H5::H5Object& object, const char* name) {
  const H5::Attribute attribute = object.openAttribute(name);
  std::string value;
  attribute.read(attribute.getStrType(), value);
  return value;
}

std::string file_bytes(const fs::path& path) {
  std::ifstream stream(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(stream), std::istreambuf_iterator<char>()};
}

void expect_error(const std::function<void()>& action, ErrorCode code, const std::string& part) {
  try {
    action();
    ADD_FAILURE() << "expected an error containing '" << part << "'";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), code) << error.what();
    EXPECT_NE(std::string(error.what()).find(part), std::string::npos) << error.what();
  }
}

// Runs a command, returning its exit status and combined output.
std::pair<int, std::string> run_command(const std::string& command) {
  std::string output;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) {
    return {-1, "popen failed"};
  }
  std::array<char, 4096> buffer{};
  while (fgets(buffer.data(), static_cast<int>(buffer.size()), pipe) != nullptr) {
    output += buffer.data();
  }
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

}  // namespace

TEST(PatchDatasetWriter, WritesShapesValuesAndAttributesOfTwoSlides) {
  const TempDir folder;
  const fs::path path = folder / "patches.h5";
  write_two_slides(path);

  const H5::H5File file(path.string(), H5F_ACC_RDONLY);
  EXPECT_EQ(string_attribute(file.openGroup("/"), "format"), "slidestream.patches/1");
  EXPECT_EQ(string_attribute(file.openGroup("/"), "slidestream_version"),
            std::string(slidestream::kVersion));

  const H5::Group slide_a = file.openGroup("A");
  const H5::DataSet coords = slide_a.openDataSet("coords");
  EXPECT_EQ(coords.getDataType().getSize(), 8U);
  EXPECT_EQ(shape_of(coords), (std::vector<hsize_t>{3, 2}));
  // floor(100.5 + 32 * tile - 32), floor(300 - 32).
  EXPECT_EQ(read_all<std::int64_t>(coords, H5::PredType::NATIVE_INT64),
            (std::vector<std::int64_t>{68, 268, 100, 268, 132, 268}));
  EXPECT_EQ(int_attribute(coords, "patch_size"), 64);
  EXPECT_EQ(int_attribute(coords, "patch_level"), 0);
  EXPECT_EQ((array_attribute<2, double>(coords, "downsample", H5::PredType::NATIVE_DOUBLE)),
            (std::array<double, 2>{1.0, 1.0}));
  EXPECT_EQ((array_attribute<2, std::int64_t>(coords, "level_dim", H5::PredType::NATIVE_INT64)),
            (std::array<std::int64_t, 2>{4000, 3000}));
  EXPECT_EQ((array_attribute<2, std::int64_t>(coords, "downsampled_level_dim",
                                              H5::PredType::NATIVE_INT64)),
            (std::array<std::int64_t, 2>{4000, 3000}));
  EXPECT_EQ(string_attribute(coords, "name"), "A");

  EXPECT_EQ(read_all<double>(slide_a.openDataSet("center_l0"), H5::PredType::NATIVE_DOUBLE),
            (std::vector<double>{100.5, 300, 132.5, 300, 164.5, 300}));
  EXPECT_EQ(read_all<std::uint64_t>(slide_a.openDataSet("tile_index"), H5::PredType::NATIVE_UINT64),
            (std::vector<std::uint64_t>{0, 1, 2}));
  EXPECT_EQ(read_all<float>(slide_a.openDataSet("tissue_fraction"), H5::PredType::NATIVE_FLOAT),
            (std::vector<float>{0.0F, 0.25F, 0.5F}));

  EXPECT_EQ(string_attribute(slide_a, "slide_path"), "/slides/A.svs");
  EXPECT_EQ(string_attribute(slide_a, "quickhash"), "quickhash-A");
  EXPECT_EQ(string_attribute(slide_a, "mpp_source"), "openslide.mpp");
  EXPECT_EQ(string_attribute(slide_a, "config_yaml"), "model: test\noutput_spacing_um: 0.5\n");
  EXPECT_EQ((array_attribute<2, double>(slide_a, "mpp", H5::PredType::NATIVE_DOUBLE)),
            (std::array<double, 2>{0.5, 0.5}));
  EXPECT_EQ(int_attribute(slide_a, "complete"), 1);
  EXPECT_DOUBLE_EQ(
      (array_attribute<1, double>(slide_a, "output_spacing_um", H5::PredType::NATIVE_DOUBLE)[0]),
      0.5);
  EXPECT_EQ(
      (array_attribute<2, std::int64_t>(slide_a, "output_size_px", H5::PredType::NATIVE_INT64)),
      (std::array<std::int64_t, 2>{32, 32}));

  for (std::size_t b = 0; b < 2; ++b) {
    SCOPED_TRACE("branch " + std::to_string(b));
    const H5::Group branch = slide_a.openGroup("branch_" + std::to_string(b));
    EXPECT_EQ(int_attribute(branch, "level"), static_cast<std::int64_t>(b));
    EXPECT_EQ((array_attribute<2, std::int64_t>(branch, "size_px", H5::PredType::NATIVE_INT64)),
              (std::array<std::int64_t, 2>{64, 64}));
    const double spacing = b == 0 ? 0.5 : 2.0;
    EXPECT_EQ((array_attribute<2, double>(branch, "fov_um", H5::PredType::NATIVE_DOUBLE)),
              (std::array<double, 2>{64 * spacing, 64 * spacing}));

    const H5::DataSet pixels = branch.openDataSet("pixels");
    EXPECT_EQ(shape_of(pixels), (std::vector<hsize_t>{3, 64, 64, 3}));
    const auto rgb = read_all<std::uint8_t>(pixels, H5::PredType::NATIVE_UINT8);
    const std::size_t patch_bytes = 64 * 64 * 3;
    for (std::uint64_t tile = 0; tile < 3; ++tile) {
      const std::size_t first = tile * patch_bytes;
      EXPECT_EQ(rgb[first], pixel_value(tile, b));
      EXPECT_EQ(rgb[first + 1], 100);
      EXPECT_EQ(rgb[first + 2], 200);
      const std::size_t marked = first + (1 * 64 + 2) * 3;  // row 1, column 2
      EXPECT_EQ(rgb[marked], 7);
      EXPECT_EQ(rgb[marked + 2], 9);
    }
    const auto valid =
        read_all<std::uint8_t>(branch.openDataSet("valid"), H5::PredType::NATIVE_UINT8);
    ASSERT_EQ(valid.size(), 3U * 64 * 64);
    EXPECT_EQ(valid[0], 0);  // row 0 is padding
    EXPECT_EQ(valid[64 * 64 - 1], 255);
    const H5::DataSet labels = branch.openDataSet("labels");
    EXPECT_EQ(shape_of(labels), (std::vector<hsize_t>{3, 64, 64}));
    const auto label_values = read_all<std::uint8_t>(labels, H5::PredType::NATIVE_UINT8);
    EXPECT_EQ(label_values[2 * 64 * 64 + 5], 3 + b);  // tile 2: value tile + 1 + branch

    // Extendible along N, one patch per chunk, shuffle + gzip.
    const H5::DSetCreatPropList creation = pixels.getCreatePlist();
    std::array<hsize_t, 4> chunk{};
    ASSERT_EQ(creation.getChunk(4, chunk.data()), 4);
    EXPECT_EQ(chunk, (std::array<hsize_t, 4>{1, 64, 64, 3}));
    EXPECT_TRUE(creation.allFiltersAvail());
    EXPECT_EQ(creation.getNfilters(), 2);
    std::array<hsize_t, 4> max_dims{};
    pixels.getSpace().getSimpleExtentDims(nullptr, max_dims.data());
    EXPECT_EQ(max_dims[0], H5S_UNLIMITED);
  }

  const H5::Group slide_b = file.openGroup("B");
  EXPECT_EQ(shape_of(slide_b.openDataSet("coords")), (std::vector<hsize_t>{2, 2}));
  EXPECT_EQ(shape_of(slide_b.openDataSet("branch_1/pixels")), (std::vector<hsize_t>{2, 64, 64, 3}));
  EXPECT_TRUE(slide_b.nameExists("branch_0/valid"));
  EXPECT_FALSE(slide_b.nameExists("branch_0/labels"));
  EXPECT_FALSE(slide_b.nameExists("branch_1/labels"));
  EXPECT_EQ(int_attribute(slide_b, "complete"), 1);
}

TEST(PatchDatasetWriter, SameCallsGiveIdenticalBytes) {
  const TempDir first;
  const TempDir second;
  write_two_slides(first / "patches.h5");
  // HDF5 object timestamps have one-second resolution: cross a second so they would differ.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  write_two_slides(second / "patches.h5");
  const std::string first_bytes = file_bytes(first / "patches.h5");
  EXPECT_GT(first_bytes.size(), 1000U);
  EXPECT_TRUE(first_bytes == file_bytes(second / "patches.h5"));
}

TEST(PatchDatasetWriter, WithoutCommitLeavesNoFile) {
  const TempDir folder;
  const fs::path path = folder / "patches.h5";
  {
    PatchDatasetWriter writer(path, {});
    write_slide(writer, "A", false, 2);
  }
  EXPECT_FALSE(fs::exists(path));
  EXPECT_TRUE(fs::is_empty(folder.path()));
}

TEST(PatchDatasetWriter, ResumeKeepsCompleteSlidesAndDropsIncompleteOnes) {
  const TempDir folder;
  const fs::path path = folder / "patches.h5";
  {
    PatchDatasetWriter writer(path, {});
    write_slide(writer, "A", true, 3);
    writer.commit();
  }
  const auto read_a = [&path]() {
    const H5::H5File file(path.string(), H5F_ACC_RDONLY);
    return read_all<std::uint8_t>(file.openDataSet("A/branch_1/pixels"),
                                  H5::PredType::NATIVE_UINT8);
  };
  const std::vector<std::uint8_t> a_before = read_a();
  {
    // What an interrupted writer would leave if commits were not atomic.
    H5::H5File file(path.string(), H5F_ACC_RDWR);
    const H5::Group partial = file.createGroup("C");
    const std::int64_t zero = 0;
    partial.createAttribute("complete", H5::PredType::STD_I64LE, H5::DataSpace())
        .write(H5::PredType::NATIVE_INT64, &zero);
  }
  {
    PatchDatasetWriter::Options options;
    options.resume = true;
    PatchDatasetWriter writer(path, options);
    EXPECT_EQ(writer.existing_slides(), (std::vector<std::string>{"A"}));
    write_slide(writer, "B", false, 2);
    writer.commit();
  }
  const H5::H5File file(path.string(), H5F_ACC_RDONLY);
  EXPECT_TRUE(file.nameExists("A"));
  EXPECT_TRUE(file.nameExists("B"));
  EXPECT_FALSE(file.nameExists("C"));
  EXPECT_EQ(int_attribute(file.openGroup("B"), "complete"), 1);
  EXPECT_EQ(read_a(), a_before);
  const std::vector<fs::path> entries(fs::directory_iterator(folder.path()), {});
  EXPECT_EQ(entries.size(), 1U);  // no temporary left beside the file
}

TEST(PatchDatasetWriter, WithoutResumeReplacesTheFile) {
  const TempDir folder;
  const fs::path path = folder / "patches.h5";
  write_two_slides(path);
  PatchDatasetWriter writer(path, {});
  EXPECT_TRUE(writer.existing_slides().empty());
  write_slide(writer, "Z", false, 1);
  writer.commit();
  const H5::H5File file(path.string(), H5F_ACC_RDONLY);
  EXPECT_FALSE(file.nameExists("A"));
  EXPECT_TRUE(file.nameExists("Z"));
}

TEST(PatchDatasetWriter, RejectsBadSlideIdsAndMismatchedPatches) {
  const TempDir folder;
  PatchDatasetWriter writer(folder / "patches.h5", {});
  expect_error([&writer] { writer.append(make_patch_set(0), {}); }, ErrorCode::kInternal,
               "before begin_slide");
  expect_error([&writer] { writer.begin_slide(make_record("", false)); },
               ErrorCode::kInvalidArgument, "slide id");
  expect_error([&writer] { writer.begin_slide(make_record("a/b", false)); },
               ErrorCode::kInvalidArgument, "a/b");
  SlideRecord one_level = make_record("L", false);
  one_level.branch_levels = {0};
  expect_error([&writer, &one_level] { writer.begin_slide(one_level); },
               ErrorCode::kInvalidArgument, "branch levels");

  write_slide(writer, "A", false, 1);
  expect_error([&writer] { writer.begin_slide(make_record("A", false)); },
               ErrorCode::kInvalidArgument, "already in");

  writer.begin_slide(make_record("B", false));
  PatchSet one_branch = make_patch_set(0);
  one_branch.branches.pop_back();
  one_branch.valid.pop_back();
  one_branch.spec.branch_l0.pop_back();
  expect_error([&writer, &one_branch] { writer.append(one_branch, {}); },
               ErrorCode::kInvalidArgument, "branches");
  expect_error([&writer] { writer.append(make_patch_set(0), make_labels(0)); },
               ErrorCode::kInvalidArgument, "labels");
  PatchSet wrong_size = make_patch_set(0);
  wrong_size.branches[1] = cv::Mat(32, 32, CV_8UC3, cv::Scalar::all(0));
  expect_error([&writer, &wrong_size] { writer.append(wrong_size, {}); },
               ErrorCode::kInvalidArgument, "branch 1 pixels");
  expect_error([&writer] { writer.commit(); }, ErrorCode::kInternal, "end_slide");
}

TEST(PatchDatasetWriter, MissingLabelsAreRejectedWhenTheSlideHasLabels) {
  const TempDir folder;
  PatchDatasetWriter writer(folder / "patches.h5", {});
  writer.begin_slide(make_record("A", true));
  expect_error([&writer] { writer.append(make_patch_set(0), {}); }, ErrorCode::kInvalidArgument,
               "label rasters");
}

TEST(PatchDatasetWriter, MissingFolderIsAnOutputError) {
  const TempDir folder;
  expect_error([&folder] { PatchDatasetWriter writer(folder / "absent" / "patches.h5", {}); },
               ErrorCode::kOutputError, "does not exist");
}

TEST(PatchDatasetWriter, ResumingANonPatchFileIsAnOutputError) {
  const TempDir folder;
  const fs::path path = folder / "other.h5";
  { const H5::H5File file(path.string(), H5F_ACC_TRUNC); }
  PatchDatasetWriter::Options options;
  options.resume = true;
  expect_error([&path, &options] { PatchDatasetWriter writer(path, options); },
               ErrorCode::kOutputError, "slidestream.patches/1");
  // A file that is not HDF5 at all is a damaged input (exit 5), named with the fix.
  std::ofstream(folder / "broken.h5") << "not an HDF5 file";
  expect_error([&folder, &options] { PatchDatasetWriter writer(folder / "broken.h5", options); },
               ErrorCode::kCorruptData, "broken.h5");
}

TEST(PatchDatasetWriter, AnAbandonedSlideIsRemovedAndTheOthersAreWritten) {
  const TempDir folder;
  const fs::path path = folder / "patches.h5";
  {
    PatchDatasetWriter writer(path, {});
    write_slide(writer, "A", false, 2);
    writer.begin_slide(make_record("B", false));
    writer.append(make_patch_set(0), {});
    writer.abandon_slide();  // B failed part-way
    write_slide(writer, "C", false, 1);
    writer.commit();
  }
  const H5::H5File file(path.string(), H5F_ACC_RDONLY);
  EXPECT_TRUE(file.nameExists("A"));
  EXPECT_FALSE(file.nameExists("B"));
  EXPECT_TRUE(file.nameExists("C"));
  EXPECT_EQ(shape_of(file.openDataSet("C/coords"))[0], 1U);
}

TEST(PatchDatasetWriter, ResumingWithAnotherGeometryIsAConfigError) {
  const TempDir folder;
  const fs::path path = folder / "patches.h5";
  write_two_slides(path);
  PatchDatasetWriter::Options options;
  options.resume = true;
  PatchDatasetWriter writer(path, options);
  slidestream::ModelGeometry same = make_record("C", false).geometry;
  EXPECT_NO_THROW(writer.require_geometry(same));
  slidestream::ModelGeometry other = same;
  other.branches[1].spacing_um = 8.0;
  expect_error([&] { writer.require_geometry(other); }, ErrorCode::kInvalidConfig,
               "another geometry");
}

TEST(PatchDatasetWriter, H5pyFindsClamConventions) {
  if (std::system("/usr/bin/python3 -c 'import h5py, numpy' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "/usr/bin/python3 cannot import h5py and numpy (apt install python3-h5py)";
  }
  const std::string script = std::string(SLIDESTREAM_SOURCE_DIR) + "/tests/check_clam_h5.py";
  const TempDir folder;
  const fs::path path = folder / "patches.h5";
  write_two_slides(path);
  const auto [status, output] = run_command("/usr/bin/python3 " + script + " " + path.string());
  EXPECT_EQ(status, 0) << output;
  EXPECT_NE(output.find("coords"), std::string::npos) << output;

  // The script must notice a broken convention: drop CLAM's patch_size.
  {
    const H5::H5File file(path.string(), H5F_ACC_RDWR);
    file.openDataSet("A/coords").removeAttr("patch_size");
  }
  const auto [broken_status, broken_output] =
      run_command("/usr/bin/python3 " + script + " " + path.string());
  EXPECT_NE(broken_status, 0) << broken_output;
  EXPECT_NE(broken_output.find("patch_size"), std::string::npos) << broken_output;
}
