// Fuzz target: raw bytes of an HTTP connection -> Beast's request parser with the server's header/body limits
// -> route_request() (path whitelist, 404/405/426, /alerts upgrade checks: token, query, capacity) ->
// make_response() serialised. Pipelined requests are handled like a keep-alive session does.
//
// Byte 0 picks the server state (low nibble as bits; ASCII digits and letters make readable seeds):
//   1 = server.token "s3cret" required, 2 = stopping, 4 = max_clients reached, 8 = providers throw,
//   0x40 set (letters) = the feed offers only alert_start,alert_end.
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/write.hpp>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

#include "dfm/server/event_filter.h"
#include "dfm/server/server.h"
#include "http_routes.h"

namespace http = boost::beast::http;
using namespace dfm;
using namespace dfm::server;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

class FakeRoutes : public RouteContext {
 public:
  explicit FakeRoutes(uint8_t flags) : flags_(flags) {
    if (flags & 1) token_ = "s3cret";
    types_ = (flags & 0x40) ? EventFilter::bit(EventType::kAlertStart) | EventFilter::bit(EventType::kAlertEnd)
                            : EventFilter::bit(EventType::kAlertStart) | EventFilter::bit(EventType::kAlertEnd) |
                                  EventFilter::bit(EventType::kScore) | EventFilter::bit(EventType::kStreamState);
  }
  const std::string& token() const override { return token_; }
  uint32_t feed_types() const override { return types_; }
  bool stopping() const override { return flags_ & 2; }
  bool reserve_slot() override {
    if (flags_ & 4) return false;
    ++slots;
    return true;
  }
  std::function<nlohmann::json()> health_provider() const override {
    const bool fail = flags_ & 8;
    return [fail]() -> nlohmann::json {
      if (fail) throw std::runtime_error("health failed");
      return {{"status", "ok"}, {"streams", {{"cam-1", "live"}}}};
    };
  }
  std::function<std::optional<HttpPage>(const std::string&)> page_provider() const override {
    const bool fail = flags_ & 8;
    return [fail](const std::string& path) -> std::optional<HttpPage> {
      if (fail) throw std::runtime_error("page failed: " + path);
      if (path == "/" || path == "/index.html") return HttpPage{"text/html; charset=utf-8", "<html></html>"};
      return std::nullopt;
    };
  }
  std::string render_metrics() const override { return "# TYPE dfmon_up gauge\ndfmon_up 1\n"; }

  int slots = 0;

 private:
  uint8_t flags_;
  std::string token_;
  uint32_t types_ = 0;
};

std::string serialise(const HttpResponse& res) {
  std::ostringstream out;
  out << res;
  return out.str();
}

// Properties of the helpers route_request builds on, checked on every parsed target.
void check_target_helpers(const std::string& target, uint32_t available) {
  std::string path, query;
  split_target(target, &path, &query);
  check(path + (target.find('?') == std::string::npos ? "" : "?" + query) == target);
  if (auto q = parse_alerts_query(target, available); q.ok()) {
    check(q->path == path);
    check((q->filter.types & ~available) == 0);
    (void)q->filter.types_text();
  }
  (void)query_param(target, "token");
  if (auto decoded = percent_decode(query)) check(decoded->size() <= query.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  FakeRoutes routes(data[0]);
  const ServerOptions options;  // the limits the server applies
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);

  // One request per iteration, as HttpSession::do_read does on a keep-alive connection.
  for (int requests = 0; requests < 16; ++requests) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(options.header_limit);
    parser.body_limit(options.body_limit);
    parser.eager(true);  // what http::async_read sets
    boost::beast::error_code ec;
    while (!parser.is_done()) {
      if (rest.empty()) {
        // The peer closed. Like http::read: end_of_stream before any byte (put_eof asserts got_some()),
        // else put_eof decides (partial_message or a complete body-until-eof message).
        if (parser.got_some()) parser.put_eof(ec);
        else ec = http::error::end_of_stream;
        break;
      }
      const size_t used = parser.put(boost::asio::const_buffer(rest.data(), rest.size()), ec);
      rest.remove_prefix(used);
      if (ec == http::error::need_more) {
        ec = {};
        if (used == 0 && rest.empty()) continue;
        if (used == 0) {  // a buffer the parser cannot use: treat like the peer stopped sending
          if (parser.got_some()) parser.put_eof(ec);
          else ec = http::error::end_of_stream;
          break;
        }
        continue;
      }
      if (ec) break;
    }
    if (ec) {
      // HttpSession answers read errors without routing; build those responses too.
      if (ec == http::error::end_of_stream) return 0;
      const http::status status = ec == http::error::header_limit ? http::status::request_header_fields_too_large
                                  : ec == http::error::body_limit ? http::status::payload_too_large
                                                                  : http::status::bad_request;
      RouteResult r;
      r.status = status;
      (void)serialise(make_response(HttpRequest{}, std::move(r)));
      return 0;
    }

    HttpRequest req = parser.release();
    const std::string target(req.target());
    check_target_helpers(target, routes.feed_types());
    (void)bearer_token(std::string(req[http::field::authorization]));

    const int slots_before = routes.slots;
    RouteResult result = route_request(req, routes);
    check(result.path == target.substr(0, target.find('?')));
    if (result.upgrade) {
      // Only /alerts upgrades, only with the token when one is set, and only with a slot.
      check(result.path == "/alerts");
      check(routes.slots == slots_before + 1);
      check(!(data[0] & 2) && !(data[0] & 4));
      if (!routes.token().empty()) {
        auto given = bearer_token(std::string(req[http::field::authorization]));
        if (!given) given = query_param(target, "token");
        check(given && *given == routes.token());
      }
      check((result.filter.types & ~routes.feed_types()) == 0);
      return 0;  // the connection is a WebSocket now
    }
    check(routes.slots == slots_before);
    check(result.status != http::status::switching_protocols);
    const bool keep_alive = result.keep_alive;
    const std::string wire = serialise(make_response(req, std::move(result)));
    check(wire.compare(0, 5, "HTTP/") == 0);
    if (!keep_alive) return 0;  // HttpSession shuts the connection down after this response
  }
  return 0;
}
