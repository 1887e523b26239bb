// Stain parameters as JSON (docs/FORMATS.md, "stain parameters"). nlohmann writes doubles in
// their shortest round-trip form, so to_json -> from_json is bit-exact.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "slidestream/core.hpp"
#include "slidestream/stain.hpp"

namespace slidestream {

namespace {

constexpr const char* kSchema = "slidestream.stain/1";
/// Files of version 1 hold log10 OD values; they are converted on load.
constexpr int kVersionLog10 = 1;

using Json = nlohmann::ordered_json;

[[noreturn]] void bad_field(const std::string& source, const std::string& field,
                            const std::string& why) {
  throw Error(ErrorCode::kInvalidConfig, source + ": stain parameters field '" + field + "' " +
                                             why + " (docs/FORMATS.md, \"stain parameters\")");
}

// Macenko and Vahadane unmix by the two stain OD vectors (the matrix columns): each must point
// into positive OD, and they must differ in direction, else every pixel unmixes to nothing.
void require_stain_vectors(const cv::Matx32d& matrix, const std::string& source) {
  cv::Vec3d columns[2];
  for (int column = 0; column < 2; ++column) {
    columns[column] = {matrix(0, column), matrix(1, column), matrix(2, column)};
    const double smallest = std::min({columns[column][0], columns[column][1], columns[column][2]});
    if (!(cv::norm(columns[column]) > 1e-6) || smallest < -1e-6) {
      bad_field(source, "stain_matrix",
                std::string("column ") + (column == 0 ? "H" : "E") +
                    " must be a non-zero optical-density vector with no negative entry");
    }
  }
  const cv::Vec3d h = cv::normalize(columns[0]);
  const cv::Vec3d e = cv::normalize(columns[1]);
  if (cv::norm(h.cross(e)) < 1e-3) {
    bad_field(source, "stain_matrix", "has H and E columns of the same direction");
  }
}

double number(const Json& json, const std::string& source, const std::string& field) {
  if (!json.contains(field)) {
    bad_field(source, field, "is missing");
  }
  const Json& value = json.at(field);
  if (!value.is_number() || !std::isfinite(value.get<double>())) {
    bad_field(source, field, "must be a finite number");
  }
  return value.get<double>();
}

template <std::size_t N>
std::array<double, N> numbers(const Json& json, const std::string& source,
                              const std::string& field) {
  if (!json.contains(field) || !json.at(field).is_array() || json.at(field).size() != N) {
    bad_field(source, field, "must be an array of " + std::to_string(N) + " numbers");
  }
  std::array<double, N> values{};
  for (std::size_t i = 0; i < N; ++i) {
    const Json& value = json.at(field).at(i);
    if (!value.is_number() || !std::isfinite(value.get<double>())) {
      bad_field(source, field, "must be an array of " + std::to_string(N) + " finite numbers");
    }
    values[i] = value.get<double>();
  }
  return values;
}

}  // namespace

std::string StainParams::to_json() const {
  Json json;
  json["schema"] = kSchema;
  json["version"] = version;
  json["method"] = stain_method_name(method);
  json["io"] = io;
  json["beta"] = beta;
  json["alpha"] = alpha;
  json["lambda"] = lambda;
  json["stain_matrix"] = Json::array();
  for (int row = 0; row < 3; ++row) {
    json["stain_matrix"].push_back({stain_matrix(row, 0), stain_matrix(row, 1)});
  }
  json["max_concentrations"] = max_concentrations;
  json["offplane_ratio"] = offplane_ratio;
  json["lab_mean"] = lab_mean;
  json["lab_std"] = lab_std;
  json["quality_deg"] = quality_deg;
  json["fitted_on"] = fitted_on;
  return json.dump(2) + "\n";
}

StainParams StainParams::from_json(const std::string& text, const std::string& source) {
  Json json;
  try {
    json = Json::parse(text);
  } catch (const nlohmann::json::exception& error) {  // parse_error, or out_of_range: 1e999
    throw Error(ErrorCode::kInvalidConfig,
                source + ": stain parameters are not valid JSON: " + error.what());
  }
  if (!json.is_object()) {
    throw Error(ErrorCode::kInvalidConfig, source + ": stain parameters must be a JSON object");
  }
  if (!json.contains("schema") || json.at("schema") != kSchema) {
    bad_field(source, "schema", std::string("must be \"") + kSchema + "\"");
  }
  StainParams params;
  const double version = number(json, source, "version");
  if (version != kVersion && version != kVersionLog10) {
    bad_field(source, "version", "must be " + std::to_string(kVersion));
  }
  if (!json.contains("method") || !json.at("method").is_string()) {
    bad_field(source, "method", "must be macenko, reinhard or vahadane");
  }
  try {
    params.method = parse_stain_method(json.at("method").get<std::string>());
  } catch (const Error&) {
    bad_field(source, "method", "must be macenko, reinhard or vahadane");
  }
  params.io = number(json, source, "io");
  params.beta = number(json, source, "beta");
  params.alpha = number(json, source, "alpha");
  params.lambda = number(json, source, "lambda");
  const Json& matrix = json.contains("stain_matrix") ? json.at("stain_matrix") : Json();
  if (!matrix.is_array() || matrix.size() != 3) {
    bad_field(source, "stain_matrix", "must be 3 rows (R, G, B) of 2 numbers (H, E)");
  }
  for (std::size_t row = 0; row < 3; ++row) {
    const auto values = numbers<2>(Json{{"row", matrix.at(row)}}, source, "row");
    params.stain_matrix(static_cast<int>(row), 0) = values[0];
    params.stain_matrix(static_cast<int>(row), 1) = values[1];
  }
  if (params.method != StainMethod::kReinhard) {
    require_stain_vectors(params.stain_matrix, source);
  }
  params.max_concentrations = numbers<2>(json, source, "max_concentrations");
  if (version != kVersionLog10) {
    params.offplane_ratio = number(json, source, "offplane_ratio");
  }
  params.lab_mean = numbers<3>(json, source, "lab_mean");
  params.lab_std = numbers<3>(json, source, "lab_std");
  params.quality_deg = number(json, source, "quality_deg");
  if (json.contains("fitted_on") && json.at("fitted_on").is_string()) {
    params.fitted_on = json.at("fitted_on").get<std::string>();
  }
  for (const double value : params.max_concentrations) {
    if (!(value > 0.0)) {
      bad_field(source, "max_concentrations", "must be positive");
    }
  }
  for (const double value : params.lab_std) {
    if (!(value > 0.0)) {
      bad_field(source, "lab_std", "must be positive");
    }
  }
  if (!(params.io > 1.0 && params.io <= 255.0)) {
    bad_field(source, "io", "must be in (1, 255]");
  }
  if (version == kVersionLog10) {
    // Version 1 measured OD in log10 units: the same stain directions, thresholds and maxima
    // ln(10) times smaller than today's natural-log OD.
    const double ln10 = std::log(10.0);
    params.beta *= ln10;
    params.lambda *= ln10;
    params.max_concentrations[0] *= ln10;
    params.max_concentrations[1] *= ln10;  // and no off-plane mean (0: dropped, as before)
    // A value near the largest double overflows there, and saving would write it as null.
    const char* too_large = "is too large for a version 1 file (read as log10 OD, times ln 10)";
    if (!std::isfinite(params.beta)) {
      bad_field(source, "beta", too_large);
    }
    if (!std::isfinite(params.lambda)) {
      bad_field(source, "lambda", too_large);
    }
    if (!std::isfinite(params.max_concentrations[0]) ||
        !std::isfinite(params.max_concentrations[1])) {
      bad_field(source, "max_concentrations", too_large);
    }
  }
  return params;
}

void StainParams::save(const std::filesystem::path& path) const {
  require_writable_output(path);
  AtomicOutput output(path);
  {
    std::ofstream stream(output.temp_path(), std::ios::binary);
    stream << to_json();
    if (!stream.flush()) {
      throw Error(ErrorCode::kOutputError, "cannot write stain parameters to " + path.string());
    }
  }
  output.commit();
}

StainParams StainParams::load(const std::filesystem::path& path) {
  require_readable_file(path);
  std::ifstream stream(path, std::ios::binary);
  std::ostringstream text;
  text << stream.rdbuf();
  return from_json(text.str(), path.string());
}

}  // namespace slidestream
