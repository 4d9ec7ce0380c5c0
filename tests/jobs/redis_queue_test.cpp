// RedisJobQueue against a real redis-server: delivery, ack, reclaim, release, dead letter, failures.
#include "dfm/jobs/redis_queue.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "redis_server.h"

namespace dfm::jobs {
namespace {

using Clock = std::chrono::steady_clock;
using testing::RedisServer;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string get(const Fields& f, const std::string& key) {
  for (const auto& [k, v] : f) {
    if (k == key) return v;
  }
  return "<missing>";
}

class QueueTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.ok()) << server_.error(); }

  std::unique_ptr<RedisJobQueue> open(QueueOptions o = {}, const std::string& query = "") {
    auto url = parse_redis_url(server_.url(query));
    EXPECT_TRUE(url.ok()) << url.status().message();
    auto q = RedisJobQueue::connect(*url, o);
    EXPECT_TRUE(q.ok()) << q.status().message();
    return q.ok() ? std::move(q).value() : nullptr;
  }

  RedisServer server_;
};

TEST_F(QueueTest, EnqueueClaimAckStoresResultThenForgetsTheJob) {
  auto q = open();
  ASSERT_TRUE(q);
  auto id1 = q->enqueue({{"input", "/a.mp4"}, {"out", "/r"}});
  auto id2 = q->enqueue({{"input", "/b.mp4"}});
  ASSERT_TRUE(id1.ok() && id2.ok());
  EXPECT_NE(*id1, *id2);

  auto j = q->claim("w1", 100);
  ASSERT_TRUE(j.ok()) << j.status().message();
  ASSERT_TRUE(j->has_value());
  const Job job = **j;
  EXPECT_EQ(job.id, *id1);  // FIFO
  EXPECT_EQ(job.field("input"), "/a.mp4");
  EXPECT_EQ(job.field("out"), "/r");
  EXPECT_EQ(job.field("nope"), "");
  EXPECT_EQ(job.deliveries, 1);
  EXPECT_FALSE(job.reclaimed);
  EXPECT_EQ(server_.cli("XPENDING dfmon:jobs dfmon").substr(0, 1), "1");

  auto none = q->result(job.id);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());

  auto acked = q->ack(job, "w1", {{"status", "ok"}, {"verdict", "real"}, {"result", "{\"x\":1}"}});
  ASSERT_TRUE(acked.ok()) << acked.status().message();
  EXPECT_TRUE(*acked);
  auto res = q->result(job.id);
  ASSERT_TRUE(res.ok() && res->has_value());
  EXPECT_EQ(get(**res, "input"), "/a.mp4");  // the job's fields travel with the result
  EXPECT_EQ(get(**res, "verdict"), "real");
  EXPECT_EQ(get(**res, "result"), "{\"x\":1}");
  EXPECT_EQ(get(**res, "consumer"), "w1");
  EXPECT_EQ(get(**res, "deliveries"), "1");
  EXPECT_EQ(get(**res, "job"), job.id);
  // Acknowledged and deleted: only the second job is left, undelivered.
  auto st = q->stats();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->queued, 1);
  EXPECT_EQ(st->pending, 0);
  EXPECT_EQ(server_.cli("XLEN dfmon:jobs:results"), "1");
  // A second ack of the same job stores nothing.
  auto again = q->ack(job, "w2", {{"status", "ok"}, {"verdict", "fake"}});
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  EXPECT_EQ(get(**q->result(job.id), "verdict"), "real");
  EXPECT_EQ(server_.cli("XLEN dfmon:jobs:results"), "1");

  auto j2 = q->claim("w1", 100);
  ASSERT_TRUE(j2.ok() && j2->has_value());
  EXPECT_EQ((*j2)->id, *id2);
}

TEST_F(QueueTest, EmptyClaimWaitsBlockMsThenReturnsNothing) {
  auto q = open();
  ASSERT_TRUE(q);
  const auto t0 = Clock::now();
  auto j = q->claim("w1", 300);
  const double waited = seconds_since(t0);
  ASSERT_TRUE(j.ok()) << j.status().message();
  EXPECT_FALSE(j->has_value());
  EXPECT_GE(waited, 0.25);
  EXPECT_LT(waited, 3.0);
  // A job enqueued by another connection while a claim blocks is delivered to it.
  auto producer = open();
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    (void)producer->enqueue({{"input", "late.mp4"}});
  });
  auto late = q->claim("w1", 5000);
  t.join();
  ASSERT_TRUE(late.ok() && late->has_value());
  EXPECT_EQ((*late)->field("input"), "late.mp4");
}

