// Enum names, labels and equality for the config structs.
#include <cstdio>
#include <tuple>

#include "internal.h"

namespace dfm::config {
namespace internal {

template <>
const std::vector<std::pair<const char*, Backend>>& enum_table<Backend>() {
  static const std::vector<std::pair<const char*, Backend>> t = {
      {"auto", Backend::kAuto}, {"cuda", Backend::kCuda}, {"opencl", Backend::kOpenCl}, {"cpu", Backend::kCpu}};
  return t;
}

template <>
const std::vector<std::pair<const char*, Transport>>& enum_table<Transport>() {
  static const std::vector<std::pair<const char*, Transport>> t = {
      {"auto", Transport::kAuto}, {"tcp", Transport::kTcp}, {"udp", Transport::kUdp}};
  return t;
}

template <>
const std::vector<std::pair<const char*, DropPolicy>>& enum_table<DropPolicy>() {
  static const std::vector<std::pair<const char*, DropPolicy>> t = {{"block", DropPolicy::kBlock},
                                                                    {"drop_oldest", DropPolicy::kDropOldest},
                                                                    {"drop_newest", DropPolicy::kDropNewest}};
  return t;
}

template <>
const std::vector<std::pair<const char*, SinkType>>& enum_table<SinkType>() {
  static const std::vector<std::pair<const char*, SinkType>> t = {{"websocket", SinkType::kWebsocket},
                                                                  {"file", SinkType::kFile},
                                                                  {"stdout", SinkType::kStdout},
                                                                  {"mqtt", SinkType::kMqtt}};
  return t;
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string stream_label(size_t index, const std::string& id) {
  std::string label = "streams[" + std::to_string(index) + "]";
  if (!id.empty()) label += " (id " + quote(id) + ")";
  return label;
}

std::string sink_label(size_t index) { return "sinks[" + std::to_string(index) + "]"; }

template <typename E>
const char* name_of(E value) {
  for (const auto& [n, v] : enum_table<E>())
    if (v == value) return n;
  return "?";
}

}  // namespace internal

const char* to_string(Backend value) { return internal::name_of(value); }
const char* to_string(Transport value) { return internal::name_of(value); }
const char* to_string(DropPolicy value) { return internal::name_of(value); }
const char* to_string(SinkType value) { return internal::name_of(value); }

const std::vector<std::string>& event_type_names() {
  static const std::vector<std::string> names = {"alert_start", "alert_end", "score", "stream_state", "dropped"};
  return names;
}

const ReconnectConfig& reconnect_for(const Config& config, const StreamConfig& stream) {
  return stream.reconnect ? *stream.reconnect : config.reconnect;
}

// Field lists: keep in step with the structs in config.h.
bool operator==(const ListenAddress& a, const ListenAddress& b) {
  return std::tie(a.host, a.port) == std::tie(b.host, b.port);
}
bool operator==(const ServerConfig& a, const ServerConfig& b) {
  return std::tie(a.listen, a.token, a.max_clients, a.client_queue, a.dashboard) ==
         std::tie(b.listen, b.token, b.max_clients, b.client_queue, b.dashboard);
}
bool operator==(const ModelsConfig& a, const ModelsConfig& b) {
  return std::tie(a.dir, a.use, a.weights, a.backend, a.batch, a.threads) ==
         std::tie(b.dir, b.use, b.weights, b.backend, b.batch, b.threads);
}
bool operator==(const DetectorConfig& a, const DetectorConfig& b) {
  return std::tie(a.type, a.max_width, a.detect_every, a.min_face, a.upsample, a.threshold, a.landmark_model) ==
         std::tie(b.type, b.max_width, b.detect_every, b.min_face, b.upsample, b.threshold, b.landmark_model);
}
bool operator==(const AlertConfig& a, const AlertConfig& b) {
  return std::tie(a.on, a.off, a.min_duration_s) == std::tie(b.on, b.off, b.min_duration_s);
}
bool operator==(const SmoothingConfig& a, const SmoothingConfig& b) { return a.alpha == b.alpha; }
bool operator==(const ScoringConfig& a, const ScoringConfig& b) {
  return std::tie(a.fps, a.smoothing, a.alert) == std::tie(b.fps, b.smoothing, b.alert);
}
bool operator==(const QueueConfig& a, const QueueConfig& b) {
  return std::tie(a.frames, a.drop) == std::tie(b.frames, b.drop);
}
bool operator==(const ReconnectConfig& a, const ReconnectConfig& b) {
  return std::tie(a.initial_s, a.max_s, a.multiplier, a.max_attempts) ==
         std::tie(b.initial_s, b.max_s, b.multiplier, b.max_attempts);
}
bool operator==(const StreamConfig& a, const StreamConfig& b) {
  return std::tie(a.id, a.uri, a.loop, a.latency_ms, a.transport, a.enabled, a.reconnect) ==
         std::tie(b.id, b.uri, b.loop, b.latency_ms, b.transport, b.enabled, b.reconnect);
}
bool operator==(const SinkConfig& a, const SinkConfig& b) {
  return std::tie(a.type, a.path, a.host, a.port, a.topic_prefix, a.qos, a.client_id, a.keepalive_s, a.username,
                  a.password, a.password_env, a.queue, a.types) ==
         std::tie(b.type, b.path, b.host, b.port, b.topic_prefix, b.qos, b.client_id, b.keepalive_s, b.username,
                  b.password, b.password_env, b.queue, b.types);
}
bool operator==(const Config& a, const Config& b) {
  return std::tie(a.server, a.models, a.detector, a.scoring, a.queue, a.reconnect, a.streams, a.sinks) ==
         std::tie(b.server, b.models, b.detector, b.scoring, b.queue, b.reconnect, b.streams, b.sinks);
}

}  // namespace dfm::config
