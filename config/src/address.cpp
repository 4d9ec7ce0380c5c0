// Listen addresses, stream URIs and file paths: parsing, checking and normalising.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <string_view>
#include <system_error>

#include "internal.h"

namespace dfm::config {
namespace {

namespace fs = std::filesystem;
using internal::quote;

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

// Port text -> number, or -1 when it is not a number in 0..65535.
int parse_port(const std::string& s) {
  if (!all_digits(s) || s.size() > 5) return -1;
  int port = std::stoi(s);
  return port <= 65535 ? port : -1;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Length of "scheme:" at the start of `text` (RFC 3986 scheme), 0 when there is none.
size_t scheme_length(const std::string& text) {
  if (text.empty() || !std::isalpha(static_cast<unsigned char>(text[0]))) return 0;
  size_t i = 1;
  while (i < text.size() &&
         (std::isalnum(static_cast<unsigned char>(text[i])) || text[i] == '+' || text[i] == '-' || text[i] == '.'))
    ++i;
  return i < text.size() && text[i] == ':' ? i + 1 : 0;
}

// Bytes that may stay literal in a file URI path; the rest is percent-encoded.
bool uri_path_char(unsigned char c) {
  return std::isalnum(c) || std::string_view("-._~/!$&'()*+,;=:@").find(static_cast<char>(c)) != std::string_view::npos;
}

std::string file_uri(const std::string& absolute_path) {
  static const char* hex = "0123456789ABCDEF";
  std::string out = "file://";
  for (unsigned char c : absolute_path) {
    if (uri_path_char(c)) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

struct SchemeRule {
  const char* scheme;
  bool needs_host;
  bool needs_port;
};
// file and v4l2 are checked separately: they name local things, not hosts.
constexpr SchemeRule kNetworkSchemes[] = {{"rtsp", true, false},  {"rtsps", true, false}, {"http", true, false},
                                          {"https", true, false}, {"udp", false, true},   {"srt", false, true}};
constexpr const char* kSchemeList = "rtsp, rtsps, http, https, udp, srt, file, v4l2";

}  // namespace

namespace internal {

std::optional<std::string> host_problem(const std::string& host) {
  if (host.empty()) return "host is empty";
  if (host.find(':') != std::string::npos) {  // IPv6 literal, optionally with a %zone
    size_t end = host.find('%');
    bool ok = std::all_of(host.begin(), host.begin() + std::min(end, host.size()),
                          [](unsigned char c) { return std::isxdigit(c) || c == ':' || c == '.'; });
    if (!ok) return "invalid IPv6 address " + quote(host);
    return std::nullopt;
  }
  bool ok = std::all_of(host.begin(), host.end(),
                        [](unsigned char c) { return std::isalnum(c) || c == '.' || c == '-' || c == '_'; });
  if (!ok) return "invalid host name " + quote(host);
  return std::nullopt;
}

std::optional<std::string> uri_problem(const std::string& uri) {
  if (uri.empty()) return std::string("is required (a URI or a file path)");
  for (unsigned char c : uri)
    if (std::isspace(c) || c < 0x20 || c == 0x7f)
      return "URI " + quote(uri) + " contains whitespace or control characters; percent-encode them";
  size_t n = scheme_length(uri);
  if (n == 0 || uri.compare(n, 2, "//") != 0) return "expected a URI (SCHEME://...) or a file path, got " + quote(uri);
  std::string scheme = lower(uri.substr(0, n - 1));
  std::string rest = uri.substr(n + 2);
  size_t auth_end = rest.find_first_of("/?#");
  std::string authority = rest.substr(0, auth_end);
  std::string tail = auth_end == std::string::npos ? "" : rest.substr(auth_end);

  if (scheme == "file") {
    if ((!authority.empty() && lower(authority) != "localhost") || tail.empty() || tail[0] != '/')
      return "file URI " + quote(uri) + " needs an absolute path (file:///dir/clip.mp4); plain paths are accepted too";
    return std::nullopt;
  }
  if (scheme == "v4l2") {
    if (rest.empty()) return "v4l2 URI " + quote(uri) + " names no device (v4l2:///dev/video0)";
    return std::nullopt;
  }
  const SchemeRule* rule = nullptr;
  for (const auto& r : kNetworkSchemes)
    if (scheme == r.scheme) rule = &r;
  if (!rule)
    return "unsupported URI scheme " + quote(scheme) + " in " + quote(uri) + " (supported: " + kSchemeList + ")";

  std::string hostport = authority.substr(authority.rfind('@') == std::string::npos ? 0 : authority.rfind('@') + 1);
  std::string host, port;
  if (!hostport.empty() && hostport[0] == '[') {
    size_t close = hostport.find(']');
    if (close == std::string::npos) return "unterminated IPv6 host in " + quote(uri);
    host = hostport.substr(1, close - 1);
    std::string after = hostport.substr(close + 1);
    if (!after.empty() && after[0] != ':') return "unexpected " + quote(after) + " after the host in " + quote(uri);
    if (!after.empty()) port = after.substr(1);
    if (auto p = host_problem(host)) return *p + " in " + quote(uri);
  } else {
    size_t colon = hostport.rfind(':');
    host = hostport.substr(0, colon);
    if (colon != std::string::npos) port = hostport.substr(colon + 1);
    if (!host.empty() && host.find(':') != std::string::npos)
      return "IPv6 hosts need brackets ([::1]) in " + quote(uri);
    if (!host.empty())
      if (auto p = host_problem(host)) return *p + " in " + quote(uri);
  }
  if (rule->needs_host && host.empty()) return scheme + " URI " + quote(uri) + " has no host";
  if (rule->needs_port && port.empty())
    return scheme + " URI " + quote(uri) + " needs a port (" + scheme + "://HOST:PORT)";
  if (!port.empty() && parse_port(port) <= 0) return "invalid port " + quote(port) + " in " + quote(uri);
  return std::nullopt;
}

std::string resolve_path(const std::string& path, const std::string& base_dir) {
  if (path.empty()) return path;
  fs::path p(path);
  if (p.is_absolute()) return p.lexically_normal().string();
  std::error_code ec;
  fs::path base = base_dir.empty() ? fs::current_path(ec) : fs::absolute(base_dir, ec);
  return (base / p).lexically_normal().string();
}

std::string redact_uri(const std::string& uri) {
  size_t n = scheme_length(uri);
  if (n == 0 || uri.compare(n, 2, "//") != 0) return uri;
  size_t start = n + 2;
  size_t auth_end = uri.find_first_of("/?#", start);
  size_t at = uri.rfind('@', auth_end == std::string::npos ? std::string::npos : auth_end);
  if (at == std::string::npos || at < start) return uri;
  size_t colon = uri.find(':', start);
  if (colon == std::string::npos || colon > at) return uri;  // user only, no password
  return uri.substr(0, colon + 1) + "***" + uri.substr(at);
}

}  // namespace internal

Result<ListenAddress> parse_listen_address(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return InvalidArgument("expected \"HOST:PORT\" or \"[IPv6]:PORT\", got " + quote(text) + ": " + why);
  };
  ListenAddress out;
  std::string port;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos) return bad("missing ']'");
    out.host = text.substr(1, close - 1);
    if (text.compare(close + 1, 1, ":") != 0) return bad("missing \":PORT\" after ']'");
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos) return bad("missing \":PORT\"");
    out.host = text.substr(0, colon);
    if (out.host.find(':') != std::string::npos) return bad("IPv6 hosts need brackets, e.g. \"[::1]:8080\"");
    port = text.substr(colon + 1);
  }
  if (auto p = internal::host_problem(out.host)) return bad(*p);
  out.port = parse_port(port);
  if (out.port < 0) return bad("port must be a number in 0..65535");
  return out;
}

std::string to_string(const ListenAddress& address) {
  bool v6 = address.host.find(':') != std::string::npos;
  return (v6 ? "[" + address.host + "]" : address.host) + ":" + std::to_string(address.port);
}

Result<std::string> resolve_source_uri(const std::string& text, const std::string& base_dir) {
  if (text.empty()) return InvalidArgument("is empty; give a URI or a file path");
  size_t n = scheme_length(text);
  // "C:" style drive letters do not occur on our platforms; anything with a scheme is a URI.
  if (n == 0) return file_uri(internal::resolve_path(text, base_dir));
  std::string uri = lower(text.substr(0, n)) + text.substr(n);
  if (auto p = internal::uri_problem(uri)) return InvalidArgument(*p);
  return uri;
}

}  // namespace dfm::config
