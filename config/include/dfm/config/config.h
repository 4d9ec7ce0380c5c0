// Typed `dfmon watch` configuration: YAML -> validated structs, and back to resolved YAML/JSON.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "dfm/common/status.h"

namespace dfm::config {

// Every default of the schema is a member initialiser below; the parser only overrides what the file sets.

struct ListenAddress {
  std::string host = "127.0.0.1";  // IPv6 without brackets ("::1"); loopback by default, opt in to exposure
  int port = 8080;                 // 0 = any free port (tests)
};

struct ServerConfig {
  ListenAddress listen;
  std::string token;       // empty = no auth on the WebSocket upgrade
  int max_clients = 64;    // further upgrades are refused
  int client_queue = 256;  // per-client bounded outgoing queue (events); overflow drops oldest + `dropped`
  bool dashboard = true;   // serve the live dashboard at GET / (docs/dashboard.md)
};

enum class Backend { kAuto, kCuda, kOpenCl, kCpu };

struct ModelsConfig {
  std::string dir;               // empty = the bundled/installed models (dfm::find_default_model_dir())
  std::vector<std::string> use;  // model names; empty = every model found in `dir`
  std::vector<double> weights;   // pairs with `use`; empty = equal weights
  Backend backend = Backend::kAuto;
  int batch = 8;    // face crops per inference call, 1..64
  int threads = 0;  // inference threads in all (split between the models); 0 = one per core
};

struct DetectorConfig {
  std::string type = "dlib_hog";  // registry key; only dlib_hog exists today
  int max_width = 640;            // frames wider are downscaled for detection; 0 = never
  int detect_every = 5;           // run the detector every Nth analysed frame, track in between
  int min_face = 40;              // faces narrower than this (full-frame px) are ignored
  int upsample = 0;               // dlib pyramid upsampling steps, 0..3
  double threshold = 0.0;         // HOG score threshold
  std::string landmark_model;     // empty = dfm::find_landmark_model()
};

struct AlertConfig {
  double on = 0.7;              // smoothed P(fake) at or above this starts an alert...
  double off = 0.4;             // ...below this ends it (hysteresis: off < on)
  double min_duration_s = 1.0;  // shorter excursions above `on` raise nothing
};

struct SmoothingConfig {
  double alpha = 0.3;  // EMA weight of the newest score, 0 < alpha <= 1 (1 = no smoothing)
};

struct ScoringConfig {
  double fps = 5.0;  // frames analysed per second per stream (the rest are decoded and skipped)
  SmoothingConfig smoothing;
  AlertConfig alert;
};

enum class DropPolicy { kBlock, kDropOldest, kDropNewest };

struct QueueConfig {
  int frames = 4;                             // decoded frames buffered per stream
  DropPolicy drop = DropPolicy::kDropOldest;  // live sources must not stall the decoder
};

struct ReconnectConfig {
  double initial_s = 1.0;   // first retry delay
  double max_s = 30.0;      // delay cap
  double multiplier = 2.0;  // delay growth per failed attempt
  int max_attempts = 0;     // consecutive failures before state `failed`; 0 = retry forever
};

enum class Transport { kAuto, kTcp, kUdp };

struct StreamConfig {
  std::string id;                          // required, unique, [A-Za-z0-9_.-]{1,64}; labels events and metrics
  std::string uri;                         // required; a plain file path in YAML is stored as an absolute file:// URI
  bool loop = false;                       // restart file sources at EOS
  int latency_ms = 200;                    // jitter buffer for network sources
  Transport transport = Transport::kAuto;  // RTSP lower transport
  bool enabled = true;
  std::optional<ReconnectConfig> reconnect;  // set = this stream's full policy; unset = Config::reconnect
};

enum class SinkType { kWebsocket, kFile, kStdout, kMqtt };

// Fields apply only to the types named in their comment; the parser rejects them elsewhere.
struct SinkConfig {
  SinkType type = SinkType::kWebsocket;
  std::string path = "events.jsonl";   // file: JSON lines, appended
  std::string host = "127.0.0.1";      // mqtt: broker host name or IP
  int port = 1883;                     // mqtt, 1..65535
  std::string topic_prefix = "dfmon";  // mqtt: <prefix>/<stream>/events, retained <prefix>/<stream>/state
  int qos = 1;                         // mqtt, 0..2
  std::string client_id;               // mqtt; empty = "dfmon-<hostname>-<pid>"
  int keepalive_s = 30;                // mqtt, 5..3600; also bounds how long a connect attempt may hang
  std::string username;                // mqtt; empty = anonymous
  std::string password;                // mqtt; needs username; prefer password_env
  std::string password_env;            // mqtt: environment variable read at start for the password
  int queue = 1024;                    // mqtt: events held while the broker is slow or away (oldest dropped)
  // Event types the sink receives (see event_type_names()); `score` is one per face, so opt-in.
  std::vector<std::string> types = {"alert_start", "alert_end", "stream_state"};
};

struct Config {
  ServerConfig server;
  ModelsConfig models;
  DetectorConfig detector;
  ScoringConfig scoring;
  QueueConfig queue;
  ReconnectConfig reconnect;
  std::vector<StreamConfig> streams;               // required, non-empty
  std::vector<SinkConfig> sinks = {SinkConfig{}};  // a WebSocket feed on server.listen
};

// Parses YAML text. `source_name` prefixes error messages ("monitor.yaml:7:5: ..."); relative paths
// (models.dir, detector.landmark_model, sink paths, stream file paths) resolve against `base_dir`,
// or the working directory when it is empty. The result has passed validate().
Result<Config> parse_config_string(const std::string& yaml_text, const std::string& source_name = "<config>",
                                   const std::string& base_dir = "");

// Reads and parses a file; relative paths inside resolve against the file's directory.
Result<Config> parse_config_file(const std::string& path);

// Semantic checks (ranges, uniqueness, URIs); errors name the key path and the stream id.
Status validate(const Config& config);

// Resolved config with every default filled in. Secrets (server.token, URI passwords) are written
// as-is unless redact_secrets is set; a redacted dump is for display, not for re-parsing.
struct DumpOptions {
  bool json = false;  // JSON instead of YAML
  bool redact_secrets = false;
};
std::string dump_config(const Config& config, const DumpOptions& options = {});
nlohmann::json to_json(const Config& config, bool redact_secrets = false);

// "127.0.0.1:8080", "[::1]:8080", "localhost:0".
Result<ListenAddress> parse_listen_address(const std::string& text);
std::string to_string(const ListenAddress& address);  // brackets IPv6 hosts

// A stream source as a URI: URIs are checked (scheme, host, port), plain paths become absolute
// file:// URIs (relative ones against base_dir, or the working directory when it is empty).
Result<std::string> resolve_source_uri(const std::string& text, const std::string& base_dir = "");

// Effective reconnect policy of a stream.
const ReconnectConfig& reconnect_for(const Config& config, const StreamConfig& stream);

// Valid `types` entries, in feed order.
const std::vector<std::string>& event_type_names();

const char* to_string(Backend value);     // auto | cuda | opencl | cpu
const char* to_string(Transport value);   // auto | tcp | udp
const char* to_string(DropPolicy value);  // block | drop_oldest | drop_newest
const char* to_string(SinkType value);    // websocket | file | stdout | mqtt

bool operator==(const ListenAddress& a, const ListenAddress& b);
bool operator==(const ServerConfig& a, const ServerConfig& b);
bool operator==(const ModelsConfig& a, const ModelsConfig& b);
bool operator==(const DetectorConfig& a, const DetectorConfig& b);
bool operator==(const AlertConfig& a, const AlertConfig& b);
bool operator==(const SmoothingConfig& a, const SmoothingConfig& b);
bool operator==(const ScoringConfig& a, const ScoringConfig& b);
bool operator==(const QueueConfig& a, const QueueConfig& b);
bool operator==(const ReconnectConfig& a, const ReconnectConfig& b);
bool operator==(const StreamConfig& a, const StreamConfig& b);
bool operator==(const SinkConfig& a, const SinkConfig& b);
bool operator==(const Config& a, const Config& b);
inline bool operator!=(const Config& a, const Config& b) { return !(a == b); }

}  // namespace dfm::config
