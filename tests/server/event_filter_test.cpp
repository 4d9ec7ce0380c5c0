// /alerts query parsing, bearer tokens, constant-time comparison and event filters.
#include "dfm/server/event_filter.h"

#include <gtest/gtest.h>

namespace dfm::server {
namespace {

constexpr uint32_t kAll = 0x1f;

TEST(EventFilter, DefaultsAreAlertsAndStreamState) {
  const auto f = EventFilter::defaults();
  EXPECT_TRUE(f.accepts(EventType::kAlertStart, "cam-1"));
  EXPECT_TRUE(f.accepts(EventType::kAlertEnd, "cam-1"));
  EXPECT_TRUE(f.accepts(EventType::kStreamState, "cam-1"));
  EXPECT_FALSE(f.accepts(EventType::kScore, "cam-1"));
  EXPECT_TRUE(f.accepts(EventType::kDropped, ""));  // notices always pass
  EXPECT_EQ(f.types_text(), "alert_start,alert_end,stream_state");
}

TEST(EventFilter, ParsesTypesAndStreams) {
  auto q = parse_alerts_query("/alerts?types=score,alert_start&streams=cam-1,cam%2D2", kAll);
  ASSERT_TRUE(q.ok()) << q.status().to_string();
  EXPECT_EQ(q->path, "/alerts");
  EXPECT_TRUE(q->filter.accepts(EventType::kScore, "cam-2"));
  EXPECT_FALSE(q->filter.accepts(EventType::kScore, "cam-3"));
  EXPECT_FALSE(q->filter.accepts(EventType::kStreamState, "cam-1"));
  EXPECT_FALSE(q->token.has_value());

  auto d = parse_alerts_query("/alerts", kAll);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->filter.types, EventFilter::defaults().types);
  EXPECT_TRUE(d->filter.streams.empty());

  auto t = parse_alerts_query("/alerts?token=a%20b+c", kAll);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t->token, "a b c");
}

TEST(EventFilter, RejectsBadQueries) {
  for (const char* target : {"/alerts?types=alert_start,bogus", "/alerts?types=", "/alerts?types=score&types=score",
                             "/alerts?streams=", "/alerts?colour=red", "/alerts?types=%zz"}) {
    auto q = parse_alerts_query(target, kAll);
    EXPECT_FALSE(q.ok()) << target;
    EXPECT_EQ(q.status().code(), Code::kInvalidArgument) << target;
  }
  auto q = parse_alerts_query("/alerts?types=bogus", kAll);
  EXPECT_NE(q.status().message().find("bogus"), std::string::npos);
}

TEST(EventFilter, FeedTypesBoundWhatClientsMayRequest) {
  const uint32_t no_score = kAll & ~EventFilter::bit(EventType::kScore);
  auto q = parse_alerts_query("/alerts?types=score", no_score);
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.status().message().find("score"), std::string::npos);
  // The default set is narrowed silently to what the feed carries.
  auto d = parse_alerts_query("/alerts", EventFilter::bit(EventType::kAlertStart));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->filter.types, EventFilter::bit(EventType::kAlertStart));
  // `dropped` may be named but is implicit.
  auto x = parse_alerts_query("/alerts?types=alert_end,dropped", kAll);
  ASSERT_TRUE(x.ok());
  EXPECT_EQ(x->filter.types, EventFilter::bit(EventType::kAlertEnd));
}

TEST(EventFilter, BearerAndQueryTokens) {
  EXPECT_EQ(*bearer_token("Bearer abc"), "abc");
  EXPECT_EQ(*bearer_token("bearer   abc  "), "abc");
  EXPECT_FALSE(bearer_token("Basic abc").has_value());
  EXPECT_FALSE(bearer_token("Bearerabc").has_value());
  EXPECT_FALSE(bearer_token("").has_value());
  EXPECT_EQ(*query_param("/alerts?types=score&token=t%3D1", "token"), "t=1");
  EXPECT_FALSE(query_param("/alerts?types=score", "token").has_value());
}

TEST(EventFilter, ConstantTimeEqual) {
  EXPECT_TRUE(constant_time_equal("s3cret", "s3cret"));
  EXPECT_FALSE(constant_time_equal("s3cre", "s3cret"));
  EXPECT_FALSE(constant_time_equal("s3cret!", "s3cret"));
  EXPECT_FALSE(constant_time_equal("S3cret", "s3cret"));
  EXPECT_FALSE(constant_time_equal("", "s3cret"));
  EXPECT_FALSE(constant_time_equal("x", ""));
  EXPECT_TRUE(constant_time_equal("", ""));
}

TEST(EventFilter, ParseEventTypesNamesTheContext) {
  auto r = parse_event_types({"alert_start", "nope"}, "sinks[1].types");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("sinks[1].types"), std::string::npos);
  EXPECT_FALSE(parse_event_types({}, "x").ok());
}

}  // namespace
}  // namespace dfm::server
