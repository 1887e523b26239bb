// Fuzzes the stain parameter JSON reader (StainParams::load, as `stain apply --target` and
// `extract`'s stain stage call it). Bad input is kInvalidConfig. Parameters that load save and
// load again bit-exactly (docs/FORMATS.md: doubles are written in their shortest round-trip
// form).
#include <optional>

#include "fuzz_support.hpp"
#include "slidestream/stain.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace fuzz = slidestream::fuzz;
  using slidestream::StainParams;
  const auto path = fuzz::scratch_file("stain.json", fuzz::as_text(data, size));
  std::optional<StainParams> params;
  fuzz::expect_clean([&] { params = StainParams::load(path); },
                     {slidestream::ErrorCode::kInvalidConfig});
  if (!params) {
    return 0;
  }
  const std::string saved = params->to_json();
  try {
    if (StainParams::from_json(saved, "saved").to_json() != saved) {
      fuzz::finding("stain parameters change when saved and loaded again:\n" + saved);
    }
  } catch (const std::exception& error) {
    fuzz::finding(std::string("loaded stain parameters do not load again once saved: ") +
                  error.what() + "\n" + saved);
  }
  return 0;
}
