// Listener, HTTP sessions (read, route via http_routes.h, write) and the Server lifecycle.
#include "dfm/server/server.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <thread>

#include "dfm/common/log.h"
#include "dfm/server/metrics.h"
#include "http_routes.h"
#include "server_state.h"
#include "ws_session.h"

namespace dfm::server {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

std::string endpoint_text(const tcp::endpoint& ep) {
  const std::string host = ep.address().to_string();
  return (ep.address().is_v6() ? "[" + host + "]" : host) + ":" + std::to_string(ep.port());
}

// Routing over the live server state (provider functions are copied under the lock, called outside it).
class StateRoutes : public RouteContext {
 public:
  explicit StateRoutes(Server::State& st) : st_(st) {}
  const std::string& token() const override { return st_.config.token; }
  uint32_t feed_types() const override { return st_.feed_types.load(); }
  bool stopping() const override { return st_.stopping.load(); }
  bool reserve_slot() override {
    if (st_.slots.fetch_add(1) < st_.config.max_clients) return true;
    st_.slots.fetch_sub(1);
    return false;
  }
  std::function<nlohmann::json()> health_provider() const override {
    std::lock_guard<std::mutex> lock(st_.mu);
    return st_.health;
  }
  std::function<std::optional<HttpPage>(const std::string&)> page_provider() const override {
    std::lock_guard<std::mutex> lock(st_.mu);
    return st_.page;
  }
  std::string render_metrics() const override { return st_.metrics->render(); }

 private:
  Server::State& st_;
};

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket&& socket, std::shared_ptr<Server::State> st)
      : stream_(std::move(socket)), st_(std::move(st)) {}

  void run() {
    net::dispatch(stream_.get_executor(), beast::bind_front_handler(&HttpSession::do_read, shared_from_this()));
  }

 private:
  void do_read() {
    parser_.emplace();
    parser_->header_limit(st_->options.header_limit);
    parser_->body_limit(st_->options.body_limit);
    stream_.expires_after(seconds(st_->options.http_timeout_s));
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&HttpSession::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream) return do_shutdown();
    if (ec == http::error::header_limit) return send_text(http::status::request_header_fields_too_large, "", false);
    if (ec == http::error::body_limit) return send_text(http::status::payload_too_large, "", false);
    if (ec == beast::error::timeout || ec == net::error::operation_aborted || ec == net::error::eof ||
        ec == net::error::connection_reset) {
      return;
    }
    if (ec) return send_text(http::status::bad_request, "malformed request\n", false);
    req_ = parser_->release();
    StateRoutes routes(*st_);
    RouteResult result = route_request(req_, routes);
    path_ = result.path;
    if (!result.rejected.empty()) st_->rejected(result.rejected)->inc();
    if (result.upgrade) return upgrade(std::move(result.filter));
    send(std::move(result));
  }

  // route_request() has checked the upgrade and reserved a slot.
  void upgrade(EventFilter filter) {
    st_->http_requests(path_, 101)->inc();
    beast::error_code ec;
    const std::string remote = endpoint_text(stream_.socket().remote_endpoint(ec));
    stream_.expires_never();
    start_ws_session(st_, stream_.release_socket(), std::move(req_), std::move(filter), remote);
  }

  // A read error: answered without routing (req_/path_ still describe the previous request, if any).
  void send_text(http::status status, std::string body, bool keep_alive) {
    RouteResult r;
    r.path = path_;
    r.status = status;
    r.body = std::move(body);
    r.keep_alive = keep_alive;
    send(std::move(r));
  }

  void send(RouteResult result) {
    st_->http_requests(route_label(result.path), static_cast<int>(result.status))->inc();
    auto res = std::make_shared<http::response<http::string_body>>(make_response(req_, std::move(result)));
    stream_.expires_after(seconds(st_->options.http_timeout_s));
    http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
      if (ec) return;
      if (res->need_eof()) return self->do_shutdown();
      self->do_read();
    });
  }

  void do_shutdown() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::request<http::string_body> req_;
  std::string path_;
  std::shared_ptr<Server::State> st_;
};

}  // namespace

struct Server::Impl {
  std::shared_ptr<State> st = std::make_shared<State>();
  net::io_context ioc;
  tcp::acceptor acceptor{net::make_strand(ioc)};
  net::steady_timer accept_retry{acceptor.get_executor()};
  tcp::endpoint bound;
  std::vector<std::thread> threads;
  std::mutex lifecycle_mu;
  bool started = false, stopped = false;

  void do_accept() {
    acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
      if (ec == net::error::operation_aborted || st->stopping.load()) return;
      if (ec) {
        // e.g. EMFILE: back off instead of spinning on a listening socket that stays readable.
        get_logger("server")->warn("accept: {}", ec.message());
        accept_retry.expires_after(std::chrono::milliseconds(100));
        accept_retry.async_wait([this](beast::error_code e) {
          if (!e) do_accept();
        });
        return;
      }
      std::make_shared<HttpSession>(std::move(socket), st)->run();
      do_accept();
    });
  }
};

Server::Server() : impl_(std::make_unique<Impl>()) {}

Server::~Server() {
  stop();
}

