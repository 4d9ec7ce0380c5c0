// A live feed for socket tests: a started Server on 127.0.0.1:0 with an EventBus whose WebSocket sink
// carries every event type, plus helpers to wait for clients and make score events.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "dfm/server/event_bus.h"
#include "dfm/server/server.h"
#include "dfm/server/sink.h"

namespace dfm::server::test {

struct FeedOptions {
  int client_queue = 256;
  int max_clients = 64;
  int send_buffer = 8192;       // SO_SNDBUF: keeps the kernel's share of a stuck client small, tests fast
  double write_timeout_s = 60;  // stuck clients must survive the whole test
};

struct Feed {
  std::unique_ptr<Server> server;
  std::unique_ptr<EventBus> bus;

  explicit Feed(const FeedOptions& f = {}) {
    config::ServerConfig c;
    c.listen.port = 0;
    c.client_queue = f.client_queue;
    c.max_clients = f.max_clients;
    ServerOptions o;
    o.socket_send_buffer = f.send_buffer;
    o.write_timeout_s = f.write_timeout_s;
    auto s = Server::create(c, o);
    EXPECT_TRUE(s.ok()) << s.status().to_string();
    server = std::move(s).value();
    EXPECT_TRUE(server->start().ok());
    bus = std::make_unique<EventBus>(&server->metrics());
    config::SinkConfig ws;
    ws.types = {"alert_start", "alert_end", "score", "stream_state"};
    bus->add_sink(std::move(make_sink(ws, server.get())).value());
  }
  ~Feed() {
    bus.reset();
    server.reset();
  }
  // True once exactly n clients are registered for broadcast (not just upgraded).
  bool wait_clients(size_t n, double timeout_s = 10) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    while (std::chrono::steady_clock::now() < end && server->client_count() != n)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    return server->client_count() == n;
  }
  std::optional<ClientInfo> client_on(uint16_t local_port) {
    for (const auto& c : server->clients()) {
      if (c.remote == "127.0.0.1:" + std::to_string(local_port)) return c;
    }
    return std::nullopt;
  }
};

inline Event score_event(int i) {
  Event e;
  e.type = EventType::kScore;
  e.stream = i % 2 ? "cam-1" : "cam-2";
  e.track = i % 7;
  e.pts_s = i * 0.2;
  e.score = 0.5;
  e.raw = 0.6;
  e.models = {{"resnet18", 0.61}, {"vit", 0.59}};
  e.bbox = cv::Rect(i % 640, 100, 64, 64);
  return e;
}

constexpr const char* kAllTypes = "/alerts?types=alert_start,alert_end,score,stream_state";

}  // namespace dfm::server::test
