// A first-in, first-out queue between two threads, optionally bounded: the
// defend service's I/O thread hands requests to its worker through one
// (bounded: a full queue is answered "busy") and gets results back through
// another. Thread-safe; holds values, so ownership moves with them.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <limits>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

namespace fedvar::service {

template <typename T>
class WorkQueue {
 public:
  explicit WorkQueue(size_t capacity = std::numeric_limits<size_t>::max())
      : capacity_(capacity) {}

  // Appends `value` unless the queue is full or closed; false then (and
  // `value` is left as it was).
  bool try_push(T& value) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (closed_ || items_.size() >= capacity_) return false;
      items_.push_back(std::move(value));
    }
    ready_.notify_one();
    return true;
  }

  // The oldest value, waiting for one; nullopt once the queue is closed.
  std::optional<T> pop_wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    ready_.wait(lock, [this] { return closed_ || !items_.empty(); });
    if (closed_) return std::nullopt;
    return take_front();
  }

  // The oldest value if there is one, without waiting.
  std::optional<T> try_pop() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (items_.empty()) return std::nullopt;
    return take_front();
  }

  // Refuses further pushes, wakes every pop_wait() (which then returns
  // nullopt) and returns what was still queued, oldest first.
  std::vector<T> close() {
    std::vector<T> left;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closed_ = true;
      for (T& item : items_) left.push_back(std::move(item));
      items_.clear();
    }
    ready_.notify_all();
    return left;
  }

 private:
  T take_front() {
    T value = std::move(items_.front());
    items_.pop_front();
    return value;
  }

  const size_t capacity_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<T> items_;
  bool closed_ = false;
};

}  // namespace fedvar::service
