// EventSink base, stdout/file/WebSocket sinks and the sink registration table (MQTT: mqtt_sink.cpp).
#include "dfm/server/sink.h"

#include <cerrno>
#include <cstring>

#include "dfm/common/log.h"
#include "dfm/server/metrics.h"
#include "dfm/server/server.h"
#include "line_writer.h"

namespace dfm::server {

// ---- LineWriter -------------------------------------------------------------------------------------

namespace detail {

LineWriter::LineWriter(size_t capacity, Hooks hooks)
    : capacity_(capacity ? capacity : 1), hooks_(std::move(hooks)), thread_([this] { run(); }) {}

LineWriter::~LineWriter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_work_.notify_all();
  thread_.join();
}

void LineWriter::push(std::string line) {
  uint64_t dropped = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    while (queue_.size() >= capacity_) {
      queue_.pop_front();
      ++dropped;
    }
    queue_.push_back(std::move(line));
  }
  cv_work_.notify_one();
  if (dropped && hooks_.dropped) hooks_.dropped(dropped);
}

void LineWriter::flush() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_idle_.wait(lock, [this] { return queue_.empty() && !busy_; });
}

size_t LineWriter::depth() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

void LineWriter::run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_work_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) break;  // stop_ and drained
    std::string line = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    lock.unlock();
    Status st;
    try {
      st = hooks_.write(line);
    } catch (const std::exception& ex) {
      st = Internal(ex.what());
    }
    if (hooks_.done) hooks_.done(st);
    lock.lock();
    busy_ = false;
    if (queue_.empty()) cv_idle_.notify_all();
  }
  cv_idle_.notify_all();
}

}  // namespace detail

// ---- EventSink --------------------------------------------------------------------------------------

EventSink::EventSink(std::string name, EventFilter filter) : name_(std::move(name)), filter_(std::move(filter)) {}
EventSink::~EventSink() = default;

void EventSink::publish(const Event& e, const std::string& json) {
  if (!filter_.accepts(e)) return;
  accepted_.fetch_add(1, std::memory_order_relaxed);
  Status st;
  {
    std::lock_guard<std::mutex> lock(mu_);
    try {
      st = do_publish(e, json);
    } catch (const std::exception& ex) {
      st = Internal(std::string("exception: ") + ex.what());
    } catch (...) {
      st = Internal("unknown exception");
    }
  }
  if (!st.ok()) note_error(st.to_string());
}

void EventSink::flush() {
  try {
    do_flush();
  } catch (...) {  // flush is best effort, called from destructors and shutdown paths
  }
}

SinkStats EventSink::stats() const {
  SinkStats s;
  s.accepted = accepted_.load(std::memory_order_relaxed);
  s.sent = sent_.load(std::memory_order_relaxed);
  s.dropped = dropped_.load(std::memory_order_relaxed);
  s.errors = errors_.load(std::memory_order_relaxed);
  return s;
}

void EventSink::bind_metrics(MetricsRegistry& registry) {
  const Labels labels{{"sink", name_}};
  m_sent_ = &registry.counter("dfmon_sink_events_sent_total", "Events written by a sink", labels);
  m_dropped_ = &registry.counter("dfmon_sink_events_dropped_total", "Events a sink discarded (queue full)", labels);
  m_errors_ = &registry.counter("dfmon_sink_errors_total", "Events a sink failed to write", labels);
  // Bring the mirrors up to date with what happened before binding.
  m_sent_.load()->inc(sent_.load());
  m_dropped_.load()->inc(dropped_.load());
  m_errors_.load()->inc(errors_.load());
}

void EventSink::note_sent(uint64_t n) {
  sent_.fetch_add(n, std::memory_order_relaxed);
  if (Counter* c = m_sent_.load(std::memory_order_relaxed)) c->inc(n);
  if (burst_errors_.load(std::memory_order_relaxed) != 0) {
    const uint64_t lost = burst_errors_.exchange(0);
    if (lost) get_logger("sink")->info("sink {}: recovered after {} failed event(s)", name_, lost);
  }
}

void EventSink::note_dropped(uint64_t n) {
  dropped_.fetch_add(n, std::memory_order_relaxed);
  if (Counter* c = m_dropped_.load(std::memory_order_relaxed)) c->inc(n);
}

void EventSink::note_error(const std::string& what) {
  errors_.fetch_add(1, std::memory_order_relaxed);
  if (Counter* c = m_errors_.load(std::memory_order_relaxed)) c->inc();
  if (burst_errors_.fetch_add(1) == 0) {
    get_logger("sink")->warn("sink {}: {} (further errors are counted in dfmon_sink_errors_total until it recovers)",
                             name_, what);
  }
}

// ---- StdoutSink -------------------------------------------------------------------------------------

StdoutSink::StdoutSink(EventFilter filter, std::FILE* out, size_t queue_capacity)
    : EventSink("stdout", std::move(filter)), out_(out) {
  writer_ = std::make_unique<detail::LineWriter>(
      queue_capacity,
      detail::LineWriter::Hooks{[this](const std::string& line) -> Status {
                                  if (std::fwrite(line.data(), 1, line.size(), out_) != line.size() ||
                                      std::fflush(out_) != 0) {
                                    const int err = errno;
                                    std::clearerr(out_);
                                    return IoError(std::string("write to stdout: ") + std::strerror(err));
                                  }
                                  return Status::Ok();
                                },
                                [this](const Status& st) { st.ok() ? note_sent() : note_error(st.message()); },
                                [this](uint64_t n) { note_dropped(n); }});
}

