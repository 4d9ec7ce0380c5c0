// MqttSink against a real mosquitto broker on 127.0.0.1: topics, retained state, QoS, reconnect, drops,
// bounded shutdown. Each test starts its own broker on a free port.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <mosquitto.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
#include <thread>

#include "dfm/server/event_bus.h"
#include "dfm/server/sink.h"

extern char** environ;

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace dfm::server {
namespace {

fs::path fresh_dir(const std::string& name) {
  fs::path dir = fs::path(DFM_TEST_TMP) / ("mqtt-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

bool accepts_connections(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

bool wait_until(const std::function<bool()>& pred, std::chrono::seconds timeout = 20s) {
  const auto until = Clock::now() + timeout;
  while (!pred()) {
    if (Clock::now() > until) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

// A mosquitto process with a two-line config; killed (SIGKILL) and reaped by the destructor.
class Broker {
 public:
  // `access`: the authentication lines of the config (anonymous by default).
  explicit Broker(const std::string& name, const std::string& access = "allow_anonymous true\n")
      : dir_(fresh_dir(name)), port_(free_port()) {
    // Started as root (CI), mosquitto would switch to the `mosquitto` user, which cannot read files in a
    // checkout under a 0700 directory: stay the user the test runs as.
    const passwd* pw = getpwuid(getuid());
    std::ofstream(dir_ / "mosquitto.conf") << "listener " << port_ << " 127.0.0.1\n" << access << "persistence false\n"
                                           << "user " << (pw ? pw->pw_name : "root") << "\n";
  }
  const fs::path& dir() const { return dir_; }
  ~Broker() { kill(); }

  ::testing::AssertionResult start() {
    const std::string conf = (dir_ / "mosquitto.conf").string(), log = (dir_ / "mosquitto.log").string();
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    const char* argv[] = {"mosquitto", "-c", conf.c_str(), "-v", nullptr};
    const int rc = posix_spawn(&pid_, DFM_MOSQUITTO_BROKER, &fa, nullptr, const_cast<char* const*>(argv), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return ::testing::AssertionFailure() << "spawn " << DFM_MOSQUITTO_BROKER << ": " << std::strerror(rc);
    if (!wait_until([this] { return accepts_connections(port_); }, 10s))
      return ::testing::AssertionFailure() << "mosquitto did not listen on " << port_ << ":\n" << log_text();
    return ::testing::AssertionSuccess();
  }
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);  // also ends a stopped (paused) broker, without letting it run first
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  void pause() { ::kill(pid_, SIGSTOP); }
  void resume() { ::kill(pid_, SIGCONT); }
  int port() const { return port_; }
  std::string log_text() const {
    std::ifstream in(dir_ / "mosquitto.log");
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  fs::path dir_;
  int port_;
  pid_t pid_ = -1;
};

struct Received {
  std::string topic, payload;
  int qos = 0;
  bool retain = false;
};

// A libmosquitto subscriber on its own loop thread that records every message.
class Subscriber {
 public:
  Subscriber(int port, const std::vector<std::string>& filters, int qos = 2) {
    mosq_ = mosquitto_new(nullptr, true, this);
    mosquitto_message_callback_set(mosq_, [](mosquitto*, void* self, const mosquitto_message* m) {
      auto* s = static_cast<Subscriber*>(self);
      std::lock_guard<std::mutex> lock(s->mu_);
      s->got_.push_back(
          {m->topic, std::string(static_cast<const char*>(m->payload), m->payloadlen), m->qos, m->retain});
    });
    mosquitto_subscribe_callback_set(mosq_, [](mosquitto*, void* self, int, int, const int*) {
      auto* s = static_cast<Subscriber*>(self);
      std::lock_guard<std::mutex> lock(s->mu_);
      ++s->subacks_;
    });
    if (mosquitto_connect(mosq_, "127.0.0.1", port, 30) != MOSQ_ERR_SUCCESS) return;
    mosquitto_loop_start(mosq_);
    running_ = true;
    for (const auto& f : filters) mosquitto_subscribe(mosq_, nullptr, f.c_str(), qos);
    ready_ = wait_until(
        [&] {
          std::lock_guard<std::mutex> lock(mu_);
          return subacks_ == filters.size();
        },
        10s);
  }
  ~Subscriber() {
    if (running_) {
      mosquitto_disconnect(mosq_);
      mosquitto_loop_stop(mosq_, false);
    }
    mosquitto_destroy(mosq_);
  }
  bool ready() const { return ready_; }
  std::vector<Received> messages() const {
    std::lock_guard<std::mutex> lock(mu_);
    return got_;
  }
  std::vector<Received> on(const std::string& topic) const {
    std::vector<Received> out;
    for (auto& m : messages())
      if (m.topic == topic) out.push_back(m);
    return out;
  }
  bool wait_count(size_t n, std::chrono::seconds timeout = 20s) const {
    return wait_until([&] { return messages().size() >= n; }, timeout);
  }

 private:
  mosquitto* mosq_ = nullptr;
  bool running_ = false, ready_ = false;
  mutable std::mutex mu_;
  std::vector<Received> got_;
  size_t subacks_ = 0;
};

MqttOptions options_for(int port, int qos = 1) {
  MqttOptions o;
  o.host = "127.0.0.1";
  o.port = port;
  o.qos = qos;
  o.reconnect_initial_s = 0.2;  // keep the tests short; the backoff shape is the same
  o.reconnect_max_s = 1.0;
  return o;
}

std::unique_ptr<MqttSink> make(const MqttOptions& o, EventFilter f = EventFilter::defaults()) {
  auto r = MqttSink::create(o, std::move(f));
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? std::move(r).value() : nullptr;
}

Event alert(const std::string& stream, uint64_t seq, EventType type = EventType::kAlertStart) {
  Event e;
  e.type = type;
  e.seq = seq;
  e.time_ms = 1764115200000;
  e.stream = stream;
  e.track = 3;
  e.score = 0.93;
  e.bbox = cv::Rect(1, 2, 3, 4);
  return e;
}

Event state(const std::string& stream, uint64_t seq, const std::string& s) {
  Event e;
  e.type = EventType::kStreamState;
  e.seq = seq;
  e.time_ms = 1764115200000;
  e.stream = stream;
  e.state = s;
  return e;
}

void send(EventSink& sink, const Event& e) {
  sink.publish(e, event_to_json(e).dump());
}

std::vector<uint64_t> seqs(const std::vector<Received>& msgs) {
  std::vector<uint64_t> out;
  for (const auto& m : msgs) out.push_back(nlohmann::json::parse(m.payload).at("seq").get<uint64_t>());
  return out;
}

bool have_broker() {
  return fs::exists(DFM_MOSQUITTO_BROKER);
}
#define REQUIRE_BROKER() \
  if (!have_broker()) GTEST_SKIP() << "mosquitto broker not installed (apt install mosquitto)"

// ---- no broker needed ----

TEST(MqttTopics, StreamIdsBecomeOneSafeLevel) {
  EXPECT_EQ(MqttSink::topic_level("cam-1.a_b"), "cam-1.a_b");
  EXPECT_EQ(MqttSink::topic_level("a/b+c#d%e"), "a%2Fb%2Bc%23d%25e");
  EXPECT_EQ(MqttSink::topic_level("lobby cam"), "lobby%20cam");
  EXPECT_EQ(MqttSink::topic_level("caf\xC3\xA9"), "caf%C3%A9");
  EXPECT_EQ(MqttSink::events_topic("dfmon", "cam/1"), "dfmon/cam%2F1/events");
  EXPECT_EQ(MqttSink::state_topic("site/a", "cam-1"), "site/a/cam-1/state");
  EXPECT_EQ(MqttSink::events_topic("dfmon", ""), "dfmon/events");  // notices that belong to no stream
  // Every published topic passes libmosquitto's own check (no wildcards, valid UTF-8).
  for (const std::string s : {"a/b", "+", "#", "caf\xC3\xA9", "\x01\xff"})
    EXPECT_EQ(mosquitto_pub_topic_check(MqttSink::events_topic("dfmon", s).c_str()), MOSQ_ERR_SUCCESS) << s;
}

TEST(MqttSinkOptions, BadOptionsAreRefusedNamingTheSink) {
  MqttOptions o = options_for(1883);
  o.qos = 3;
  auto r = MqttSink::create(o, EventFilter::defaults());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("sink mqtt:127.0.0.1:1883: qos"), std::string::npos) << r.status().message();
  o = options_for(1883);
  o.topic_prefix = "dfmon/#";
  r = MqttSink::create(o, EventFilter::defaults());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("wildcards"), std::string::npos) << r.status().message();
  o = options_for(1883);
  o.client_id = "bad\xff";  // libmosquitto refuses invalid UTF-8 client ids
  r = MqttSink::create(o, EventFilter::defaults());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("client_id"), std::string::npos) << r.status().message();
}

// ---- with a broker ----

TEST(MqttSink, EventsGoToPerStreamTopicsWithTheBusJson) {
  REQUIRE_BROKER();
  Broker broker("topics");
  ASSERT_TRUE(broker.start());
  Subscriber sub(broker.port(), {"dfmon/#"});
  ASSERT_TRUE(sub.ready());

  // The MQTT payload is exactly the line a file sink on the same bus writes.
  const fs::path file = fresh_dir("topics-file") / "events.jsonl";
  config::SinkConfig fc;
  fc.type = config::SinkType::kFile;
  fc.path = file.string();
  auto file_sink = make_sink(fc, nullptr);
  ASSERT_TRUE(file_sink.ok());
  auto mqtt = make(options_for(broker.port()));
  ASSERT_TRUE(mqtt);
  MqttSink* sink = mqtt.get();
  ASSERT_TRUE(wait_until([&] { return sink->connected(); }));
  EventBus bus;
  bus.add_sink(std::move(file_sink).value());
  bus.add_sink(std::move(mqtt));

  Event a = alert("cam-1", 0);
  bus.publish(a);
  bus.publish(state("cam-2", 0, "live"));
  bus.publish(alert("lobby/door+1#", 0, EventType::kAlertEnd));
  Event score = alert("cam-1", 0, EventType::kScore);  // not in the default types: filtered out
  bus.publish(score);
  bus.publish(alert("cam-1", 0, EventType::kAlertEnd));  // after the score on the same topic: order proves absence
  bus.flush();
  ASSERT_TRUE(sub.wait_count(5)) << sub.messages().size();

  std::vector<std::string> lines;
  {
    std::ifstream in(file);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
  }
  ASSERT_EQ(lines.size(), 4u);
  const auto got = sub.messages();
  ASSERT_EQ(got.size(), 5u);
  std::vector<std::string> topics;
  for (const auto& m : got) topics.push_back(m.topic);
  std::sort(topics.begin(), topics.end());
  EXPECT_EQ(topics, (std::vector<std::string>{"dfmon/cam-1/events", "dfmon/cam-1/events", "dfmon/cam-2/events",
                                              "dfmon/cam-2/state", "dfmon/lobby%2Fdoor%2B1%23/events"}));
  const auto cam1 = sub.on("dfmon/cam-1/events");
  ASSERT_EQ(cam1.size(), 2u);
  EXPECT_EQ(cam1[0].payload, lines[0]);
  EXPECT_EQ(cam1[1].payload, lines[3]);
  EXPECT_EQ(seqs(cam1), (std::vector<uint64_t>{1, 5}));  // seq 4 (score) never reached MQTT
  ASSERT_EQ(sub.on("dfmon/cam-2/events").size(), 1u);
  EXPECT_EQ(sub.on("dfmon/cam-2/events")[0].payload, lines[1]);
  EXPECT_EQ(sub.on("dfmon/cam-2/state")[0].payload, lines[1]);
  EXPECT_EQ(nlohmann::json::parse(lines[1])["state"], "live");
  EXPECT_EQ(sub.on("dfmon/lobby%2Fdoor%2B1%23/events")[0].payload, lines[2]);
  EXPECT_EQ(nlohmann::json::parse(lines[2])["stream"], "lobby/door+1#");  // the id is intact in the JSON
  for (const auto& m : got) EXPECT_EQ(m.qos, 1) << m.topic;               // sink default QoS 1

  const SinkStats st = sink->stats();
  EXPECT_EQ(st.accepted, 4u);
  EXPECT_EQ(st.sent, 4u);  // events, not the extra retained state message
  EXPECT_EQ(st.dropped, 0u);
  EXPECT_EQ(st.errors, 0u);
}

TEST(MqttSink, LateSubscriberGetsTheNewestRetainedState) {
  REQUIRE_BROKER();
  Broker broker("retained");
  ASSERT_TRUE(broker.start());
  auto sink = make(options_for(broker.port()));
  ASSERT_TRUE(sink);
  ASSERT_TRUE(wait_until([&] { return sink->connected(); }));
  send(*sink, state("cam-1", 1, "connecting"));
  send(*sink, state("cam-1", 2, "live"));
  send(*sink, state("cam-2", 3, "retrying"));
  send(*sink, alert("cam-1", 4));  // events are not retained
  sink->flush();
  EXPECT_EQ(sink->stats().sent, 4u);

  Subscriber late(broker.port(), {"dfmon/+/state", "dfmon/+/events"});
  ASSERT_TRUE(late.ready());
  ASSERT_TRUE(late.wait_count(2));
  std::this_thread::sleep_for(300ms);  // would let a stray retained event or an older state show up
  const auto got = late.messages();
  ASSERT_EQ(got.size(), 2u);
  const auto cam1 = late.on("dfmon/cam-1/state");
  ASSERT_EQ(cam1.size(), 1u);
  EXPECT_TRUE(cam1[0].retain);
  EXPECT_EQ(nlohmann::json::parse(cam1[0].payload)["state"], "live");
  EXPECT_EQ(nlohmann::json::parse(cam1[0].payload)["seq"], 2);
  ASSERT_EQ(late.on("dfmon/cam-2/state").size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(late.on("dfmon/cam-2/state")[0].payload)["state"], "retrying");
}

class MqttQos : public ::testing::TestWithParam<int> {};

TEST_P(MqttQos, EveryEventArrivesInOrderAtTheConfiguredQos) {
  REQUIRE_BROKER();
  const int qos = GetParam();
  Broker broker("qos" + std::to_string(qos));
  ASSERT_TRUE(broker.start());
  Subscriber sub(broker.port(), {"dfmon/cam-1/events"}, 2);
  ASSERT_TRUE(sub.ready());
  MqttOptions o = options_for(broker.port(), qos);
  o.max_inflight = 8;  // 200 events through a small window: exercises the hand-off on acknowledgements
  auto sink = make(o);
  ASSERT_TRUE(sink);
  ASSERT_TRUE(wait_until([&] { return sink->connected(); }));
  std::vector<uint64_t> want;
  for (uint64_t i = 1; i <= 200; ++i) {
    send(*sink, alert("cam-1", i));
    want.push_back(i);
  }
  sink->flush();
  ASSERT_TRUE(sub.wait_count(200)) << sub.messages().size();
  EXPECT_EQ(seqs(sub.messages()), want);
  for (const auto& m : sub.messages()) ASSERT_EQ(m.qos, qos);
  EXPECT_EQ(sink->stats().sent, 200u);
  EXPECT_EQ(sink->stats().dropped, 0u);
  EXPECT_EQ(sink->stats().errors, 0u);
}

INSTANTIATE_TEST_SUITE_P(Levels, MqttQos, ::testing::Values(0, 1, 2));

TEST(MqttSink, ReconnectsAfterTheBrokerRestarts) {
  REQUIRE_BROKER();
  Broker broker("restart");
  ASSERT_TRUE(broker.start());
  auto sink = make(options_for(broker.port()));
  ASSERT_TRUE(sink);
  ASSERT_TRUE(wait_until([&] { return sink->connected(); }));
  send(*sink, alert("cam-1", 1));
  send(*sink, state("cam-2", 2, "live"));  // nothing new about cam-2 later: the sink must re-send it
  sink->flush();
  EXPECT_EQ(sink->stats().sent, 2u);

  broker.kill();
  ASSERT_TRUE(wait_until([&] { return !sink->connected(); }));
  // Queued while the broker is away: an event, and a state that must end up retained afterwards.
  send(*sink, alert("cam-1", 3));
  send(*sink, state("cam-1", 4, "retrying"));
  EXPECT_EQ(sink->queue_depth(), 2u);

  ASSERT_TRUE(broker.start());
  ASSERT_TRUE(wait_until([&] { return sink->connections() >= 2 && sink->connected(); }, 30s));
  sink->flush();
  EXPECT_EQ(sink->stats().sent, 4u);  // both queued events acknowledged by the new broker (QoS 1)
  EXPECT_EQ(sink->stats().dropped, 0u);
  EXPECT_EQ(sink->stats().errors, 0u);

  // The restarted broker (no persistence) knows the states only because the sink sent them after
  // reconnecting: cam-1's was queued while it was down, cam-2's is the newest one from before.
  Subscriber sub(broker.port(), {"dfmon/+/state", "dfmon/cam-1/events"});
  ASSERT_TRUE(sub.ready());
  ASSERT_TRUE(sub.wait_count(2));
  const auto st1 = sub.on("dfmon/cam-1/state"), st2 = sub.on("dfmon/cam-2/state");
  ASSERT_EQ(st1.size(), 1u);
  ASSERT_EQ(st2.size(), 1u);
  EXPECT_TRUE(st1[0].retain && st2[0].retain);
  EXPECT_EQ(nlohmann::json::parse(st1[0].payload)["seq"], 4);
  EXPECT_EQ(nlohmann::json::parse(st2[0].payload)["seq"], 2);
  send(*sink, alert("cam-1", 5));  // and live traffic flows again
  ASSERT_TRUE(wait_until([&] { return sub.on("dfmon/cam-1/events").size() == 1; }));
  EXPECT_EQ(seqs(sub.on("dfmon/cam-1/events")), std::vector<uint64_t>{5});
}

TEST(MqttSink, UnacknowledgedQos1MessagesAreSentAgainAfterReconnecting) {
  REQUIRE_BROKER();
  Broker broker("resend");
  ASSERT_TRUE(broker.start());
  auto sink = make(options_for(broker.port(), 1));
  ASSERT_TRUE(sink);
  ASSERT_TRUE(wait_until([&] { return sink->connected(); }));
  broker.pause();  // the three messages are written but never acknowledged...
  for (uint64_t i = 1; i <= 3; ++i) send(*sink, alert("cam-1", i));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(sink->stats().sent, 0u);
  EXPECT_EQ(sink->queue_depth(), 0u);  // ...they are in flight, not queued
  broker.kill();                       // ...and that broker is gone
  ASSERT_TRUE(broker.start());
  ASSERT_TRUE(wait_until([&] { return sink->stats().sent == 3; }, 30s)) << sink->stats().sent;
  EXPECT_EQ(sink->stats().errors, 0u);
  EXPECT_GE(sink->connections(), 2u);  // acknowledged by the new broker, not the paused one
  send(*sink, alert("cam-1", 4));      // and the in-flight window is free again
  ASSERT_TRUE(wait_until([&] { return sink->stats().sent == 4; }));
}

TEST(MqttSink, BrokerDownFillsTheQueueThenDropsAndCounts) {
  REQUIRE_BROKER();
  Broker broker("drop");
  ASSERT_TRUE(broker.start());
  MqttOptions o = options_for(broker.port());
  o.queue_capacity = 5;
  auto sink = make(o);
  ASSERT_TRUE(sink);
  ASSERT_TRUE(wait_until([&] { return sink->connected(); }));
  broker.kill();
  ASSERT_TRUE(wait_until([&] { return !sink->connected(); }));
  for (uint64_t i = 1; i <= 12; ++i) send(*sink, alert("cam-1", i));
  EXPECT_EQ(sink->stats().accepted, 12u);
  EXPECT_EQ(sink->stats().dropped, 7u);  // counted at once, the bus never waits
  EXPECT_EQ(sink->queue_depth(), 5u);
  EXPECT_EQ(sink->stats().sent, 0u);

  ASSERT_TRUE(broker.start());
  ASSERT_TRUE(wait_until([&] { return sink->stats().sent == 5; }, 30s)) << sink->stats().sent;
  EXPECT_EQ(sink->stats().dropped, 7u);
  EXPECT_EQ(sink->stats().errors, 0u);
}

TEST(MqttSink, StalledBrokerKeepsTheNewestEvents) {
  REQUIRE_BROKER();
  Broker broker("stalled");
  ASSERT_TRUE(broker.start());
  Subscriber sub(broker.port(), {"dfmon/#"});
  ASSERT_TRUE(sub.ready());
  broker.pause();  // TCP still connects (kernel backlog), but no CONNACK until resumed
  MqttOptions o = options_for(broker.port());
  o.queue_capacity = 5;
  auto sink = make(o);
  ASSERT_TRUE(sink);
  for (uint64_t i = 1; i <= 12; ++i) send(*sink, alert("cam-1", i));
  EXPECT_FALSE(sink->connected());
  EXPECT_EQ(sink->stats().dropped, 7u);
  broker.resume();
  ASSERT_TRUE(sub.wait_count(5)) << sub.messages().size();
  sink->flush();
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(seqs(sub.messages()), (std::vector<uint64_t>{8, 9, 10, 11, 12}));  // the oldest were dropped
  EXPECT_EQ(sink->stats().sent, 5u);
}

TEST(MqttSink, UnreachableBrokerCountsErrorsAndStopsPromptly) {
  for (const std::string host : {"127.0.0.1", "no-such-host.invalid"}) {
    SCOPED_TRACE(host);
    MqttOptions o = options_for(free_port());  // nothing listens there
    o.host = host;
    o.stop_timeout_s = 2;
    auto sink = make(o);
    ASSERT_TRUE(sink);
    for (uint64_t i = 1; i <= 3; ++i) send(*sink, alert("cam-1", i));
    std::this_thread::sleep_for(500ms);  // a few failed attempts
    EXPECT_FALSE(sink->connected());
    EXPECT_EQ(sink->connections(), 0u);
    sink->flush();  // returns: nothing can drain without a connection
    const auto t0 = Clock::now();
    sink->stop();
    EXPECT_LT(Clock::now() - t0, 10s);
    EXPECT_EQ(sink->stats().errors, 3u);  // undelivered at shutdown
    EXPECT_EQ(sink->stats().sent, 0u);
    const auto t1 = Clock::now();
    sink.reset();
    EXPECT_LT(Clock::now() - t1, 10s);
  }
}

TEST(MqttSink, ShutdownWaitsBoundedForUnacknowledgedMessages) {
  REQUIRE_BROKER();
  Broker broker("unacked");
  ASSERT_TRUE(broker.start());
  MqttOptions o = options_for(broker.port(), 1);
  o.stop_timeout_s = 1;
  auto sink = make(o);
  ASSERT_TRUE(sink);
  ASSERT_TRUE(wait_until([&] { return sink->connected(); }));
  broker.pause();  // written to the socket, never acknowledged
  for (uint64_t i = 1; i <= 4; ++i) send(*sink, alert("cam-1", i));
  const auto t0 = Clock::now();
  sink->stop();
  EXPECT_LT(Clock::now() - t0, 10s);
  EXPECT_EQ(sink->stats().sent, 0u);
  EXPECT_EQ(sink->stats().errors, 4u);
  broker.resume();
}

TEST(MqttSink, CredentialsAreSentAndARefusalIsRetried) {
  REQUIRE_BROKER();
  const std::string passwd = DFM_MOSQUITTO_PASSWD;
  if (!fs::exists(passwd)) GTEST_SKIP() << "mosquitto_passwd not installed";
  const fs::path dir = fresh_dir("auth-users");
  const std::string users = (dir / "users").string();
  ASSERT_EQ(std::system((passwd + " -b -c " + users + " dfmon s3cret >/dev/null 2>&1").c_str()), 0);
  fs::permissions(users, fs::perms::owner_read | fs::perms::owner_write | fs::perms::others_read |
                             fs::perms::group_read);  // the broker drops to user "mosquitto" when started as root
  Broker broker("auth", "allow_anonymous false\npassword_file " + users + "\n");
  ASSERT_TRUE(broker.start());

  MqttOptions o = options_for(broker.port());
  o.username = "dfmon";
  o.password = "wrong";
  o.stop_timeout_s = 1;
  auto refused = make(o);
  ASSERT_TRUE(refused);
  send(*refused, alert("cam-1", 1));
  std::this_thread::sleep_for(1s);  // several refused attempts (backoff 0.2 s .. 1 s)
  EXPECT_EQ(refused->connections(), 0u);
  refused->stop();
  EXPECT_EQ(refused->stats().errors, 1u);
  EXPECT_NE(broker.log_text().find("not authorised"), std::string::npos) << broker.log_text();

  o.password = "s3cret";
  auto sink = make(o);
  ASSERT_TRUE(sink);
  ASSERT_TRUE(wait_until([&] { return sink->connected(); }));
  send(*sink, alert("cam-1", 2));
  sink->flush();
  EXPECT_EQ(sink->stats().sent, 1u);  // acknowledged by a broker that only lets `dfmon` in
}

TEST(MqttSink, FactoryBuildsTheSinkFromConfig) {
  REQUIRE_BROKER();
  Broker broker("factory");
  ASSERT_TRUE(broker.start());
  Subscriber sub(broker.port(), {"site/a/#"});
  ASSERT_TRUE(sub.ready());
  config::SinkConfig c;
  c.type = config::SinkType::kMqtt;
  c.port = broker.port();
  c.topic_prefix = "site/a";
  c.qos = 0;
  c.client_id = "dfmon-factory-test";
  c.username = "dfmon";
  c.password_env = "DFM_TEST_MQTT_PASSWORD_UNSET";
  ::unsetenv(c.password_env.c_str());
  auto missing = make_sink(c, nullptr);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("DFM_TEST_MQTT_PASSWORD_UNSET is not set"), std::string::npos)
      << missing.status().message();

  ::setenv(c.password_env.c_str(), "s3cret", 1);  // the broker allows anonymous: credentials are accepted as given
  auto made = make_sink(c, nullptr);
  ::unsetenv(c.password_env.c_str());
  ASSERT_TRUE(made.ok()) << made.status().to_string();
  EXPECT_EQ((*made)->name(), "mqtt:127.0.0.1:" + std::to_string(broker.port()));
  auto* mqtt = dynamic_cast<MqttSink*>(made->get());
  ASSERT_NE(mqtt, nullptr);
  ASSERT_TRUE(wait_until([&] { return mqtt->connected(); }));
  send(*mqtt, alert("cam-9", 1));
  ASSERT_TRUE(sub.wait_count(1));
  EXPECT_EQ(sub.messages()[0].topic, "site/a/cam-9/events");
  EXPECT_EQ(sub.messages()[0].qos, 0);
  EXPECT_NE(broker.log_text().find("dfmon-factory-test"), std::string::npos);  // our client id, as configured
}

}  // namespace
}  // namespace dfm::server
