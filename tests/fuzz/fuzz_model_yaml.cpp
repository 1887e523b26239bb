// Fuzzes model.yaml (load_model_description, then ModelDescription::validate as load_model
// does). Bad input is kModelError (the loader) or kInvalidConfig (validate, which load_model
// turns into kModelError). A description that validates is saved as `slidestream train` saves
// it; the saved file loads and validates again and saves to the same bytes.
#include <fstream>
#include <optional>
#include <sstream>

#include "fuzz_support.hpp"
#include "slidestream/models/description.hpp"
#include "slidestream/models/model.hpp"

namespace {

using slidestream::ModelDescription;
namespace fuzz = slidestream::fuzz;

std::string saved_text(const ModelDescription& description, const std::string& name) {
  const std::filesystem::path path = fuzz::scratch_file(name, "");
  slidestream::save_model_description(description, path);
  std::ifstream stream(path, std::ios::binary);
  std::ostringstream text;
  text << stream.rdbuf();
  return text.str();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = fuzz::scratch_file("model.yaml", fuzz::as_text(data, size));
  std::optional<ModelDescription> description;
  fuzz::expect_clean(
      [&] {
        ModelDescription loaded = slidestream::load_model_description(path);
        loaded.validate();
        description = std::move(loaded);
      },
      {slidestream::ErrorCode::kModelError, slidestream::ErrorCode::kInvalidConfig});
  if (!description) {
    return 0;
  }
  try {
    const std::string saved = saved_text(*description, "saved.yaml");
    ModelDescription again =
        slidestream::load_model_description(fuzz::scratch_file("saved.yaml", saved));
    again.validate();
    if (saved_text(again, "saved-again.yaml") != saved) {
      fuzz::finding("a saved model.yaml changes when loaded and saved again:\n" + saved);
    }
  } catch (const std::exception& error) {
    fuzz::finding(std::string("a valid model.yaml does not save and load again: ") + error.what());
  }
  return 0;
}
