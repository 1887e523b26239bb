// Bad input gets a clear error that names the file, never a crash.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <random>

#include "slidestream/core.hpp"
#include "slidestream/io.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;

namespace slidestream {
namespace {

using testing::TempDir;

// Runs `action` and returns the Error it must throw.
template <typename Action>
Error expect_error(Action action) {
  try {
    action();
  } catch (const Error& error) {
    return error;
  }
  ADD_FAILURE() << "expected a slidestream::Error";
  return Error(ErrorCode::kInternal, "");
}

void expect_names_file(const Error& error, const fs::path& path) {
  EXPECT_NE(std::string(error.what()).find(path.filename().string()), std::string::npos)
      << error.what();
}

TEST(BadInput, MissingPathIsNotFound) {
  const fs::path missing = "/nonexistent/folder/slide.svs";
  const Error error = expect_error([&] { open_slide(missing); });
  EXPECT_EQ(error.code(), ErrorCode::kNotFound);
  EXPECT_NE(std::string(error.what()).find("does not exist"), std::string::npos);
  expect_names_file(error, missing);
}

TEST(BadInput, DirectoryIsNotASlide) {
  TempDir dir;
  const Error error = expect_error([&] { open_slide(dir.path()); });
  EXPECT_EQ(error.code(), ErrorCode::kNotFound);
  EXPECT_NE(std::string(error.what()).find("is a folder"), std::string::npos);
}

TEST(BadInput, EmptyFileIsUnsupportedAndSaysEmpty) {
  TempDir dir;
  const fs::path empty = dir / "empty.svs";
  std::ofstream(empty).close();
  const Error error = expect_error([&] { open_slide(empty); });
  EXPECT_EQ(error.code(), ErrorCode::kUnsupportedFormat);
  EXPECT_NE(std::string(error.what()).find("empty"), std::string::npos);
  expect_names_file(error, empty);
}

TEST(BadInput, RandomBytesNamedSvsAreUnsupported) {
  TempDir dir;
  const fs::path noise = dir / "noise.svs";
  std::mt19937 random(1);
  std::ofstream file(noise, std::ios::binary);
  for (int i = 0; i < 100000; ++i) {
    file.put(static_cast<char>(random() & 0xff));
  }
  file.close();
  const Error error = expect_error([&] { open_slide(noise); });
  EXPECT_EQ(error.code(), ErrorCode::kUnsupportedFormat);
  EXPECT_NE(std::string(error.what()).find("not a slide format"), std::string::npos);
  expect_names_file(error, noise);
}

TEST(BadInput, UnreadableFileIsNotFound) {
  if (::geteuid() == 0) {
    GTEST_SKIP() << "running as root, who can read any file: permissions cannot make one "
                    "unreadable here";
  }
  TempDir dir;
  const fs::path locked = dir / "locked.tif";
  std::ofstream(locked) << "x";
  fs::permissions(locked, fs::perms::none);
  const Error error = expect_error([&] { open_slide(locked); });
  EXPECT_EQ(error.code(), ErrorCode::kNotFound);
  EXPECT_NE(std::string(error.what()).find("cannot be read"), std::string::npos);
}

TEST(BadInput, TruncatedSvsFailsWithCorruptDataNotACrash) {
  SLIDESTREAM_REQUIRE_DATA(slide, "wsi/CMU-1-Small-Region.svs");
  TempDir dir;
  const fs::path truncated = dir / "truncated.svs";
  fs::copy_file(slide, truncated);
  fs::resize_file(truncated, fs::file_size(slide) / 2);
  // Either opening fails, or reading the missing half does.
  const Error error = expect_error([&] {
    const auto reader = open_slide(truncated);
    reader->read_from_origin({0, 0}, {555, 742}, 2.0);
  });
  EXPECT_EQ(error.code(), ErrorCode::kCorruptData) << error.what();
  EXPECT_NE(std::string(error.what()).find("truncated"), std::string::npos) << error.what();
  expect_names_file(error, truncated);
}

TEST(BadInput, TruncatedSyntheticTiffFailsInBothBackends) {
  const fs::path slide = testing::small_lossless_slide();
  TempDir dir;
  const fs::path truncated = dir / "truncated.tif";
  fs::copy_file(slide, truncated);
  fs::resize_file(truncated, fs::file_size(slide) * 6 / 10);
  for (const Backend backend : {Backend::kOpenSlide, Backend::kVips}) {
    OpenOptions options;
    options.backend = backend;
    const Error error = expect_error([&] {
      const auto reader = open_slide(truncated, options);
      reader->read_from_origin({0, 0}, {3000, 2000}, 0.5);
    });
    EXPECT_TRUE(error.code() == ErrorCode::kCorruptData ||
                error.code() == ErrorCode::kUnsupportedFormat)
        << backend_name(backend) << ": " << error.what();
    expect_names_file(error, truncated);
  }
}

TEST(BadInput, NonsenseRequestsAreInvalidArguments) {
  const auto reader = open_slide(testing::small_lossless_slide());
  EXPECT_EQ(expect_error([&] {
              reader->read_centered({100, 100}, {64, 64}, 0.0);
            }).code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(expect_error([&] {
              reader->read_centered({100, 100}, {-64, 64}, 0.5);
            }).code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(expect_error([&] {
              reader->read_centered({100, 100}, {64, 64}, -2.0);
            }).code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(expect_error([&] {
              reader->read_centered({100, 100}, {100000, 100000}, 0.5);
            }).code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(expect_error([&] {
              reader->read_level(99, Rect{0, 0, 8, 8});
            }).code(),
            ErrorCode::kInvalidArgument);
}

TEST(BadInput, UnknownBackendNameIsRejected) {
  EXPECT_EQ(expect_error([] { parse_backend("bioformats"); }).code(), ErrorCode::kInvalidArgument);
}

TEST(Outputs, AtomicOutputLeavesNothingBehindWhenNotCommitted) {
  TempDir dir;
  const fs::path final_path = dir / "result.png";
  {
    AtomicOutput output(final_path);
    std::ofstream(output.temp_path()) << "partial";
    EXPECT_TRUE(fs::exists(output.temp_path()));
  }
  EXPECT_FALSE(fs::exists(final_path));
  EXPECT_TRUE(fs::is_empty(dir.path()));
  {
    AtomicOutput output(final_path);
    std::ofstream(output.temp_path()) << "complete";
    output.commit();
  }
  EXPECT_TRUE(fs::exists(final_path));
}

TEST(Outputs, OutputInAMissingFolderIsAClearError) {
  const Error error = expect_error([] { require_writable_output("/nonexistent/dir/out.png"); });
  EXPECT_EQ(error.code(), ErrorCode::kOutputError);
  EXPECT_NE(std::string(error.what()).find("does not exist"), std::string::npos);
}

}  // namespace
}  // namespace slidestream
