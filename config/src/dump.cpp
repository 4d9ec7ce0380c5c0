// Config -> resolved JSON / YAML, the output of `dfmon config check`.
#include <yaml-cpp/yaml.h>

#include "internal.h"

namespace dfm::config {
namespace {

using ojson = nlohmann::ordered_json;  // keeps the schema's key order in the YAML dump

// YAML does not check UTF-8, and paths may be any bytes (a Latin-1 file name); nlohmann's default would
// throw on them. JSON cannot carry such bytes, so they become U+FFFD.
constexpr auto kReplaceInvalidUtf8 = ojson::error_handler_t::replace;

ojson reconnect_json(const ReconnectConfig& r) {
  return {
      {"initial_s", r.initial_s}, {"max_s", r.max_s}, {"multiplier", r.multiplier}, {"max_attempts", r.max_attempts}};
}

// The single writer of key names on the output side; parse.cpp holds the reading side.
ojson build(const Config& c, bool redact) {
  ojson j;
  j["server"] = {{"listen", to_string(c.server.listen)},
                 {"token", redact && !c.server.token.empty() ? "***" : c.server.token},
                 {"max_clients", c.server.max_clients},
                 {"client_queue", c.server.client_queue},
                 {"dashboard", c.server.dashboard}};
  j["models"] = {{"dir", c.models.dir},         {"use", c.models.use},
                 {"weights", c.models.weights}, {"backend", to_string(c.models.backend)},
                 {"batch", c.models.batch},     {"threads", c.models.threads}};
  const DetectorConfig& d = c.detector;
  j["detector"] = {{"type", d.type},
                   {"max_width", d.max_width},
                   {"detect_every", d.detect_every},
                   {"min_face", d.min_face},
                   {"upsample", d.upsample},
                   {"threshold", d.threshold},
                   {"landmark_model", d.landmark_model}};
  j["scoring"] = {
      {"fps", c.scoring.fps},
      {"smoothing", {{"alpha", c.scoring.smoothing.alpha}}},
      {"alert",
       {{"on", c.scoring.alert.on}, {"off", c.scoring.alert.off}, {"min_duration_s", c.scoring.alert.min_duration_s}}}};
  j["queue"] = {{"frames", c.queue.frames}, {"drop", to_string(c.queue.drop)}};
  j["reconnect"] = reconnect_json(c.reconnect);
  j["streams"] = ojson::array();
  for (const StreamConfig& s : c.streams) {
    ojson js = {{"id", s.id},
                {"uri", redact ? internal::redact_uri(s.uri) : s.uri},
                {"loop", s.loop},
                {"latency_ms", s.latency_ms},
                {"transport", to_string(s.transport)},
                {"enabled", s.enabled}};
    if (s.reconnect) js["reconnect"] = reconnect_json(*s.reconnect);
    j["streams"].push_back(std::move(js));
  }
  j["sinks"] = ojson::array();
  for (const SinkConfig& s : c.sinks) {
    ojson js = {{"type", to_string(s.type)}};
    if (s.type == SinkType::kFile) js["path"] = s.path;
    if (s.type == SinkType::kMqtt) {
      js["host"] = s.host;
      js["port"] = s.port;
      js["topic_prefix"] = s.topic_prefix;
      js["qos"] = s.qos;
      js["client_id"] = s.client_id;
      js["keepalive_s"] = s.keepalive_s;
      js["username"] = s.username;
      js["password"] = redact && !s.password.empty() ? "***" : s.password;
      js["password_env"] = s.password_env;  // a variable name, not a secret
      js["queue"] = s.queue;
    }
    js["types"] = s.types;
    j["sinks"].push_back(std::move(js));
  }
  return j;
}

bool is_scalar_list(const ojson& j) {
  for (const auto& item : j)
    if (item.is_structured()) return false;
  return true;
}

void emit(YAML::Emitter& out, const ojson& j) {
  switch (j.type()) {
    case ojson::value_t::object:
      out << YAML::BeginMap;
      for (const auto& [key, value] : j.items()) {
        out << YAML::Key << key << YAML::Value;
        emit(out, value);
      }
      out << YAML::EndMap;
      break;
    case ojson::value_t::array:
      if (is_scalar_list(j)) out << YAML::Flow;
      out << YAML::BeginSeq;
      for (const auto& item : j) emit(out, item);
      out << YAML::EndSeq;
      break;
    case ojson::value_t::string:
      // Quoted always, so "true", "8080" or "" stay strings when read back.
      out << YAML::DoubleQuoted << j.get<std::string>();
      break;
    case ojson::value_t::boolean:
      out << j.get<bool>();
      break;
    default:
      // nlohmann prints the shortest text that reads back to the same double (0.3, not 0.29999…).
      out << j.dump();
      break;
  }
}

}  // namespace

nlohmann::json to_json(const Config& config, bool redact_secrets) {
  return nlohmann::json::parse(build(config, redact_secrets).dump(-1, ' ', false, kReplaceInvalidUtf8));
}

std::string dump_config(const Config& config, const DumpOptions& options) {
  ojson j = build(config, options.redact_secrets);
  if (options.json) return j.dump(2, ' ', false, kReplaceInvalidUtf8) + "\n";
  YAML::Emitter out;
  out.SetIndent(2);
  emit(out, j);
  return std::string(out.c_str()) + "\n";
}

}  // namespace dfm::config
