// predictions.h5: its record (attributes) and the reader that exports draw from.
#include <nlohmann/json.hpp>

#include "slidestream/core.hpp"
#include "slidestream/h5.hpp"
#include "slidestream/stitch.hpp"
#include "stitch_internal.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace slidestream {

namespace {

constexpr const char* kFormat = "slidestream.predictions/1";

json size_json(Size size) {
  return json::array({size.width, size.height});
}

Size size_from(const json& value) {
  return Size{value.at(0).get<std::int64_t>(), value.at(1).get<std::int64_t>()};
}

json layout_json(const PredictionLayout& layout) {
  json classes = json::array();
  for (const LabelClass& label : layout.classes) {
    classes.push_back({{"name", label.name},
                       {"value", label.value},
                       {"colour", {label.colour[0], label.colour[1], label.colour[2]}}});
  }
  return {{"raster_px", size_json(layout.raster_px)},
          {"spacing_um", layout.spacing_um},
          {"tile_px", size_json(layout.tile_px)},
          {"stride_px", size_json(layout.stride_px)},
          {"grid", size_json(layout.grid)},
          {"classes", classes},
          {"blend", blend_mode_name(layout.blend)},
          {"probabilities", layout.probabilities},
          {"heatmap_downsample", layout.heatmap_downsample},
          {"entropy", layout.entropy},
          {"fingerprint", layout.fingerprint}};
}

PredictionLayout layout_from(const json& value) {
  PredictionLayout layout;
  layout.raster_px = size_from(value.at("raster_px"));
  layout.spacing_um = value.at("spacing_um").get<double>();
  layout.tile_px = size_from(value.at("tile_px"));
  layout.stride_px = size_from(value.at("stride_px"));
  layout.grid = size_from(value.at("grid"));
  for (const json& entry : value.at("classes")) {
    LabelClass label;
    label.name = entry.at("name").get<std::string>();
    label.value = entry.at("value").get<std::uint8_t>();
    const json& colour = entry.at("colour");
    label.colour = cv::Vec3b(colour.at(0).get<std::uint8_t>(), colour.at(1).get<std::uint8_t>(),
                             colour.at(2).get<std::uint8_t>());
    layout.classes.push_back(label);
  }
  layout.blend = parse_blend_mode(value.at("blend").get<std::string>());
  layout.probabilities = value.at("probabilities").get<bool>();
  layout.heatmap_downsample = value.at("heatmap_downsample").get<int>();
  layout.entropy = value.at("entropy").get<bool>();
  layout.fingerprint = value.at("fingerprint").get<std::string>();
  return layout;
}

json record_json(const PredictionRecord& record) {
  const SlideInfo& slide = record.slide;
  return {{"slide_id", record.slide_id},
          {"slide_path", slide.path.string()},
          {"slide_size", size_json(slide.size())},
          {"slide_spacing_um", {slide.spacing.x_um, slide.spacing.y_um}},
          {"spacing_source", spacing_source_name(slide.spacing_source)},
          {"quickhash", slide.quickhash},
          {"model_sha256", record.model_sha256},
          {"model_architecture", record.model_architecture},
          {"config_yaml", record.config_yaml},
          {"planned_tiles", record.planned_tiles}};
}

PredictionRecord record_from(const json& value) {
  PredictionRecord record;
  record.slide_id = value.at("slide_id").get<std::string>();
  record.slide.path = value.at("slide_path").get<std::string>();
  Level level0;
  level0.size = size_from(value.at("slide_size"));
  record.slide.levels.push_back(level0);
  record.slide.spacing = Spacing{value.at("slide_spacing_um").at(0).get<double>(),
                                 value.at("slide_spacing_um").at(1).get<double>()};
  record.slide.levels.front().spacing = record.slide.spacing;
  record.slide.spacing_source = parse_spacing_source(value.at("spacing_source").get<std::string>());
  record.slide.quickhash = value.at("quickhash").get<std::string>();
  record.model_sha256 = value.at("model_sha256").get<std::string>();
  record.model_architecture = value.at("model_architecture").get<std::string>();
  record.config_yaml = value.at("config_yaml").get<std::string>();
  record.planned_tiles = value.at("planned_tiles").get<std::uint64_t>();
  return record;
}

}  // namespace

void detail::write_prediction_record(h5::File& file, const PredictionLayout& layout,
                                     const PredictionRecord& record, const MergeStats& stats) {
  file.set_attribute("format", std::string(kFormat));
  file.set_attribute("version", std::string(kVersion));
  file.set_attribute("layout_json", layout_json(layout).dump());
  file.set_attribute("record_json", record_json(record).dump());
  // The same facts as plain attributes, for h5py users.
  file.set_attribute("spacing_um", layout.spacing_um);
  file.set_attribute("slide_id", record.slide_id);
  file.set_attribute("slide_path", record.slide.path.string());
  file.set_attribute("spacing_source", spacing_source_name(record.slide.spacing_source));
  file.set_attribute("model_sha256", record.model_sha256);
  file.set_attribute("config_yaml", record.config_yaml);
  file.set_attribute("tiles_processed", static_cast<std::int64_t>(stats.tiles));
  file.set_attribute("tiles_planned", static_cast<std::int64_t>(record.planned_tiles));
  h5::Dataset counts = file.create_dataset("label_pixels", h5::Type::kUInt64, {256}, {256}, 0);
  counts.write(h5::Type::kUInt64, {0}, {256}, stats.label_pixels.data());
}

