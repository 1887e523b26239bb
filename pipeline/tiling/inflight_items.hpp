// Ownership of the items a tbb::parallel_pipeline has in flight.
#pragma once

#include <memory>
#include <mutex>
#include <unordered_map>

namespace slidestream::detail {

/// Owns the items in flight; the pipeline's filters pass raw pointers. TBB keeps an item larger
/// than a pointer in a heap copy of its own and does not free the copies still in flight when a
/// filter throws (found by LeakSanitizer on a slide with a corrupt tile): whatever is in flight
/// then is freed here instead, when the pipeline's owner goes out of scope.
template <typename T>
class InflightItems {
 public:
  T* adopt(std::unique_ptr<T> item) {
    const std::lock_guard<std::mutex> lock(mutex_);
    T* raw = item.get();
    items_.emplace(raw, std::move(item));
    return raw;
  }
  /// Gives the item back to the caller (the last filter), which frees it when done.
  std::unique_ptr<T> release(T* item) {
    const std::lock_guard<std::mutex> lock(mutex_);
    auto node = items_.extract(item);
    return node.empty() ? nullptr : std::move(node.mapped());
  }

 private:
  std::mutex mutex_;
  std::unordered_map<T*, std::unique_ptr<T>> items_;
};

}  // namespace slidestream::detail
