// FrameQueue: the bounded hand-off between a live source's streaming thread and the analysis side.
#include <algorithm>

#include "dfm/pipeline/live_source.h"

namespace dfm {

FrameQueue::FrameQueue(size_t capacity, LiveDropPolicy policy)
    : capacity_(std::max<size_t>(capacity, 1)), policy_(policy) {}

void FrameQueue::push(Frame frame) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    ++counters_.pushed;
    if (frames_.size() >= capacity_) {
      ++counters_.dropped;
      if (policy_ == LiveDropPolicy::kDropNewest) return;
      frames_.pop_front();
    }
    frames_.push_back(std::move(frame));
    counters_.depth = static_cast<int64_t>(frames_.size());
    counters_.high_water = std::max(counters_.high_water, counters_.depth);
  }
  cv_.notify_one();
}

std::optional<Frame> FrameQueue::pop(std::chrono::milliseconds wait) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, wait, [this] { return !frames_.empty() || closed_; });
  if (frames_.empty()) return std::nullopt;
  Frame f = std::move(frames_.front());
  frames_.pop_front();
  counters_.depth = static_cast<int64_t>(frames_.size());
  return f;
}

void FrameQueue::close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

FrameQueue::Counters FrameQueue::counters() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counters_;
}

}  // namespace dfm
