// Augmentation of a whole patch set with one random draw (OpenCV transforms, stain.hpp jitter).
#include "slidestream/training/augment.hpp"

#include <opencv2/imgproc.hpp>
#include <random>

#include "slidestream/core.hpp"
#include "slidestream/training/config.hpp"

namespace slidestream {

namespace {

// One draw of every random parameter, shared by all branches of a patch set.
struct Draw {
  bool flip_x = false;
  bool flip_y = false;
  int quarter_turns = 0;
  double angle_deg = 0;
  double scale = 1;
  double gain = 1;
  double offset = 0;
  std::uint64_t hed_seed = 0;
};

Draw draw(const AugmentConfig& config, std::uint64_t seed) {
  std::mt19937_64 random(seed);
  // A fixed 53-bit conversion, so draws do not depend on the standard library's distributions.
  auto uniform = [&random](double low, double high) {
    const double unit = static_cast<double>(random() >> 11) * 0x1.0p-53;
    return low + (high - low) * unit;
  };
  Draw d;
  d.flip_x = config.flips && uniform(0, 1) < 0.5;
  d.flip_y = config.flips && uniform(0, 1) < 0.5;
  d.quarter_turns = config.rotate90 ? static_cast<int>(uniform(0, 4)) % 4 : 0;
  d.angle_deg = uniform(-config.affine_rotation_deg, config.affine_rotation_deg);
  d.scale = uniform(1 - config.affine_scale, 1 + config.affine_scale);
  d.gain = uniform(1 - config.contrast, 1 + config.contrast);
  d.offset = uniform(-config.brightness, config.brightness) * 255.0;
  d.hed_seed = random();
  return d;
}

// Flips, quarter turns and the affine about the centre; `fill` for pixels moved in from outside.
cv::Mat geometric(const cv::Mat& image, const Draw& d, int interpolation, const cv::Scalar& fill) {
  cv::Mat out = image.clone();
  if (d.flip_x) {
    cv::flip(out, out, 1);
  }
  if (d.flip_y) {
    cv::flip(out, out, 0);
  }
  if (d.quarter_turns > 0) {
    static const cv::RotateFlags kTurns[] = {cv::ROTATE_90_CLOCKWISE, cv::ROTATE_180,
                                             cv::ROTATE_90_COUNTERCLOCKWISE};
    cv::rotate(out, out, kTurns[d.quarter_turns - 1]);
  }
  if (d.angle_deg != 0 || d.scale != 1) {
    // Pixel i spans [i, i + 1), so the centre of an n-pixel side is at (n - 1) / 2 in OpenCV's
    // pixel-centre frame; every branch turns about the shared centre.
    const cv::Point2f centre((static_cast<float>(out.cols) - 1) / 2,
                             (static_cast<float>(out.rows) - 1) / 2);
    const cv::Mat matrix = cv::getRotationMatrix2D(centre, d.angle_deg, d.scale);
    cv::Mat warped;
    cv::warpAffine(out, warped, matrix, out.size(), interpolation, cv::BORDER_CONSTANT, fill);
    out = warped;
  }
  return out;
}

}  // namespace

Augmenter::Augmenter(AugmentConfig config, int ignore_label, StainParams stain)
    : config_(config), ignore_label_(ignore_label), stain_(std::move(stain)) {
  config_.validate();
}

void Augmenter::apply(PatchSet& patches, std::uint64_t seed) const {
  const Draw d = draw(config_, seed);
  const bool photometric = d.gain != 1 || d.offset != 0;
  const bool hed = config_.hed_sigma_factor > 0 || config_.hed_sigma_bias > 0;
  for (std::size_t b = 0; b < patches.branches.size(); ++b) {
    cv::Mat rgb = geometric(patches.branches[b], d, cv::INTER_LINEAR, cv::Scalar::all(255));
    if (hed) {
      rgb = hed_jitter(rgb, stain_, config_.hed_sigma_factor, config_.hed_sigma_bias, d.hed_seed);
    }
    if (photometric) {
      const cv::Scalar mean = cv::mean(rgb);
      const double centre = (mean[0] + mean[1] + mean[2]) / 3;
      rgb.convertTo(rgb, CV_8UC3, d.gain, (1 - d.gain) * centre + d.offset);  // saturates
    }
    patches.branches[b] = rgb;
    if (b < patches.valid.size() && !patches.valid[b].empty()) {
      patches.valid[b] = geometric(patches.valid[b], d, cv::INTER_NEAREST, cv::Scalar::all(0));
    }
    if (b < patches.labels.size() && !patches.labels[b].empty()) {
      patches.labels[b] =
          geometric(patches.labels[b], d, cv::INTER_NEAREST, cv::Scalar::all(ignore_label_));
    }
  }
}

}  // namespace slidestream
