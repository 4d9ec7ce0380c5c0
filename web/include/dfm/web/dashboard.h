// Live dashboard of `dfmon watch` (GET /): embedded page + the alert-thumbnail store it serves.
#pragma once

#include <cstddef>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <opencv2/core.hpp>
#include <optional>
#include <string>
#include <utility>

#include "dfm/server/server.h"
#include "dfm/server/sink.h"

namespace dfm::web {

// The last `capacity` alert crops as JPEG, keyed by stream and track. Least recently used entries are
// evicted, so memory stays bounded however many alerts a long run raises. Thread-safe.
class ThumbnailStore {
 public:
  explicit ThumbnailStore(size_t capacity = 64, int max_side = 160);

  // Encodes `bgr` (scaled down to max_side) and stores it, replacing an older crop of the same track.
  // False when the image is empty or cannot be encoded.
  bool put(const std::string& stream, int track, const cv::Mat& bgr);
  std::optional<std::string> get(const std::string& stream, int track) const;  // JPEG bytes
  size_t size() const;
  size_t capacity() const { return capacity_; }

 private:
  using Key = std::pair<std::string, int>;
  const size_t capacity_;
  const int max_side_;
  mutable std::mutex mu_;
  mutable std::list<Key> order_;  // most recently used first
  std::map<Key, std::pair<std::string, std::list<Key>::iterator>> items_;
};

// The last `capacity` alert events (alert_start, alert_end) as the JSON the feed sends, so that a page
// opened later still lists the alerts raised before it. Fed by the sink from make_alert_log_sink.
// Thread-safe; memory bounded by the capacity.
class AlertLog {
 public:
  explicit AlertLog(size_t capacity = 100);
  void add(const std::string& event_json);
  std::string json() const;  // {"events":[...]}, oldest first
  size_t size() const;
  size_t capacity() const { return capacity_; }

 private:
  const size_t capacity_;
  mutable std::mutex mu_;
  std::list<std::string> events_;  // oldest first
};

// An EventBus sink that records alert_start/alert_end (every stream) into `log`; never blocks.
std::unique_ptr<server::EventSink> make_alert_log_sink(std::shared_ptr<AlertLog> log);

struct DashboardOptions {
  // server.token. When set, thumbnails are only served under /thumb/<token>/..., so the faces they show
  // are as protected as the /alerts feed (the page and script carry no data and stay public, like /healthz).
  std::string token;
  std::shared_ptr<const ThumbnailStore> thumbnails;  // null: every thumbnail is a 404
  std::shared_ptr<const AlertLog> alerts;            // null: /recent is a 404
};

using PageProvider = std::function<std::optional<server::HttpPage>(const std::string& path)>;

// For Server::set_page_provider. Serves exactly "/" (and "/index.html"), "/app.js", "/style.css",
// "/thumb/[<token>/]<stream>/<track>.jpg" and "/recent[/<token>]" (the AlertLog as JSON; with a
// token set, only the token form); any other path is nullopt (404). Names are matched, never
// used to open files, and stream/track segments admit only [A-Za-z0-9_.-] / digits, so no path can
// reach anything else. `path` is the request target without its query string.
PageProvider make_dashboard(DashboardOptions options);

}  // namespace dfm::web
