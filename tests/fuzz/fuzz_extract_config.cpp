// Fuzzes the extract config loader (load_extract_config): a YAML file and `--set` overrides,
// split as fuzz_support.hpp (ConfigInput) describes.
#include "fuzz_support.hpp"
#include "slidestream/jobs/extract.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  slidestream::fuzz::check_config_loader(
      data, size, &slidestream::load_extract_config,
      [](const slidestream::ExtractConfig& config) { return config.resolved_yaml(); });
  return 0;
}
