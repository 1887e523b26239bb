#include "batch.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <iomanip>
#include <sstream>

#include "slidestream/core.hpp"

namespace slidestream {

std::size_t BatchReport::failed() const {
  return static_cast<std::size_t>(std::count_if(
      slides.begin(), slides.end(), [](const SlideOutcome& s) { return !s.ok && !s.skipped; }));
}

std::string BatchReport::summary() const {
  std::ostringstream text;
  text << std::left << std::setw(28) << "slide" << std::setw(10) << "status" << std::setw(10)
       << "patches" << std::setw(9) << "seconds"
       << "reason\n";
  for (const SlideOutcome& slide : slides) {
    const char* status = slide.skipped ? "skipped" : slide.ok ? "ok" : "FAILED";
    text << std::left << std::setw(28) << slide.id << std::setw(10) << status << std::setw(10)
         << slide.patches << std::setw(9) << std::fixed << std::setprecision(1) << slide.seconds
         << (slide.ok || slide.skipped ? (slide.skipped ? "already in the output" : "")
                                       : slide.error)
         << "\n";
  }
  text << slides.size() << " slides, " << failed() << " failed\n";
  return text.str();
}

SlideOutcome run_slide(const SlideInput& slide, const std::function<void(SlideOutcome&)>& work) {
  SlideOutcome outcome;
  outcome.id = slide.id;
  outcome.path = slide.path;
  const auto start = std::chrono::steady_clock::now();
  try {
    work(outcome);
    outcome.ok = !outcome.skipped;
  } catch (const Error& error) {
    outcome.code = error.code();
    outcome.error = error.what();
    spdlog::error("{}: {}", slide.id, error.what());
  } catch (const std::exception& error) {
    outcome.code = ErrorCode::kInternal;
    outcome.error = error.what();
    spdlog::error("{}: internal error: {}", slide.id, error.what());
  }
  outcome.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return outcome;
}

}  // namespace slidestream
