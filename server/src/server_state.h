// State shared by the Server, its HTTP sessions and its WebSocket sessions (private header, no Beast).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dfm/server/event_filter.h"
#include "dfm/server/metrics.h"
#include "dfm/server/server.h"

namespace dfm::server {

// A timeout option in seconds as a steady-clock duration (for timers and stream deadlines).
inline std::chrono::steady_clock::duration seconds(double s) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(s));
}

// One serialised event, shared by every client queue that holds it (the JSON is never copied per client).
struct OutMsg {
  uint64_t seq = 0;
  std::string json;
  Counter* sent = nullptr;     // dfmon_ws_events_sent_total{stream}
  Counter* dropped = nullptr;  // dfmon_ws_events_dropped_total{stream}
};

// What broadcast() and stop() need from a WebSocket session; implemented in ws_session.cpp.
class FeedClient {
 public:
  virtual ~FeedClient() = default;
  virtual const EventFilter& filter() const = 0;
  virtual void enqueue(const std::shared_ptr<const OutMsg>& msg) = 0;  // any thread, never blocks on I/O
  virtual void close_going_away() = 0;                                 // any thread
  virtual ClientInfo info() const = 0;
};

struct Server::State {
  config::ServerConfig config;
  ServerOptions options;
  std::unique_ptr<MetricsRegistry> own_metrics;
  MetricsRegistry* metrics = nullptr;

  Gauge* clients = nullptr;
  Counter* connections = nullptr;
  Counter* slow_disconnects = nullptr;
  Counter* notices = nullptr;
  Counter* rejected(const std::string& reason);  // dfmon_ws_rejected_total{reason}
  Counter* http_requests(const std::string& path, int code);

  std::atomic<uint32_t> feed_types{0};
  std::atomic<bool> stopping{false};
  std::atomic<int> slots{0};  // reserved + open WebSocket sessions, for max_clients
  std::atomic<uint64_t> next_id{1};

  std::mutex mu;  // guards everything below
  std::function<nlohmann::json()> health;
  std::function<std::optional<HttpPage>(const std::string&)> page;
  // Copy-on-write, so broadcast() iterates without holding mu (a session may die meanwhile: weak_ptr).
  std::shared_ptr<const std::vector<std::weak_ptr<FeedClient>>> sessions =
      std::make_shared<std::vector<std::weak_ptr<FeedClient>>>();
  std::map<std::string, std::pair<Counter*, Counter*>> stream_counters;
  std::condition_variable session_ended;

  void add_session(const std::shared_ptr<FeedClient>& s);  // counted in dfmon_ws_clients
  // Once per session: unlists it (when it was added), releases its slot and wakes stop().
  void end_session(const FeedClient* s, bool was_added);
  std::shared_ptr<const std::vector<std::weak_ptr<FeedClient>>> snapshot();
  void broadcast(const Event& e, const std::string& json);
};

}  // namespace dfm::server
