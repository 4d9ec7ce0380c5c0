// Event names and JSON encoding.
#include "dfm/pipeline/event.h"

#include <chrono>
#include <cmath>
#include <ctime>

namespace dfm {

const char* event_type_name(EventType t) {
  switch (t) {
    case EventType::kAlertStart: return "alert_start";
    case EventType::kAlertEnd: return "alert_end";
    case EventType::kScore: return "score";
    case EventType::kStreamState: return "stream_state";
    case EventType::kDropped: return "dropped";
  }
  return "?";
}

bool parse_event_type(const std::string& name, EventType* out) {
  for (EventType t : {EventType::kAlertStart, EventType::kAlertEnd, EventType::kScore, EventType::kStreamState, EventType::kDropped}) {
    if (name == event_type_name(t)) {
      *out = t;
      return true;
    }
  }
  return false;
}

int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string format_time_ms(int64_t unix_ms) {
  const std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                tm.tm_min, tm.tm_sec, static_cast<int>(unix_ms % 1000));
  return buf;
}

namespace {
double r4(double v) { return std::isfinite(v) ? std::round(v * 1e4) / 1e4 : 0.0; }
}  // namespace

nlohmann::json event_to_json(const Event& e) {
  nlohmann::json j;
  j["schema"] = "dfmon.event/1";
  j["type"] = event_type_name(e.type);
  j["seq"] = e.seq;
  j["time"] = format_time_ms(e.time_ms);
  switch (e.type) {
    case EventType::kAlertStart:
    case EventType::kAlertEnd:
    case EventType::kScore: {
      j["stream"] = e.stream;
      j["pts_s"] = std::round(e.pts_s * 1000) / 1000;
      j["track"] = e.track;
      j["score"] = r4(e.score);
      j["raw"] = r4(e.raw);
      nlohmann::json m = nlohmann::json::object();
      for (const auto& [k, v] : e.models) m[k] = r4(v);
      j["models"] = m;
      j["bbox"] = {e.bbox.x, e.bbox.y, e.bbox.width, e.bbox.height};
      if (e.type == EventType::kAlertEnd) {
        j["duration_s"] = std::round(e.duration_s * 1000) / 1000;
        j["peak"] = r4(e.peak);
      }
      break;
    }
    case EventType::kStreamState:
      j["stream"] = e.stream;
      j["state"] = e.state;
      j["reason"] = e.reason;
      if (e.state == "retrying") j["retry_in_s"] = std::round(e.retry_in_s * 10) / 10;
      break;
    case EventType::kDropped:
      j["count"] = e.count;
      break;
  }
  return j;
}

}  // namespace dfm