Result<std::unique_ptr<Server>> Server::create(const config::ServerConfig& config, ServerOptions options) {
  const std::string listen = config::to_string(config.listen);
  if (config.listen.port < 0 || config.listen.port > 65535) {
    return InvalidArgument("server.listen: port " + std::to_string(config.listen.port) + " is out of range 0..65535");
  }
  if (config.max_clients < 1) return InvalidArgument("server.max_clients: must be at least 1");
  if (config.client_queue < 1) return InvalidArgument("server.client_queue: must be at least 1");
  if (options.threads < 1) options.threads = 1;

  std::unique_ptr<Server> server(new Server());
  Impl& im = *server->impl_;
  State& st = *im.st;
  st.config = config;
  st.options = options;
  if (!options.metrics) st.own_metrics = std::make_unique<MetricsRegistry>();
  st.metrics = options.metrics ? options.metrics : st.own_metrics.get();
  st.clients = &st.metrics->gauge("dfmon_ws_clients", "WebSocket feed clients connected");
  st.connections = &st.metrics->counter("dfmon_ws_connections_total", "WebSocket feed clients accepted");
  st.slow_disconnects = &st.metrics->counter("dfmon_ws_slow_disconnects_total",
                                             "WebSocket clients cut off because a write made no progress");
  st.notices = &st.metrics->counter("dfmon_ws_dropped_notices_total", "`dropped` notices sent to WebSocket clients");
  st.feed_types = EventFilter::bit(EventType::kAlertStart) | EventFilter::bit(EventType::kAlertEnd) |
                  EventFilter::bit(EventType::kScore) | EventFilter::bit(EventType::kStreamState);

  // Resolve (host names such as "localhost" may give several addresses); every one must be loopback
  // unless a token protects the feed.
  beast::error_code ec;
  tcp::resolver resolver(im.ioc);
  auto results = resolver.resolve(config.listen.host, std::to_string(config.listen.port),
                                  tcp::resolver::numeric_service | tcp::resolver::passive, ec);
  if (ec || results.empty()) {
    return InvalidArgument("server.listen \"" + listen +
                           "\": cannot resolve host: " + (ec ? ec.message() : "no address"));
  }
  for (const auto& r : results) {
    if (!r.endpoint().address().is_loopback() && config.token.empty()) {
      return InvalidArgument("server.listen \"" + listen + "\": " + r.endpoint().address().to_string() +
                             " is not a loopback address; set server.token before exposing the feed to the network");
    }
  }
  const tcp::endpoint ep = results.begin()->endpoint();
  auto fail = [&](const char* what) -> Status {
    return IoError("server.listen \"" + listen + "\": " + what + ": " + ec.message());
  };
  if (im.acceptor.open(ep.protocol(), ec)) return fail("open");
  if (im.acceptor.set_option(net::socket_base::reuse_address(true), ec)) return fail("reuse_address");
  if (im.acceptor.bind(ep, ec)) return fail("bind");
  if (im.acceptor.listen(net::socket_base::max_listen_connections, ec)) return fail("listen");
  im.bound = im.acceptor.local_endpoint(ec);
  if (ec) return fail("local_endpoint");
  return server;
}

Status Server::start() {
  std::lock_guard<std::mutex> lock(impl_->lifecycle_mu);
  if (impl_->stopped) return Cancelled("server was stopped");
  if (impl_->started) return Status::Ok();
  impl_->started = true;
  impl_->do_accept();
  for (int i = 0; i < impl_->st->options.threads; ++i) {
    impl_->threads.emplace_back([this] {
      while (true) {
        try {
          impl_->ioc.run();
          return;
        } catch (const std::exception& ex) {  // handlers should not throw; keep serving if one does
          get_logger("server")->error("io thread: {}", ex.what());
        }
      }
    });
  }
  get_logger("server")->info("listening on http://{} (feed: ws://{}/alerts{})", address(), address(),
                             impl_->st->config.token.empty() ? ", no token" : ", token required");
  return Status::Ok();
}

void Server::stop() {
  std::lock_guard<std::mutex> lock(impl_->lifecycle_mu);
  if (impl_->stopped) return;
  impl_->stopped = true;
  State& st = *impl_->st;
  st.stopping = true;
  net::post(impl_->acceptor.get_executor(), [im = impl_.get()] {
    beast::error_code ec;
    im->acceptor.close(ec);
    im->accept_retry.cancel();
  });
  const auto sessions = st.snapshot();  // a named copy: `*snapshot()` in the range would dangle
  for (const auto& w : *sessions) {
    if (auto s = w.lock()) s->close_going_away();
  }
  if (impl_->started) {
    // Sessions close themselves (close frame, or a hard close after stop_grace_s); wait a little longer.
    const auto deadline = std::chrono::steady_clock::now() + seconds(st.options.stop_grace_s + 0.3);
    std::unique_lock<std::mutex> slock(st.mu);
    st.session_ended.wait_until(slock, deadline, [&] { return st.slots.load() <= 0; });
  }
  impl_->ioc.stop();  // abandons idle HTTP keep-alive connections
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
}

uint16_t Server::port() const {
  return impl_->bound.port();
}
std::string Server::address() const {
  return endpoint_text(impl_->bound);
}

void Server::set_health_provider(std::function<nlohmann::json()> fn) {
  std::lock_guard<std::mutex> lock(impl_->st->mu);
  impl_->st->health = std::move(fn);
}

void Server::set_page_provider(std::function<std::optional<HttpPage>(const std::string&)> fn) {
  std::lock_guard<std::mutex> lock(impl_->st->mu);
  impl_->st->page = std::move(fn);
}

void Server::set_feed_types(uint32_t type_mask) {
  impl_->st->feed_types = type_mask;
}

void Server::broadcast(const Event& e, const std::string& json) {
  impl_->st->broadcast(e, json);
}

size_t Server::client_count() const {
  size_t n = 0;
  const auto sessions = impl_->st->snapshot();
  for (const auto& w : *sessions) n += !w.expired();
  return n;
}

std::vector<ClientInfo> Server::clients() const {
  std::vector<ClientInfo> out;
  const auto sessions = impl_->st->snapshot();
  for (const auto& w : *sessions) {
    if (auto s = w.lock()) out.push_back(s->info());
  }
  return out;
}

MetricsRegistry& Server::metrics() {
  return *impl_->st->metrics;
}

}  // namespace dfm::server
