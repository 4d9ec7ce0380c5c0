// Semantic checks of a Config: one place for ranges, uniqueness and cross-field rules.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "internal.h"

namespace dfm::config {
namespace {

using internal::Issue;
using internal::quote;

std::string num(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

// Collects the first problem; later checks are no-ops once one is found.
class Checker {
 public:
  bool failed() const { return issue_.has_value(); }
  std::optional<Issue> take() { return std::move(issue_); }

  void fail(const std::string& path, const std::string& message) {
    if (!issue_) issue_ = Issue{path, message};
  }
  void int_range(const std::string& path, int v, int lo, int hi) {
    if (v < lo || v > hi)
      fail(path, "must be in " + std::to_string(lo) + ".." + std::to_string(hi) + ", got " + std::to_string(v));
  }
  // lo_open: the lower bound itself is not allowed.
  void real_range(const std::string& path, double v, double lo, double hi, bool lo_open = false) {
    if (!std::isfinite(v) || v < lo || v > hi || (lo_open && v == lo))
      fail(path, std::string("must be in ") + (lo_open ? "(" : "[") + num(lo) + ", " + num(hi) + "], got " + num(v));
  }

 private:
  std::optional<Issue> issue_;
};

bool valid_name(const std::string& s, size_t max_len) {
  if (s.empty() || s.size() > max_len) return false;
  for (unsigned char c : s)
    if (!std::isalnum(c) && c != '_' && c != '.' && c != '-') return false;
  return true;
}

void check_reconnect(Checker& c, const std::string& p, const ReconnectConfig& r) {
  c.real_range(p + ".initial_s", r.initial_s, 0.0, 3600.0, true);
  c.real_range(p + ".max_s", r.max_s, 0.0, 86400.0, true);
  if (!c.failed() && r.max_s < r.initial_s)
    c.fail(p + ".max_s", "must be >= initial_s (" + num(r.initial_s) + "), got " + num(r.max_s));
  c.real_range(p + ".multiplier", r.multiplier, 1.0, 10.0);
  c.int_range(p + ".max_attempts", r.max_attempts, 0, 1000000);
}

void check_server(Checker& c, const ServerConfig& s) {
  if (auto p = internal::host_problem(s.listen.host)) c.fail("server.listen", *p);
  c.int_range("server.listen", s.listen.port, 0, 65535);
  for (unsigned char ch : s.token)
    if (ch <= 0x20 || ch >= 0x7f) {
      c.fail("server.token", "must be printable ASCII without spaces (it travels in an HTTP header)");
      break;
    }
  c.int_range("server.max_clients", s.max_clients, 1, 10000);
  c.int_range("server.client_queue", s.client_queue, 1, 1000000);
}

void check_models(Checker& c, const ModelsConfig& m) {
  std::set<std::string> seen;
  for (size_t i = 0; i < m.use.size(); ++i) {
    std::string p = "models.use[" + std::to_string(i) + "]";
    if (!valid_name(m.use[i], 128)) c.fail(p, "model name " + quote(m.use[i]) + " must match [A-Za-z0-9_.-]+");
    if (!seen.insert(m.use[i]).second) c.fail(p, "model " + quote(m.use[i]) + " is listed twice");
  }
  if (!m.weights.empty()) {
    if (m.use.empty())
      c.fail("models.weights", "needs models.use: weights pair with the listed model names");
    else if (m.weights.size() != m.use.size())
      c.fail("models.weights", "must have one weight per models.use entry: " + std::to_string(m.use.size()) +
                                   " expected, got " + std::to_string(m.weights.size()));
    double sum = 0;
    for (size_t i = 0; i < m.weights.size(); ++i) {
      c.real_range("models.weights[" + std::to_string(i) + "]", m.weights[i], 0.0, 1e6);
      sum += m.weights[i];
    }
    if (sum <= 0) c.fail("models.weights", "must not all be 0");
  }
  c.int_range("models.batch", m.batch, 1, 64);
  c.int_range("models.threads", m.threads, 0, 256);
}

void check_detector(Checker& c, const DetectorConfig& d) {
  if (d.type != "dlib_hog") c.fail("detector.type", "unknown detector " + quote(d.type) + " (available: dlib_hog)");
  c.int_range("detector.max_width", d.max_width, 0, 16384);
  // Same limits as make_face_detector(), so a config that passes `config check` also starts.
  if (d.max_width > 0 && d.max_width < 64) c.fail("detector.max_width", std::to_string(d.max_width) + " is below 64 (0 = no downscaling)");
  c.int_range("detector.detect_every", d.detect_every, 1, 100);
  c.int_range("detector.min_face", d.min_face, 0, 4096);
  c.int_range("detector.upsample", d.upsample, 0, 2);
  c.real_range("detector.threshold", d.threshold, -10.0, 10.0);
}

void check_scoring(Checker& c, const ScoringConfig& s) {
  c.real_range("scoring.fps", s.fps, 0.0, 120.0, true);
  c.real_range("scoring.smoothing.alpha", s.smoothing.alpha, 0.0, 1.0, true);
  c.real_range("scoring.alert.on", s.alert.on, 0.0, 1.0);
  c.real_range("scoring.alert.off", s.alert.off, 0.0, 1.0);
  if (!c.failed() && s.alert.off >= s.alert.on)
    c.fail("scoring.alert.off", "must be below scoring.alert.on (" + num(s.alert.on) + "), got " + num(s.alert.off));
  c.real_range("scoring.alert.min_duration_s", s.alert.min_duration_s, 0.0, 3600.0);
}

void check_streams(Checker& c, const std::vector<StreamConfig>& streams) {
  if (streams.empty()) c.fail("streams", "is required: list at least one stream ({id: cam-1, uri: ...})");
  std::map<std::string, size_t> first_index;
  for (size_t i = 0; i < streams.size(); ++i) {
    const StreamConfig& s = streams[i];
    std::string p = internal::stream_label(i, s.id);
    if (s.id.empty())
      c.fail(p + ".id", "is required");
    else if (!valid_name(s.id, 64))
      c.fail(p + ".id", "must be 1..64 characters of [A-Za-z0-9_.-], got " + quote(s.id));
    else if (!first_index.emplace(s.id, i).second)
      c.fail(p + ".id", "duplicate stream id " + quote(s.id) + ", already used by streams[" +
                            std::to_string(first_index[s.id]) + "] (ids label events and metrics)");
    if (auto problem = internal::uri_problem(s.uri)) c.fail(p + ".uri", *problem);
    c.int_range(p + ".latency_ms", s.latency_ms, 0, 60000);
    if (s.reconnect) check_reconnect(c, p + ".reconnect", *s.reconnect);
  }
}

bool printable_ascii(const std::string& s) {
  for (unsigned char ch : s)
    if (ch <= 0x20 || ch >= 0x7f) return false;
  return true;
}

// MQTT strings (topics, user names) must be UTF-8; YAML hands us any bytes.
bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return false;
    i += n;
  }
  return true;
}

bool env_name(const std::string& s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (unsigned char ch : s)
    if (!std::isalnum(ch) && ch != '_') return false;
  return true;
}

void check_mqtt(Checker& c, const std::string& p, const SinkConfig& s) {
  if (auto problem = internal::host_problem(s.host)) c.fail(p + ".host", *problem);
  c.int_range(p + ".port", s.port, 1, 65535);
  const std::string& t = s.topic_prefix;
  if (t.empty())
    c.fail(p + ".topic_prefix", "is empty (events go to <topic_prefix>/<stream>/events)");
  else if (t.find_first_of("+#") != std::string::npos)
    c.fail(p + ".topic_prefix", "must not contain MQTT wildcards (+, #), got " + quote(t));
  else if (t.front() == '/' || t.back() == '/' || t.find("//") != std::string::npos)
    c.fail(p + ".topic_prefix", "must not start or end with '/' or contain an empty level, got " + quote(t));
  else if (t.front() == '$')
    c.fail(p + ".topic_prefix", "must not start with '$' (reserved for broker topics such as $SYS), got " + quote(t));
  else if (t.size() > 256)
    c.fail(p + ".topic_prefix", "is longer than 256 characters");
  else if (std::any_of(t.begin(), t.end(), [](unsigned char ch) { return ch < 0x20 || ch == 0x7f; }))
    c.fail(p + ".topic_prefix", "must not contain control characters, got " + quote(t));
  else if (!valid_utf8(t))
    c.fail(p + ".topic_prefix", "is not valid UTF-8 (MQTT topics must be), got " + quote(t));
  c.int_range(p + ".qos", s.qos, 0, 2);
  if (s.client_id.size() > 128 || !printable_ascii(s.client_id))
    c.fail(p + ".client_id",
           "must be at most 128 printable ASCII characters without spaces, got " + quote(s.client_id));
  c.int_range(p + ".keepalive_s", s.keepalive_s, 5, 3600);
  if (!valid_utf8(s.username)) c.fail(p + ".username", "is not valid UTF-8 (MQTT requires it)");
  if (!s.password.empty() && !s.password_env.empty())
    c.fail(p + ".password", "set either password or password_env, not both");
  if ((!s.password.empty() || !s.password_env.empty()) && s.username.empty())
    c.fail(p + ".username", "is required when a password (or password_env) is set");
  if (!s.password_env.empty() && !env_name(s.password_env))
    c.fail(p + ".password_env",
           "must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*), got " + quote(s.password_env));
  c.int_range(p + ".queue", s.queue, 1, 1000000);
}

void check_sinks(Checker& c, const std::vector<SinkConfig>& sinks) {
  int websockets = 0;
  std::set<std::string> paths, client_ids;
  for (size_t i = 0; i < sinks.size(); ++i) {
    const SinkConfig& s = sinks[i];
    std::string p = internal::sink_label(i);
    if (s.types.empty()) c.fail(p + ".types", "is empty: the sink would receive nothing (remove the sink instead)");
    std::set<std::string> seen;
    for (size_t k = 0; k < s.types.size(); ++k) {
      const auto& names = event_type_names();
      std::string tp = p + ".types[" + std::to_string(k) + "]";
      if (std::find(names.begin(), names.end(), s.types[k]) == names.end())
        c.fail(tp,
               "unknown event type " + quote(s.types[k]) + " (alert_start, alert_end, score, stream_state, dropped)");
      if (!seen.insert(s.types[k]).second) c.fail(tp, "event type " + quote(s.types[k]) + " is listed twice");
    }
    switch (s.type) {
      case SinkType::kWebsocket:
        if (++websockets > 1)
          c.fail(p + ".type", "only one websocket sink is possible (it is served on server.listen)");
        break;
      case SinkType::kFile:
        if (s.path.empty()) c.fail(p + ".path", "is empty");
        if (!paths.insert(s.path).second) c.fail(p + ".path", "another file sink already writes " + quote(s.path));
        break;
      case SinkType::kMqtt:
        check_mqtt(c, p, s);
        if (!s.client_id.empty() &&
            !client_ids.insert(s.host + ":" + std::to_string(s.port) + " " + s.client_id).second)
          c.fail(p + ".client_id", "another mqtt sink already connects to " + s.host + ":" + std::to_string(s.port) +
                                       " as " + quote(s.client_id) + " (the broker would drop one of them)");
        break;
      case SinkType::kStdout:
        break;
    }
  }
}

}  // namespace

namespace internal {

std::optional<Issue> first_issue(const Config& config) {
  Checker c;
  check_server(c, config.server);
  check_models(c, config.models);
  check_detector(c, config.detector);
  check_scoring(c, config.scoring);
  c.int_range("queue.frames", config.queue.frames, 1, 1024);
  check_reconnect(c, "reconnect", config.reconnect);
  check_streams(c, config.streams);
  check_sinks(c, config.sinks);
  return c.take();
}

}  // namespace internal

Status validate(const Config& config) {
  if (auto issue = internal::first_issue(config)) return InvalidArgument(issue->path + ": " + issue->message);
  return Status::Ok();
}

}  // namespace dfm::config
