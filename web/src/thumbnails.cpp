// Bounded LRU store of alert-crop thumbnails (JPEG).
#include <algorithm>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <vector>

#include "dfm/web/dashboard.h"

namespace dfm::web {

ThumbnailStore::ThumbnailStore(size_t capacity, int max_side)
    : capacity_(std::max<size_t>(capacity, 1)), max_side_(std::max(max_side, 16)) {}

bool ThumbnailStore::put(const std::string& stream, int track, const cv::Mat& bgr) {
  if (bgr.empty() || (bgr.channels() != 1 && bgr.channels() != 3)) return false;
  cv::Mat img = bgr;
  const int side = std::max(bgr.cols, bgr.rows);
  if (side > max_side_) {
    const double f = static_cast<double>(max_side_) / side;
    cv::resize(bgr, img, cv::Size(), f, f, cv::INTER_AREA);
  }
  std::vector<uchar> jpeg;
  try {
    if (!cv::imencode(".jpg", img, jpeg, {cv::IMWRITE_JPEG_QUALITY, 85})) return false;
  } catch (const cv::Exception&) {
    return false;  // e.g. an unsupported depth: no thumbnail, the alert itself is unaffected
  }
  std::string bytes(jpeg.begin(), jpeg.end());

  Key key{stream, track};
  std::lock_guard<std::mutex> lock(mu_);
  auto it = items_.find(key);
  if (it != items_.end()) {
    it->second.first = std::move(bytes);
    order_.splice(order_.begin(), order_, it->second.second);
    return true;
  }
  if (items_.size() >= capacity_) {
    items_.erase(order_.back());
    order_.pop_back();
  }
  order_.push_front(key);
  items_.emplace(std::move(key), std::make_pair(std::move(bytes), order_.begin()));
  return true;
}

std::optional<std::string> ThumbnailStore::get(const std::string& stream, int track) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = items_.find(Key{stream, track});
  if (it == items_.end()) return std::nullopt;
  order_.splice(order_.begin(), order_, it->second.second);
  return it->second.first;
}

size_t ThumbnailStore::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return items_.size();
}

}  // namespace dfm::web
