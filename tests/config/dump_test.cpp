// Resolved dumps (`dfmon config check`) and the shipped example config.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "dfm/config/config.h"

namespace dfm::config {
namespace {

// A config that sets every key to a non-default value, so the round trip covers all of them.
const char* kEverything = R"(
server: {listen: "[::1]:9000", token: "true", max_clients: 3, client_queue: 17, dashboard: false}
models: {dir: /opt/m, use: [a, b.v2], weights: [0.25, 0.75], backend: cpu, batch: 4, threads: 2}
detector: {type: dlib_hog, max_width: 0, detect_every: 3, min_face: 20, upsample: 1, threshold: -0.5,
           landmark_model: /opt/lm.dat}
scoring: {fps: 2.5, smoothing: {alpha: 0.1}, alert: {on: 0.9, off: 0.2, min_duration_s: 0}}
queue: {frames: 8, drop: drop_newest}
reconnect: {initial_s: 0.5, max_s: 8, multiplier: 1.5, max_attempts: 5}
streams:
  - {id: "1", uri: "rtsp://u:secret@cam/x", loop: true, latency_ms: 0, transport: udp, enabled: false,
     reconnect: {max_attempts: 1}}
  - {id: a.b_c-d, uri: "/srv/a b.mp4"}
sinks:
  - {type: stdout, types: [score]}
  - {type: file, path: /var/log/dfmon.jsonl}
  - {type: mqtt, host: broker, port: 8883, topic_prefix: t/x, qos: 2, client_id: box, keepalive_s: 60,
     username: u, password: mqtt-s3cret, queue: 50, types: [alert_start, dropped]}
  - {type: mqtt, topic_prefix: other, qos: 0, username: v, password_env: DFMON_MQTT_PASSWORD}
)";

Config parse_ok(const std::string& text) {
  auto r = parse_config_string(text, "test.yaml", "/base");
  EXPECT_TRUE(r.ok()) << r.status().message() << "\n" << text;
  return r.ok() ? *r : Config{};
}

TEST(ConfigDump, YamlRoundTripIsIdentity) {
  Config c = parse_ok(kEverything);
  std::string yaml = dump_config(c);
  Config again = parse_ok(yaml);
  EXPECT_EQ(again, c) << yaml;
  EXPECT_EQ(dump_config(again), yaml);  // stable text, so it can be diffed
  // Strings that look like other YAML types stay strings.
  EXPECT_EQ(again.server.token, "true");
  EXPECT_EQ(again.streams[0].id, "1");
}

TEST(ConfigDump, JsonRoundTripIsIdentity) {
  Config c = parse_ok(kEverything);
  std::string json = dump_config(c, {/*json=*/true, /*redact_secrets=*/false});
  auto parsed = nlohmann::json::parse(json);
  EXPECT_EQ(parsed, to_json(c));
  EXPECT_EQ(parse_ok(json), c);  // JSON is YAML, so `config check --json` output is a valid config
}

TEST(ConfigDump, DefaultsAreWrittenOut) {
  Config c = parse_ok("streams: [{id: a, uri: \"rtsp://h/a\"}]");
  nlohmann::json j = to_json(c);
  EXPECT_EQ(j["server"]["listen"], "127.0.0.1:8080");
  EXPECT_EQ(j["server"]["client_queue"], 256);
  EXPECT_EQ(j["server"]["dashboard"], true);
  EXPECT_EQ(j["models"]["backend"], "auto");
  EXPECT_EQ(j["scoring"]["smoothing"]["alpha"], 0.3);
  EXPECT_EQ(j["queue"]["drop"], "drop_oldest");
  EXPECT_EQ(j["reconnect"]["max_s"], 30.0);
  EXPECT_EQ(j["streams"][0]["latency_ms"], 200);
  EXPECT_FALSE(j["streams"][0].contains("reconnect"));  // inherits the top-level policy
  EXPECT_EQ(j["sinks"][0]["type"], "websocket");
  EXPECT_FALSE(j["sinks"][0].contains("path"));  // keys of other sink types are not printed
  std::string yaml = dump_config(c);
  EXPECT_NE(yaml.find("alpha: 0.3\n"), std::string::npos) << yaml;  // shortest doubles, not 0.2999…
  EXPECT_NE(yaml.find("listen: \"127.0.0.1:8080\""), std::string::npos) << yaml;
}

TEST(ConfigDump, RedactsSecrets) {
  Config c = parse_ok(kEverything);
  c.server.token = "s3cret";
  std::string text = dump_config(c, {false, /*redact_secrets=*/true});
  EXPECT_EQ(text.find("s3cret"), std::string::npos) << text;
  EXPECT_EQ(text.find(":secret@"), std::string::npos) << text;
  EXPECT_NE(text.find("rtsp://u:***@cam/x"), std::string::npos) << text;
  EXPECT_EQ(to_json(c, true)["server"]["token"], "***");
  EXPECT_EQ(text.find("mqtt-s3cret"), std::string::npos) << text;
  EXPECT_EQ(to_json(c, true)["sinks"][2]["password"], "***");
  EXPECT_EQ(to_json(c, true)["sinks"][3]["password"], "");                         // nothing to hide
  EXPECT_EQ(to_json(c, true)["sinks"][3]["password_env"], "DFMON_MQTT_PASSWORD");  // a name, not a secret
}

TEST(ConfigDump, ProgrammaticConfigDumps) {
  Config c;
  c.streams.push_back({});
  c.streams[0].id = "x";
  c.streams[0].uri = "v4l2:///dev/video0";
  ASSERT_TRUE(validate(c).ok()) << validate(c).message();
  EXPECT_EQ(parse_ok(dump_config(c)), c);
}

TEST(ConfigExample, ShippedExampleParses) {
  const std::string dir = std::string(DFM_SOURCE_DIR) + "/examples";
  auto r = parse_config_file(dir + "/monitor.yaml");
  ASSERT_TRUE(r.ok()) << r.status().message();
  const Config& c = *r;
  EXPECT_EQ(c.server.token, "change-me");
  EXPECT_EQ(c.models.use.size(), c.models.weights.size());
  ASSERT_EQ(c.streams.size(), 3u);
  EXPECT_EQ(c.streams[0].transport, Transport::kTcp);
  ASSERT_TRUE(c.streams[0].reconnect.has_value());
  EXPECT_DOUBLE_EQ(c.streams[0].reconnect->max_s, 10.0);
  EXPECT_DOUBLE_EQ(c.streams[0].reconnect->initial_s, c.reconnect.initial_s);
  // Relative paths resolve against the config file's directory.
  const std::string root = std::filesystem::path(DFM_SOURCE_DIR).lexically_normal().string();
  EXPECT_EQ(c.streams[1].uri, "file://" + root + "/samples/news.mp4");
  EXPECT_TRUE(c.streams[1].loop);
  EXPECT_FALSE(c.streams[2].enabled);
  EXPECT_EQ(c.models.dir, root + "/models");
  ASSERT_EQ(c.sinks.size(), 3u);
  EXPECT_EQ(c.sinks[1].path, dir + "/alerts.jsonl");
  EXPECT_EQ(parse_ok(dump_config(c)), c);
}

TEST(ConfigExample, RelativePathsFollowTheFile) {
  namespace fs = std::filesystem;
  fs::path dir = fs::path(DFM_TEST_TMP) / "config_rel";
  fs::create_directories(dir);
  std::ofstream(dir / "m.yaml") << "streams: [{id: a, uri: clip.mp4}]\nsinks: [{type: file, path: out/e.jsonl}]\n";
  auto r = parse_config_file((dir / "m.yaml").string());
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->streams[0].uri, "file://" + (dir / "clip.mp4").lexically_normal().string());
  EXPECT_EQ(r->sinks[0].path, (dir / "out/e.jsonl").lexically_normal().string());
}

}  // namespace
}  // namespace dfm::config
