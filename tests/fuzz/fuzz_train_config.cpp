// Fuzzes the train config loader (load_train_config): a YAML file and `--set` overrides, split
// as fuzz_support.hpp (ConfigInput) describes.
#include "fuzz_support.hpp"
#include "slidestream/training/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  slidestream::fuzz::check_config_loader(
      data, size,
      [](const std::optional<std::filesystem::path>& path,
         const std::vector<std::string>& overrides) {
        return slidestream::load_train_config(path, overrides);
      },
      [](const slidestream::TrainConfig& config) { return config.yaml; });
  return 0;
}
