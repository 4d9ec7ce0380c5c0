// YAML -> Config: structure and types here, semantic checks in validate.cpp.
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>

#include "yaml_map.h"

namespace dfm::config {
namespace {

using internal::describe;
using internal::MapReader;
using internal::ParseContext;

void parse_server(ParseContext& ctx, const YAML::Node& node, ServerConfig& out) {
  MapReader r(ctx, node, "server");
  if (const YAML::Node* listen = r.find("listen")) {
    std::string text;
    r.read("listen", &text);
    if (!ctx.failed()) {
      auto address = parse_listen_address(text);
      if (address.ok())
        out.listen = *address;
      else
        ctx.fail(listen->Mark(), "server.listen", address.status().message());
    }
  }
  r.read("token", &out.token);
  r.read("max_clients", &out.max_clients);
  r.read("client_queue", &out.client_queue);
  r.read("dashboard", &out.dashboard);
  r.finish();
}

void parse_models(ParseContext& ctx, const YAML::Node& node, const std::string& base_dir, ModelsConfig& out) {
  MapReader r(ctx, node, "models");
  r.read("dir", &out.dir);
  out.dir = internal::resolve_path(out.dir, base_dir);
  r.read("use", &out.use);
  r.read("weights", &out.weights);
  r.read_enum("backend", &out.backend);
  r.read("batch", &out.batch);
  r.read("threads", &out.threads);
  r.finish();
}

void parse_detector(ParseContext& ctx, const YAML::Node& node, const std::string& base_dir, DetectorConfig& out) {
  MapReader r(ctx, node, "detector");
  r.read("type", &out.type);
  r.read("max_width", &out.max_width);
  r.read("detect_every", &out.detect_every);
  r.read("min_face", &out.min_face);
  r.read("upsample", &out.upsample);
  r.read("threshold", &out.threshold);
  r.read("landmark_model", &out.landmark_model);
  out.landmark_model = internal::resolve_path(out.landmark_model, base_dir);
  r.finish();
}

void parse_scoring(ParseContext& ctx, const YAML::Node& node, ScoringConfig& out) {
  MapReader r(ctx, node, "scoring");
  r.read("fps", &out.fps);
  if (const YAML::Node* smoothing = r.find("smoothing")) {
    MapReader s(ctx, *smoothing, "scoring.smoothing");
    s.read("alpha", &out.smoothing.alpha);
    s.finish();
  }
  if (const YAML::Node* alert = r.find("alert")) {
    MapReader a(ctx, *alert, "scoring.alert");
    a.read("on", &out.alert.on);
    a.read("off", &out.alert.off);
    a.read("min_duration_s", &out.alert.min_duration_s);
    a.finish();
  }
  r.finish();
}

void parse_queue(ParseContext& ctx, const YAML::Node& node, QueueConfig& out) {
  MapReader r(ctx, node, "queue");
  r.read("frames", &out.frames);
  r.read_enum("drop", &out.drop);
  r.finish();
}

// `out` starts as the inherited policy, so a stream override may set only some keys.
void parse_reconnect(ParseContext& ctx, const YAML::Node& node, const std::string& path, ReconnectConfig& out) {
  MapReader r(ctx, node, path);
  r.read("initial_s", &out.initial_s);
  r.read("max_s", &out.max_s);
  r.read("multiplier", &out.multiplier);
  r.read("max_attempts", &out.max_attempts);
  r.finish();
}

void parse_stream(ParseContext& ctx, const YAML::Node& node, size_t index, const Config& config,
                  const std::string& base_dir, StreamConfig& out) {
  // Read the id before anything else so every later message can name the stream.
  if (node.IsMap() && node["id"] && node["id"].IsScalar()) out.id = node["id"].Scalar();
  MapReader r(ctx, node, internal::stream_label(index, out.id));
  r.read("id", &out.id);
  if (const YAML::Node* uri = r.find("uri")) {
    std::string text;
    r.read("uri", &text);
    if (!ctx.failed()) {
      auto resolved = resolve_source_uri(text, base_dir);
      if (resolved.ok())
        out.uri = *resolved;
      else
        ctx.fail(uri->Mark(), r.child_path("uri"), resolved.status().message());
    }
  }
  r.read("loop", &out.loop);
  r.read("latency_ms", &out.latency_ms);
  r.read_enum("transport", &out.transport);
  r.read("enabled", &out.enabled);
  if (const YAML::Node* reconnect = r.find("reconnect")) {
    ReconnectConfig policy = config.reconnect;
    parse_reconnect(ctx, *reconnect, r.child_path("reconnect"), policy);
    out.reconnect = policy;
  }
  r.finish();
}

const char* const kMqttKeys[] = {"host",        "port",     "topic_prefix", "qos",          "client_id",
                                 "keepalive_s", "username", "password",     "password_env", "queue"};

void parse_sink(ParseContext& ctx, const YAML::Node& node, size_t index, const std::string& base_dir, SinkConfig& out) {
  MapReader r(ctx, node, internal::sink_label(index));
  r.read_enum("type", &out.type);
  std::string only = std::string("does not apply to a ") + to_string(out.type) + " sink";
  bool file = out.type == SinkType::kFile, mqtt = out.type == SinkType::kMqtt;
  if (file) {
    r.read("path", &out.path);
    out.path = internal::resolve_path(out.path, base_dir);
  } else {
    r.reject("path", only + " (file sinks only)");
  }
  for (const char* key : kMqttKeys)
    if (!mqtt) r.reject(key, only + " (mqtt sinks only)");
  if (mqtt) {
    // `topic` was one fixed topic; events are now split per stream under a prefix.
    r.reject("topic",
             "was replaced by topic_prefix (events go to <topic_prefix>/<stream>/events), e.g. "
             "topic_prefix: dfmon");
    r.read("host", &out.host);
    r.read("port", &out.port);
    r.read("topic_prefix", &out.topic_prefix);
    r.read("qos", &out.qos);
    r.read("client_id", &out.client_id);
    r.read("keepalive_s", &out.keepalive_s);
    r.read("username", &out.username);
    r.read("password", &out.password);
    r.read("password_env", &out.password_env);
    r.read("queue", &out.queue);
  } else {
    r.reject("topic", only + " (mqtt sinks only)");
  }
  r.read("types", &out.types);
  r.finish();
}

// Reads a top-level list; a missing key keeps the default, null is an error (ambiguous: none or default?).
template <typename Fn>
void parse_list(ParseContext& ctx, const YAML::Node* node, const char* key, Fn parse_item) {
  if (!node || ctx.failed()) return;
  if (!node->IsSequence()) {
    ctx.fail(node->Mark(), key, "expected a list, got " + describe(*node));
    return;
  }
  for (size_t i = 0; i < node->size() && !ctx.failed(); ++i) parse_item((*node)[i], i);
}

Result<Config> parse_root(ParseContext& ctx, const YAML::Node& root, const std::string& base_dir) {
  Config config;
  MapReader top(ctx, root, "");
  if (const YAML::Node* n = top.find("server")) parse_server(ctx, *n, config.server);
  if (const YAML::Node* n = top.find("models")) parse_models(ctx, *n, base_dir, config.models);
  if (const YAML::Node* n = top.find("detector")) parse_detector(ctx, *n, base_dir, config.detector);
  if (const YAML::Node* n = top.find("scoring")) parse_scoring(ctx, *n, config.scoring);
  if (const YAML::Node* n = top.find("queue")) parse_queue(ctx, *n, config.queue);
  if (const YAML::Node* n = top.find("reconnect")) parse_reconnect(ctx, *n, "reconnect", config.reconnect);
  parse_list(ctx, top.find("streams"), "streams", [&](const YAML::Node& item, size_t i) {
    config.streams.emplace_back();
    parse_stream(ctx, item, i, config, base_dir, config.streams.back());
  });
  if (const YAML::Node* sinks = top.find("sinks")) {
    config.sinks.clear();
    parse_list(ctx, sinks, "sinks", [&](const YAML::Node& item, size_t i) {
      config.sinks.emplace_back();
      parse_sink(ctx, item, i, base_dir, config.sinks.back());
    });
  }
  top.finish();
  if (ctx.error) return *ctx.error;
  if (auto issue = internal::first_issue(config)) {
    ctx.fail(ctx.mark_for(issue->path), issue->path, issue->message);
    return *ctx.error;
  }
  return config;
}

// yaml-cpp 0.7's LoadAll never returns on some malformed text (a stream starting with ","): the parser
// reports an empty document without consuming anything, again and again, until memory runs out. This walks the
// documents with a handler that keeps no nodes and returns where a document starts without progress.
std::optional<YAML::Mark> stuck_document(const std::string& yaml_text) {
  struct DocumentStarts : YAML::EventHandler {
    std::optional<YAML::Mark> last, stuck;
    void OnDocumentStart(const YAML::Mark& mark) override {
      if (last && last->pos == mark.pos) stuck = mark;
      last = mark;
    }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
    void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
    void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
    void OnMapEnd() override {}
  } handler;
  std::istringstream in(yaml_text);
  YAML::Parser parser(in);
  while (!handler.stuck && parser.HandleNextDocument(handler)) {
  }
  return handler.stuck;
}

}  // namespace

Result<Config> parse_config_string(const std::string& yaml_text, const std::string& source_name,
                                   const std::string& base_dir) {
  std::vector<YAML::Node> docs;
  try {
    if (auto stuck = stuck_document(yaml_text)) {
      const size_t pos = static_cast<size_t>(stuck->pos);
      const std::string what = pos < yaml_text.size() ? internal::quote(yaml_text.substr(pos, 1)) : "end of file";
      return InvalidArgument(source_name + ":" + std::to_string(stuck->line + 1) + ":" +
                             std::to_string(stuck->column + 1) + ": YAML syntax error: unexpected " + what);
    }
    docs = YAML::LoadAll(yaml_text);
  } catch (const YAML::ParserException& e) {
    return InvalidArgument(source_name + ":" + std::to_string(e.mark.line + 1) + ":" +
                           std::to_string(e.mark.column + 1) + ": YAML syntax error: " + e.msg);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(source_name + ": YAML error: " + e.what());
  }
  if (docs.size() > 1)
    return InvalidArgument(source_name + ": expected one YAML document, found " + std::to_string(docs.size()));
  if (docs.empty() || docs[0].IsNull())
    return InvalidArgument(source_name + ": the config is empty; at least `streams` is required");
  ParseContext ctx{source_name, std::nullopt, {}};
  if (!docs[0].IsMap())
    return InvalidArgument(source_name + ": the top level must be a mapping (server:, models:, streams:, ...), got " +
                           describe(docs[0]));
  try {
    return parse_root(ctx, docs[0], base_dir);
  } catch (const YAML::Exception& e) {  // not expected: conversions are checked, but never throw past us
    return Internal(source_name + ": " + e.what());
  }
}

Result<Config> parse_config_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    return InvalidArgument("config file " + internal::quote(path) + ": is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("config file " + internal::quote(path) + ": cannot open for reading");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return IoError("config file " + internal::quote(path) + ": read failed");
  std::string dir = std::filesystem::path(path).parent_path().string();
  // An empty parent means the working directory, which is what resolve_path does with "".
  return parse_config_string(text.str(), path, dir);
}

}  // namespace dfm::config