StdoutSink::~StdoutSink() {
  writer_.reset();
}  // join before the hooks' `this` goes away

Status StdoutSink::do_publish(const Event&, const std::string& json) {
  writer_->push(json + "\n");
  return Status::Ok();
}

void StdoutSink::do_flush() {
  writer_->flush();
}

// ---- FileSink ---------------------------------------------------------------------------------------

FileSink::FileSink(std::string path, EventFilter filter, size_t queue_capacity)
    : EventSink("file:" + path, std::move(filter)), path_(std::move(path)) {
  open_status_ = reopen();
  writer_ = std::make_unique<detail::LineWriter>(
      queue_capacity,
      detail::LineWriter::Hooks{[this](const std::string& line) { return write_line(line); },
                                [this](const Status& st) { st.ok() ? note_sent() : note_error(st.message()); },
                                [this](uint64_t n) { note_dropped(n); }});
}

FileSink::~FileSink() {
  writer_.reset();
  if (file_) std::fclose(file_);
}

Status FileSink::reopen() {
  if (file_) std::fclose(file_);
  file_ = std::fopen(path_.c_str(), "a+e");  // writes always append; readable to check the last byte
  if (!file_) return IoError("sink file \"" + path_ + "\": cannot open: " + std::strerror(errno));
  // A failed write (disk full) or a crash can leave half a line; start on a fresh line so every
  // complete line stays valid JSON.
  if (std::fseek(file_, -1, SEEK_END) == 0) {
    const int last = std::fgetc(file_);
    std::fseek(file_, 0, SEEK_END);
    if (last != EOF && last != '\n') std::fputc('\n', file_);
  } else {
    std::clearerr(file_);
  }
  return Status::Ok();
}

Status FileSink::write_line(const std::string& line) {
  if (!file_) DFM_RETURN_IF_ERROR(reopen());
  if (std::fwrite(line.data(), 1, line.size(), file_) == line.size() && std::fflush(file_) == 0) return Status::Ok();
  const int err = errno;
  // Drop the handle: a partial line may sit in stdio's buffer, and the next event reopens (e.g. after
  // log rotation or once space is freed). The event that failed is counted as an error, not retried.
  std::fclose(file_);
  file_ = nullptr;
  return IoError("sink file \"" + path_ + "\": write failed: " + std::strerror(err));
}

Status FileSink::do_publish(const Event&, const std::string& json) {
  writer_->push(json + "\n");
  return Status::Ok();
}

void FileSink::do_flush() {
  writer_->flush();
}

// ---- WebSocketSink ----------------------------------------------------------------------------------

WebSocketSink::WebSocketSink(Server* server, EventFilter filter)
    : EventSink("websocket", std::move(filter)), server_(server) {}

Status WebSocketSink::do_publish(const Event& e, const std::string& json) {
  if (!server_) return Internal("websocket sink has no server");
  server_->broadcast(e, json);
  note_sent();
  return Status::Ok();
}

// ---- registration table -----------------------------------------------------------------------------

namespace {

Result<EventFilter> filter_for(const config::SinkConfig& c) {
  EventFilter f;
  DFM_ASSIGN_OR_RETURN(f.types,
                       parse_event_types(c.types, std::string("sink ") + config::to_string(c.type) + ": types"));
  return f;
}

Result<std::unique_ptr<EventSink>> make_websocket(const config::SinkConfig& c, Server* server) {
  if (!server) return InvalidArgument("sink websocket: needs the HTTP/WebSocket server (server.listen)");
  DFM_ASSIGN_OR_RETURN(EventFilter f, filter_for(c));
  server->set_feed_types(f.types);  // clients may only ask for what the sink carries
  return std::unique_ptr<EventSink>(std::make_unique<WebSocketSink>(server, f));
}

Result<std::unique_ptr<EventSink>> make_file(const config::SinkConfig& c, Server*) {
  DFM_ASSIGN_OR_RETURN(EventFilter f, filter_for(c));
  auto sink = std::make_unique<FileSink>(c.path, f);
  DFM_RETURN_IF_ERROR(sink->open_status());
  return std::unique_ptr<EventSink>(std::move(sink));
}

Result<std::unique_ptr<EventSink>> make_stdout(const config::SinkConfig& c, Server*) {
  DFM_ASSIGN_OR_RETURN(EventFilter f, filter_for(c));
  return std::unique_ptr<EventSink>(std::make_unique<StdoutSink>(f));
}

Result<std::unique_ptr<EventSink>> make_mqtt(const config::SinkConfig& c, Server*) {
  DFM_ASSIGN_OR_RETURN(EventFilter f, filter_for(c));
  DFM_ASSIGN_OR_RETURN(MqttOptions options, mqtt_options(c));
  DFM_ASSIGN_OR_RETURN(std::unique_ptr<MqttSink> sink, MqttSink::create(std::move(options), std::move(f)));
  return std::unique_ptr<EventSink>(std::move(sink));
}

}  // namespace

const std::vector<SinkRegistration>& sink_registry() {
  static const std::vector<SinkRegistration> table = {
      {"websocket", make_websocket},
      {"file", make_file},
      {"stdout", make_stdout},
      {"mqtt", make_mqtt},
  };
  return table;
}

Result<std::unique_ptr<EventSink>> make_sink(const config::SinkConfig& config, Server* server) {
  const std::string type = config::to_string(config.type);
  for (const auto& reg : sink_registry()) {
    if (type == reg.type) return reg.make(config, server);
  }
  return InvalidArgument("sink type \"" + type + "\" is not registered");
}

}  // namespace dfm::server
