// hiredis calls and the translation of their errors into Status values that name the URL.
#include "redis_conn.h"

#include <cerrno>
#include <cmath>
#include <cstring>

namespace dfm::jobs {

namespace {

timeval to_timeval(double s) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(s);
  tv.tv_usec = static_cast<suseconds_t>(std::lround((s - std::floor(s)) * 1e6));
  return tv;
}

}  // namespace

std::string reply_str(const redisReply* r) {
  if (r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR)) {
    return std::string(r->str, r->len);
  }
  return "";
}

long long reply_int(const redisReply* r) {
  return r && r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
}

bool is_array(const redisReply* r) {
  return r && r->type == REDIS_REPLY_ARRAY;
}

RedisConn::RedisConn(RedisUrl url, double connect_timeout_s, double command_timeout_s)
    : url_(std::move(url)), connect_timeout_s_(connect_timeout_s), command_timeout_s_(command_timeout_s) {}

RedisConn::~RedisConn() {
  close();
}

void RedisConn::close() {
  if (ctx_) redisFree(ctx_);
  ctx_ = nullptr;
}

Status RedisConn::transport_error(const std::string& what, int saved_errno) {
  std::string msg = ctx_ && ctx_->errstr[0] ? ctx_->errstr : std::strerror(saved_errno);
  const bool timed_out = saved_errno == EAGAIN || saved_errno == EWOULDBLOCK || saved_errno == ETIMEDOUT ||
                         msg.find("temporarily unavailable") != std::string::npos ||
                         msg.find("timed out") != std::string::npos;
  close();
  if (timed_out) return Timeout(url_.display + ": " + what + ": no answer in time (" + msg + ")");
  return IoError(url_.display + ": " + what + ": " + msg);
}

Status RedisConn::open() {
  if (ctx_) return Status::Ok();
  errno = 0;
  ctx_ = redisConnectWithTimeout(url_.host.c_str(), url_.port, to_timeval(connect_timeout_s_));
  if (!ctx_) return IoError(url_.display + ": cannot allocate a connection");
  if (ctx_->err) return transport_error("connect", errno);
  if (redisSetTimeout(ctx_, to_timeval(command_timeout_s_)) != REDIS_OK) return transport_error("set timeout", errno);
  redisEnableKeepAlive(ctx_);  // a silently dead peer is noticed by the kernel, not by a hung read
  std::vector<std::string> auth;
  if (!url_.password.empty()) {
    auth = {"AUTH"};
    if (!url_.user.empty()) auth.push_back(url_.user);
    auth.push_back(url_.password);
  }
  // AUTH first, then SELECT; both failing replies are user errors (bad password, bad db).
  for (const auto& argv : {auth, std::vector<std::string>{"SELECT", std::to_string(url_.db)}}) {
    if (argv.empty() || (argv[0] == "SELECT" && url_.db == 0)) continue;
    auto r = command(argv);
    if (!r.ok()) {
      close();
      return r.status().code() == Code::kInternal ? InvalidArgument(r.status().message()) : r.status();
    }
  }
  return Status::Ok();
}

Result<ReplyPtr> RedisConn::command(const std::vector<std::string>& argv, double extra_wait_s) {
  DFM_RETURN_IF_ERROR(open());
  std::vector<const char*> args;
  std::vector<size_t> lens;
  for (const auto& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  if (extra_wait_s > 0) redisSetTimeout(ctx_, to_timeval(command_timeout_s_ + extra_wait_s));
  errno = 0;
  auto* raw = static_cast<redisReply*>(redisCommandArgv(ctx_, static_cast<int>(args.size()), args.data(), lens.data()));
  const int saved_errno = errno;
  if (!raw) return transport_error(argv[0], saved_errno);
  ReplyPtr reply(raw);
  if (extra_wait_s > 0) redisSetTimeout(ctx_, to_timeval(command_timeout_s_));
  if (reply->type == REDIS_REPLY_ERROR) return Internal(url_.display + ": " + argv[0] + ": " + reply_str(reply.get()));
  return reply;
}

}  // namespace dfm::jobs
