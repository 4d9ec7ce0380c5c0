// Session registry, broadcast fan-out and server counters (no Beast: the hot path stays readable).
#include "server_state.h"

namespace dfm::server {

Counter* Server::State::rejected(const std::string& reason) {
  return &metrics->counter("dfmon_ws_rejected_total", "WebSocket upgrades refused", {{"reason", reason}});
}

Counter* Server::State::http_requests(const std::string& path, int code) {
  return &metrics->counter("dfmon_http_requests_total", "HTTP requests by route and status",
                           {{"path", path}, {"code", std::to_string(code)}});
}

void Server::State::add_session(const std::shared_ptr<FeedClient>& s) {
  std::lock_guard<std::mutex> lock(mu);
  auto next = std::make_shared<std::vector<std::weak_ptr<FeedClient>>>(*sessions);
  next->push_back(s);
  sessions = std::move(next);
  clients->inc();
  connections->inc();
}

void Server::State::end_session(const FeedClient* s, bool was_added) {
  {
    std::lock_guard<std::mutex> lock(mu);
    if (was_added) {
      auto next = std::make_shared<std::vector<std::weak_ptr<FeedClient>>>();
      for (const auto& w : *sessions) {
        auto p = w.lock();  // null for a session in its destructor: pruned too
        if (p && p.get() != s) next->push_back(w);
      }
      sessions = std::move(next);
      clients->dec();
    }
    slots.fetch_sub(1);
  }
  session_ended.notify_all();
}

std::shared_ptr<const std::vector<std::weak_ptr<FeedClient>>> Server::State::snapshot() {
  std::lock_guard<std::mutex> lock(mu);
  return sessions;
}

void Server::State::broadcast(const Event& e, const std::string& json) {
  if (stopping.load(std::memory_order_relaxed)) return;
  auto list = snapshot();
  if (list->empty()) return;

  std::pair<Counter*, Counter*> counters{nullptr, nullptr};
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = stream_counters.find(e.stream);
    if (it != stream_counters.end()) counters = it->second;
  }
  if (!counters.first) {
    // Registered outside mu: the registry has its own lock, and nesting the two invites lock-order bugs.
    const Labels labels{{"stream", e.stream}};
    counters.first = &metrics->counter("dfmon_ws_events_sent_total", "Events written to WebSocket clients", labels);
    counters.second = &metrics->counter("dfmon_ws_events_dropped_total",
                                        "Events discarded from full WebSocket client queues", labels);
    std::lock_guard<std::mutex> lock(mu);
    stream_counters.emplace(e.stream, counters);
  }

  std::shared_ptr<OutMsg> msg;  // built lazily: no allocation when every client filters the event out
  for (const auto& w : *list) {
    auto client = w.lock();
    if (!client || !client->filter().accepts(e)) continue;
    if (!msg) {
      msg = std::make_shared<OutMsg>();
      msg->seq = e.seq;
      msg->json = json;
      msg->sent = counters.first;
      msg->dropped = counters.second;
    }
    client->enqueue(msg);
  }
}

}  // namespace dfm::server
