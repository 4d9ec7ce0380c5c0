// MqttSink: events to an MQTT broker through libmosquitto, driven by the sink's own network thread.
#include <mosquitto.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "dfm/common/log.h"
#include "dfm/server/sink.h"

namespace dfm::server {

namespace {

using Clock = std::chrono::steady_clock;

Clock::duration seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

int millis_until(Clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t - Clock::now()).count();
  return static_cast<int>(std::clamp<long long>(ms, 0, 1000));
}

void init_library_once() {
  static std::once_flag once;
  // Never cleaned up: a sink may be destroyed during static destruction at exit.
  std::call_once(once, [] { mosquitto_lib_init(); });
}

// A libmosquitto result as text; `err` is errno right after the call (MOSQ_ERR_ERRNO means "see errno").
std::string describe(int rc, int err) {
  if (rc == MOSQ_ERR_ERRNO) return err ? std::strerror(err) : "system error";
  if (rc == MOSQ_ERR_KEEPALIVE) return "no answer from the broker within keepalive_s";
  std::string text = mosquitto_strerror(rc);  // "The connection was lost." -> no full stop mid-sentence
  if (!text.empty() && text.back() == '.') text.pop_back();
  return text;
}

std::string default_client_id() {
  static std::atomic<int> counter{0};
  char host[65] = {};
  if (gethostname(host, sizeof host - 1) != 0 || !host[0]) std::strcpy(host, "host");
  return "dfmon-" + std::string(host) + "-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

std::string sink_name(const MqttOptions& o) {
  const bool v6 = o.host.find(':') != std::string::npos;
  return "mqtt:" + (v6 ? "[" + o.host + "]" : o.host) + ":" + std::to_string(o.port);
}

Status check_options(const MqttOptions& o, const std::string& name) {
  auto bad = [&](const std::string& what) { return InvalidArgument("sink " + name + ": " + what); };
  if (o.host.empty()) return bad("host is empty");
  if (o.port < 1 || o.port > 65535) return bad("port must be in 1..65535, got " + std::to_string(o.port));
  if (o.qos < 0 || o.qos > 2) return bad("qos must be in 0..2, got " + std::to_string(o.qos));
  if (o.topic_prefix.empty()) return bad("topic_prefix is empty");
  if (mosquitto_pub_topic_check2(o.topic_prefix.c_str(), o.topic_prefix.size()) != MOSQ_ERR_SUCCESS)
    return bad("topic_prefix \"" + o.topic_prefix + "\" must not contain MQTT wildcards (+, #)");
  if (mosquitto_validate_utf8(o.topic_prefix.c_str(), static_cast<int>(o.topic_prefix.size())) != MOSQ_ERR_SUCCESS)
    return bad("topic_prefix is not valid UTF-8");
  if (o.keepalive_s < 5 || o.keepalive_s > 65535)
    return bad("keepalive_s must be in 5..65535, got " + std::to_string(o.keepalive_s));
  if (o.queue_capacity < 1) return bad("queue must hold at least 1 event");
  if (o.max_inflight < 1) return bad("max_inflight must be at least 1");
  if (!(o.reconnect_initial_s > 0) || !(o.reconnect_max_s >= o.reconnect_initial_s) || !(o.stop_timeout_s >= 0))
    return bad("reconnect_initial_s > 0, reconnect_max_s >= reconnect_initial_s and stop_timeout_s >= 0 are required");
  if (!o.password.empty() && o.username.empty()) return bad("a password needs a username");
  if (o.client_id.size() > 65535 ||
      mosquitto_validate_utf8(o.client_id.c_str(), static_cast<int>(o.client_id.size())) != MOSQ_ERR_SUCCESS)
    return bad("client_id is not valid UTF-8 (or too long)");
  return Status::Ok();
}

}  // namespace

// ---- topics -----------------------------------------------------------------------------------------

std::string MqttSink::topic_level(const std::string& stream) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(stream.size());
  for (unsigned char c : stream) {
    // '%' is encoded too, so the mapping stays reversible; bytes >= 0x7f are encoded rather than
    // checked as UTF-8, since a broker rejects a topic with invalid UTF-8.
    if (c <= 0x20 || c >= 0x7f || c == '/' || c == '+' || c == '#' || c == '%') {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string MqttSink::events_topic(const std::string& prefix, const std::string& stream) {
  return stream.empty() ? prefix + "/events" : prefix + "/" + topic_level(stream) + "/events";
}

std::string MqttSink::state_topic(const std::string& prefix, const std::string& stream) {
  return stream.empty() ? prefix + "/state" : prefix + "/" + topic_level(stream) + "/state";
}

// ---- Impl -------------------------------------------------------------------------------------------

// Threads: the bus thread enqueues (do_publish), flush() callers wait, and one network thread owns every
// libmosquitto call (connect, publish, loop) and runs its callbacks. `mu` guards the queues, the
// in-flight table and the counters flush() waits on; it is never held while calling into libmosquitto,
// so callbacks may take it (the sink's counters and the logger are taken under it, nothing else).
struct MqttSink::Impl {
  struct Message {
    std::string topic, payload;
  };
  struct InFlight {
    bool event = false;  // counts as `sent` once written (QoS 0) or acknowledged (QoS 1, 2)
    std::string topic;   // retained states only: re-queued if the connection drops before the write
    std::string payload;
  };

  Impl(MqttSink& owner, MqttOptions options) : sink(owner), opt(std::move(options)), log(get_logger("sink")) {}

  ~Impl() {
    if (thread.joinable()) thread.join();
    if (mosq) mosquitto_destroy(mosq);
    if (wake_fd >= 0) ::close(wake_fd);
  }

  Status init() {
    wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd < 0) return IoError("sink " + sink.name() + ": eventfd: " + std::strerror(errno));
    const std::string id = opt.client_id.empty() ? default_client_id() : opt.client_id;
    mosq = mosquitto_new(id.c_str(), /*clean_session=*/true, this);
    if (!mosq) return Internal("sink " + sink.name() + ": cannot create the MQTT client \"" + id + "\"");
    // "Threaded" only makes publish() queue instead of writing inline; every call still comes from our
    // thread, and callbacks then only fire inside mosquitto_loop(), after the message id is recorded.
    mosquitto_threaded_set(mosq, true);
    mosquitto_max_inflight_messages_set(mosq, static_cast<unsigned>(opt.max_inflight));
    mosquitto_int_option(mosq, MOSQ_OPT_TCP_NODELAY, 1);  // small messages; latency over batching
    if (!opt.username.empty()) {
      const int rc =
          mosquitto_username_pw_set(mosq, opt.username.c_str(), opt.password.empty() ? nullptr : opt.password.c_str());
      if (rc != MOSQ_ERR_SUCCESS)
        return InvalidArgument("sink " + sink.name() + ": username/password: " + mosquitto_strerror(rc));
    }
    mosquitto_connect_callback_set(mosq, &Impl::on_connect);
    mosquitto_disconnect_callback_set(mosq, &Impl::on_disconnect);
    mosquitto_publish_callback_set(mosq, &Impl::on_publish);
    log->info("sink {}: publishing to {}/<stream>/events as \"{}\" (qos {}, queue {})", sink.name(), opt.topic_prefix,
              id, opt.qos, opt.queue_capacity);
    thread = std::thread([this] { run(); });
    return Status::Ok();
  }

  // ---- bus thread ----

  void enqueue(const Event& e, const std::string& json) {
    Message m{events_topic(opt.topic_prefix, e.stream), json};
    uint64_t dropped = 0;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (e.type == EventType::kStreamState) {
        // Only the newest state per stream matters for the retained topic, so states are coalesced
        // here instead of competing for queue space (bounded by the number of streams).
        const std::string t = state_topic(opt.topic_prefix, e.stream);
        states[t] = json;
        last_state[t] = json;
      }
      while (queue.size() >= opt.queue_capacity) {
        queue.pop_front();
        ++dropped;
      }
      queue.push_back(std::move(m));
    }
    if (dropped) sink.note_dropped(dropped);
    wake();
  }

  void flush() {
    std::unique_lock<std::mutex> lock(mu);
    // Bounded: with the broker away, nothing would ever drain and shutdown must not hang on it.
    cv_idle.wait_until(lock, Clock::now() + seconds(opt.stop_timeout_s),
                       [this] { return drained_locked() || !link || stop; });
  }

  void stop_and_join() {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (stop) return;
      stop = true;
    }
    wake();
    cv_idle.notify_all();
    if (thread.joinable()) thread.join();
  }

