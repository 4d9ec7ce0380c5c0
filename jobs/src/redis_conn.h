// The hiredis adapter: one blocking connection with timeouts; every failure becomes a Status naming the URL.
#pragma once

#include <hiredis/hiredis.h>

#include <memory>
#include <string>
#include <vector>

#include "dfm/common/status.h"
#include "dfm/jobs/redis_queue.h"

namespace dfm::jobs {

struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyFree>;

class RedisConn {
 public:
  RedisConn(RedisUrl url, double connect_timeout_s, double command_timeout_s);
  ~RedisConn();

  // Connects (TCP, AUTH, SELECT) if there is no live connection.
  Status open();

  // Runs one command. Transport failures (refused, reset, timeout) drop the connection so the next call
  // reconnects; a server error reply ("-NOGROUP ...") comes back as kInternal with the server's text.
  // extra_wait_s lengthens the reply timeout for blocking commands (XREADGROUP BLOCK).
  Result<ReplyPtr> command(const std::vector<std::string>& argv, double extra_wait_s = 0);

 private:
  Status transport_error(const std::string& what, int saved_errno);
  void close();

  RedisUrl url_;
  double connect_timeout_s_, command_timeout_s_;
  redisContext* ctx_ = nullptr;
};

// Reply helpers: "" / 0 for a reply of another type.
std::string reply_str(const redisReply* r);
long long reply_int(const redisReply* r);
bool is_array(const redisReply* r);

}  // namespace dfm::jobs
