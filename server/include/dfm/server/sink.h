// Event sinks (spdlog base_sink style): a non-virtual publish() that filters, locks and counts, and a
// private virtual do_publish() per destination. Sinks must not block the bus: they enqueue or hand off.
#pragma once

#include <atomic>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dfm/common/status.h"
#include "dfm/config/config.h"
#include "dfm/pipeline/event.h"
#include "dfm/server/event_filter.h"

namespace dfm::server {

class Counter;
class MetricsRegistry;
class Server;

struct SinkStats {
  uint64_t accepted = 0;  // passed the filter and were handed to do_publish()
  uint64_t sent = 0;      // written / handed to the network
  uint64_t dropped = 0;   // discarded because the sink's queue was full
  uint64_t errors = 0;    // failed writes or exceptions (the event is lost)
};

class EventSink {
 public:
  EventSink(std::string name, EventFilter filter);
  virtual ~EventSink();
  EventSink(const EventSink&) = delete;
  EventSink& operator=(const EventSink&) = delete;

  // Filters, then calls do_publish() under the sink's mutex; counts errors and swallows exceptions.
  void publish(const Event& e, const std::string& json);
  // Waits until queued events are written (asynchronous sinks); for tests and shutdown.
  void flush();

  SinkStats stats() const;
  const std::string& name() const { return name_; }
  const EventFilter& filter() const { return filter_; }
  // Mirrors the counters into dfmon_sink_events_{sent,dropped,errors}_total{sink=name()}.
  void bind_metrics(MetricsRegistry& registry);

 protected:
  void note_sent(uint64_t n = 1);
  void note_dropped(uint64_t n = 1);
  // Counts one failed event. Logged once per burst: the first failure warns, the next success logs recovery.
  void note_error(const std::string& what);

 private:
  virtual Status do_publish(const Event& e, const std::string& json) = 0;
  virtual void do_flush() {}

  const std::string name_;
  const EventFilter filter_;
  std::mutex mu_;
  std::atomic<uint64_t> accepted_{0}, sent_{0}, dropped_{0}, errors_{0};
  std::atomic<uint64_t> burst_errors_{0};  // errors since the last success; 0 = healthy
  std::atomic<Counter*> m_sent_{nullptr}, m_dropped_{nullptr}, m_errors_{nullptr};
};

namespace detail {
class LineWriter;
}

// Capacity of the line queue between publish() and the writer thread of StdoutSink/FileSink; when the
// destination stalls (a paused pipe, a slow disk) the oldest lines are dropped and counted.
constexpr size_t kDefaultLineQueue = 4096;

// JSON lines on a FILE* (stdout by default), written by a background thread.
class StdoutSink : public EventSink {
 public:
  explicit StdoutSink(EventFilter filter, std::FILE* out = stdout, size_t queue_capacity = kDefaultLineQueue);
  ~StdoutSink() override;

 private:
  Status do_publish(const Event& e, const std::string& json) override;
  void do_flush() override;
  std::FILE* out_;
  std::unique_ptr<detail::LineWriter> writer_;
};

// JSON lines appended to a file and flushed per event. Write errors (disk full, removed directory) are
// counted and logged once per burst; the file is reopened on the next event, so the sink recovers.
class FileSink : public EventSink {
 public:
  FileSink(std::string path, EventFilter filter, size_t queue_capacity = kDefaultLineQueue);
  ~FileSink() override;
  // Result of opening the file at construction; make_sink() refuses a sink that cannot open its file.
  const Status& open_status() const { return open_status_; }
  const std::string& path() const { return path_; }

 private:
  Status do_publish(const Event& e, const std::string& json) override;
  void do_flush() override;
  Status write_line(const std::string& line);  // writer thread only
  Status reopen();

  const std::string path_;
  std::FILE* file_ = nullptr;  // owned by the writer thread after construction
  Status open_status_;
  std::unique_ptr<detail::LineWriter> writer_;
};

// Hands events to the Server's per-client queues (never blocks). The Server must outlive the sink.
class WebSocketSink : public EventSink {
 public:
  WebSocketSink(Server* server, EventFilter filter);

 private:
  Status do_publish(const Event& e, const std::string& json) override;
  Server* server_;
};

// MQTT (libmosquitto, MQTT 3.1.1). Events of stream S go to <prefix>/<S>/events; stream_state events
// also go, retained, to <prefix>/<S>/state. publish() only enqueues: a bounded queue (oldest dropped
// and counted) sits between the bus and the sink's network thread, which connects, reconnects with
// backoff and hands at most `max_inflight` messages at a time to the client library. See docs/mqtt.md.
struct MqttOptions {
  std::string host = "127.0.0.1";
  int port = 1883;
  std::string topic_prefix = "dfmon";
  int qos = 1;
  std::string client_id;  // empty = "dfmon-<hostname>-<pid>-<n>"
  int keepalive_s = 30;   // also the limit for a connect attempt that gets no answer
  std::string username, password;
  size_t queue_capacity = 1024;
  int max_inflight = 32;             // messages handed to libmosquitto and not yet written/acknowledged
  double reconnect_initial_s = 0.5;  // backoff after a failed or lost connection, doubling ...
  double reconnect_max_s = 30.0;     // ... up to this
  double stop_timeout_s = 3.0;       // flush()/destructor wait this long for queued and QoS>0 messages
};

class MqttSink : public EventSink {
 public:
  // Fails for options libmosquitto refuses (e.g. a bad client id); an unreachable broker is not an
  // error here: the sink keeps retrying and buffers up to queue_capacity events meanwhile.
  static Result<std::unique_ptr<MqttSink>> create(MqttOptions options, EventFilter filter);
  ~MqttSink() override;  // calls stop()

  // Waits up to stop_timeout_s for queued and unacknowledged messages, disconnects, and counts what was
  // not delivered as errors; later events are queued but never sent. Idempotent.
  void stop();

  bool connected() const;
  uint64_t connections() const;  // successful connects (CONNACK accepted) so far
  size_t queue_depth() const;

  // One topic level for a stream id: '/', '+', '#', '%', control, space and non-ASCII bytes are
  // %-encoded (upper-case hex), so a stream id can never add levels or wildcards.
  static std::string topic_level(const std::string& stream);
  // <prefix>/<level>/events, or <prefix>/events for events that belong to no stream.
  static std::string events_topic(const std::string& prefix, const std::string& stream);
  static std::string state_topic(const std::string& prefix, const std::string& stream);

 private:
  struct Impl;  // network thread and libmosquitto handle (mqtt_sink.cpp)
  MqttSink(std::string name, EventFilter filter);
  Status do_publish(const Event& e, const std::string& json) override;
  void do_flush() override;
  std::unique_ptr<Impl> impl_;
};

// Sink options from a config entry; reads password_env from the environment (an unset variable is an error).
Result<MqttOptions> mqtt_options(const config::SinkConfig& config);

// Registration table keyed by the config `type:` string. `server` is required by "websocket" only.
using SinkFactory = std::function<Result<std::unique_ptr<EventSink>>(const config::SinkConfig&, Server*)>;
struct SinkRegistration {
  const char* type;
  SinkFactory make;
};
const std::vector<SinkRegistration>& sink_registry();

// Builds the sink for one config entry; errors name the type and path (or broker).
Result<std::unique_ptr<EventSink>> make_sink(const config::SinkConfig& config, Server* server);

}  // namespace dfm::server