  size_t depth() const {
    std::lock_guard<std::mutex> lock(mu);
    return queue.size();
  }

  // ---- network thread ----

  bool drained_locked() const { return queue.empty() && states.empty() && inflight.empty() && handing_over == 0; }

  void wake() {
    const uint64_t one = 1;
    if (::write(wake_fd, &one, sizeof one) < 0) {
    }  // EAGAIN: the counter is already non-zero, the thread wakes anyway
  }

  void drain_wake() {
    uint64_t n;
    if (::read(wake_fd, &n, sizeof n) < 0) {
    }
  }

  void set_link(bool up) {
    {
      std::lock_guard<std::mutex> lock(mu);
      link = up;
    }
    if (!up) cv_idle.notify_all();
  }

  // Backoff after a failed attempt or a lost connection; logs once per outage.
  void connection_failed(const std::string& why, Clock::time_point& next_attempt) {
    connected = false;
    set_link(false);
    ++failures;
    const double delay =
        std::min(opt.reconnect_max_s, opt.reconnect_initial_s * std::pow(2.0, std::min(failures - 1, 30)));
    next_attempt = Clock::now() + seconds(delay);
    if (failures == 1) {
      log->warn(
          "sink {}: {}; retrying in {:.1f} s, then with backoff up to {:.0f} s (events wait in a queue of {}, "
          "oldest dropped when full)",
          sink.name(), why, delay, opt.reconnect_max_s, opt.queue_capacity);
    } else {
      log->debug("sink {}: attempt {} failed: {}; next in {:.1f} s", sink.name(), failures, why, delay);
    }
  }

