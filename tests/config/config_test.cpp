// Parsing and validation of the `dfmon watch` YAML config: values, defaults and error messages.
#include "dfm/config/config.h"

#include <gtest/gtest.h>

#include <string>

namespace dfm::config {
namespace {

Result<Config> parse(const std::string& yaml) { return parse_config_string(yaml, "test.yaml", "/base"); }

// The error message, or "OK" so a failed expectation shows what happened.
std::string error_of(const std::string& yaml) {
  auto r = parse(yaml);
  return r.ok() ? "OK" : r.status().message();
}

const std::string kStream = "streams:\n  - {id: cam-1, uri: \"rtsp://127.0.0.1:8554/lobby\"}\n";

// The example from docs/interfaces.md, verbatim.
const char* kInterfacesExample = R"(
server:   { listen: "127.0.0.1:8080", token: "change-me" }
models:   { dir: models, use: [resnet18, vit], weights: [0.5, 0.5], backend: auto, batch: 8 }
detector: { type: dlib_hog, max_width: 640, detect_every: 5, min_face: 40 }
scoring:  { fps: 5, smoothing: { alpha: 0.3 }, alert: { on: 0.7, off: 0.4, min_duration_s: 1.0 } }
streams:
  - { id: cam-1, uri: "rtsp://127.0.0.1:8554/lobby" }
  - { id: news, uri: "file:///srv/clips/news.mp4", loop: true }
sinks:
  - { type: websocket }
  - { type: file, path: alerts.jsonl }
  - { type: mqtt, host: 127.0.0.1, port: 1883, topic_prefix: dfmon }
)";

TEST(ConfigParse, InterfacesExample) {
  auto r = parse(kInterfacesExample);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const Config& c = *r;
  EXPECT_EQ(c.server.listen.host, "127.0.0.1");
  EXPECT_EQ(c.server.listen.port, 8080);
  EXPECT_EQ(c.server.token, "change-me");
  EXPECT_EQ(c.models.dir, "/base/models");
  EXPECT_EQ(c.models.use, (std::vector<std::string>{"resnet18", "vit"}));
  EXPECT_EQ(c.models.weights, (std::vector<double>{0.5, 0.5}));
  EXPECT_EQ(c.models.backend, Backend::kAuto);
  EXPECT_EQ(c.models.batch, 8);
  EXPECT_EQ(c.detector.type, "dlib_hog");
  EXPECT_EQ(c.detector.max_width, 640);
  EXPECT_EQ(c.detector.detect_every, 5);
  EXPECT_EQ(c.detector.min_face, 40);
  EXPECT_DOUBLE_EQ(c.scoring.fps, 5.0);
  EXPECT_DOUBLE_EQ(c.scoring.smoothing.alpha, 0.3);
  EXPECT_DOUBLE_EQ(c.scoring.alert.on, 0.7);
  EXPECT_DOUBLE_EQ(c.scoring.alert.off, 0.4);
  EXPECT_DOUBLE_EQ(c.scoring.alert.min_duration_s, 1.0);
  ASSERT_EQ(c.streams.size(), 2u);
  EXPECT_EQ(c.streams[0].id, "cam-1");
  EXPECT_EQ(c.streams[0].uri, "rtsp://127.0.0.1:8554/lobby");
  EXPECT_FALSE(c.streams[0].loop);
  EXPECT_EQ(c.streams[1].id, "news");
  EXPECT_EQ(c.streams[1].uri, "file:///srv/clips/news.mp4");
  EXPECT_TRUE(c.streams[1].loop);
  ASSERT_EQ(c.sinks.size(), 3u);
  EXPECT_EQ(c.sinks[0].type, SinkType::kWebsocket);
  EXPECT_EQ(c.sinks[1].type, SinkType::kFile);
  EXPECT_EQ(c.sinks[1].path, "/base/alerts.jsonl");
  EXPECT_EQ(c.sinks[2].type, SinkType::kMqtt);
  EXPECT_EQ(c.sinks[2].host, "127.0.0.1");
  EXPECT_EQ(c.sinks[2].port, 1883);
  EXPECT_EQ(c.sinks[2].topic_prefix, "dfmon");
  EXPECT_TRUE(validate(c).ok());
}

TEST(ConfigParse, MqttSinkKeys) {
  auto r = parse(kStream +
                 "sinks:\n  - {type: mqtt}\n  - {type: mqtt, host: broker.lan, port: 8883, topic_prefix: "
                 "site/a, qos: 2, client_id: box-1, keepalive_s: 60, username: u, password_env: "
                 "DFMON_MQTT_PASSWORD, queue: 10}\n");
  ASSERT_TRUE(r.ok()) << r.status().message();
  const SinkConfig& d = r->sinks[0];
  EXPECT_EQ(d.host, "127.0.0.1");
  EXPECT_EQ(d.port, 1883);
  EXPECT_EQ(d.topic_prefix, "dfmon");
  EXPECT_EQ(d.qos, 1);
  EXPECT_EQ(d.client_id, "");
  EXPECT_EQ(d.keepalive_s, 30);
  EXPECT_EQ(d.queue, 1024);
  const SinkConfig& s = r->sinks[1];
  EXPECT_EQ(s.host, "broker.lan");
  EXPECT_EQ(s.port, 8883);
  EXPECT_EQ(s.topic_prefix, "site/a");
  EXPECT_EQ(s.qos, 2);
  EXPECT_EQ(s.client_id, "box-1");
  EXPECT_EQ(s.keepalive_s, 60);
  EXPECT_EQ(s.username, "u");
  EXPECT_EQ(s.password, "");
  EXPECT_EQ(s.password_env, "DFMON_MQTT_PASSWORD");  // read by the sink at start, not by the parser
  EXPECT_EQ(s.queue, 10);
}

TEST(ConfigParse, DefaultsFillEverythingButStreams) {
  auto r = parse(kStream);
  ASSERT_TRUE(r.ok()) << r.status().message();
  Config expected;
  expected.streams.push_back(StreamConfig{});
  expected.streams[0].id = "cam-1";
  expected.streams[0].uri = "rtsp://127.0.0.1:8554/lobby";
  EXPECT_EQ(*r, expected);
  EXPECT_EQ(r->server.listen.host, "127.0.0.1");
  EXPECT_EQ(r->server.listen.port, 8080);
  EXPECT_EQ(r->server.token, "");
  EXPECT_EQ(r->server.client_queue, 256);
  EXPECT_TRUE(r->server.dashboard);
  EXPECT_EQ(r->queue.frames, 4);
  EXPECT_EQ(r->queue.drop, DropPolicy::kDropOldest);
  EXPECT_DOUBLE_EQ(r->reconnect.initial_s, 1.0);
  EXPECT_DOUBLE_EQ(r->reconnect.max_s, 30.0);
  EXPECT_DOUBLE_EQ(r->reconnect.multiplier, 2.0);
  EXPECT_EQ(r->models.dir, "");  // bundled models
  EXPECT_TRUE(r->models.use.empty());
  EXPECT_TRUE(r->streams[0].enabled);
  EXPECT_FALSE(r->streams[0].reconnect.has_value());
  ASSERT_EQ(r->sinks.size(), 1u);
  EXPECT_EQ(r->sinks[0].type, SinkType::kWebsocket);
  EXPECT_EQ(r->sinks[0].types, (std::vector<std::string>{"alert_start", "alert_end", "stream_state"}));
}

TEST(ConfigParse, EmptySectionsMeanDefaults) {
  auto r = parse("server:\nmodels:\n" + kStream);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->server.listen.port, 8080);
}