TEST_F(QueueTest, JobsEnqueuedBeforeTheGroupExistedAreDelivered) {
  ASSERT_NE(server_.cli("XADD dfmon:jobs '*' input early.mp4"), "");
  auto q = open();
  ASSERT_TRUE(q);
  auto j = q->claim("w1", 100);
  ASSERT_TRUE(j.ok() && j->has_value());
  EXPECT_EQ((*j)->field("input"), "early.mp4");
}

TEST_F(QueueTest, IdleJobOfADeadConsumerIsReclaimedByAnother) {
  QueueOptions o;
  o.min_idle_s = 0.4;
  auto a = open(o);
  auto b = open(o);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->enqueue({{"input", "x.mp4"}}).ok());
  auto ja = a->claim("worker-a", 100);
  ASSERT_TRUE(ja.ok() && ja->has_value());
  // Not idle long enough yet: b gets nothing.
  auto early = b->claim("worker-b", 50);
  ASSERT_TRUE(early.ok());
  EXPECT_FALSE(early->has_value());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  auto jb = b->claim("worker-b", 50);
  ASSERT_TRUE(jb.ok()) << jb.status().message();
  ASSERT_TRUE(jb->has_value());
  EXPECT_EQ((*jb)->id, (*ja)->id);
  EXPECT_TRUE((*jb)->reclaimed);
  EXPECT_EQ((*jb)->deliveries, 2);
  EXPECT_EQ((*jb)->field("input"), "x.mp4");
  // b finishes; a, merely slow and not dead, finishes later: one result, b's.
  auto ab = b->ack(**jb, "worker-b", {{"status", "ok"}});
  ASSERT_TRUE(ab.ok() && *ab);
  auto aa = a->ack(**ja, "worker-a", {{"status", "ok"}});
  ASSERT_TRUE(aa.ok());
  EXPECT_FALSE(*aa);
  auto res = b->result((*jb)->id);
  ASSERT_TRUE(res.ok() && res->has_value());
  EXPECT_EQ(get(**res, "consumer"), "worker-b");
  EXPECT_EQ(get(**res, "deliveries"), "2");
  EXPECT_EQ(server_.cli("XLEN dfmon:jobs:results"), "1");
  EXPECT_EQ(server_.cli("XLEN dfmon:jobs"), "0");
}

TEST_F(QueueTest, ReleasedJobIsClaimableAtOnceWithoutCountingTheAttempt) {
  QueueOptions o;
  o.min_idle_s = 60;  // only a release makes it claimable within this test
  auto q = open(o);
  ASSERT_TRUE(q);
  ASSERT_TRUE(q->enqueue({{"input", "x.mp4"}}).ok());
  auto j = q->claim("a", 100);
  ASSERT_TRUE(j.ok() && j->has_value());
  auto other = q->claim("b", 50);
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->has_value());
  ASSERT_TRUE(q->release(**j, "a").ok());
  auto jb = q->claim("b", 50);
  ASSERT_TRUE(jb.ok() && jb->has_value()) << jb.status().message();
  EXPECT_EQ((*jb)->id, (*j)->id);
  EXPECT_EQ((*jb)->deliveries, 1);
}

TEST_F(QueueTest, JobFailingMaxAttemptsGoesToTheDeadLetter) {
  QueueOptions o;
  o.min_idle_s = 0.1;
  o.max_attempts = 2;
  auto q = open(o);
  ASSERT_TRUE(q);
  auto id = q->enqueue({{"input", "poison.mp4"}});
  ASSERT_TRUE(id.ok());
  for (int attempt = 1; attempt <= 2; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    auto j = q->claim("w" + std::to_string(attempt), 50);
    ASSERT_TRUE(j.ok() && j->has_value()) << attempt;
    EXPECT_EQ((*j)->deliveries, attempt);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  auto third = q->claim("w3", 50);
  ASSERT_TRUE(third.ok()) << third.status().message();
  EXPECT_FALSE(third->has_value());
  auto st = q->stats();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->queued, 0);
  EXPECT_EQ(st->pending, 0);
  EXPECT_EQ(st->dead, 1);
  auto res = q->result(*id);
  ASSERT_TRUE(res.ok() && res->has_value());
  EXPECT_EQ(get(**res, "status"), "dead");
  EXPECT_EQ(get(**res, "input"), "poison.mp4");
  EXPECT_EQ(get(**res, "deliveries"), "2");
  EXPECT_NE(get(**res, "error").find("2 deliveries"), std::string::npos) << get(**res, "error");
  EXPECT_NE(server_.cli("XRANGE dfmon:jobs:dead - +").find("poison.mp4"), std::string::npos);
}

TEST_F(QueueTest, StreamAndGroupComeFromTheUrl) {
  auto q = open({}, "?stream=archive:jobs&group=fleet");
  ASSERT_TRUE(q);
  ASSERT_TRUE(q->enqueue({{"input", "a"}}).ok());
  EXPECT_EQ(server_.cli("XLEN archive:jobs"), "1");
  EXPECT_NE(server_.cli("XINFO GROUPS archive:jobs").find("fleet"), std::string::npos);
  EXPECT_EQ(q->result_key("1-0"), "archive:jobs:result:1-0");
}

