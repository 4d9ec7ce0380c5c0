// RedisJobQueue: enqueue/claim/ack/release on one Redis Stream and consumer group.
#include "dfm/jobs/redis_queue.h"

#include <chrono>

#include "dfm/common/log.h"
#include "redis_conn.h"

namespace dfm::jobs {

namespace {

// Finishing a job is one script so that a crash never leaves a job acknowledged without its result, and
// two consumers finishing the same reclaimed job store one result: the first one wins, the second sees
// that the entry is no longer pending. The result is stored before the XACK.
// KEYS: stream, result hash, results stream[, dead stream]
// ARGV: group, id, results maxlen, status, consumer, hash field/value pairs...
constexpr const char* kFinishScript = R"lua(
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #p == 0 then return 0 end
local h = {}
for i = 6, #ARGV do h[#h + 1] = ARGV[i] end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], unpack(h))
if #KEYS == 4 then
  redis.call('XADD', KEYS[4], '*', unpack(h))
end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'job', ARGV[2], 'status', ARGV[4], 'consumer', ARGV[5])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
)lua";

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// [id, [field, value, ...]] -> Job; false for a deleted entry (nil fields).
bool parse_entry(const redisReply* e, Job* job) {
  if (!is_array(e) || e->elements < 2 || !is_array(e->element[1])) return false;
  job->id = reply_str(e->element[0]);
  const redisReply* f = e->element[1];
  for (size_t i = 0; i + 1 < f->elements; i += 2)
    job->fields.emplace_back(reply_str(f->element[i]), reply_str(f->element[i + 1]));
  return !job->id.empty();
}

}  // namespace

struct RedisJobQueue::Conn : RedisConn {
  using RedisConn::RedisConn;
};

RedisJobQueue::RedisJobQueue(RedisUrl url, QueueOptions options)
    : url_(std::move(url)),
      options_(options),
      conn_(std::make_unique<Conn>(url_, options.connect_timeout_s, options.command_timeout_s)) {}

RedisJobQueue::~RedisJobQueue() = default;

Result<std::unique_ptr<RedisJobQueue>> RedisJobQueue::connect(const RedisUrl& url, const QueueOptions& o) {
  if (!(o.connect_timeout_s > 0) || !(o.command_timeout_s > 0))
    return InvalidArgument(url.display + ": timeouts must be > 0");
  if (!(o.min_idle_s >= 0)) return InvalidArgument(url.display + ": min idle must be >= 0");
  if (o.max_attempts < 1) return InvalidArgument(url.display + ": max attempts must be >= 1");
  std::unique_ptr<RedisJobQueue> q(new RedisJobQueue(url, o));
  DFM_RETURN_IF_ERROR(q->conn_->open());
  DFM_RETURN_IF_ERROR(q->ensure_group());
  return q;
}

Status RedisJobQueue::ensure_group() {
  // Group position 0: jobs enqueued before the first worker started are delivered too.
  auto r = conn_->command({"XGROUP", "CREATE", url_.stream, url_.group, "0", "MKSTREAM"});
  if (!r.ok() && r.status().message().find("BUSYGROUP") == std::string::npos) return r.status();
  return Status::Ok();
}

Result<std::string> RedisJobQueue::enqueue(const Fields& fields) {
  if (fields.empty()) return InvalidArgument(url_.display + ": a job needs at least one field");
  std::vector<std::string> argv = {"XADD", url_.stream, "*"};
  for (const auto& [k, v] : fields) {
    argv.push_back(k);
    argv.push_back(v);
  }
  DFM_ASSIGN_OR_RETURN(ReplyPtr r, conn_->command(argv));
  return reply_str(r.get());
}