TEST(ConfigParse, EmptySinkListMeansNoSinks) {
  auto r = parse(kStream + "sinks: []\n");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->sinks.empty());
}

TEST(ConfigParse, ListenAddresses) {
  auto v6 = parse_listen_address("[::1]:8080");
  ASSERT_TRUE(v6.ok()) << v6.status().message();
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 8080);
  EXPECT_EQ(to_string(*v6), "[::1]:8080");
  auto any = parse_listen_address("0.0.0.0:0");
  ASSERT_TRUE(any.ok());
  EXPECT_EQ(any->port, 0);
  auto name = parse_listen_address("localhost:9000");
  ASSERT_TRUE(name.ok());
  EXPECT_EQ(name->host, "localhost");
  for (const char* bad :
       {"127.0.0.1", "::1:8080", "[::1]8080", "[::1:8080", ":8080", "host:99999", "host:http", "ho st:80", ""})
    EXPECT_FALSE(parse_listen_address(bad).ok()) << bad;

  auto r = parse("server: {listen: \"[::]:9000\"}\n" + kStream);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->server.listen.host, "::");
  EXPECT_EQ(r->server.listen.port, 9000);
}

TEST(ConfigParse, SourceUris) {
  auto ok = [](const std::string& text) {
    auto r = resolve_source_uri(text, "/base");
    return r.ok() ? *r : "ERROR: " + r.status().message();
  };
  EXPECT_EQ(ok("rtsp://user:pw@[::1]:8554/a"), "rtsp://user:pw@[::1]:8554/a");
  EXPECT_EQ(ok("RTSP://cam.local/x"), "rtsp://cam.local/x");
  EXPECT_EQ(ok("udp://@:5000"), "udp://@:5000");
  EXPECT_EQ(ok("srt://:7001?mode=listener"), "srt://:7001?mode=listener");
  EXPECT_EQ(ok("https://example.com/live.m3u8"), "https://example.com/live.m3u8");
  EXPECT_EQ(ok("v4l2:///dev/video0"), "v4l2:///dev/video0");
  EXPECT_EQ(ok("file:///srv/a.mp4"), "file:///srv/a.mp4");
  // Plain paths become absolute, normalised, percent-encoded file URIs.
  EXPECT_EQ(ok("/srv/clips/a.mp4"), "file:///srv/clips/a.mp4");
  EXPECT_EQ(ok("clips/a b#1.mp4"), "file:///base/clips/a%20b%231.mp4");
  EXPECT_EQ(ok("./x/../y.mp4"), "file:///base/y.mp4");
}