TEST_F(QueueTest, RetireRemovesOnlyAConsumerWithoutPendingJobs) {
  auto q = open();
  ASSERT_TRUE(q);
  ASSERT_TRUE(q->enqueue({{"input", "a"}}).ok());
  auto j = q->claim("busy", 50);
  ASSERT_TRUE(j.ok() && j->has_value());
  auto none = q->claim("idle", 50);
  ASSERT_TRUE(none.ok());
  ASSERT_TRUE(q->retire("busy").ok());
  ASSERT_TRUE(q->retire("idle").ok());
  auto st = q->stats();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->consumers, 1);  // "busy" keeps its pending job
  EXPECT_EQ(st->pending, 1);
}

TEST_F(QueueTest, WrongPasswordIsAnErrorNamingTheUrl) {
  ASSERT_EQ(server_.cli("CONFIG SET requirepass letmein"), "OK");
  auto bad = parse_redis_url(server_.url().replace(0, 8, "redis://:wrong@"));
  ASSERT_TRUE(bad.ok());
  auto q = RedisJobQueue::connect(*bad);
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.status().code(), Code::kInvalidArgument);
  EXPECT_NE(q.status().message().find(bad->display), std::string::npos) << q.status().message();
  EXPECT_EQ(q.status().message().find(":wrong@"), std::string::npos) << q.status().message();
  auto good = parse_redis_url(server_.url().replace(0, 8, "redis://:letmein@"));
  auto q2 = RedisJobQueue::connect(*good);
  EXPECT_TRUE(q2.ok()) << q2.status().message();
}

TEST_F(QueueTest, ServerGoneMidRunFailsFastThenReconnectsToANewServer) {
  QueueOptions o;
  o.command_timeout_s = 1.0;
  auto q = open(o);
  ASSERT_TRUE(q);
  const int port = server_.port();
  server_.kill();
  auto t0 = Clock::now();
  auto j = q->claim("w1", 200);
  EXPECT_FALSE(j.ok());
  EXPECT_LT(seconds_since(t0), 3.0);
  EXPECT_NE(j.status().message().find("127.0.0.1:" + std::to_string(port)), std::string::npos) << j.status().message();
  // Same port, fresh (empty) server: the queue reconnects and recreates its group.
  RedisServer again(port);
  ASSERT_TRUE(again.ok()) << again.error();
  auto id = q->enqueue({{"input", "after-restart"}});
  ASSERT_TRUE(id.ok()) << id.status().message();
  auto j2 = q->claim("w1", 100);
  ASSERT_TRUE(j2.ok()) << j2.status().message();
  ASSERT_TRUE(j2->has_value());
  EXPECT_EQ((*j2)->field("input"), "after-restart");
}

TEST(QueueFailure, NothingListeningIsAClearErrorWithinTheConnectTimeout) {
  const int port = testing::free_port();
  auto url = parse_redis_url("redis://127.0.0.1:" + std::to_string(port));
  ASSERT_TRUE(url.ok());
  const auto t0 = Clock::now();
  auto q = RedisJobQueue::connect(*url);
  EXPECT_LT(seconds_since(t0), 3.0);
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.status().code(), Code::kIo);
  EXPECT_NE(q.status().message().find("redis://127.0.0.1:" + std::to_string(port)), std::string::npos)
      << q.status().message();
  EXPECT_NE(q.status().message().find("refused"), std::string::npos) << q.status().message();
}

TEST(QueueFailure, ServerThatNeverAnswersTimesOut) {
  // A socket that listens but never accepts: the TCP handshake completes in the kernel backlog, then
  // nothing is ever read or answered — a hung server or a black-holing middlebox.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  auto url = parse_redis_url("redis://127.0.0.1:" + std::to_string(ntohs(a.sin_port)));
  ASSERT_TRUE(url.ok());
  QueueOptions o;
  o.command_timeout_s = 0.5;
  const auto t0 = Clock::now();
  auto q = RedisJobQueue::connect(*url, o);
  const double took = seconds_since(t0);
  ::close(fd);
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.status().code(), Code::kTimeout) << q.status().message();
  EXPECT_LT(took, 3.0);
  EXPECT_NE(q.status().message().find(url->display), std::string::npos) << q.status().message();
}

TEST(QueueFailure, BadOptionsAreRejected) {
  auto url = parse_redis_url("redis://127.0.0.1:1");
  ASSERT_TRUE(url.ok());
  QueueOptions o;
  o.max_attempts = 0;
  auto q = RedisJobQueue::connect(*url, o);
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace dfm::jobs
