#include "slidestream/core.hpp"

namespace slidestream {

std::string_view error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInternal:
      return "internal";
    case ErrorCode::kInvalidArgument:
      return "invalid_argument";
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kUnsupportedFormat:
      return "unsupported_format";
    case ErrorCode::kCorruptData:
      return "corrupt_data";
    case ErrorCode::kMissingMetadata:
      return "missing_metadata";
    case ErrorCode::kInvalidConfig:
      return "invalid_config";
    case ErrorCode::kOutputError:
      return "output_error";
    case ErrorCode::kModelError:
      return "model_error";
    case ErrorCode::kPartialFailure:
      return "partial_failure";
  }
  return "unknown";
}

}  // namespace slidestream
