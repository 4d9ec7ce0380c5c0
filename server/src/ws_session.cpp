// One WebSocket feed client: bounded drop-oldest queue, one writer at a time on the connection's strand.
#include "ws_session.h"

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <deque>

#include "dfm/common/log.h"

namespace dfm::server {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

class WsSession : public FeedClient, public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(std::shared_ptr<Server::State> st, tcp::socket&& socket, EventFilter filter, std::string remote)
      : st_(std::move(st)),
        strand_(socket.get_executor()),
        ws_(std::move(socket)),
        write_timer_(strand_),
        close_timer_(strand_),
        filter_(std::move(filter)),
        id_(st_->next_id.fetch_add(1)),
        remote_(std::move(remote)),
        capacity_(static_cast<size_t>(std::max(1, st_->config.client_queue))) {}

  ~WsSession() override { finish(/*from_destructor=*/true); }

  void start(http::request<http::string_body> req) {
    const ServerOptions& o = st_->options;
    auto timeouts = websocket::stream_base::timeout::suggested(beast::role_type::server);
    timeouts.idle_timeout = seconds(o.idle_timeout_s);
    timeouts.keep_alive_pings = true;  // a silent peer is pinged at idle/2 and dropped at idle
    ws_.set_option(timeouts);
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(http::field::server, "dfmon"); }));
    ws_.read_message_max(o.read_message_max);
    ws_.text(true);
    beast::error_code ec;
    if (o.socket_send_buffer > 0) {
      beast::get_lowest_layer(ws_).socket().set_option(net::socket_base::send_buffer_size(o.socket_send_buffer), ec);
    }
    beast::get_lowest_layer(ws_).socket().set_option(tcp::no_delay(true), ec);
    ws_.async_accept(req, beast::bind_front_handler(&WsSession::on_accept, shared_from_this()));
  }

  const EventFilter& filter() const override { return filter_; }

  void enqueue(const std::shared_ptr<const OutMsg>& msg) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (closing_) return;
    if (queue_.size() >= capacity_) {
      // Drop the oldest: the client wants the freshest alerts, and the notice says how many it missed.
      const auto& old = queue_.front();
      ++pending_drops_;
      last_dropped_seq_ = old->seq;
      ++dropped_;
      if (old->dropped) old->dropped->inc();
      queue_.pop_front();
    }
    queue_.push_back(msg);
    max_queued_ = std::max(max_queued_, queue_.size());
    if (!write_scheduled_) {
      write_scheduled_ = true;
      net::post(strand_, [self = shared_from_this()] { self->do_write(); });
    }
  }

  void close_going_away() override {
    net::post(strand_, [self = shared_from_this()] { self->do_close(); });
  }

  ClientInfo info() const override {
    ClientInfo c;
    c.id = id_;
    c.remote = remote_;
    c.types = filter_.types_text();
    c.streams = filter_.streams;
    std::lock_guard<std::mutex> lock(mu_);
    c.queued = queue_.size();
    c.max_queued = max_queued_;
    c.sent = sent_;
    c.dropped = dropped_;
    c.writing = writing_;
    return c;
  }

 private:
  void on_accept(beast::error_code ec) {
    if (ec) {
      get_logger("server")->debug("client {} ({}): handshake failed: {}", id_, remote_, ec.message());
      return finish();
    }
    accepted_ = true;
    st_->add_session(shared_from_this());
    added_ = true;
    get_logger("server")->info("client {} ({}) connected: types={}{}", id_, remote_, filter_.types_text(),
                               filter_.streams.empty() ? "" : " streams=" + join(filter_.streams));
    if (st_->stopping.load()) return do_close();  // stop() may have snapshotted before we were added
    do_read();
  }

  // Client messages are ignored; reading keeps pings/pongs and the close handshake flowing.
  void do_read() { ws_.async_read(rbuf_, beast::bind_front_handler(&WsSession::on_read, shared_from_this())); }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec) {
      if (ec == websocket::error::closed) {
        get_logger("server")->info("client {} ({}) closed: {}", id_, remote_, ws_.reason().code);
      } else if (ec != net::error::operation_aborted) {
        get_logger("server")->info("client {} ({}) disconnected: {}", id_, remote_, ec.message());
      }
      return finish();
    }
    rbuf_.consume(rbuf_.size());
    do_read();
  }

  void do_write() {
    const std::string* text = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closing_) {
        write_scheduled_ = false;
        return;
      }
      if (pending_drops_) {
        Event e;
        e.type = EventType::kDropped;
        e.count = pending_drops_;
        e.seq = last_dropped_seq_;
        e.time_ms = now_unix_ms();
        notice_ = event_to_json(e).dump();
        pending_drops_ = 0;
        current_.reset();
        text = &notice_;
      } else if (!queue_.empty()) {
        current_ = std::move(queue_.front());
        queue_.pop_front();
        text = &current_->json;
      } else {
        write_scheduled_ = false;
        return;
      }
      writing_ = true;
    }
    const uint64_t gen = ++write_gen_;
    write_timer_.expires_after(seconds(st_->options.write_timeout_s));
    write_timer_.async_wait([self = shared_from_this(), gen](beast::error_code ec) {
      if (!ec && gen == self->write_gen_) self->on_write_stuck();
    });
    ws_.async_write(net::buffer(*text), beast::bind_front_handler(&WsSession::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t) {
    ++write_gen_;  // disarms a timer that already fired but has not run
    write_timer_.cancel();
    const bool notice = !current_;
    {
      std::lock_guard<std::mutex> lock(mu_);
      writing_ = false;
      if (!ec) ++sent_;
    }
    if (ec) {
      if (ec != net::error::operation_aborted) {
        get_logger("server")->info("client {} ({}): write failed: {}", id_, remote_, ec.message());
      }
      return hard_close();
    }
    if (notice) {
      st_->notices->inc();
    } else if (current_->sent) {
      current_->sent->inc();
    }
    current_.reset();
    do_write();
  }

  void on_write_stuck() {
    get_logger("server")->warn("client {} ({}): no write progress for {} s, disconnecting (it reads too slowly)", id_,
                               remote_, st_->options.write_timeout_s);
    st_->slow_disconnects->inc();
    hard_close();
  }

  void do_close() {
    if (close_started_ || finished_) return;
    close_started_ = true;
    {
      std::lock_guard<std::mutex> lock(mu_);
      closing_ = true;
      queue_.clear();
      pending_drops_ = 0;
    }
    if (!accepted_) return hard_close();
    // A peer that never answers (or a write stuck behind a full socket) must not hold up stop().
    close_timer_.expires_after(seconds(st_->options.stop_grace_s));
    close_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->hard_close();
    });
    // Beast queues the close frame behind an in-flight write; the pending read then ends with `closed`.
    ws_.async_close(websocket::close_code::going_away, [self = shared_from_this()](beast::error_code ec) {
      if (ec && ec != net::error::operation_aborted) self->hard_close();
    });
  }

  void hard_close() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      closing_ = true;
      queue_.clear();
    }
    beast::error_code ec;
    auto& sock = beast::get_lowest_layer(ws_).socket();
    if (sock.is_open()) {
      sock.shutdown(tcp::socket::shutdown_both, ec);
      sock.close(ec);
    }
  }

  // Runs once: on the strand when the read loop ends, or from the destructor when ioc.stop() abandoned the
  // session (then the io_context is shutting down and the timers must not be touched).
  void finish(bool from_destructor = false) {
    if (finished_) return;
    finished_ = true;
    {
      std::lock_guard<std::mutex> lock(mu_);
      closing_ = true;
      queue_.clear();
    }
    if (!from_destructor) {
      write_timer_.cancel();
      close_timer_.cancel();
      hard_close();  // the read loop is over: also end a write that may still be pending
    }
    st_->end_session(this, added_);
  }

  static std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
    return out;
  }

  std::shared_ptr<Server::State> st_;
  net::any_io_executor strand_;
  websocket::stream<beast::tcp_stream> ws_;
  net::steady_timer write_timer_, close_timer_;
  beast::flat_buffer rbuf_;
  const EventFilter filter_;
  const uint64_t id_;
  const std::string remote_;
  const size_t capacity_;

  // Strand-only state.
  bool accepted_ = false, added_ = false, close_started_ = false, finished_ = false;
  uint64_t write_gen_ = 0;
  std::shared_ptr<const OutMsg> current_;  // the event being written (keeps its JSON alive)
  std::string notice_;                     // or the dropped notice being written

  // Shared with enqueue()/info() callers.
  mutable std::mutex mu_;
  std::deque<std::shared_ptr<const OutMsg>> queue_;
  bool closing_ = false, write_scheduled_ = false, writing_ = false;
  uint64_t pending_drops_ = 0, last_dropped_seq_ = 0;
  uint64_t sent_ = 0, dropped_ = 0;
  size_t max_queued_ = 0;
};

}  // namespace

void start_ws_session(std::shared_ptr<Server::State> state, tcp::socket socket,
                      http::request<http::string_body> request, EventFilter filter, std::string remote) {
  auto session = std::make_shared<WsSession>(std::move(state), std::move(socket), std::move(filter), std::move(remote));
  session->start(std::move(request));
}

}  // namespace dfm::server