Result<std::optional<Job>> RedisJobQueue::reclaim_one(const std::string& consumer) {
  const std::string min_idle = std::to_string(static_cast<long long>(options_.min_idle_s * 1000));
  // XAUTOCLAIM scans at most 10 x COUNT pending entries per call; a few calls per claim walk a long
  // pending list over successive claims without stalling this one.
  for (int round = 0; round < 4; ++round) {
    DFM_ASSIGN_OR_RETURN(ReplyPtr r, conn_->command({"XAUTOCLAIM", url_.stream, url_.group, consumer, min_idle,
                                                     autoclaim_cursor_, "COUNT", "1"}));
    if (!is_array(r.get()) || r->elements < 2) return Internal(url_.display + ": XAUTOCLAIM: unexpected reply");
    autoclaim_cursor_ = reply_str(r->element[0]);
    const redisReply* entries = r->element[1];
    for (size_t i = 0; is_array(entries) && i < entries->elements; ++i) {
      Job job;
      if (!parse_entry(entries->element[i], &job)) continue;
      job.reclaimed = true;
      DFM_ASSIGN_OR_RETURN(ReplyPtr p, conn_->command({"XPENDING", url_.stream, url_.group, job.id, job.id, "1"}));
      if (is_array(p.get()) && p->elements == 1 && is_array(p->element[0]) && p->element[0]->elements >= 4) {
        job.deliveries = reply_int(p->element[0]->element[3]);
      }
      if (job.deliveries > options_.max_attempts) {
        get_logger("jobs")->warn("{}: job {} failed {} deliveries without an ack; moved to {}", url_.display, job.id,
                                 job.deliveries - 1, dead_stream());
        DFM_RETURN_IF_ERROR(dead_letter(job, consumer));
        continue;
      }
      return std::optional<Job>(std::move(job));
    }
    if (autoclaim_cursor_ == "0-0") break;  // scanned the whole pending list
  }
  return std::optional<Job>();
}

Result<std::optional<Job>> RedisJobQueue::claim(const std::string& consumer, int block_ms) {
  if (consumer.empty()) return InvalidArgument(url_.display + ": consumer name is empty");
  auto r = claim_once(consumer, block_ms);
  if (!r.ok() && r.status().message().find("NOGROUP") != std::string::npos) {
    // The stream or group vanished under us (FLUSHDB, a restart without persistence): recreate, retry.
    autoclaim_cursor_ = "0-0";
    DFM_RETURN_IF_ERROR(ensure_group());
    r = claim_once(consumer, block_ms);
  }
  return r;
}

Result<std::optional<Job>> RedisJobQueue::claim_once(const std::string& consumer, int block_ms) {
  DFM_ASSIGN_OR_RETURN(std::optional<Job> reclaimed, reclaim_one(consumer));
  if (reclaimed) return reclaimed;
  std::vector<std::string> argv = {"XREADGROUP", "GROUP", url_.group, consumer, "COUNT", "1"};
  if (block_ms > 0) {
    argv.push_back("BLOCK");
    argv.push_back(std::to_string(block_ms));
  }
  argv.insert(argv.end(), {"STREAMS", url_.stream, ">"});
  DFM_ASSIGN_OR_RETURN(ReplyPtr r, conn_->command(argv, block_ms / 1000.0));
  const redisReply* streams = r.get();
  if (!is_array(streams) || streams->elements == 0) return std::optional<Job>();  // nil: the wait ended empty
  const redisReply* s = streams->element[0];
  if (!is_array(s) || s->elements < 2 || !is_array(s->element[1]) || s->element[1]->elements == 0)
    return std::optional<Job>();
  Job job;
  if (!parse_entry(s->element[1]->element[0], &job)) return Internal(url_.display + ": XREADGROUP: malformed entry");
  return std::optional<Job>(std::move(job));
}

Result<bool> RedisJobQueue::ack(const Job& job, const std::string& consumer, const Fields& result) {
  std::string status = "ok";
  for (const auto& [k, v] : result) {
    if (k == "status") status = v;
  }
  std::vector<std::string> argv = {"EVAL",
                                   kFinishScript,
                                   "3",
                                   url_.stream,
                                   result_key(job.id),
                                   results_stream(),
                                   url_.group,
                                   job.id,
                                   std::to_string(options_.results_maxlen),
                                   status,
                                   consumer};
  // Later pairs win in HSET, so result fields override job fields of the same name.
  for (const Fields* fs : {&job.fields, &result}) {
    for (const auto& [k, v] : *fs) argv.insert(argv.end(), {k, v});
  }
  argv.insert(argv.end(), {"job", job.id, "consumer", consumer, "deliveries", std::to_string(job.deliveries),
                           "finished_ms", std::to_string(now_ms())});
  DFM_ASSIGN_OR_RETURN(ReplyPtr r, conn_->command(argv));
  return reply_int(r.get()) == 1;
}

