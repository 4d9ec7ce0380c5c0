// Page provider of the dashboard: whitelisted embedded assets and alert thumbnails, nothing else.
#include "dfm/web/dashboard.h"

#include <cctype>
#include <cstring>
#include <vector>

#include "assets.h"
#include "dfm/server/event_filter.h"

namespace dfm::web {

namespace {

const internal::Asset* find_asset(const char* name) {
  for (size_t i = 0; i < internal::kAssetCount; ++i) {
    if (std::strcmp(internal::kAssets[i].name, name) == 0) return &internal::kAssets[i];
  }
  return nullptr;
}

std::optional<server::HttpPage> asset_page(const char* name, const char* content_type) {
  const internal::Asset* a = find_asset(name);
  if (!a) return std::nullopt;
  server::HttpPage p;
  p.content_type = content_type;
  p.body.assign(reinterpret_cast<const char*>(a->data), a->size);
  return p;
}

// Stream ids are validated by the config to 1..64 of [A-Za-z0-9_.-]; "." and ".." are refused here
// because a browser would fold them out of the URL anyway.
bool valid_stream(const std::string& s) {
  if (s.empty() || s.size() > 64 || s == "." || s == "..") return false;
  for (unsigned char c : s) {
    if (!std::isalnum(c) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

// "<digits>.jpg" in canonical form (no sign, no leading zero), so each thumbnail has exactly one URL.
std::optional<int> parse_track_file(const std::string& s) {
  const std::string ext = ".jpg";
  if (s.size() <= ext.size() || s.compare(s.size() - ext.size(), ext.size(), ext) != 0) return std::nullopt;
  const std::string digits = s.substr(0, s.size() - ext.size());
  if (digits.empty() || digits.size() > 9 || (digits.size() > 1 && digits[0] == '0')) return std::nullopt;
  int v = 0;
  for (unsigned char c : digits) {
    if (!std::isdigit(c)) return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

std::vector<std::string> split_segments(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t slash = s.find('/', start);
    out.push_back(s.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) return out;
    start = slash + 1;
  }
}

// A path segment carrying server.token. The page sends it through encodeURIComponent; it is only
// compared (in constant time), never used as a name.
bool token_matches(const DashboardOptions& o, const std::string& segment) {
  auto given = server::percent_decode(segment);
  return given && server::constant_time_equal(*given, o.token);
}

std::optional<server::HttpPage> thumbnail_page(const DashboardOptions& o, const std::string& rest) {
  if (!o.thumbnails) return std::nullopt;
  std::vector<std::string> seg = split_segments(rest);
  if (!o.token.empty()) {
    if (seg.size() != 3 || !token_matches(o, seg[0])) return std::nullopt;
    seg.erase(seg.begin());
  }
  if (seg.size() != 2 || !valid_stream(seg[0])) return std::nullopt;
  auto track = parse_track_file(seg[1]);
  if (!track) return std::nullopt;
  auto jpeg = o.thumbnails->get(seg[0], *track);
  if (!jpeg) return std::nullopt;
  server::HttpPage p;
  p.content_type = "image/jpeg";
  p.body = std::move(*jpeg);
  return p;
}

// "/recent" without a token, "/recent/<token>" with one: the alert log as JSON.
std::optional<server::HttpPage> recent_page(const DashboardOptions& o, const std::string& rest) {
  if (!o.alerts) return std::nullopt;
  if (o.token.empty()) {
    if (!rest.empty()) return std::nullopt;
  } else {
    if (rest.size() < 2 || rest[0] != '/' || rest.find('/', 1) != std::string::npos) return std::nullopt;
    if (!token_matches(o, rest.substr(1))) return std::nullopt;
  }
  server::HttpPage p;
  p.content_type = "application/json";
  p.body = o.alerts->json();
  return p;
}

}  // namespace

PageProvider make_dashboard(DashboardOptions options) {
  return [o = std::move(options)](const std::string& path) -> std::optional<server::HttpPage> {
    if (path == "/" || path == "/index.html") return asset_page("index.html", "text/html; charset=utf-8");
    if (path == "/app.js") return asset_page("app.js", "text/javascript; charset=utf-8");
    if (path == "/style.css") return asset_page("style.css", "text/css; charset=utf-8");
    const std::string prefix = "/thumb/";
    if (path.compare(0, prefix.size(), prefix) == 0) return thumbnail_page(o, path.substr(prefix.size()));
    const std::string recent = "/recent";
    if (path.compare(0, recent.size(), recent) == 0) return recent_page(o, path.substr(recent.size()));
    return std::nullopt;
  };
}

}  // namespace dfm::web
