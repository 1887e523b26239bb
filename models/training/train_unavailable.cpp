// run_train for builds without the models library (temporary until the networks land).
#include "slidestream/core.hpp"
#include "slidestream/training.hpp"

namespace slidestream {
TrainResult run_train(const TrainJob& /*job*/) {
  throw Error(ErrorCode::kModelError, "this build has no native networks (models/) to train");
}
}  // namespace slidestream
