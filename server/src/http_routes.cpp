// HTTP routes (/healthz, /metrics, /, /alerts upgrade checks) as a pure decision over a RouteContext.
#include "http_routes.h"

#include <boost/beast/websocket/rfc6455.hpp>

#include "dfm/server/metrics.h"

namespace dfm::server {

namespace http = boost::beast::http;

namespace {

RouteResult text(RouteResult r, http::status status, std::string body, bool keep_alive) {
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::move(body);
  r.keep_alive = keep_alive;
  return r;
}

// Checks in this order so an unauthenticated client learns nothing about filters or capacity.
RouteResult route_upgrade(const HttpRequest& req, RouteContext& ctx, RouteResult r) {
  const std::string target = std::string(req.target());
  if (r.path != "/alerts") return text(std::move(r), http::status::not_found, "not found\n", false);
  const std::string& token = ctx.token();
  if (!token.empty()) {
    std::optional<std::string> given = bearer_token(std::string(req[http::field::authorization]));
    if (!given) given = query_param(target, "token");
    if (!given || !constant_time_equal(*given, token)) {
      r.rejected = "unauthorized";
      r.bearer_challenge = true;
      return text(std::move(r), http::status::unauthorized, "missing or wrong token\n", false);
    }
  }
  auto query = parse_alerts_query(target, ctx.feed_types());
  if (!query.ok()) {
    r.rejected = "bad_request";
    return text(std::move(r), http::status::bad_request, query.status().message() + "\n", false);
  }
  if (ctx.stopping()) return text(std::move(r), http::status::service_unavailable, "shutting down\n", false);
  if (!ctx.reserve_slot()) {
    r.rejected = "full";
    return text(std::move(r), http::status::service_unavailable, "too many clients (server.max_clients)\n", false);
  }
  r.upgrade = true;
  r.status = http::status::switching_protocols;
  r.filter = std::move(query->filter);
  return r;
}

}  // namespace

std::string route_label(const std::string& path) {
  for (const char* known : {"/", "/healthz", "/metrics", "/alerts"}) {
    if (path == known) return path;
  }
  return "other";
}

RouteResult route_request(const HttpRequest& req, RouteContext& ctx) {
  RouteResult r;
  r.path = std::string(req.target().substr(0, req.target().find('?')));
  if (boost::beast::websocket::is_upgrade(req)) return route_upgrade(req, ctx, std::move(r));

  const bool keep_alive = req.keep_alive();
  if (req.method() != http::verb::get && req.method() != http::verb::head) {
    r.allow = "GET, HEAD";
    return text(std::move(r), http::status::method_not_allowed, "only GET and HEAD\n", keep_alive);
  }
  if (r.path == "/healthz") {
    const auto fn = ctx.health_provider();
    nlohmann::json body = {{"status", "ok"}};
    try {
      if (fn) body = fn();
    } catch (const std::exception& ex) {
      return text(std::move(r), http::status::internal_server_error,
                  std::string("health provider: ") + ex.what() + "\n", keep_alive);
    }
    r.status = http::status::ok;
    r.content_type = "application/json";
    r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    r.keep_alive = keep_alive;
    return r;
  }
  if (r.path == "/metrics") {
    r.status = http::status::ok;
    r.content_type = kMetricsContentType;
    r.body = ctx.render_metrics();
    r.keep_alive = keep_alive;
    return r;
  }
  if (r.path == "/alerts") {
    return text(std::move(r), http::status::upgrade_required, "/alerts is a WebSocket endpoint\n", keep_alive);
  }
  const auto fn = ctx.page_provider();
  std::optional<HttpPage> page;
  try {
    if (fn) page = fn(r.path);
  } catch (const std::exception& ex) {
    return text(std::move(r), http::status::internal_server_error, std::string("page provider: ") + ex.what() + "\n",
                keep_alive);
  }
  if (!page) return text(std::move(r), http::status::not_found, "not found\n", keep_alive);
  r.status = http::status::ok;
  r.content_type = page->content_type;
  r.body = std::move(page->body);
  r.keep_alive = keep_alive;
  return r;
}

HttpResponse make_response(const HttpRequest& req, RouteResult result) {
  HttpResponse res(result.status, req.version() ? req.version() : 11);
  res.set(http::field::server, "dfmon");
  res.set(http::field::content_type, result.content_type);
  res.set(http::field::cache_control, "no-store");
  if (!result.allow.empty()) res.set(http::field::allow, result.allow);
  if (result.bearer_challenge) res.set(http::field::www_authenticate, "Bearer realm=\"dfmon\"");
  if (result.status == http::status::upgrade_required) res.set(http::field::upgrade, "websocket");
  res.keep_alive(result.keep_alive);
  const size_t length = result.body.size();
  if (req.method() != http::verb::head) res.body() = std::move(result.body);
  res.content_length(length);  // HEAD: the GET length, no body
  return res;
}

}  // namespace dfm::server
