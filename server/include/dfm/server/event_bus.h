// The single place events enter the live feed: numbers them gap-free and fans them out to the sinks.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "dfm/pipeline/event.h"
#include "dfm/server/sink.h"

namespace dfm::server {

class Counter;
class MetricsRegistry;

// publish() assigns seq (+1 per event, starting at 1) and time_ms (when 0), serialises the JSON once and
// hands both to every sink in the order they were added, all under one mutex: every sink sees events in
// seq order even when several pipeline threads publish. Sinks only enqueue (see sink.h), so the lock is
// held for microseconds, never for network or disk I/O.
class EventBus {
 public:
  explicit EventBus(MetricsRegistry* metrics = nullptr);  // registers dfmon_events_published_total{type}
  ~EventBus();                                            // flushes the sinks, then destroys them
  EventBus(const EventBus&) = delete;
  EventBus& operator=(const EventBus&) = delete;

  void add_sink(std::unique_ptr<EventSink> sink);  // binds the sink's metrics to the bus's registry
  uint64_t publish(Event e);                       // returns the assigned seq
  void flush();                                    // waits for every sink's queued writes

  uint64_t last_seq() const;  // 0 before the first event
  std::vector<const EventSink*> sinks() const;

 private:
  mutable std::mutex mu_;
  uint64_t seq_ = 0;
  std::vector<std::unique_ptr<EventSink>> sinks_;
  MetricsRegistry* metrics_;
  std::vector<Counter*> published_;  // per EventType
};

}  // namespace dfm::server