TEST(ConfigParse, StreamPathBecomesFileUri) {
  auto r = parse("streams:\n  - {id: a, uri: clips/a.mp4}\n");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->streams[0].uri, "file:///base/clips/a.mp4");
}

TEST(ConfigParse, StreamReconnectOverrideInheritsGlobal) {
  auto r = parse(R"(
reconnect: {initial_s: 2, max_s: 60}
streams:
  - {id: a, uri: "rtsp://h/a", reconnect: {max_s: 10}}
  - {id: b, uri: "rtsp://h/b"}
)");
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_TRUE(r->streams[0].reconnect.has_value());
  EXPECT_DOUBLE_EQ(r->streams[0].reconnect->initial_s, 2.0);
  EXPECT_DOUBLE_EQ(r->streams[0].reconnect->max_s, 10.0);
  EXPECT_DOUBLE_EQ(reconnect_for(*r, r->streams[0]).max_s, 10.0);
  EXPECT_DOUBLE_EQ(reconnect_for(*r, r->streams[1]).max_s, 60.0);
}

TEST(ConfigParse, MergeKeysShareStreamSettings) {
  auto r = parse(R"(
streams:
  - &cam {id: a, uri: "rtsp://h/a", transport: tcp, latency_ms: 50}
  - {<<: *cam, id: b, uri: "rtsp://h/b"}
)");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->streams[1].id, "b");
  EXPECT_EQ(r->streams[1].uri, "rtsp://h/b");
  EXPECT_EQ(r->streams[1].transport, Transport::kTcp);
  EXPECT_EQ(r->streams[1].latency_ms, 50);
}

TEST(ConfigParse, EnumsAndLenientScalars) {
  auto r = parse(
      "models: {backend: opencl, threads: \"4\"}\nqueue: {drop: block}\n"
      "streams:\n  - {id: 7, uri: \"rtsp://h/a\", transport: udp, enabled: false}\n");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->models.backend, Backend::kOpenCl);
  EXPECT_EQ(r->models.threads, 4);
  EXPECT_EQ(r->queue.drop, DropPolicy::kBlock);
  EXPECT_EQ(r->streams[0].id, "7");
  EXPECT_EQ(r->streams[0].transport, Transport::kUdp);
  EXPECT_FALSE(r->streams[0].enabled);
}

