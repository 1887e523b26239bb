// What every batch job (extract, segment, features) does per slide: time it, and turn its
// failure into the slide's outcome so the batch goes on with the next slide.
#pragma once

#include <functional>

#include "slidestream/jobs/batch.hpp"

namespace slidestream {

/// Runs `work` for `slide` and returns its outcome: ok unless `work` throws or marks the slide
/// skipped; an Error gives its code and message, any other exception kInternal. Failures are
/// logged with the slide id; `seconds` is the time `work` took.
SlideOutcome run_slide(const SlideInput& slide, const std::function<void(SlideOutcome&)>& work);

}  // namespace slidestream
