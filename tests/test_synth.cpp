// Tests of slidestream synth: layout invariants, the pixel-centre class rule, and the written
// slide, truth raster and GeoJSON agreeing with each other.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <vips/vips8>

#include "slidestream/core.hpp"
#include "slidestream/synth.hpp"

namespace fs = std::filesystem;
using slidestream::ErrorCode;
using slidestream::SynthClass;
using slidestream::SynthLayout;
using slidestream::SynthOptions;
using slidestream::SynthPolygon;

namespace {

using Ring = std::vector<std::pair<double, double>>;

bool ring_contains(const Ring& ring, double px, double py) {
  bool inside = false;
  for (std::size_t i = 0, j = ring.size() - 1; i < ring.size(); j = i++) {
    const auto [xi, yi] = ring[i];
    const auto [xj, yj] = ring[j];
    if ((yi > py) != (yj > py) && px < (xj - xi) * (py - yi) / (yj - yi) + xi) {
      inside = !inside;
    }
  }
  return inside;
}

std::pair<double, double> centroid(const Ring& ring) {
  double x = 0, y = 0;
  for (const auto& [px, py] : ring) {
    x += px;
    y += py;
  }
  return {x / ring.size(), y / ring.size()};
}

std::vector<const SynthPolygon*> polygons_of(const SynthLayout& layout, SynthClass label) {
  std::vector<const SynthPolygon*> out;
  for (const SynthPolygon& polygon : layout.polygons) {
    if (polygon.label == label) {
      out.push_back(&polygon);
    }
  }
  return out;
}

SynthOptions small_options(std::uint64_t seed = 7) {
  SynthOptions options;
  options.size = {1536, 1024};
  options.seed = seed;
  options.progress = false;
  return options;
}

// The pixels of one page of a TIFF, as a byte vector (bands interleaved).
std::vector<std::uint8_t> read_pixels(const fs::path& path, int page, vips::VImage* header) {
  vips::VImage image =
      vips::VImage::new_from_file(path.c_str(), vips::VImage::option()->set("page", page));
  image = image.copy_memory();
  if (header != nullptr) {
    *header = image;
  }
  const auto* data = static_cast<const std::uint8_t*>(image.data());
  return {data, data + static_cast<std::size_t>(image.width()) * image.height() * image.bands()};
}

class SynthFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(VIPS_INIT("test_synth"), 0);
    folder_ = fs::temp_directory_path() /
              ("slidestream_test_synth_" + std::to_string(::getpid()) + "_" +
               ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(folder_);
    fs::create_directories(folder_);
  }
  void TearDown() override { fs::remove_all(folder_); }

  std::set<std::string> folder_names() const {
    std::set<std::string> names;
    for (const auto& entry : fs::directory_iterator(folder_)) {
      names.insert(entry.path().filename().string());
    }
    return names;
  }

  fs::path folder_;
};

}  // namespace

TEST(SynthLayout, IsAPureFunctionOfSizeAndSeed) {
  const SynthLayout a = slidestream::make_synth_layout(small_options(7));
  const SynthLayout b = slidestream::make_synth_layout(small_options(7));
  const SynthLayout c = slidestream::make_synth_layout(small_options(8));
  ASSERT_EQ(a.polygons.size(), b.polygons.size());
  for (std::size_t i = 0; i < a.polygons.size(); ++i) {
    EXPECT_EQ(a.polygons[i].rings, b.polygons[i].rings);
  }
  EXPECT_FALSE(a.polygons.size() == c.polygons.size() &&
               a.polygons[0].rings == c.polygons[0].rings);
}