  // Hands queued messages to libmosquitto while the in-flight window has room.
  void dispatch() {
    while (connected) {
      Message m;
      bool event = true;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (inflight.size() >= static_cast<size_t>(opt.max_inflight)) return;
        if (!states.empty()) {
          auto it = states.begin();
          m = {it->first, std::move(it->second)};
          states.erase(it);
          event = false;
        } else if (!queue.empty()) {
          m = std::move(queue.front());
          queue.pop_front();
        } else {
          return;
        }
        ++handing_over;  // neither queued nor in flight until publish returns: flush() must not see "drained"
      }
      int mid = 0;
      errno = 0;
      const int rc = mosquitto_publish(mosq, &mid, m.topic.c_str(), static_cast<int>(m.payload.size()),
                                       m.payload.data(), opt.qos, /*retain=*/!event);
      const int err = errno;
      std::lock_guard<std::mutex> lock(mu);
      --handing_over;
      if (rc == MOSQ_ERR_SUCCESS) {
        inflight[mid] = event ? InFlight{true, {}, {}} : InFlight{false, m.topic, m.payload};
      } else if (rc == MOSQ_ERR_NO_CONN || rc == MOSQ_ERR_CONN_LOST) {
        // Back to the front; the loop notices the lost connection next. An event may exceed the bound
        // by the one message taken out; a state yields to a newer one that arrived meanwhile.
        if (event)
          queue.push_front(std::move(m));
        else
          states.emplace(std::move(m.topic), std::move(m.payload));
        return;
      } else {
        // The message itself is unacceptable (size, encoding); retrying would fail the same way.
        sink.note_error("publish to \"" + m.topic + "\": " + describe(rc, err));
        if (drained_locked()) cv_idle.notify_all();
      }
    }
  }

  void run() {
    Clock::time_point next_attempt = Clock::now();
    std::optional<Clock::time_point> deadline;  // set once stop is requested
    bool socket_open = false;                   // connecting or connected
    bool configured = false;                    // connect_async succeeded once: reconnect_async from now on
    uint64_t connections_at_open = 0;           // tells a lost session from a failed attempt
    while (true) {
      bool stopping, drained;
      {
        std::lock_guard<std::mutex> lock(mu);
        stopping = stop;
        drained = drained_locked();
      }
      if (stopping) {
        if (!deadline) deadline = Clock::now() + seconds(opt.stop_timeout_s);
        if (drained || !socket_open || Clock::now() >= *deadline) break;
      }
      if (!socket_open) {
        if (Clock::now() < next_attempt) {
          pollfd p{wake_fd, POLLIN, 0};
          if (::poll(&p, 1, millis_until(next_attempt)) > 0) drain_wake();
          continue;
        }
        // Non-blocking connect (name lookup excepted); a connect that gets no CONNACK is closed by
        // libmosquitto after keepalive_s.
        errno = 0;
        const int rc = configured ? mosquitto_reconnect_async(mosq)
                                  : mosquitto_connect_async(mosq, opt.host.c_str(), opt.port, opt.keepalive_s);
        const int err = errno;
        if (rc != MOSQ_ERR_SUCCESS) {
          connection_failed("cannot connect: " + describe(rc, err), next_attempt);
          continue;
        }
        configured = true;
        socket_open = true;
        connections_at_open = connections.load();
        set_link(true);
      }
      dispatch();
      const int fd = mosquitto_socket(mosq);
      int rc = MOSQ_ERR_NO_CONN, err = 0;
      if (fd >= 0) {
        pollfd p[2] = {{fd, static_cast<short>(POLLIN | (mosquitto_want_write(mosq) ? POLLOUT : 0)), 0},
                       {wake_fd, POLLIN, 0}};
        // 1 s at most so keepalive pings (mosquitto_loop_misc) and the stop deadline are served.
        ::poll(p, 2, deadline ? millis_until(*deadline) : 1000);
        if (p[1].revents & POLLIN) drain_wake();
        errno = 0;
        rc = mosquitto_loop(mosq, 0, 1);  // does the I/O poll() found, closes the socket on errors
        err = errno;
      }
      if (rc != MOSQ_ERR_SUCCESS || mosquitto_socket(mosq) < 0) {
        socket_open = false;
        connected = false;  // usually done by on_disconnect already
        const bool was_up = connections.load() != connections_at_open;
        std::string why = rc == MOSQ_ERR_CONN_REFUSED && !refusal.empty() ? "broker refused the connection: " + refusal
                                                                          : describe(rc, err);
        connection_failed((was_up ? "connection lost: " : "cannot connect: ") + why, next_attempt);
      }
    }
    shutdown(socket_open);
  }

  void shutdown(bool socket_open) {
    if (socket_open && connected) {
      mosquitto_disconnect(mosq);  // polite DISCONNECT, so the broker does not publish a will or wait
      const auto until = Clock::now() + std::chrono::milliseconds(500);
      while (mosquitto_socket(mosq) >= 0 && Clock::now() < until) {
        if (mosquitto_loop(mosq, 50, 1) != MOSQ_ERR_SUCCESS) break;
      }
    }
    connected = false;
    uint64_t lost = 0;
    {
      std::lock_guard<std::mutex> lock(mu);
      lost = queue.size();
      for (const auto& [mid, m] : inflight) lost += m.event ? 1 : 0;
      queue.clear();
      states.clear();
      inflight.clear();
      link = false;
    }
    cv_idle.notify_all();
    if (lost) {
      const std::string what =
          std::to_string(lost) + " event(s) not delivered at shutdown (broker unreachable or not acknowledging)";
      for (uint64_t i = 0; i < lost; ++i) sink.note_error(what);
    }
  }

  // ---- libmosquitto callbacks (network thread, inside mosquitto_loop) ----

  static void on_connect(mosquitto*, void* user, int rc) {
    auto* self = static_cast<Impl*>(user);
    if (rc != 0) {  // CONNACK refusal; mosquitto_loop() then fails and run() backs off
      self->refusal = mosquitto_connack_string(rc);
      return;
    }
    self->refusal.clear();
    {
      std::lock_guard<std::mutex> lock(self->mu);
      // A restarted broker without persistence has lost the retained states: send each stream's newest again.
      for (const auto& [topic, json] : self->last_state) self->states[topic] = json;
    }
    self->connected = true;
    const uint64_t n = ++self->connections;
    if (n == 1 && self->failures == 0)
      self->log->info("sink {}: connected", self->sink.name());
    else
      self->log->info("sink {}: connected again after {} failed attempt(s)", self->sink.name(), self->failures);
    self->failures = 0;
  }

  static void on_disconnect(mosquitto*, void* user, int) {
    auto* self = static_cast<Impl*>(user);
    self->connected = false;
    {
      std::lock_guard<std::mutex> lock(self->mu);
      // QoS 1/2 messages stay with libmosquitto, which sends them again after reconnecting; QoS 0 ones
      // not yet written are gone. A lost state goes back to the queue unless a newer one is waiting.
      if (self->opt.qos == 0) {
        for (auto& [mid, m] : self->inflight) {
          if (m.event)
            self->sink.note_error("QoS 0 event lost: the connection dropped before it was written");
          else
            self->states.emplace(std::move(m.topic), std::move(m.payload));
        }
        self->inflight.clear();
      }
    }
    self->cv_idle.notify_all();
  }

  static void on_publish(mosquitto*, void* user, int mid) {
    auto* self = static_cast<Impl*>(user);
    std::lock_guard<std::mutex> lock(self->mu);
    auto it = self->inflight.find(mid);
    if (it == self->inflight.end()) return;
    if (it->second.event) self->sink.note_sent();  // before flush() can see the table drained
    self->inflight.erase(it);
    if (self->drained_locked()) self->cv_idle.notify_all();
  }

  MqttSink& sink;
  const MqttOptions opt;
  std::shared_ptr<spdlog::logger> log;
  mosquitto* mosq = nullptr;
  int wake_fd = -1;  // eventfd: publish() and stop wake the network thread out of poll()
  std::thread thread;

  mutable std::mutex mu;
  std::condition_variable cv_idle;
  std::deque<Message> queue;                      // events, oldest first, at most queue_capacity
  std::map<std::string, std::string> states;      // state topic -> newest state not yet handed over
  std::map<std::string, std::string> last_state;  // state topic -> newest state seen (re-sent on connect)
  std::unordered_map<int, InFlight> inflight;     // message id -> what it carries
  int handing_over = 0;                           // taken from a queue, mosquitto_publish() not returned yet
  bool stop = false;
  bool link = false;  // a connection is up or being set up, so flush() can make progress

  std::atomic<bool> connected{false};
  std::atomic<uint64_t> connections{0};
  int failures = 0;     // consecutive failed attempts (network thread)
  std::string refusal;  // CONNACK refusal text of the last attempt (network thread)
};