TEST(ConfigParse, MessagesCarryLineAndColumn) {
  // Unknown key on line 3, column 5 (1-based).
  std::string e = error_of("streams:\n  - id: a\n    lop: true\n    uri: \"rtsp://h/a\"\n");
  EXPECT_EQ(e.rfind("test.yaml:3:5: ", 0), 0u) << e;
  // Semantic errors found after parsing still point at the value.
  e = error_of("server: {}\nmodels:\n  batch: 100\n" + kStream);
  EXPECT_EQ(e.rfind("test.yaml:3:10: models.batch: ", 0), 0u) << e;
}

TEST(ConfigParse, SyntaxErrorReportsPosition) {
  std::string e = error_of("streams:\n  - {id: a, uri: x\nsinks: []\n");
  EXPECT_NE(e.find("test.yaml:"), std::string::npos) << e;
  EXPECT_NE(e.find("YAML syntax error"), std::string::npos) << e;
  e = error_of("server:\n\tlisten: x\n");  // tabs are not YAML indentation
  EXPECT_NE(e.find("test.yaml:2:"), std::string::npos) << e;
}

TEST(ConfigParse, FileErrors) {
  auto missing = parse_config_file("/nonexistent/monitor.yaml");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_NE(missing.status().message().find("/nonexistent/monitor.yaml"), std::string::npos);
  EXPECT_FALSE(parse_config_file(DFM_TEST_TMP).ok());  // a directory
}

TEST(ConfigValidate, ProgrammaticConfigs) {
  Config c;
  EXPECT_NE(validate(c).message().find("streams: is required"), std::string::npos) << validate(c).message();
  c.streams.push_back({});
  c.streams[0].id = "cam-1";
  c.streams[0].uri = "clip.mp4";  // callers resolve paths with resolve_source_uri()
  EXPECT_NE(validate(c).message().find("streams[0] (id \"cam-1\").uri"), std::string::npos) << validate(c).message();
  c.streams[0].uri = *resolve_source_uri("clip.mp4", "/srv");
  EXPECT_TRUE(validate(c).ok()) << validate(c).message();
  c.scoring.alert.off = 0.9;
  EXPECT_NE(validate(c).message().find("scoring.alert.off"), std::string::npos);
}

// ---- Every error class: the message must name the key path (and the stream when inside one). ----

struct ErrorCase {
  const char* name;
  std::string yaml;
  std::vector<std::string> expected;  // substrings of the message
};

// Keeps ctest names short ("…/UnknownInStream" rather than a byte dump of the struct).
void PrintTo(const ErrorCase& c, std::ostream* os) { *os << c.name; }

class ConfigErrors : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(ConfigErrors, MessageNamesTheKey) {
  const ErrorCase& c = GetParam();
  auto r = parse(c.yaml);
  ASSERT_FALSE(r.ok()) << "accepted:\n" << c.yaml;
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  for (const auto& s : c.expected) EXPECT_NE(r.status().message().find(s), std::string::npos) << r.status().message();
  EXPECT_EQ(r.status().message().rfind("test.yaml", 0), 0u) << r.status().message();
}

const std::string kTwo = "streams:\n  - {id: cam-1, uri: \"rtsp://h/a\"}\n  - id: news\n    uri: /srv/news.mp4\n";

