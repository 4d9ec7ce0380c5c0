// Event filters, /alerts query parsing and token comparison (no Beast here: unit-testable and cheap to build).
#include "dfm/server/event_filter.h"

#include <algorithm>
#include <cctype>

namespace dfm::server {

namespace {

constexpr EventType kAllTypes[] = {EventType::kAlertStart, EventType::kAlertEnd, EventType::kScore,
                                   EventType::kStreamState, EventType::kDropped};

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t pos = s.find(sep, start);
    out.push_back(s.substr(start, pos == std::string::npos ? std::string::npos : pos - start));
    if (pos == std::string::npos) break;
    start = pos + 1;
  }
  return out;
}

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

EventFilter EventFilter::defaults() {
  EventFilter f;
  f.types = bit(EventType::kAlertStart) | bit(EventType::kAlertEnd) | bit(EventType::kStreamState);
  return f;
}

bool EventFilter::accepts(EventType type, const std::string& stream) const {
  if (type == EventType::kDropped) return true;
  if (!has(type)) return false;
  if (streams.empty() || stream.empty()) return true;
  return std::find(streams.begin(), streams.end(), stream) != streams.end();
}

std::string EventFilter::types_text() const {
  std::string out;
  for (EventType t : kAllTypes) {
    if (!has(t)) continue;
    if (!out.empty()) out += ',';
    out += event_type_name(t);
  }
  return out;
}

Result<uint32_t> parse_event_types(const std::vector<std::string>& names, const std::string& context) {
  if (names.empty()) return InvalidArgument(context + ": no event types given");
  uint32_t mask = 0;
  for (const auto& n : names) {
    EventType t;
    if (!parse_event_type(n, &t)) {
      return InvalidArgument(context + ": unknown event type \"" + n +
                             "\" (alert_start, alert_end, score, stream_state, dropped)");
    }
    mask |= EventFilter::bit(t);
  }
  return mask;
}

void split_target(const std::string& target, std::string* path, std::string* query) {
  const size_t q = target.find('?');
  *path = target.substr(0, q);
  *query = q == std::string::npos ? "" : target.substr(q + 1);
}

std::optional<std::string> query_param(const std::string& target, const std::string& key) {
  std::string path, query;
  split_target(target, &path, &query);
  for (const std::string& pair : split(query, '&')) {
    const size_t eq = pair.find('=');
    if (pair.substr(0, eq) == key) return percent_decode(eq == std::string::npos ? "" : pair.substr(eq + 1));
  }
  return std::nullopt;
}

std::optional<std::string> percent_decode(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%') {
      const int hi = i + 1 < s.size() ? hex(s[i + 1]) : -1;
      const int lo = i + 2 < s.size() ? hex(s[i + 2]) : -1;
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

Result<AlertsQuery> parse_alerts_query(const std::string& target, uint32_t available) {
  AlertsQuery q;
  std::string query;
  split_target(target, &q.path, &query);
  q.filter = EventFilter::defaults();
  q.filter.types &= available;
  if (query.empty()) return q;
  bool seen_types = false, seen_streams = false;
  for (const std::string& pair : split(query, '&')) {
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    const std::string key = pair.substr(0, eq);
    auto value = percent_decode(eq == std::string::npos ? "" : pair.substr(eq + 1));
    if (!value) return InvalidArgument("query parameter \"" + key + "\": malformed percent-encoding");
    if (key == "token") {
      q.token = *value;
    } else if (key == "types" || key == "streams") {
      bool& seen = key == "types" ? seen_types : seen_streams;
      if (seen) return InvalidArgument("query parameter \"" + key + "\" is given twice");
      seen = true;
      std::vector<std::string> items;
      for (auto& item : split(*value, ',')) {
        if (!item.empty()) items.push_back(item);
      }
      if (items.empty()) return InvalidArgument("query parameter \"" + key + "\" is empty");
      if (key == "streams") {
        q.filter.streams = std::move(items);
        continue;
      }
      DFM_ASSIGN_OR_RETURN(uint32_t mask, parse_event_types(items, "query parameter \"types\""));
      mask &= ~EventFilter::bit(EventType::kDropped);  // always delivered; asking for it is harmless
      if (mask & ~available) {
        EventFilter missing;
        missing.types = mask & ~available;
        return InvalidArgument("query parameter \"types\": " + missing.types_text() +
                               " not enabled on this feed (see the websocket sink's types)");
      }
      q.filter.types = mask;
    } else {
      return InvalidArgument("unknown query parameter \"" + key + "\" (types, streams, token)");
    }
  }
  return q;
}

std::optional<std::string> bearer_token(const std::string& header) {
  size_t i = 0;
  while (i < header.size() && header[i] == ' ') ++i;
  static const char kScheme[] = "bearer";
  for (size_t k = 0; k < sizeof kScheme - 1; ++k, ++i) {
    if (i >= header.size() || std::tolower(static_cast<unsigned char>(header[i])) != kScheme[k]) return std::nullopt;
  }
  if (i >= header.size() || header[i] != ' ') return std::nullopt;
  while (i < header.size() && header[i] == ' ') ++i;
  size_t end = header.size();
  while (end > i && (header[end - 1] == ' ' || header[end - 1] == '\t')) --end;
  return header.substr(i, end - i);
}

bool constant_time_equal(const std::string& a, const std::string& b) {
  // Iterate over `a` (the candidate) whatever b's length; fold the length difference into the result.
  volatile unsigned char diff = static_cast<unsigned char>(a.size() != b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    const unsigned char cb = b.empty() ? 0 : static_cast<unsigned char>(b[i % b.size()]);
    diff = diff | (static_cast<unsigned char>(a[i]) ^ cb);
  }
  return diff == 0 && a.size() == b.size();
}

}  // namespace dfm::server
