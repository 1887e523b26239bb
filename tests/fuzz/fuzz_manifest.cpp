// Fuzzes the CSV manifest reader (expand_slide_inputs on a .csv, as extract, segment and
// features call it). Bad input is kInvalidConfig (kNotFound for a manifest that lists no slide).
// Slides that are read have a path, an id that can name an HDF5 group and an output folder
// (not empty, no '/', not "." or "..") and, when given, a positive finite mpp.
#include <cmath>
#include <vector>

#include "fuzz_support.hpp"
#include "slidestream/jobs/batch.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace fuzz = slidestream::fuzz;
  using slidestream::ErrorCode;
  const auto path = fuzz::scratch_file("manifest.csv", fuzz::as_text(data, size));
  std::vector<slidestream::SlideInput> slides;
  fuzz::expect_clean([&] { slides = slidestream::expand_slide_inputs({path.string()}); },
                     {ErrorCode::kInvalidConfig, ErrorCode::kNotFound});
  for (const slidestream::SlideInput& slide : slides) {
    if (slide.path.empty()) {
      fuzz::finding("a manifest slide without a path");
    }
    if (slide.id.empty() || slide.id.find('/') != std::string::npos || slide.id == "." ||
        slide.id == "..") {
      fuzz::finding("a manifest slide id that cannot name an output: '" + slide.id + "'");
    }
    if (slide.mpp_um && !(std::isfinite(*slide.mpp_um) && *slide.mpp_um > 0)) {
      fuzz::finding("a manifest mpp that is not a positive number: " +
                    std::to_string(*slide.mpp_um));
    }
  }
  return 0;
}
