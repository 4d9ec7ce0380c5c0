// HTTP routing of the server as a pure function: parsed request + server state -> response or upgrade
// (private header; no sockets, so the routing is unit- and fuzz-testable).
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "dfm/server/event_filter.h"
#include "dfm/server/server.h"

namespace dfm::server {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;
using HttpResponse = boost::beast::http::response<boost::beast::http::string_body>;

// What routing reads from (and, for an upgrade, reserves in) the server. Implemented over Server::State
// in server.cpp and by fakes in tests and fuzz targets.
class RouteContext {
 public:
  virtual ~RouteContext() = default;
  virtual const std::string& token() const = 0;  // server.token; empty = no auth on /alerts
  virtual uint32_t feed_types() const = 0;       // types a client may request on /alerts
  virtual bool stopping() const = 0;
  virtual bool reserve_slot() = 0;  // one feed slot for an upgrade; false = server.max_clients reached
  virtual std::function<nlohmann::json()> health_provider() const = 0;                           // may be empty
  virtual std::function<std::optional<HttpPage>(const std::string&)> page_provider() const = 0;  // may be empty
  virtual std::string render_metrics() const = 0;
};

// The outcome of one request: a response to send, or (upgrade) a WebSocket feed to start.
struct RouteResult {
  std::string path;      // target without the query ("/alerts")
  bool upgrade = false;  // accepted /alerts upgrade: a slot is reserved, start the session with `filter`
  EventFilter filter;
  std::string rejected;  // dfmon_ws_rejected_total reason of a refused upgrade ("unauthorized", ...), or ""
  // Response (when !upgrade):
  boost::beast::http::status status = boost::beast::http::status::ok;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  bool keep_alive = false;
  std::string allow;              // Allow header (405)
  bool bearer_challenge = false;  // WWW-Authenticate: Bearer (401)
};

// Routes one parsed request: GET/HEAD /healthz, /metrics, /alerts (426 without upgrade), other paths via the
// page provider (404 when none); upgrades only on /alerts, checked token -> query -> stopping -> capacity.
RouteResult route_request(const HttpRequest& req, RouteContext& ctx);

// Label for dfmon_http_requests_total: fixed routes only, so scanners cannot create unbounded series.
std::string route_label(const std::string& path);

// The response for a RouteResult that is not an upgrade (HEAD: the GET length, no body). `req` may be a
// default-constructed request when the request could not be parsed.
HttpResponse make_response(const HttpRequest& req, RouteResult result);

}  // namespace dfm::server
