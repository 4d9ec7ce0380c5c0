// HTTP + WebSocket server on one port: /alerts live feed, /healthz, /metrics, / (Boost.Beast, hidden here).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "dfm/common/status.h"
#include "dfm/config/config.h"
#include "dfm/pipeline/event.h"

namespace dfm::server {

class MetricsRegistry;

struct ServerOptions {
  int threads = 1;                   // io_context threads owned by the server
  double write_timeout_s = 10;       // a client whose pending write makes no progress this long is cut off
  double idle_timeout_s = 60;        // WebSocket keepalive: ping after half of it, close after all of it
  double http_timeout_s = 30;        // HTTP request read / response write
  double stop_grace_s = 1.0;         // stop(): time for close handshakes before sockets are torn down
  size_t read_message_max = 4096;    // client -> server messages are ignored, but bounded
  uint32_t header_limit = 8 * 1024;  // HTTP request header bytes
  uint64_t body_limit = 1024;        // HTTP request body bytes (GET/HEAD need none)
  int socket_send_buffer = 0;        // SO_SNDBUF for WebSocket clients; 0 = OS default (bounds kernel memory)
  // What /metrics renders and where the server counts; null = its own registry. Must outlive the server.
  MetricsRegistry* metrics = nullptr;
};

struct HttpPage {
  std::string content_type = "text/html; charset=utf-8";
  std::string body;
};

// One connected feed client, as seen by the server.
struct ClientInfo {
  uint64_t id = 0;
  std::string remote;  // "127.0.0.1:53012"
  std::string types;   // "alert_start,alert_end"
  std::vector<std::string> streams;
  size_t queued = 0;      // events waiting (never above ServerConfig::client_queue)
  size_t max_queued = 0;  // high-water mark
  uint64_t sent = 0;      // events + dropped notices written
  uint64_t dropped = 0;   // events discarded for this client
  bool writing = false;   // a write is in flight
};

// Validated factory: create() checks the config, resolves and binds the listen address (so port() is
// known and "address in use" is reported before anything starts); start() launches the io threads.
// Thread-safe: broadcast(), setters and clients() may be called from any thread; stop() from any thread
// except the server's own handlers.
class Server {
 public:
  // Refuses a non-loopback address when config.token is empty.
  static Result<std::unique_ptr<Server>> create(const config::ServerConfig& config, ServerOptions options = {});
  ~Server();  // stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  Status start();
  // Sends every client a close frame (going_away), stops accepting, joins the io threads. Returns within
  // about stop_grace_s + 0.5 s even when clients never answer. Idempotent.
  void stop();

  uint16_t port() const;        // the bound port (useful with port 0)
  std::string address() const;  // "127.0.0.1:41234"

  void set_health_provider(std::function<nlohmann::json()> fn);  // GET /healthz; none = {"status":"ok"}
  // GET / and other non-API paths: nullopt -> 404.
  void set_page_provider(std::function<std::optional<HttpPage>(const std::string& path)> fn);
  // Types clients may request on /alerts (the websocket sink's types). Default: every type.
  void set_feed_types(uint32_t type_mask);

  // Queues the event for every client whose filter accepts it; never blocks on the network. A full client
  // queue drops its oldest event; the client then gets a `dropped` notice before its next event, whose
  // seq is the seq of the newest event it lost (notices take no seq of their own, so the bus stays
  // gap-free for everyone else).
  void broadcast(const Event& e, const std::string& json);

  size_t client_count() const;
  std::vector<ClientInfo> clients() const;
  MetricsRegistry& metrics();

  struct State;  // shared with sessions; defined in the sources

 private:
  Server();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dfm::server
