// Beast-based test clients: plain blocking HTTP, WebSocket reads with a timeout.
#include "ws_client.h"

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <cctype>
#include <chrono>

namespace dfm::test {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

HttpReply http_request(uint16_t port, const std::string& method, const std::string& target, const Headers& headers) {
  HttpReply out;
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  beast::error_code ec;
  stream.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), ec);
  if (ec) {
    out.error = "connect: " + ec.message();
    return out;
  }
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, "127.0.0.1");
  for (const auto& [k, v] : headers) req.set(k, v);
  req.prepare_payload();
  http::write(stream, req, ec);
  if (ec) {
    out.error = "write: " + ec.message();
    return out;
  }
  beast::flat_buffer buf;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  if (method == "HEAD") parser.skip(true);
  http::read(stream, buf, parser, ec);
  if (ec) {
    out.error = "read: " + ec.message();
    return out;
  }
  auto res = parser.release();
  out.status = static_cast<int>(res.result_int());
  for (const auto& f : res) {
    std::string name = f.name_string().to_string();
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    out.headers[name] = f.value().to_string();
  }
  out.body = std::move(res.body());
  return out;
}

struct WsClient::Impl {
  net::io_context ioc;
  websocket::stream<beast::tcp_stream> ws{ioc};
  beast::flat_buffer buf;
  std::string error;
  int close_code = -1;
  bool open = false;
};

WsClient::WsClient() : impl_(std::make_unique<Impl>()) {}
WsClient::~WsClient() = default;

int WsClient::connect(uint16_t port, const std::string& target, const std::string& bearer, int rcvbuf) {
  auto& im = *impl_;
  beast::error_code ec;
  auto& sock = beast::get_lowest_layer(im.ws).socket();
  sock.open(tcp::v4(), ec);
  if (rcvbuf > 0) sock.set_option(net::socket_base::receive_buffer_size(rcvbuf), ec);
  beast::get_lowest_layer(im.ws).connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), ec);
  if (ec) {
    im.error = "connect: " + ec.message();
    return 0;
  }
  if (!bearer.empty()) {
    im.ws.set_option(websocket::stream_base::decorator(
        [bearer](websocket::request_type& req) { req.set(http::field::authorization, "Bearer " + bearer); }));
  }
  // The async handshake fills `res` on refusal too (the sync one in Boost 1.74 does not).
  websocket::response_type res;
  im.ws.async_handshake(res, "127.0.0.1:" + std::to_string(port), target, [&](beast::error_code e) { ec = e; });
  im.ioc.restart();
  im.ioc.run();
  if (ec) {
    im.error = "handshake: " + ec.message();
    return static_cast<int>(res.result_int());
  }
  im.open = true;
  return 101;
}

std::optional<std::string> WsClient::read(double timeout_s) {
  auto& im = *impl_;
  if (!im.open) return std::nullopt;
  beast::error_code result = net::error::would_block;
  im.buf.clear();
  im.ws.async_read(im.buf, [&](beast::error_code ec, std::size_t) { result = ec; });
  im.ioc.restart();
  im.ioc.run_for(std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)));
  if (result == net::error::would_block) {
    // Timed out: tear the connection down so the pending read completes.
    beast::get_lowest_layer(im.ws).socket().close();
    im.ioc.restart();
    im.ioc.run();
    im.error = "read timeout";
    im.open = false;
    return std::nullopt;
  }
  if (result) {
    // The close frame may have arrived even if answering it failed (the server already hung up).
    if (result == websocket::error::closed || im.ws.reason().code != websocket::close_code::none) {
      im.close_code = im.ws.reason().code;
    }
    im.error = result.message();
    im.open = false;
    return std::nullopt;
  }
  return beast::buffers_to_string(im.buf.data());
}

int WsClient::close_code() const {
  return impl_->close_code;
}
const std::string& WsClient::error() const {
  return impl_->error;
}

uint16_t WsClient::local_port() const {
  beast::error_code ec;
  return beast::get_lowest_layer(impl_->ws).socket().local_endpoint(ec).port();
}

bool WsClient::write(const std::string& text) {
  beast::error_code ec;
  impl_->ws.write(net::buffer(text), ec);
  if (ec) impl_->error = "write: " + ec.message();
  return !ec;
}

void WsClient::close() {
  if (!impl_->open) return;
  beast::error_code ec;
  impl_->ws.close(websocket::close_code::normal, ec);
  impl_->open = false;
}

}  // namespace dfm::test
