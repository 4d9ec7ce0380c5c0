// Live events (schema dfmon.event/1, docs/interfaces.md): what the monitor emits and sinks deliver.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

namespace dfm {

enum class EventType { kAlertStart, kAlertEnd, kScore, kStreamState, kDropped };
const char* event_type_name(EventType t);  // "alert_start" | "alert_end" | "score" | "stream_state" | "dropped"
bool parse_event_type(const std::string& name, EventType* out);

struct Event {
  EventType type = EventType::kScore;
  uint64_t seq = 0;          // assigned by the event bus: +1 per emitted event, gap-free
  int64_t time_ms = 0;       // wall clock (ms since the Unix epoch) when the event was made
  std::string stream;        // stream id ("" for dropped notices)
  // Face events (alert_start, alert_end, score):
  double pts_s = 0;
  int track = 0;
  double score = 0;          // smoothed P(fake)
  double raw = 0;            // ensemble P(fake) of this frame
  std::map<std::string, double> models;  // per-model P(fake)
  cv::Rect bbox;
  double duration_s = 0;     // alert_end
  double peak = 0;           // alert_end
  // stream_state:
  std::string state;         // connecting | live | retrying | eos | failed
  std::string reason;
  double retry_in_s = 0;     // retrying: seconds until the next attempt
  // dropped:
  uint64_t count = 0;
};

// One JSON object as sent on the wire; only the fields that belong to the event's type.
nlohmann::json event_to_json(const Event& e);

// ISO 8601 UTC with milliseconds ("2026-11-25T21:00:00.123Z").
std::string format_time_ms(int64_t unix_ms);
int64_t now_unix_ms();

}  // namespace dfm
