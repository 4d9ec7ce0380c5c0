// EventBus: gap-free ordered numbering across threads, filtering, and isolation from failing sinks.
#include "dfm/server/event_bus.h"

#include <gtest/gtest.h>

#include <thread>

#include "dfm/server/metrics.h"

namespace dfm::server {
namespace {

class RecordingSink : public EventSink {
 public:
  explicit RecordingSink(EventFilter f = EventFilter::defaults(), bool throws = false)
      : EventSink("recording", f), throws_(throws) {}
  std::vector<uint64_t> seqs;
  std::vector<std::string> jsons;
  std::vector<Event> events;

 private:
  Status do_publish(const Event& e, const std::string& json) override {
    if (throws_) throw std::runtime_error("boom");
    seqs.push_back(e.seq);
    jsons.push_back(json);
    events.push_back(e);
    note_sent();
    return Status::Ok();
  }
  bool throws_;
};

Event state_event(const std::string& stream) {
  Event e;
  e.type = EventType::kStreamState;
  e.stream = stream;
  e.state = "live";
  return e;
}

TEST(EventBus, SeqIsGapFreeAndOrderedAcrossThreads) {
  EventBus bus;
  auto sink = std::make_unique<RecordingSink>();
  RecordingSink* rec = sink.get();
  bus.add_sink(std::move(sink));
  constexpr int kThreads = 8, kPerThread = 2000;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) bus.publish(state_event("cam-" + std::to_string(t)));
    });
  }
  for (auto& t : ts) t.join();
  ASSERT_EQ(rec->seqs.size(), size_t(kThreads) * kPerThread);
  // The sink sees 1, 2, 3, ... in order: numbering and fan-out happen under the same lock.
  for (size_t i = 0; i < rec->seqs.size(); ++i) ASSERT_EQ(rec->seqs[i], i + 1);
  EXPECT_EQ(bus.last_seq(), uint64_t(kThreads) * kPerThread);
  // The JSON handed to sinks matches the event it came with.
  const auto j = nlohmann::json::parse(rec->jsons.back());
  EXPECT_EQ(j["seq"].get<uint64_t>(), rec->seqs.back());
  EXPECT_EQ(j["schema"], "dfmon.event/1");
  EXPECT_EQ(j["type"], "stream_state");
}

TEST(EventBus, AssignsTimeOnlyWhenUnset) {
  EventBus bus;
  auto sink = std::make_unique<RecordingSink>();
  RecordingSink* rec = sink.get();
  bus.add_sink(std::move(sink));
  const int64_t before = now_unix_ms();
  bus.publish(state_event("a"));
  Event fixed = state_event("b");
  fixed.time_ms = 1234;
  EXPECT_EQ(bus.publish(fixed), 2u);
  ASSERT_EQ(rec->events.size(), 2u);
  EXPECT_GE(rec->events[0].time_ms, before);
  EXPECT_LE(rec->events[0].time_ms, now_unix_ms());
  EXPECT_EQ(rec->events[1].time_ms, 1234);
}

TEST(EventBus, SinksFilterByTypeAndStream) {
  EventBus bus;
  auto defaults = std::make_unique<RecordingSink>();
  EventFilter only_cam2;
  only_cam2.types = EventFilter::bit(EventType::kScore) | EventFilter::bit(EventType::kAlertStart);
  only_cam2.streams = {"cam-2"};
  auto scores = std::make_unique<RecordingSink>(only_cam2);
  RecordingSink* d = defaults.get();
  RecordingSink* s = scores.get();
  bus.add_sink(std::move(defaults));
  bus.add_sink(std::move(scores));
  for (auto type : {EventType::kScore, EventType::kAlertStart, EventType::kStreamState}) {
    for (const char* stream : {"cam-1", "cam-2"}) {
      Event e;
      e.type = type;
      e.stream = stream;
      bus.publish(e);
    }
  }
  EXPECT_EQ(d->seqs, (std::vector<uint64_t>{3, 4, 5, 6}));  // score is opt-in
  EXPECT_EQ(s->seqs, (std::vector<uint64_t>{2, 4}));
  EXPECT_EQ(d->stats().accepted, 4u);
  EXPECT_EQ(d->stats().sent, 4u);
}

TEST(EventBus, ThrowingSinkIsCountedAndDoesNotStopOthers) {
  MetricsRegistry metrics;
  EventBus bus(&metrics);
  auto bad = std::make_unique<RecordingSink>(EventFilter::defaults(), /*throws=*/true);
  const EventSink* bad_ptr = bad.get();
  auto good = std::make_unique<RecordingSink>();
  RecordingSink* g = good.get();
  bus.add_sink(std::move(bad));
  bus.add_sink(std::move(good));
  for (int i = 0; i < 5; ++i) bus.publish(state_event("cam-1"));
  EXPECT_EQ(bad_ptr->stats().errors, 5u);
  EXPECT_EQ(g->seqs.size(), 5u);
  const std::string text = metrics.render();
  EXPECT_NE(text.find("dfmon_sink_errors_total{sink=\"recording\"} 5"), std::string::npos) << text;
  EXPECT_NE(text.find("dfmon_events_published_total{type=\"stream_state\"} 5"), std::string::npos) << text;
}

TEST(EventBus, InvalidUtf8InReasonDoesNotThrow) {
  EventBus bus;
  auto sink = std::make_unique<RecordingSink>();
  RecordingSink* rec = sink.get();
  bus.add_sink(std::move(sink));
  Event e = state_event("cam-1");
  e.state = "failed";
  e.reason = std::string("gst: \xff\xfe broken");
  bus.publish(e);
  ASSERT_EQ(rec->jsons.size(), 1u);
  EXPECT_NO_THROW(nlohmann::json::parse(rec->jsons[0]));
}

}  // namespace
}  // namespace dfm::server
