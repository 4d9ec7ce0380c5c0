// EventBus: gap-free numbering and in-order fan-out.
#include "dfm/server/event_bus.h"

#include "dfm/server/metrics.h"

namespace dfm::server {

EventBus::EventBus(MetricsRegistry* metrics) : metrics_(metrics) {
  for (EventType t : {EventType::kAlertStart, EventType::kAlertEnd, EventType::kScore, EventType::kStreamState,
                      EventType::kDropped}) {
    published_.push_back(metrics ? &metrics->counter("dfmon_events_published_total", "Events emitted on the live feed",
                                                     {{"type", event_type_name(t)}})
                                 : nullptr);
  }
}

EventBus::~EventBus() {
  flush();
  std::lock_guard<std::mutex> lock(mu_);
  sinks_.clear();
}

void EventBus::add_sink(std::unique_ptr<EventSink> sink) {
  if (!sink) return;
  if (metrics_) sink->bind_metrics(*metrics_);
  std::lock_guard<std::mutex> lock(mu_);
  sinks_.push_back(std::move(sink));
}

uint64_t EventBus::publish(Event e) {
  if (e.time_ms == 0) e.time_ms = now_unix_ms();
  std::lock_guard<std::mutex> lock(mu_);
  e.seq = ++seq_;
  // Stream ids are validated, but reasons may carry bytes from GStreamer errors: never throw on bad UTF-8.
  const std::string json = event_to_json(e).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  for (auto& sink : sinks_) sink->publish(e, json);
  const auto t = static_cast<size_t>(e.type);
  if (t < published_.size() && published_[t]) published_[t]->inc();
  return e.seq;
}

void EventBus::flush() {
  std::vector<EventSink*> copy;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& s : sinks_) copy.push_back(s.get());
  }
  // Not under mu_: a flush waits for I/O and must not stall publishers.
  for (EventSink* s : copy) s->flush();
}

uint64_t EventBus::last_seq() const {
  std::lock_guard<std::mutex> lock(mu_);
  return seq_;
}

std::vector<const EventSink*> EventBus::sinks() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<const EventSink*> out;
  for (const auto& s : sinks_) out.push_back(s.get());
  return out;
}

}  // namespace dfm::server