// ---- MqttSink ---------------------------------------------------------------------------------------

MqttSink::MqttSink(std::string name, EventFilter filter) : EventSink(std::move(name), std::move(filter)) {}

MqttSink::~MqttSink() {
  stop();
}

Result<std::unique_ptr<MqttSink>> MqttSink::create(MqttOptions options, EventFilter filter) {
  const std::string name = sink_name(options);
  DFM_RETURN_IF_ERROR(check_options(options, name));
  init_library_once();
  std::unique_ptr<MqttSink> sink(new MqttSink(name, std::move(filter)));
  sink->impl_ = std::make_unique<Impl>(*sink, std::move(options));
  DFM_RETURN_IF_ERROR(sink->impl_->init());
  return sink;
}

void MqttSink::stop() {
  if (impl_) impl_->stop_and_join();
}

bool MqttSink::connected() const {
  return impl_->connected.load();
}
uint64_t MqttSink::connections() const {
  return impl_->connections.load();
}
size_t MqttSink::queue_depth() const {
  return impl_->depth();
}

Status MqttSink::do_publish(const Event& e, const std::string& json) {
  impl_->enqueue(e, json);
  return Status::Ok();
}

void MqttSink::do_flush() {
  impl_->flush();
}

// ---- config -----------------------------------------------------------------------------------------

Result<MqttOptions> mqtt_options(const config::SinkConfig& c) {
  MqttOptions o;
  o.host = c.host;
  o.port = c.port;
  o.topic_prefix = c.topic_prefix;
  o.qos = c.qos;
  o.client_id = c.client_id;
  o.keepalive_s = c.keepalive_s;
  o.username = c.username;
  o.password = c.password;
  o.queue_capacity = c.queue > 0 ? static_cast<size_t>(c.queue) : 0;
  if (!c.password_env.empty()) {
    const char* value = std::getenv(c.password_env.c_str());
    if (!value)
      return InvalidArgument("sink " + sink_name(o) + ": password_env: environment variable " + c.password_env +
                             " is not set");
    o.password = value;
  }
  return o;
}

}  // namespace dfm::server