TEST(SynthLayout, HasStromaWithTumourHolesThenTumoursInsideTheSlide) {
  for (const slidestream::Size size : {slidestream::Size{1536, 1024}, {1024, 1536}, {900, 900}}) {
    for (std::uint64_t seed = 1; seed <= 20; ++seed) {
      SynthOptions options = small_options(seed);
      options.size = size;
      const SynthLayout layout = slidestream::make_synth_layout(options);
      const auto stroma = polygons_of(layout, SynthClass::kStroma);
      const auto tumours = polygons_of(layout, SynthClass::kTumour);
      ASSERT_GE(stroma.size(), 2U);
      ASSERT_EQ(layout.polygons.size(), stroma.size() + tumours.size());
      EXPECT_EQ(layout.polygons[stroma.size()].label, SynthClass::kTumour);  // stroma first
      std::size_t holes = 0;
      for (const SynthPolygon* region : stroma) {
        holes += region->rings.size() - 1;
        EXPECT_GE(region->rings.size(), 2U);
        EXPECT_LE(region->rings.size(), 3U);
      }
      EXPECT_EQ(holes, tumours.size());
      for (const SynthPolygon& polygon : layout.polygons) {
        for (const Ring& ring : polygon.rings) {
          EXPECT_GE(ring.size(), 64U);
          for (const auto& [x, y] : ring) {
            ASSERT_TRUE(x >= 0 && x <= size.width && y >= 0 && y <= size.height);
          }
        }
      }
      // Every tumour lies strictly inside exactly one tissue outline and overlaps no tumour.
      for (const SynthPolygon* tumour : tumours) {
        int containing = 0;
        for (const SynthPolygon* region : stroma) {
          const Ring& outer = region->rings[0];
          const bool all_in = std::all_of(
              tumour->rings[0].begin(), tumour->rings[0].end(),
              [&](const auto& point) { return ring_contains(outer, point.first, point.second); });
          containing += all_in ? 1 : 0;
        }
        EXPECT_EQ(containing, 1) << "seed " << seed;
        for (const SynthPolygon* other : tumours) {
          if (other == tumour) {
            continue;
          }
          for (const auto& [x, y] : other->rings[0]) {
            ASSERT_FALSE(ring_contains(tumour->rings[0], x, y)) << "seed " << seed;
          }
        }
      }
    }
  }
}

TEST(SynthClassAt, UsesPixelCentresEvenOddAndTumourOverStroma) {
  SynthLayout layout;
  layout.size = {40, 40};
  const Ring square = {{10, 10}, {20, 10}, {20, 20}, {10, 20}};
  const Ring hole = {{14, 14}, {16, 14}, {16, 16}, {14, 16}};
  const Ring tumour = {{13, 13}, {17, 13}, {17, 17}, {13, 17}};
  layout.polygons.push_back({SynthClass::kStroma, {square, hole}});
  layout.polygons.push_back({SynthClass::kTumour, {tumour}});
  EXPECT_EQ(slidestream::synth_class_at(layout, 10, 10), SynthClass::kStroma);  // centre 10.5
  EXPECT_EQ(slidestream::synth_class_at(layout, 19, 19), SynthClass::kStroma);  // centre 19.5
  EXPECT_EQ(slidestream::synth_class_at(layout, 20, 15), SynthClass::kBackground);
  EXPECT_EQ(slidestream::synth_class_at(layout, 9, 15), SynthClass::kBackground);
  EXPECT_EQ(slidestream::synth_class_at(layout, 15, 15), SynthClass::kTumour);  // in the hole
  EXPECT_EQ(slidestream::synth_class_at(layout, 13, 16), SynthClass::kTumour);  // tumour wins
  EXPECT_EQ(slidestream::synth_class_at(layout, 12, 16), SynthClass::kStroma);
}

TEST(SynthClassAt, FindsTumourCentresStromaRimsAndBackgroundCorners) {
  const SynthLayout layout = slidestream::make_synth_layout(small_options());
  EXPECT_EQ(slidestream::synth_class_at(layout, 0, 0), SynthClass::kBackground);
  EXPECT_EQ(slidestream::synth_class_at(layout, 1535, 1023), SynthClass::kBackground);
  for (const SynthPolygon* tumour : polygons_of(layout, SynthClass::kTumour)) {
    const auto [x, y] = centroid(tumour->rings[0]);
    EXPECT_EQ(slidestream::synth_class_at(layout, static_cast<std::int64_t>(x),
                                          static_cast<std::int64_t>(y)),
              SynthClass::kTumour);
  }
  for (const SynthPolygon* region : polygons_of(layout, SynthClass::kStroma)) {
    const Ring& outer = region->rings[0];
    const auto [cx, cy] = centroid(outer);
    // 4 % of the way from an outline vertex to the centre: tissue, and far from any tumour.
    const double x = outer[0].first + 0.04 * (cx - outer[0].first);
    const double y = outer[0].second + 0.04 * (cy - outer[0].second);
    EXPECT_EQ(slidestream::synth_class_at(layout, static_cast<std::int64_t>(x),
                                          static_cast<std::int64_t>(y)),
              SynthClass::kStroma);
  }
}

