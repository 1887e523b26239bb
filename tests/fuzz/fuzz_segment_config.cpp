// Fuzzes the segment config loader (load_segment_config): a YAML file and `--set` overrides,
// split as fuzz_support.hpp (ConfigInput) describes.
#include "fuzz_support.hpp"
#include "slidestream/jobs/segment.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  slidestream::fuzz::check_config_loader(
      data, size, &slidestream::load_segment_config,
      [](const slidestream::SegmentConfig& config) { return config.resolved_yaml(); });
  return 0;
}
