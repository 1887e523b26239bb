// The prediction layout and the crash-safe journal of tile outputs (a folder of HDF5 parts).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>

#include "slidestream/core.hpp"
#include "slidestream/enum_names.hpp"
#include "slidestream/h5.hpp"
#include "slidestream/stitch.hpp"
#include "stitch_internal.hpp"

namespace fs = std::filesystem;

namespace slidestream {

constexpr EnumNames<BlendMode, 3> kBlendModeNames{{{BlendMode::kNone, "none"},
                                                   {BlendMode::kAverage, "average"},
                                                   {BlendMode::kGaussian, "gaussian"}}};

std::string blend_mode_name(BlendMode mode) {
  return std::string(enum_name(kBlendModeNames, mode));
}

BlendMode parse_blend_mode(const std::string& name) {
  return parse_enum(kBlendModeNames, name, "stitching.blend", ErrorCode::kInvalidConfig);
}

void PredictionLayout::validate() const {
  auto fail = [](const std::string& message) { throw Error(ErrorCode::kInvalidConfig, message); };
  if (raster_px.width <= 0 || raster_px.height <= 0 || tile_px.width <= 0 || tile_px.height <= 0 ||
      stride_px.width <= 0 || stride_px.height <= 0 || !(spacing_um > 0)) {
    fail("the prediction raster needs positive sizes, stride and spacing");
  }
  if (classes.empty() || classes.size() > 255) {
    fail("a model needs 1..255 output classes, not " + std::to_string(classes.size()));
  }
  const int k = heatmap_downsample;
  if (k < 1 || tile_px.width % k != 0 || tile_px.height % k != 0 || stride_px.width % k != 0 ||
      stride_px.height % k != 0) {
    fail("outputs.heatmap_downsample " + std::to_string(k) +
         " must divide the model's output tile (" + std::to_string(tile_px.width) + " px) and " +
         "the stride (" + std::to_string(stride_px.width) + " px)");
  }
  if (blend == BlendMode::kNone && stride_px != tile_px) {
    fail("tiles that overlap or leave gaps need stitching.blend average or gaussian");
  }
}

Rect PredictionLayout::tile_rect(std::int64_t column, std::int64_t row) const {
  return Rect{column * stride_px.width, row * stride_px.height, tile_px.width, tile_px.height};
}

PredictionLayout make_prediction_layout(const SlideInfo& slide, const ModelGeometry& geometry,
                                        Size stride_px) {
  PredictionLayout layout;
  layout.spacing_um = geometry.output.spacing_um;
  layout.tile_px = geometry.output.size_px;
  layout.stride_px = stride_px;
  const double out_x = static_cast<double>(slide.size().width) * slide.spacing.x_um;
  const double out_y = static_cast<double>(slide.size().height) * slide.spacing.y_um;
  layout.raster_px = Size{static_cast<std::int64_t>(std::ceil(out_x / layout.spacing_um - 1e-9)),
                          static_cast<std::int64_t>(std::ceil(out_y / layout.spacing_um - 1e-9))};
  PlanOptions all;
  all.min_tissue_fraction = 0;
  all.stride_px = stride_px;
  const TilePlanner grid(slide, nullptr, geometry, all);
  layout.grid = Size{grid.columns(), grid.rows()};
  return layout;
}

namespace detail {

cv::Mat labels_of(const cv::Mat& probs, const std::vector<LabelClass>& classes) {
  cv::Mat labels(probs.size(), CV_8UC1, cv::Scalar(0));
  const int channels = probs.channels();
  for (int y = 0; y < probs.rows; ++y) {
    const auto* p = probs.ptr<float>(y);
    auto* out = labels.ptr<std::uint8_t>(y);
    for (int x = 0; x < probs.cols; ++x, p += channels) {
      int best = 0;
      for (int c = 1; c < channels; ++c) {
        best = p[c] > p[best] ? c : best;  // ties go to the lower channel: deterministic
      }
      out[x] = classes[static_cast<std::size_t>(best)].value;
    }
  }
  return labels;
}

cv::Mat entropy_u8_of(const cv::Mat& probs) {
  const int channels = probs.channels();
  const double scale = channels > 1 ? 255.0 / std::log(static_cast<double>(channels)) : 0.0;
  cv::Mat entropy(probs.size(), CV_8UC1);
  for (int y = 0; y < probs.rows; ++y) {
    const auto* p = probs.ptr<float>(y);
    auto* out = entropy.ptr<std::uint8_t>(y);
    for (int x = 0; x < probs.cols; ++x, p += channels) {
      double h = 0;
      for (int c = 0; c < channels; ++c) {
        h -= p[c] > 0 ? static_cast<double>(p[c]) * std::log(static_cast<double>(p[c])) : 0.0;
      }
      out[x] = cv::saturate_cast<std::uint8_t>(std::lround(h * scale));
    }
  }
  return entropy;
}

cv::Mat planar_u8_of(const cv::Mat& probs, int downsample) {
  cv::Mat small = probs;
  if (downsample > 1) {
    cv::resize(probs, small, cv::Size(probs.cols / downsample, probs.rows / downsample), 0, 0,
               cv::INTER_AREA);
  }
  std::vector<cv::Mat> planes;
  cv::split(small, planes);
  cv::Mat planar(static_cast<int>(planes.size()) * small.rows, small.cols, CV_8UC1);
  for (std::size_t c = 0; c < planes.size(); ++c) {
    planes[c].convertTo(
        planar.rowRange(static_cast<int>(c) * small.rows, static_cast<int>(c + 1) * small.rows),
        CV_8U, 255.0);
  }
  return planar;
}

std::vector<fs::path> committed_parts(const fs::path& folder) {
  std::vector<fs::path> parts;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("part-", 0) == 0 && entry.path().extension() == ".h5") {
      parts.push_back(entry.path());
    }
  }
  std::sort(parts.begin(), parts.end());
  return parts;
}

}  // namespace detail

