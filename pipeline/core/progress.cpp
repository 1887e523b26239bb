#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <string>

#include "slidestream/core.hpp"

namespace slidestream {

namespace {

std::atomic<bool> g_progress_enabled{true};

std::string format_duration(double seconds) {
  if (!(seconds >= 0.0) || seconds > 360000.0) {
    return "--:--";
  }
  const long total = std::lround(seconds);
  char text[32];
  if (total >= 3600) {
    std::snprintf(text, sizeof text, "%ld:%02ld:%02ld", total / 3600, (total / 60) % 60,
                  total % 60);
  } else {
    std::snprintf(text, sizeof text, "%02ld:%02ld", total / 60, total % 60);
  }
  return text;
}

}  // namespace

void ProgressBar::set_globally_enabled(bool enabled) {
  g_progress_enabled = enabled;
}
bool ProgressBar::globally_enabled() {
  return g_progress_enabled;
}

ProgressBar::ProgressBar(std::string label, std::uint64_t total, bool enabled)
    : label_(std::move(label)),
      total_(total),
      enabled_(enabled && g_progress_enabled && ::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

ProgressBar::~ProgressBar() {
  finish();
}

void ProgressBar::set_total(std::uint64_t total) {
  total_ = total;
}

void ProgressBar::advance(std::uint64_t count) {
  done_ += count;
  if (!enabled_) {
    return;
  }
  const auto now = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(draw_mutex_, std::try_to_lock);
  if (!lock.owns_lock() || now - last_draw_ < std::chrono::milliseconds(100)) {
    return;
  }
  last_draw_ = now;
  draw(false);
}

void ProgressBar::finish() {
  if (!enabled_) {
    return;
  }
  std::lock_guard<std::mutex> lock(draw_mutex_);
  if (finished_) {
    return;
  }
  finished_ = true;
  draw(true);
}

void ProgressBar::draw(bool final_line) {
  constexpr int kWidth = 30;
  const std::uint64_t total = total_.load();
  const std::uint64_t done = done_.load();
  const double fraction =
      total > 0 ? std::min(1.0, static_cast<double>(done) / static_cast<double>(total)) : 0.0;
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
  const double eta = rate > 0 ? static_cast<double>(total - std::min(done, total)) / rate : -1.0;
  const int filled = static_cast<int>(fraction * kWidth);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.append(static_cast<size_t>(kWidth - filled), ' ');
  std::fprintf(stderr, "\r%s [%s] %llu/%llu  %.1f/s  %s %s%s", label_.c_str(), bar.c_str(),
               static_cast<unsigned long long>(done), static_cast<unsigned long long>(total), rate,
               final_line ? "in" : "ETA", format_duration(final_line ? elapsed : eta).c_str(),
               final_line ? "\n" : "   ");
  std::fflush(stderr);
}

}  // namespace slidestream