const ErrorCase kErrorCases[] = {
    // Presence and shape.
    {"EmptyFile", "", {"streams", "required"}},
    {"NoStreams", "server: {token: x}\n", {"streams: is required"}},
    {"EmptyStreams", "streams: []\n", {"streams: is required"}},
    {"NullStreams", "streams:\n", {"streams: expected a list"}},
    {"TopLevelList", "- a\n- b\n", {"top level must be a mapping"}},
    {"TwoDocuments", kStream + "---\n" + kStream, {"one YAML document"}},
    {"StreamNotMap", "streams:\n  - rtsp://h/a\n", {"streams[0]: expected a mapping"}},
    {"SectionNotMap", "server: 8080\n" + kStream, {"server: expected a mapping", "\"8080\""}},
    // Unknown keys, with suggestions.
    {"UnknownTopLevel", "stream:\n  - {id: a}\n" + kStream, {"unknown key \"stream\"", "did you mean \"streams\""}},
    {"UnknownInStream", kTwo + "    lop: true\n", {"streams[1] (id \"news\"): unknown key \"lop\"", "\"loop\""}},
    {"UnknownNested", "scoring: {alert: {onn: 0.5}}\n" + kStream, {"scoring.alert: unknown key \"onn\""}},
    {"UnknownInStreamReconnect",
     "streams:\n  - {id: a, uri: \"rtsp://h/a\", reconnect: {max: 3}}\n",
     {"streams[0] (id \"a\").reconnect: unknown key \"max\""}},
    {"SinkKeyOfOtherType",
     kStream + "sinks:\n  - {type: websocket, path: x.jsonl}\n",
     {"sinks[0].path", "does not apply to a websocket sink"}},
    {"MqttKeyOnFileSink", kStream + "sinks:\n  - {type: file, topic: t}\n", {"sinks[0].topic", "mqtt sinks only"}},
    // Duplicate YAML keys.
    {"DuplicateKey",
     "server:\n  listen: \"127.0.0.1:1\"\n  listen: \"127.0.0.1:2\"\n" + kStream,
     {"test.yaml:3:3: server: duplicate key \"listen\"", "line 2"}},
    {"DuplicateKeyInStream",
     "streams:\n  - {id: a, uri: \"rtsp://h/a\", uri: \"rtsp://h/b\"}\n",
     {"streams[0] (id \"a\"): duplicate key \"uri\""}},
    // Wrong types.
    {"IntNotNumber",
     "server: {max_clients: many}\n" + kStream,
     {"server.max_clients: expected an integer, got \"many\""}},
    {"IntIsFraction", "models: {batch: 2.5}\n" + kStream, {"models.batch: expected an integer"}},
    {"BoolNotBool", kTwo + "    loop: sometimes\n", {"streams[1] (id \"news\").loop: expected true or false"}},
    {"StringIsList", "server: {token: [a, b]}\n" + kStream, {"server.token: expected a string, got a list"}},
    {"ListIsScalar", "models: {use: resnet18}\n" + kStream, {"models.use: expected a list"}},
    {"ListItemType",
     "models: {use: [a, b], weights: [1, heavy]}\n" + kStream,
     {"models.weights[1]: expected a number"}},
    {"BadEnum", "models: {backend: tpu}\n" + kStream, {"models.backend: expected one of auto, cuda, opencl, cpu"}},
    {"BadStreamEnum", kTwo + "    transport: quic\n", {"streams[1] (id \"news\").transport", "tcp"}},
    {"NullValue", "server: {token: }\n" + kStream, {"server.token: expected a string, got null"}},
    // Out-of-range numbers.
    {"BatchZero", "models: {batch: 0}\n" + kStream, {"models.batch: must be in 1..64, got 0"}},
    {"BatchHigh", "models: {batch: 65}\n" + kStream, {"models.batch: must be in 1..64"}},
    {"AlphaZero", "scoring: {smoothing: {alpha: 0}}\n" + kStream, {"scoring.smoothing.alpha: must be in (0, 1]"}},
    {"AlphaHigh", "scoring: {smoothing: {alpha: 1.5}}\n" + kStream, {"scoring.smoothing.alpha"}},
    {"FpsNaN", "scoring: {fps: .nan}\n" + kStream, {"scoring.fps"}},
    {"AlertOnAboveOne", "scoring: {alert: {on: 1.2}}\n" + kStream, {"scoring.alert.on: must be in [0, 1]"}},
    {"AlertOffNotBelowOn",
     "scoring: {alert: {on: 0.5, off: 0.5}}\n" + kStream,
     {"scoring.alert.off: must be below scoring.alert.on"}},
    {"DetectEveryZero", "detector: {detect_every: 0}\n" + kStream, {"detector.detect_every"}},
    {"UnknownDetector", "detector: {type: yolo}\n" + kStream, {"detector.type", "yolo"}},
    {"QueueZero", "queue: {frames: 0}\n" + kStream, {"queue.frames"}},
    {"ClientQueueZero", "server: {client_queue: 0}\n" + kStream, {"server.client_queue"}},
    {"DashboardNotBool", "server: {dashboard: maybe}\n" + kStream, {"server.dashboard: expected true or false"}},
    {"LatencyNegative", kTwo + "    latency_ms: -1\n", {"streams[1] (id \"news\").latency_ms: must be in 0..60000"}},
    {"ReconnectMaxBelowInitial", "reconnect: {initial_s: 5, max_s: 2}\n" + kStream, {"reconnect.max_s: must be >="}},
    {"StreamReconnectBad",
     kTwo + "    reconnect: {multiplier: 0.5}\n",
     {"streams[1] (id \"news\").reconnect.multiplier"}},
    {"QosHigh",
     kStream + "sinks:\n  - {type: websocket}\n  - {type: mqtt, qos: 3}\n",
     {"sinks[1].qos: must be in 0..2"}},
    {"MqttPortZero", kStream + "sinks:\n  - {type: mqtt, port: 0}\n", {"sinks[0].port"}},
    // Models.
    {"WeightsLength",
     "models: {use: [a, b], weights: [1]}\n" + kStream,
     {"models.weights: must have one weight per models.use entry: 2 expected, got 1"}},
    {"WeightsNegative", "models: {use: [a, b], weights: [1, -1]}\n" + kStream, {"models.weights[1]"}},
    {"WeightsAllZero", "models: {use: [a, b], weights: [0, 0]}\n" + kStream, {"models.weights: must not all be 0"}},
    {"WeightsWithoutUse", "models: {weights: [1]}\n" + kStream, {"models.weights: needs models.use"}},
    {"ModelTwice", "models: {use: [a, a]}\n" + kStream, {"models.use[1]", "listed twice"}},
    // Streams: ids.
    {"DuplicateStreamId",
     kTwo + "  - {id: cam-1, uri: \"rtsp://h/c\"}\n",
     {"streams[2] (id \"cam-1\").id: duplicate stream id \"cam-1\", already used by streams[0]"}},
    {"BadStreamId", "streams:\n  - {id: \"cam 1\", uri: \"rtsp://h/a\"}\n", {"streams[0] (id \"cam 1\").id: must be"}},
    {"MissingStreamId", "streams:\n  - {uri: \"rtsp://h/a\"}\n", {"streams[0].id: is required"}},
    {"MissingUri", "streams:\n  - {id: a}\n", {"streams[0] (id \"a\").uri: is required"}},
    // Streams: URIs.
    {"UriScheme",
     kTwo + "  - {id: c, uri: \"ftp://h/a.mp4\"}\n",
     {"streams[2] (id \"c\").uri", "unsupported URI scheme \"ftp\""}},
    {"UriNoHost", "streams:\n  - {id: a, uri: \"rtsp:///a\"}\n", {"streams[0] (id \"a\").uri", "has no host"}},
    {"UriBadPort", "streams:\n  - {id: a, uri: \"rtsp://h:70000/a\"}\n", {"streams[0] (id \"a\").uri", "invalid port"}},
    {"UdpNeedsPort",
     "streams:\n  - {id: a, uri: \"udp://239.0.0.1\"}\n",
     {"streams[0] (id \"a\").uri", "needs a port"}},
    {"FileUriRelative",
     "streams:\n  - {id: a, uri: \"file://clips/a.mp4\"}\n",
     {"streams[0] (id \"a\").uri", "absolute path"}},
    {"UriSpace", "streams:\n  - {id: a, uri: \"rtsp://h/a b\"}\n", {"streams[0] (id \"a\").uri", "whitespace"}},
    {"UriSingleSlash", "streams:\n  - {id: a, uri: \"rtsp:/h/a\"}\n", {"streams[0] (id \"a\").uri", "expected a URI"}},
    {"UriUnbracketedV6",
     "streams:\n  - {id: a, uri: \"rtsp://::1:554/a\"}\n",
     {"streams[0] (id \"a\").uri", "brackets"}},
    // Listen addresses.
    {"ListenNoPort", "server: {listen: \"127.0.0.1\"}\n" + kStream, {"server.listen", "HOST:PORT"}},
    {"ListenV6NoBrackets", "server: {listen: \"::1:8080\"}\n" + kStream, {"server.listen", "brackets"}},
    {"ListenPortRange", "server: {listen: \"0.0.0.0:65536\"}\n" + kStream, {"server.listen", "0..65535"}},
    {"TokenWithSpace", "server: {token: \"a b\"}\n" + kStream, {"server.token"}},
    // Sinks.
    {"UnknownSinkType", kStream + "sinks:\n  - {type: kafka}\n", {"sinks[0].type: expected one of websocket"}},
    {"UnknownEventType",
     kStream + "sinks:\n  - {type: stdout, types: [alert_start, alarm]}\n",
     {"sinks[0].types[1]", "unknown event type \"alarm\""}},
    {"EmptyTypes", kStream + "sinks:\n  - {type: stdout, types: []}\n", {"sinks[0].types: is empty"}},
    {"TwoWebsockets",
     kStream + "sinks:\n  - {type: websocket}\n  - {type: websocket}\n",
     {"sinks[1].type", "only one"}},
    {"SameFileTwice",
     kStream + "sinks:\n  - {type: file, path: a.jsonl}\n  - {type: file, path: ./a.jsonl}\n",
     {"sinks[1].path", "already writes"}},
    {"MqttOldTopicKey",
     kStream + "sinks:\n  - {type: mqtt, topic: dfmon/events}\n",
     {"sinks[0].topic", "replaced by topic_prefix"}},
    {"MqttPrefixWildcard",
     kStream + "sinks:\n  - {type: websocket}\n  - {type: mqtt, topic_prefix: \"dfmon/#\"}\n",
     {"sinks[1].topic_prefix", "wildcards"}},
    {"MqttPrefixPlus",
     kStream + "sinks:\n  - {type: mqtt, topic_prefix: \"a/+/b\"}\n",
     {"sinks[0].topic_prefix", "wildcards"}},
    {"MqttPrefixEmpty",
     kStream + "sinks:\n  - {type: mqtt, topic_prefix: \"\"}\n",
     {"sinks[0].topic_prefix: is empty"}},
    {"MqttPrefixSlash", kStream + "sinks:\n  - {type: mqtt, topic_prefix: dfmon/}\n", {"sinks[0].topic_prefix", "'/'"}},
    {"MqttPrefixDollar", kStream + "sinks:\n  - {type: mqtt, topic_prefix: $SYS/x}\n", {"sinks[0].topic_prefix", "$"}},
    {"MqttPrefixLatin1",
     kStream + "sinks:\n  - {type: mqtt, topic_prefix: \"caf\xe9\"}\n",
     {"sinks[0].topic_prefix: is not valid UTF-8"}},
    {"MqttPortHigh", kStream + "sinks:\n  - {type: mqtt, port: 65536}\n", {"sinks[0].port: must be in 1..65535"}},
    {"MqttKeepaliveLow",
     kStream + "sinks:\n  - {type: mqtt, keepalive_s: 2}\n",
     {"sinks[0].keepalive_s: must be in 5..3600"}},
    {"MqttQueueZero", kStream + "sinks:\n  - {type: mqtt, queue: 0}\n", {"sinks[0].queue"}},
    {"MqttClientIdSpace", kStream + "sinks:\n  - {type: mqtt, client_id: \"a b\"}\n", {"sinks[0].client_id"}},
    {"MqttPasswordWithoutUser",
     kStream + "sinks:\n  - {type: mqtt, password: x}\n",
     {"sinks[0].username: is required"}},
    {"MqttPasswordTwice",
     kStream + "sinks:\n  - {type: mqtt, username: u, password: x, password_env: P}\n",
     {"sinks[0].password", "not both"}},
    {"MqttPasswordEnvName",
     kStream + "sinks:\n  - {type: mqtt, username: u, password_env: \"MY-PASS\"}\n",
     {"sinks[0].password_env", "environment variable name"}},
    {"MqttSameClientIdTwice",
     kStream + "sinks:\n  - {type: mqtt, client_id: box}\n  - {type: mqtt, client_id: box, topic_prefix: b}\n",
     {"sinks[1].client_id", "already connects"}},
    {"MqttKeyOnStdoutSink",
     kStream + "sinks:\n  - {type: stdout, client_id: x}\n",
     {"sinks[0].client_id", "mqtt sinks only"}},
    {"MqttUnknownKey",
     kStream + "sinks:\n  - {type: mqtt, topic_prefx: a}\n",
     {"unknown key \"topic_prefx\"", "topic_prefix"}},
};

INSTANTIATE_TEST_SUITE_P(AllClasses, ConfigErrors, ::testing::ValuesIn(kErrorCases),
                         [](const ::testing::TestParamInfo<ErrorCase>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace dfm::config
