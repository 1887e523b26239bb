// Reads concentric target and context patches around one point of a slide, the way HookNet
// sees tissue, and saves them as PNG.
//
//   example_read_patch SLIDE X Y [OUT_PREFIX]
//
// X, Y: the centre in level-0 pixels. Writes OUT_PREFIX-target.png (284 px at 0.5 um/px) and
// OUT_PREFIX-context.png (284 px at 8 um/px).
#include <cstdlib>
#include <iostream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "slidestream/core.hpp"
#include "slidestream/io.hpp"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "usage: " << argv[0] << " SLIDE X Y [OUT_PREFIX]\n";
    return 2;
  }
  try {
    const auto slide = slidestream::open_slide(argv[1]);
    const slidestream::Point center{std::atoll(argv[2]), std::atoll(argv[3])};
    const std::string prefix = argc > 4 ? argv[4] : "patch";
    for (const auto& [name, spacing_um] : {std::pair{"target", 0.5}, std::pair{"context", 8.0}}) {
      const slidestream::Patch patch = slide->read_centered(center, {284, 284}, spacing_um);
      cv::Mat bgr;
      cv::cvtColor(patch.rgb, bgr, cv::COLOR_RGB2BGR);
      const std::string path = prefix + "-" + name + ".png";
      cv::imwrite(path, bgr);
      std::cout << path << ": " << patch.fov_l0.width * slide->info().spacing.x_um
                << " um field of view from level " << patch.level << "\n";
    }
  } catch (const slidestream::Error& error) {
    std::cerr << "error: " << error.what() << "\n";
    return slidestream::exit_code(error.code());
  }
  return 0;
}