Status RedisJobQueue::dead_letter(const Job& job, const std::string& consumer) {
  const std::string reason = "abandoned after " + std::to_string(job.deliveries - 1) +
                             " deliveries without an ack (max attempts " + std::to_string(options_.max_attempts) + ")";
  std::vector<std::string> argv = {
      "EVAL",           kFinishScript, "4",        url_.stream, result_key(job.id),
      results_stream(), dead_stream(), url_.group, job.id,      std::to_string(options_.results_maxlen),
      "dead",           consumer};
  for (const auto& [k, v] : job.fields) argv.insert(argv.end(), {k, v});
  argv.insert(argv.end(), {"status", "dead", "error", reason, "job", job.id, "consumer", consumer, "deliveries",
                           std::to_string(job.deliveries - 1), "finished_ms", std::to_string(now_ms())});
  DFM_ASSIGN_OR_RETURN(ReplyPtr r, conn_->command(argv));
  (void)r;
  return Status::Ok();
}

Status RedisJobQueue::release(const Job& job, const std::string& consumer) {
  // Idle "forever" makes it reclaimable at once; RETRYCOUNT undoes the count this delivery added, so an
  // interrupted attempt does not push the job towards the dead letter.
  const std::string idle = std::to_string(static_cast<long long>(options_.min_idle_s * 1000) + 86400000LL);
  auto r = conn_->command({"XCLAIM", url_.stream, url_.group, consumer, "0", job.id, "IDLE", idle, "RETRYCOUNT",
                           std::to_string(std::max<int64_t>(job.deliveries - 1, 0)), "JUSTID"});
  return r.ok() ? Status::Ok() : r.status();
}

Status RedisJobQueue::retire(const std::string& consumer) {
  DFM_ASSIGN_OR_RETURN(ReplyPtr p, conn_->command({"XPENDING", url_.stream, url_.group, "-", "+", "1", consumer}));
  if (is_array(p.get()) && p->elements > 0) return Status::Ok();  // its jobs stay claimable by others
  auto r = conn_->command({"XGROUP", "DELCONSUMER", url_.stream, url_.group, consumer});
  return r.ok() ? Status::Ok() : r.status();
}

Result<QueueStats> RedisJobQueue::stats() {
  QueueStats s;
  DFM_ASSIGN_OR_RETURN(ReplyPtr len, conn_->command({"XLEN", url_.stream}));
  s.queued = reply_int(len.get());
  DFM_ASSIGN_OR_RETURN(ReplyPtr pend, conn_->command({"XPENDING", url_.stream, url_.group}));
  if (is_array(pend.get()) && pend->elements >= 1) s.pending = reply_int(pend->element[0]);
  DFM_ASSIGN_OR_RETURN(ReplyPtr dead, conn_->command({"XLEN", dead_stream()}));
  s.dead = reply_int(dead.get());
  DFM_ASSIGN_OR_RETURN(ReplyPtr cons, conn_->command({"XINFO", "CONSUMERS", url_.stream, url_.group}));
  s.consumers = is_array(cons.get()) ? static_cast<int64_t>(cons->elements) : 0;
  return s;
}

Result<std::optional<Fields>> RedisJobQueue::result(const std::string& id) {
  DFM_ASSIGN_OR_RETURN(ReplyPtr r, conn_->command({"HGETALL", result_key(id)}));
  if (!is_array(r.get()) || r->elements == 0) return std::optional<Fields>();
  Fields f;
  for (size_t i = 0; i + 1 < r->elements; i += 2)
    f.emplace_back(reply_str(r->element[i]), reply_str(r->element[i + 1]));
  return std::optional<Fields>(std::move(f));
}

}  // namespace dfm::jobs
