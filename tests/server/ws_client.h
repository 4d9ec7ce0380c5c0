// Small blocking HTTP and WebSocket clients for the server tests (Beast stays inside ws_client.cpp).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace dfm::test {

struct HttpReply {
  int status = 0;                              // 0 = network error (see error)
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string error;
};

using Headers = std::vector<std::pair<std::string, std::string>>;

HttpReply http_request(uint16_t port, const std::string& method, const std::string& target,
                       const Headers& headers = {});
inline HttpReply http_get(uint16_t port, const std::string& target, const Headers& headers = {}) {
  return http_request(port, "GET", target, headers);
}

class WsClient {
 public:
  WsClient();
  ~WsClient();

  // Upgrade on `target`; returns 101 on success, else the HTTP status of the refusal (0: network error).
  // rcvbuf > 0 shrinks SO_RCVBUF before connecting (a client that reads slowly fills up quickly).
  int connect(uint16_t port, const std::string& target, const std::string& bearer = "", int rcvbuf = 0);
  // One text message; nullopt on close (see close_code()), error or timeout.
  std::optional<std::string> read(double timeout_s = 5.0);
  int close_code() const;  // the peer's close code after read() saw a close frame, else -1
  const std::string& error() const;
  uint16_t local_port() const;
  bool write(const std::string& text);  // one text message
  void close();                         // sends a normal close frame (best effort)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dfm::test