struct PredictionJournal::Impl {
  fs::path folder;
  PredictionLayout layout;
  int checkpoint_tiles = 0;
  std::uint64_t committed = 0;  // tiles in committed parts
  int next_part = 0;

  // The part being written.
  std::unique_ptr<AtomicOutput> output;
  h5::File file;
  std::optional<h5::Rows> tiles;
  std::optional<h5::Rows> labels;
  std::optional<h5::Rows> probs;
  std::optional<h5::Rows> entropy;
  std::uint64_t in_part = 0;

  void open_part();
  void commit_part();
  void scan();
};

void PredictionJournal::Impl::scan() {
  std::error_code ec;
  fs::create_directories(folder, ec);
  if (ec) {
    throw Error(ErrorCode::kOutputError,
                "cannot create '" + folder.string() + "': " + ec.message());
  }
  // Temporaries of a killed run are hidden files (AtomicOutput); they never count.
  for (const auto& entry : fs::directory_iterator(folder)) {
    if (entry.path().filename().string().front() == '.') {
      fs::remove(entry.path(), ec);
    }
  }
  bool discard = false;
  for (const fs::path& part : detail::committed_parts(folder)) {
    const detail::PartInfo info = detail::read_part_info(part);
    if (discard || info.fingerprint != layout.fingerprint || info.first != committed) {
      if (!discard) {
        spdlog::info("{}: journal of another model, config or an inconsistent run; starting over",
                     folder.string());
      }
      discard = true;
      fs::remove(part, ec);
      continue;
    }
    committed += info.count;
    ++next_part;
  }
}

