// Durable job queue on a Redis Stream read by one consumer group: at-least-once delivery, reclaim of
// jobs a dead worker left pending, results stored in Redis, dead letter after repeated failed attempts.
//
// Data model for stream S (docs/scale-out.md):
//   S                 the jobs not yet finished (XADD by enqueue; XDEL once the result is stored)
//   group G on S      the fleet of workers; each delivered, unacknowledged job is in G's pending list
//   S:result:<id>     hash: the job's fields + the result fields + consumer, deliveries, finished_ms
//   S:results         stream: one entry {job, status, consumer} per finished job (approximately capped)
//   S:dead            stream: jobs given up after max_attempts deliveries without an ack
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dfm/common/status.h"

namespace dfm::jobs {

// redis://[[user]:password@]host[:port][/db][?stream=NAME&group=NAME]
// Defaults: port 6379, db 0, stream "dfmon:jobs", group "dfmon". IPv6 hosts go in brackets.
// User, password and query values may be percent-encoded. rediss:// (TLS) is not supported.
struct RedisUrl {
  std::string host;
  int port = 6379;
  std::string user;      // Redis 6 ACL user; empty = the default user
  std::string password;  // empty = no AUTH
  int db = 0;
  std::string stream = "dfmon:jobs";
  std::string group = "dfmon";
  std::string display;  // the URL with the password masked, used in every message
};

// Errors name the URL (password masked) and the part that is wrong.
Result<RedisUrl> parse_redis_url(const std::string& url);

struct QueueOptions {
  double connect_timeout_s = 2.0;    // TCP connect + AUTH/SELECT
  double command_timeout_s = 5.0;    // a reply that takes longer fails with kTimeout (added to blocking reads)
  double min_idle_s = 60.0;          // a pending job idle this long is presumed abandoned and reclaimed
  int max_attempts = 3;              // deliveries without an ack before a job goes to the dead letter
  int64_t results_maxlen = 1000000;  // approximate cap of the S:results stream
};

using Fields = std::vector<std::pair<std::string, std::string>>;

struct Job {
  std::string id;          // stream entry id, e.g. "1764122000000-0"
  Fields fields;           // as given to enqueue()
  int64_t deliveries = 1;  // including this one
  bool reclaimed = false;  // taken over from a consumer that held it longer than min_idle_s
  // The value of `key`, or "" when the job has no such field.
  std::string field(const std::string& key) const;
};

struct QueueStats {
  int64_t queued = 0;   // entries in S: not yet finished (new + pending)
  int64_t pending = 0;  // delivered to a consumer and not acknowledged
  int64_t dead = 0;     // entries in S:dead
  int64_t consumers = 0;
};

// One connection; not thread-safe (use one queue per thread). A broken connection is re-opened once
// on the next call, so a restarted server costs one failed call, not the worker.
class RedisJobQueue {
 public:
  // Connects, authenticates, selects the db and creates the group (reading S from its start) if needed.
  static Result<std::unique_ptr<RedisJobQueue>> connect(const RedisUrl& url, const QueueOptions& options = {});
  ~RedisJobQueue();
  RedisJobQueue(const RedisJobQueue&) = delete;
  RedisJobQueue& operator=(const RedisJobQueue&) = delete;

  // Appends a job; returns its id.
  Result<std::string> enqueue(const Fields& fields);

  // The next job for `consumer`: first one another consumer has left pending longer than min_idle_s
  // (XAUTOCLAIM), else a new one, waiting up to block_ms for it (XREADGROUP). nullopt: nothing to do.
  // A reclaimed job whose deliveries exceed max_attempts is moved to the dead letter instead.
  Result<std::optional<Job>> claim(const std::string& consumer, int block_ms);

  // Stores the result (hash S:result:<id> = job fields + `result` + consumer/deliveries/finished_ms, and
  // an entry in S:results), then acknowledges and deletes the job, in one atomic script. false: the job
  // was no longer pending (another consumer finished it first after a reclaim); nothing is stored then.
  Result<bool> ack(const Job& job, const std::string& consumer, const Fields& result);

  // Gives an unfinished job back: it becomes claimable at once and this attempt is not counted.
  Status release(const Job& job, const std::string& consumer);

  // Removes `consumer` from the group if it holds no pending jobs (a clean worker exit).
  Status retire(const std::string& consumer);

  Result<QueueStats> stats();

  // The stored result hash of a job, nullopt if there is none.
  Result<std::optional<Fields>> result(const std::string& id);

  const RedisUrl& url() const { return url_; }
  std::string result_key(const std::string& id) const { return url_.stream + ":result:" + id; }
  std::string results_stream() const { return url_.stream + ":results"; }
  std::string dead_stream() const { return url_.stream + ":dead"; }

 private:
  struct Conn;
  RedisJobQueue(RedisUrl url, QueueOptions options);
  Status ensure_group();
  Result<std::optional<Job>> claim_once(const std::string& consumer, int block_ms);
  Result<std::optional<Job>> reclaim_one(const std::string& consumer);
  Status dead_letter(const Job& job, const std::string& consumer);

  RedisUrl url_;
  QueueOptions options_;
  std::unique_ptr<Conn> conn_;
  std::string autoclaim_cursor_ = "0-0";
};

}  // namespace dfm::jobs
