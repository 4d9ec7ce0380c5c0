// Which events a sink or a feed client receives, and the /alerts query and auth parsing that selects them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dfm/common/status.h"
#include "dfm/pipeline/event.h"

namespace dfm::server {

// A set of event types plus an optional stream allow-list. Cheap to test per event (bitmask).
struct EventFilter {
  uint32_t types = 0;                // bit (1 << int(EventType))
  std::vector<std::string> streams;  // empty = every stream

  static EventFilter defaults();  // alert_start, alert_end, stream_state; every stream
  static uint32_t bit(EventType t) { return 1u << static_cast<unsigned>(t); }
  bool has(EventType t) const { return (types & bit(t)) != 0; }
  // `dropped` notices are per client and never filtered; stream-less events (stream "") pass a stream list.
  bool accepts(EventType type, const std::string& stream) const;
  bool accepts(const Event& e) const { return accepts(e.type, e.stream); }
  std::string types_text() const;  // "alert_start,alert_end"
};

// Names -> bitmask; an unknown or empty name is InvalidArgument naming `context` ("sinks[0].types").
Result<uint32_t> parse_event_types(const std::vector<std::string>& names, const std::string& context);

// What a WebSocket client asked for in the upgrade request target.
struct AlertsQuery {
  std::string path;                  // "/alerts"
  EventFilter filter;                // defaults unless ?types= / &streams= are given
  std::optional<std::string> token;  // ?token=
};

// Parses "/alerts?types=a,b&streams=cam-1&token=T" (percent-decoding values). Unknown types, empty lists,
// malformed escapes and unknown parameters are InvalidArgument (HTTP 400). `available` limits the types a
// client may request (the WebSocket sink's types); the default set is intersected with it.
Result<AlertsQuery> parse_alerts_query(const std::string& target, uint32_t available);

// The percent-decoded value of `key` in the target's query (first occurrence); nullopt when absent/malformed.
std::optional<std::string> query_param(const std::string& target, const std::string& key);

// Splits a request target into path and raw query (without '?').
void split_target(const std::string& target, std::string* path, std::string* query);

// "%41b+c" -> "Ab c"; nullopt on a malformed escape.
std::optional<std::string> percent_decode(const std::string& s);

// Token from "Bearer TOKEN" (scheme case-insensitive); nullopt for other schemes.
std::optional<std::string> bearer_token(const std::string& authorization_header);

// Compares secrets in time independent of where they differ (length mismatch still reads all of `a`).
bool constant_time_equal(const std::string& a, const std::string& b);

}  // namespace dfm::server