void PredictionJournal::Impl::open_part() {
  char name[32];
  std::snprintf(name, sizeof(name), "part-%06d.h5", next_part);
  output = std::make_unique<AtomicOutput>(folder / name);
  // A part lives until the merge (which then removes the journal), so it keeps HDF5's default
  // root-group settings as it always has; gzip level 1 keeps appends cheap.
  file = h5::File::create(output->temp_path(), {});
  const auto h = static_cast<std::uint64_t>(layout.tile_px.height);
  const auto w = static_cast<std::uint64_t>(layout.tile_px.width);
  const auto classes = static_cast<std::uint64_t>(layout.classes.size());
  const h5::Type u8 = h5::Type::kUInt8;
  tiles = file.create_rows("tiles", h5::Type::kInt64, {3}, 1, 0);
  if (layout.blend == BlendMode::kNone) {
    const auto k = static_cast<std::uint64_t>(layout.heatmap_downsample);
    labels = file.create_rows("labels", u8, {h, w}, 1, 1);
    if (layout.probabilities) {
      probs = file.create_rows("probabilities", u8, {classes * (h / k), w / k}, 1, 1);
    }
    if (layout.entropy) {
      entropy = file.create_rows("entropy", u8, {h, w}, 1, 1);
    }
  } else {
    // Blending needs the exact probabilities; labels and entropy come after blending.
    probs = file.create_rows("probabilities_f32", h5::Type::kFloat32, {h, w, classes}, 1, 1);
  }
  in_part = 0;
}

void PredictionJournal::Impl::commit_part() {
  if (!file.valid()) {
    return;
  }
  file.set_attribute("fingerprint", layout.fingerprint);
  file.set_attribute("first", static_cast<std::int64_t>(committed));
  file.set_attribute("count", static_cast<std::int64_t>(in_part));
  tiles.reset();
  labels.reset();
  probs.reset();
  entropy.reset();
  file.close();
  output->commit();
  output.reset();
  committed += in_part;
  ++next_part;
  in_part = 0;
}

PredictionJournal::PredictionJournal(fs::path folder, PredictionLayout layout, int checkpoint_tiles)
    : impl_(std::make_unique<Impl>()) {
  layout.validate();
  if (checkpoint_tiles < 1) {
    throw Error(ErrorCode::kInvalidConfig, "outputs.checkpoint_tiles must be >= 1");
  }
  impl_->folder = std::move(folder);
  impl_->layout = std::move(layout);
  impl_->checkpoint_tiles = checkpoint_tiles;
  impl_->scan();
}

PredictionJournal::~PredictionJournal() = default;

std::uint64_t PredictionJournal::committed_tiles() const {
  return impl_->committed;
}

const fs::path& PredictionJournal::folder() const {
  return impl_->folder;
}

void PredictionJournal::append(const TilePrediction& tile) {
  Impl& impl = *impl_;
  const PredictionLayout& layout = impl.layout;
  const cv::Mat& probs = tile.probs;
  if (probs.depth() != CV_32F || probs.channels() != static_cast<int>(layout.classes.size()) ||
      probs.cols != layout.tile_px.width || probs.rows != layout.tile_px.height) {
    throw Error(ErrorCode::kModelError, "the model returned a " + std::to_string(probs.cols) + "x" +
                                            std::to_string(probs.rows) + " output with " +
                                            std::to_string(probs.channels()) +
                                            " channels; its model.yaml declares " +
                                            std::to_string(layout.tile_px.width) + " px and " +
                                            std::to_string(layout.classes.size()) + " classes");
  }
  if (!impl.file.valid()) {
    impl.open_part();
  }
  const std::int64_t ids[3] = {static_cast<std::int64_t>(tile.spec.index), tile.spec.column,
                               tile.spec.row};
  impl.tiles->append(ids);
  const cv::Mat dense = probs.isContinuous() ? probs : probs.clone();
  if (layout.blend == BlendMode::kNone) {
    impl.labels->append(detail::labels_of(dense, layout.classes).data);
    if (impl.probs) {
      impl.probs->append(detail::planar_u8_of(dense, layout.heatmap_downsample).data);
    }
    if (impl.entropy) {
      impl.entropy->append(detail::entropy_u8_of(dense).data);
    }
  } else {
    impl.probs->append(dense.data);
  }
  if (++impl.in_part >= static_cast<std::uint64_t>(impl.checkpoint_tiles)) {
    impl.commit_part();
  }
}

void PredictionJournal::flush() {
  impl_->commit_part();
}

}  // namespace slidestream