detail::PartInfo detail::read_part_info(const fs::path& part) {
  const auto file = h5::File::try_open(part, h5::File::Access::kReadOnly);
  if (!file) {
    throw Error(ErrorCode::kCorruptData, "journal part '" + part.string() +
                                             "' cannot be read; delete the folder to start over");
  }
  PartInfo info;
  info.fingerprint = file->string_attribute("fingerprint").value_or("");
  info.first = static_cast<std::uint64_t>(file->int_attribute("first").value_or(-1));
  info.count = static_cast<std::uint64_t>(file->int_attribute("count").value_or(0));
  return info;
}

struct PredictionCache::Impl {
  std::string path;
  h5::File file;
  h5::Dataset labels;
  h5::Dataset probabilities;
  h5::Dataset entropy;
  PredictionLayout layout;
  PredictionRecord record;
  MergeStats stats;

  cv::Mat read(const h5::Dataset& dataset, std::optional<int> plane, const Rect& region,
               Size bounds) const;
};

cv::Mat PredictionCache::Impl::read(const h5::Dataset& dataset, std::optional<int> plane,
                                    const Rect& region, Size bounds) const {
  cv::Mat out(static_cast<int>(region.height), static_cast<int>(region.width), CV_8UC1,
              cv::Scalar(0));
  const Rect inside = intersect(region, Rect{0, 0, bounds.width, bounds.height});
  if (inside.empty()) {
    return out;
  }
  cv::Mat block(static_cast<int>(inside.height), static_cast<int>(inside.width), CV_8UC1);
  h5::Dims start{static_cast<std::uint64_t>(inside.y), static_cast<std::uint64_t>(inside.x)};
  h5::Dims count{static_cast<std::uint64_t>(inside.height),
                 static_cast<std::uint64_t>(inside.width)};
  if (plane) {
    start.insert(start.begin(), static_cast<std::uint64_t>(*plane));
    count.insert(count.begin(), 1);
  }
  dataset.read(h5::Type::kUInt8, start, count, block.data);
  block.copyTo(out(cv::Rect(static_cast<int>(inside.x - region.x),
                            static_cast<int>(inside.y - region.y), block.cols, block.rows)));
  return out;
}

PredictionCache::PredictionCache(const fs::path& path) : impl_(std::make_unique<Impl>()) {
  require_readable_file(path);
  Impl& impl = *impl_;
  impl.path = path.string();
  auto opened = h5::File::try_open(path, h5::File::Access::kReadOnly);
  if (!opened) {
    throw Error(ErrorCode::kCorruptData, "'" + impl.path +
                                             "' is not a readable HDF5 file; rerun "
                                             "'slidestream segment' for this slide");
  }
  impl.file = std::move(*opened);
  const h5::File& file = impl.file;
  const auto format = file.string_attribute("format");
  if (format != std::string(kFormat)) {
    throw Error(ErrorCode::kCorruptData, "'" + impl.path + "' is not a slidestream predictions " +
                                             "file (format " + format.value_or("missing") + ")");
  }
  try {
    impl.layout = layout_from(json::parse(file.string_attribute("layout_json").value()));
    impl.record = record_from(json::parse(file.string_attribute("record_json").value()));
  } catch (const std::exception& error) {
    throw Error(ErrorCode::kCorruptData,
                "'" + impl.path + "' has a damaged layout record: " + error.what());
  }
  impl.labels = file.open_dataset("labels");
  if (impl.layout.probabilities) {
    impl.probabilities = file.open_dataset("probabilities");
  }
  if (impl.layout.entropy) {
    impl.entropy = file.open_dataset("entropy");
  }
  file.open_dataset("label_pixels")
      .read(h5::Type::kUInt64, {0}, {256}, impl.stats.label_pixels.data());
  impl.stats.tiles = static_cast<std::uint64_t>(file.int_attribute("tiles_processed").value_or(0));
}

PredictionCache::~PredictionCache() = default;

const PredictionLayout& PredictionCache::layout() const {
  return impl_->layout;
}
const PredictionRecord& PredictionCache::record() const {
  return impl_->record;
}
const MergeStats& PredictionCache::stats() const {
  return impl_->stats;
}

Size PredictionCache::heatmap_px() const {
  const int k = impl_->layout.heatmap_downsample;
  const Size raster = impl_->layout.raster_px;
  return {(raster.width + k - 1) / k, (raster.height + k - 1) / k};
}

cv::Mat PredictionCache::read_labels(const Rect& region) const {
  return impl_->read(impl_->labels, std::nullopt, region, impl_->layout.raster_px);
}

cv::Mat PredictionCache::read_probability(int index, const Rect& region) const {
  if (!impl_->probabilities.valid()) {
    throw Error(
        ErrorCode::kInvalidArgument,
        "'" + impl_->path + "' holds no probabilities; segment with --set outputs.heatmaps=true");
  }
  if (index < 0 || index >= static_cast<int>(impl_->layout.classes.size())) {
    throw Error(ErrorCode::kInvalidArgument, "no class " + std::to_string(index));
  }
  return impl_->read(impl_->probabilities, index, region, heatmap_px());
}

cv::Mat PredictionCache::read_entropy(const Rect& region) const {
  if (!impl_->entropy.valid()) {
    throw Error(
        ErrorCode::kInvalidArgument,
        "'" + impl_->path + "' holds no uncertainty; segment with --set outputs.uncertainty=true");
  }
  return impl_->read(impl_->entropy, std::nullopt, region, impl_->layout.raster_px);
}

}  // namespace slidestream
