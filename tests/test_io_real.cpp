// Real slides from ../shared/data, one YAML case per slide under tests/cases (in the manner of
// OpenSlide's test/cases): the expected metadata, an expected error, and a read that must work.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "slidestream/core.hpp"
#include "slidestream/io.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;

namespace slidestream {
namespace {

std::vector<fs::path> case_files() {
  std::vector<fs::path> files;
  for (const auto& entry :
       fs::directory_iterator(fs::path(SLIDESTREAM_SOURCE_DIR) / "tests" / "cases")) {
    if (entry.path().extension() == ".yaml") {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

OpenOptions open_options(const YAML::Node& node) {
  OpenOptions options;
  if (!node) {
    return options;
  }
  if (node["backend"]) {
    options.backend = parse_backend(node["backend"].as<std::string>());
  }
  if (node["mpp"]) {
    options.mpp_override_um = node["mpp"].as<double>();
  }
  if (node["channels"]) {
    options.channels = node["channels"].as<std::vector<int>>();
  }
  return options;
}

void check_expectations(const SlideInfo& info, const YAML::Node& expect) {
  if (expect["backend"]) {
    EXPECT_EQ(backend_name(info.backend), expect["backend"].as<std::string>());
  }
  if (expect["vendor"]) {
    EXPECT_EQ(info.vendor, expect["vendor"].as<std::string>());
  }
  if (expect["level_count"]) {
    EXPECT_EQ(info.levels.size(), expect["level_count"].as<size_t>());
  }
  if (expect["levels"]) {
    const auto levels = expect["levels"].as<std::vector<std::vector<std::int64_t>>>();
    ASSERT_EQ(info.levels.size(), levels.size());
    for (size_t i = 0; i < levels.size(); ++i) {
      EXPECT_EQ(info.levels[i].size, (Size{levels[i][0], levels[i][1]})) << "level " << i;
    }
  }
  if (expect["mpp"]) {
    EXPECT_NEAR(info.spacing.x_um, expect["mpp"].as<double>(), 1e-4);
    EXPECT_NEAR(info.spacing.y_um, expect["mpp"].as<double>(), 1e-4);
  }
  if (expect["mpp_source"]) {
    EXPECT_EQ(spacing_source_name(info.spacing_source), expect["mpp_source"].as<std::string>());
  }
  if (expect["objective_power"]) {
    ASSERT_TRUE(info.objective_power.has_value());
    EXPECT_DOUBLE_EQ(*info.objective_power, expect["objective_power"].as<double>());
  }
  if (expect["channels"]) {
    EXPECT_EQ(info.channel_count, expect["channels"].as<int>());
  }
  if (expect["quickhash"]) {
    EXPECT_EQ(info.quickhash, expect["quickhash"].as<std::string>());
  }
  if (expect["associated"]) {
    std::vector<std::string> names;
    for (const AssociatedImage& image : info.associated_images) {
      names.push_back(image.name);
    }
    std::sort(names.begin(), names.end());
    auto expected = expect["associated"].as<std::vector<std::string>>();
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(names, expected);
  }
}

void check_read(const SlideReader& reader, const YAML::Node& read) {
  const auto size = read["size"].as<std::int64_t>();
  const auto spacing = read["spacing"].as<double>();
  Patch patch;
  if (read["center"]) {
    const auto center = read["center"].as<std::vector<std::int64_t>>();
    patch = reader.read_centered({center[0], center[1]}, {size, size}, spacing);
  } else {
    const auto origin = read["origin"].as<std::vector<std::int64_t>>();
    patch = reader.read_from_origin({origin[0], origin[1]}, {size, size}, spacing);
  }
  EXPECT_EQ(patch.rgb.size(), cv::Size(static_cast<int>(size), static_cast<int>(size)));
  EXPECT_EQ(patch.rgb.type(), CV_8UC3);
  EXPECT_EQ(patch.level, read["level"].as<int>());
  const int valid = cv::countNonZero(patch.valid);
  if (read["valid_pixels"]) {
    EXPECT_EQ(valid, read["valid_pixels"].as<int>());
  } else {
    EXPECT_EQ(valid, size * size);
  }
  // Real content, not a blank buffer: some variation in the pixels.
  cv::Scalar mean;
  cv::Scalar stddev;
  cv::meanStdDev(patch.rgb, mean, stddev, patch.valid);
  EXPECT_GT(stddev[0] + stddev[1] + stddev[2], 1.0);
}

class RealSlideCase : public ::testing::TestWithParam<fs::path> {};

TEST_P(RealSlideCase, MatchesItsYaml) {
  const YAML::Node spec = YAML::LoadFile(GetParam().string());
  const auto relative = spec["slide"].as<std::string>();
  SLIDESTREAM_REQUIRE_DATA(slide, relative);
  const OpenOptions options = open_options(spec["options"]);
  if (spec["error"]) {
    try {
      open_slide(slide, options);
      FAIL() << "expected an error opening " << relative;
    } catch (const Error& error) {
      EXPECT_EQ(std::string(error_code_name(error.code())), spec["error"]["code"].as<std::string>())
          << error.what();
      EXPECT_NE(std::string(error.what()).find(spec["error"]["message"].as<std::string>()),
                std::string::npos)
          << error.what();
      EXPECT_NE(std::string(error.what()).find(slide.filename().string()), std::string::npos)
          << "the message names the file: " << error.what();
    }
    return;
  }
  const auto reader = open_slide(slide, options);
  check_expectations(reader->info(), spec["expect"]);
  if (spec["read"]) {
    check_read(*reader, spec["read"]);
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, RealSlideCase, ::testing::ValuesIn(case_files()),
                         [](const auto& param_info) {
                           std::string name = param_info.param.stem().string();
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

TEST(RealSlides, AssociatedImagesHaveTheirStoredSize) {
  SLIDESTREAM_REQUIRE_DATA(slide, "wsi/CMU-1-Small-Region.svs");
  const auto reader = open_slide(slide);
  const cv::Mat thumbnail = reader->read_associated("thumbnail");
  EXPECT_EQ(thumbnail.size(), cv::Size(574, 768));
  EXPECT_GT(cv::mean(thumbnail)[0], 100.0);
  EXPECT_THROW(reader->read_associated("nonexistent"), Error);
}

TEST(RealSlides, QptiffAssociatedImagesComeFromItsTypedPages) {
  SLIDESTREAM_REQUIRE_DATA(slide, "wsi/small_vectra.qptiff");
  const auto reader = open_slide(slide);
  EXPECT_EQ(reader->read_associated("thumbnail").size(), cv::Size(480, 360));
  EXPECT_EQ(reader->read_associated("label").size(), cv::Size(199, 120));
}

}  // namespace
}  // namespace slidestream
