// A throwaway redis-server on a free 127.0.0.1 port for the duration of a test (no persistence).
#pragma once

#include <sys/types.h>

#include <string>

namespace dfm::jobs::testing {

// A port nothing listens on right now (bound to :0 and released).
int free_port();

class RedisServer {
 public:
  // Starts redis-server and waits (bounded) until it answers PING; ok() tells whether it did.
  explicit RedisServer(int port = 0);
  ~RedisServer();
  bool ok() const { return pid_ > 0; }
  const std::string& error() const { return error_; }
  int port() const { return port_; }
  std::string url(const std::string& query = "") const;
  // SIGKILL and reap (the server is gone as if the machine died).
  void kill();
  // Runs a command with redis-cli and returns its stdout (trimmed), for checks outside the library.
  std::string cli(const std::string& args) const;

 private:
  int port_;
  pid_t pid_ = -1;
  std::string error_;
};

}  // namespace dfm::jobs::testing
