// parse_redis_url: defaults, every part of the syntax, and errors that name the (masked) URL.
#include <gtest/gtest.h>

#include "dfm/jobs/redis_queue.h"

namespace dfm::jobs {
namespace {

TEST(RedisUrl, Defaults) {
  auto u = parse_redis_url("redis://127.0.0.1");
  ASSERT_TRUE(u.ok()) << u.status().message();
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 6379);
  EXPECT_EQ(u->db, 0);
  EXPECT_EQ(u->stream, "dfmon:jobs");
  EXPECT_EQ(u->group, "dfmon");
  EXPECT_TRUE(u->password.empty());
  EXPECT_EQ(u->display, "redis://127.0.0.1");
}

TEST(RedisUrl, AllParts) {
  auto u = parse_redis_url("redis://alice:s%40cret@queue.lan:6390/3?stream=archive%3Ajobs&group=fleet-a");
  ASSERT_TRUE(u.ok()) << u.status().message();
  EXPECT_EQ(u->user, "alice");
  EXPECT_EQ(u->password, "s@cret");
  EXPECT_EQ(u->host, "queue.lan");
  EXPECT_EQ(u->port, 6390);
  EXPECT_EQ(u->db, 3);
  EXPECT_EQ(u->stream, "archive:jobs");
  EXPECT_EQ(u->group, "fleet-a");
  EXPECT_EQ(u->display.find("s%40cret"), std::string::npos) << u->display;
  EXPECT_EQ(u->display, "redis://alice:***@queue.lan:6390/3?stream=archive%3Ajobs&group=fleet-a");
}

TEST(RedisUrl, PasswordOnlyAndIpv6) {
  auto u = parse_redis_url("redis://:pw@[::1]:7000/");
  ASSERT_TRUE(u.ok()) << u.status().message();
  EXPECT_TRUE(u->user.empty());
  EXPECT_EQ(u->password, "pw");
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 7000);
  EXPECT_EQ(u->display, "redis://:***@[::1]:7000/");
}

TEST(RedisUrl, ErrorsNameTheUrlAndTheProblem) {
  const std::pair<const char*, const char*> cases[] = {
      {"http://127.0.0.1:6379", "must start with redis://"},
      {"rediss://127.0.0.1:6379", "TLS"},
      {"redis://", "no host"},
      {"redis://:6379", "no host"},
      {"redis://127.0.0.1:", "empty port"},
      {"redis://127.0.0.1:0", "port \"0\""},
      {"redis://127.0.0.1:70000", "port \"70000\""},
      {"redis://127.0.0.1:ab", "port \"ab\""},
      {"redis://127.0.0.1/x", "database \"x\""},
      {"redis://127.0.0.1?queue=a", "unknown query parameter \"queue\""},
      {"redis://127.0.0.1?stream=", "\"stream\" is empty"},
      {"redis://127.0.0.1?group", "\"group\" needs a value"},
      {"redis://[::1:6379", "unterminated"},
  };
  for (const auto& [url, why] : cases) {
    auto u = parse_redis_url(url);
    ASSERT_FALSE(u.ok()) << url;
    EXPECT_EQ(u.status().code(), Code::kInvalidArgument) << url;
    EXPECT_NE(u.status().message().find(std::string("\"") + url + "\""), std::string::npos) << u.status().message();
    EXPECT_NE(u.status().message().find(why), std::string::npos) << u.status().message();
  }
}

TEST(RedisUrl, MalformedEscape) {
  auto u = parse_redis_url("redis://%zz:pw@host");
  ASSERT_FALSE(u.ok());
  EXPECT_NE(u.status().message().find("\"redis://%zz:***@host\""), std::string::npos) << u.status().message();
  EXPECT_NE(u.status().message().find("%-escape"), std::string::npos) << u.status().message();
}

TEST(RedisUrl, ErrorsNeverShowThePassword) {
  for (const char* url : {"redis://user:hunter2@host:bad", "redis://hunter2@host"}) {
    auto u = parse_redis_url(url);
    ASSERT_FALSE(u.ok()) << url;
    EXPECT_EQ(u.status().message().find("hunter2"), std::string::npos) << u.status().message();
    EXPECT_NE(u.status().message().find("***@host"), std::string::npos) << u.status().message();
  }
}

}  // namespace
}  // namespace dfm::jobs