TEST_F(SynthFiles, WritesSlideTruthAndAnnotationsThatAgree) {
  SynthOptions options = small_options();
  options.truth_path = folder_ / "truth.tif";
  options.annotations_path = folder_ / "regions.geojson";
  slidestream::synthesize_slide(folder_ / "slide.tif", options);
  EXPECT_EQ(folder_names(),
            (std::set<std::string>{"slide.tif", "truth.tif", "regions.geojson"}));  // no temps

  vips::VImage slide_header;
  const auto rgb = read_pixels(folder_ / "slide.tif", 0, &slide_header);
  EXPECT_EQ(slide_header.width(), 1536);
  EXPECT_EQ(slide_header.height(), 1024);
  EXPECT_EQ(slide_header.bands(), 3);
  EXPECT_NEAR(slide_header.xres(), 2000.0, 1e-6);  // px/mm for 0.5 um/px
  EXPECT_NEAR(slide_header.yres(), 2000.0, 1e-6);
  EXPECT_GE(slide_header.get_int("n-pages"), 3);

  vips::VImage truth_header;
  const auto truth = read_pixels(folder_ / "truth.tif", 0, &truth_header);
  ASSERT_EQ(truth_header.bands(), 1);
  ASSERT_EQ(truth.size(), 1536U * 1024U);
  EXPECT_GE(truth_header.get_int("n-pages"), 3);

  // The raster follows synth_class_at exactly: on a sample grid and on full rows through tumours.
  const SynthLayout layout = slidestream::make_synth_layout(options);
  std::set<std::int64_t> rows;
  for (std::int64_t y = 0; y < 1024; y += 7) {
    rows.insert(y);
  }
  for (const SynthPolygon* tumour : polygons_of(layout, SynthClass::kTumour)) {
    rows.insert(static_cast<std::int64_t>(centroid(tumour->rings[0]).second));
  }
  std::int64_t mismatches = 0;
  for (const std::int64_t y : rows) {
    const std::int64_t step = y % 7 == 0 ? 3 : 1;
    for (std::int64_t x = 0; x < 1536; x += step) {
      const auto expected = static_cast<std::uint8_t>(slidestream::synth_class_at(layout, x, y));
      mismatches += truth[y * 1536 + x] != expected ? 1 : 0;
    }
  }
  EXPECT_EQ(mismatches, 0);

  // Colours by class: background near white, tumour clearly darker than stroma.
  double sum[3][3] = {};
  double count[3] = {};
  for (std::size_t i = 0; i < truth.size(); ++i) {
    ASSERT_LE(truth[i], 2);
    count[truth[i]] += 1;
    for (int c = 0; c < 3; ++c) {
      sum[truth[i]][c] += rgb[3 * i + c];
    }
  }
  ASSERT_GT(count[1], 10000);
  ASSERT_GT(count[2], 10000);
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(sum[0][c] / count[0], 243.0, 3.0);
  }
  const auto brightness = [&](int label) {
    return (sum[label][0] + sum[label][1] + sum[label][2]) / (3 * count[label]);
  };
  EXPECT_GT(brightness(0) - brightness(1), 40.0);
  EXPECT_GT(brightness(1) - brightness(2), 25.0);
  EXPECT_GT(sum[1][0] / count[1], sum[1][1] / count[1] + 40);  // stroma is pink: red >> green

  // Pyramid levels of the truth keep labels (no averaged values like 1 between 0 and 2).
  const auto level1 = read_pixels(folder_ / "truth.tif", 1, nullptr);
  EXPECT_TRUE(std::all_of(level1.begin(), level1.end(), [](std::uint8_t v) { return v <= 2; }));
  EXPECT_TRUE(std::any_of(level1.begin(), level1.end(), [](std::uint8_t v) { return v == 2; }));
}

TEST_F(SynthFiles, WritesQuPathGeoJsonWithClosedRings) {
  SynthOptions options = small_options(3);
  options.annotations_path = folder_ / "regions.geojson";
  slidestream::synthesize_slide(folder_ / "slide.tif", options);
  std::ifstream stream(*options.annotations_path);
  const nlohmann::json collection = nlohmann::json::parse(stream);
  const SynthLayout layout = slidestream::make_synth_layout(options);
  EXPECT_EQ(collection.at("type"), "FeatureCollection");
  const auto& features = collection.at("features");
  ASSERT_EQ(features.size(), layout.polygons.size());
  for (std::size_t i = 0; i < features.size(); ++i) {
    const auto& feature = features[i];
    const SynthPolygon& polygon = layout.polygons[i];
    EXPECT_EQ(feature.at("type"), "Feature");
    EXPECT_EQ(feature.at("properties").at("objectType"), "annotation");
    const auto& classification = feature.at("properties").at("classification");
    EXPECT_EQ(classification.at("name"), polygon.label == SynthClass::kTumour ? "Tumor" : "Stroma");
    EXPECT_EQ(classification.at("color").size(), 3U);
    const auto& geometry = feature.at("geometry");
    EXPECT_EQ(geometry.at("type"), "Polygon");
    const auto& rings = geometry.at("coordinates");
    ASSERT_EQ(rings.size(), polygon.rings.size());
    for (std::size_t r = 0; r < rings.size(); ++r) {
      ASSERT_EQ(rings[r].size(), polygon.rings[r].size() + 1);
      EXPECT_EQ(rings[r].front(), rings[r].back());
      EXPECT_DOUBLE_EQ(rings[r][1][0].get<double>(), polygon.rings[r][1].first);
      EXPECT_DOUBLE_EQ(rings[r][1][1].get<double>(), polygon.rings[r][1].second);
    }
  }
}

TEST_F(SynthFiles, PixelsDependOnlyOnSeedNotOnThreadCount) {
  SynthOptions options = small_options(11);
  options.size = {768, 512};
  options.compression = "deflate";
  const int default_concurrency = vips_concurrency_get();
  vips_concurrency_set(1);
  slidestream::synthesize_slide(folder_ / "one.tif", options);
  vips_concurrency_set(4);
  slidestream::synthesize_slide(folder_ / "four.tif", options);
  vips_concurrency_set(default_concurrency);
  options.seed = 12;
  slidestream::synthesize_slide(folder_ / "other.tif", options);
  const auto one = read_pixels(folder_ / "one.tif", 0, nullptr);
  EXPECT_EQ(one, read_pixels(folder_ / "four.tif", 0, nullptr));
  EXPECT_NE(one, read_pixels(folder_ / "other.tif", 0, nullptr));
}

TEST_F(SynthFiles, WithoutSpacingWritesLibvipsDefaultResolution) {
  SynthOptions options = small_options();
  options.size = {512, 256};
  options.mpp_um = std::nullopt;
  options.compression = "lzw";
  options.tile_size = 128;
  slidestream::synthesize_slide(folder_ / "slide.tif", options);
  vips::VImage header;
  read_pixels(folder_ / "slide.tif", 0, &header);
  EXPECT_NEAR(header.xres(), 1.0, 1e-9);    // 1 px/mm = 1000 um/px: no usable spacing
  EXPECT_EQ(header.get_int("n-pages"), 3);  // 512, 256 and 128 px wide
}

TEST_F(SynthFiles, RejectsBadOptionsBeforeWritingAnything) {
  const auto expect_code = [&](const SynthOptions& options, ErrorCode code, const char* what) {
    try {
      slidestream::synthesize_slide(folder_ / "slide.tif", options);
      ADD_FAILURE() << "no error for " << what;
    } catch (const slidestream::Error& error) {
      EXPECT_EQ(error.code(), code) << what << ": " << error.what();
    }
  };
  SynthOptions options = small_options();
  options.size = {0, 100};
  expect_code(options, ErrorCode::kInvalidArgument, "zero width");
  options = small_options();
  options.size = {std::int64_t{1} << 31, 100};
  expect_code(options, ErrorCode::kInvalidArgument, "width over 2^31-1");
  options = small_options();
  options.mpp_um = 0.0;
  expect_code(options, ErrorCode::kInvalidArgument, "zero mpp");
  options.mpp_um = 250.0;
  expect_code(options, ErrorCode::kInvalidArgument, "mpp over 200");
  options = small_options();
  options.tile_size = 100;
  expect_code(options, ErrorCode::kInvalidArgument, "tile size 100");
  options = small_options();
  options.jpeg_quality = 0;
  expect_code(options, ErrorCode::kInvalidArgument, "quality 0");
  options = small_options();
  options.compression = "png";
  expect_code(options, ErrorCode::kInvalidArgument, "compression png");
  options = small_options();
  options.truth_path = folder_ / "missing" / "truth.tif";
  expect_code(options, ErrorCode::kOutputError, "missing truth folder");
  EXPECT_TRUE(folder_names().empty());

  try {
    slidestream::synthesize_slide(folder_ / "missing" / "slide.tif", small_options());
    ADD_FAILURE() << "no error for a missing output folder";
  } catch (const slidestream::Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kOutputError);
    EXPECT_NE(std::string(error.what()).find("missing"), std::string::npos);
  }
}
