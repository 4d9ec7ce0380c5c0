// Parsing of redis:// URLs into connection and stream/group settings.
#include <cctype>
#include <cstdlib>

#include "dfm/jobs/redis_queue.h"

namespace dfm::jobs {

namespace {

bool parse_int(const std::string& s, long lo, long hi, int* out) {
  if (s.empty() || s.size() > 9) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  const long v = std::strtol(s.c_str(), nullptr, 10);
  if (v < lo || v > hi) return false;
  *out = static_cast<int>(v);
  return true;
}

// Percent-decoding; false on a malformed escape.
bool decode(const std::string& in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size() || !std::isxdigit(static_cast<unsigned char>(in[i + 1])) ||
        !std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
      return false;
    }
    out->push_back(static_cast<char>(std::strtol(in.substr(i + 1, 2).c_str(), nullptr, 16)));
    i += 2;
  }
  return true;
}

}  // namespace

std::string Job::field(const std::string& key) const {
  for (const auto& [k, v] : fields) {
    if (k == key) return v;
  }
  return "";
}

Result<RedisUrl> parse_redis_url(const std::string& url) {
  RedisUrl u;
  const std::string scheme = "redis://";
  // Mask the password before anything can echo the URL.
  u.display = url;
  {
    const size_t start = url.find("://");
    const size_t at = url.rfind('@');
    if (start != std::string::npos && at != std::string::npos && at > start) {
      const size_t colon = url.find(':', start + 3);
      const size_t keep = colon != std::string::npos && colon < at ? colon + 1 : start + 3;  // user stays visible
      u.display = url.substr(0, keep) + "***" + url.substr(at);
    }
  }
  auto bad = [&](const std::string& why) { return InvalidArgument("redis URL \"" + u.display + "\": " + why); };
  if (url.rfind("rediss://", 0) == 0)
    return bad("TLS (rediss://) is not supported; use redis:// over a trusted network or a TLS tunnel");
  if (url.rfind(scheme, 0) != 0)
    return bad("must start with redis:// (redis://[[user]:password@]host[:port][/db][?stream=NAME&group=NAME])");
  std::string rest = url.substr(scheme.size());
  std::string query;
  if (const size_t q = rest.find('?'); q != std::string::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  std::string path;
  if (const size_t slash = rest.find('/'); slash != std::string::npos) {
    path = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  if (const size_t at = rest.rfind('@'); at != std::string::npos) {
    const std::string userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const size_t colon = userinfo.find(':');
    if (colon == std::string::npos) return bad("credentials must be written [user]:password@");
    if (!decode(userinfo.substr(0, colon), &u.user) || !decode(userinfo.substr(colon + 1), &u.password)) {
      return bad("malformed %-escape in the credentials");
    }
    if (u.password.empty()) return bad("empty password after ':'");
  }
  std::string port;
  if (!rest.empty() && rest[0] == '[') {
    const size_t close = rest.find(']');
    if (close == std::string::npos) return bad("unterminated [IPv6] host");
    u.host = rest.substr(1, close - 1);
    const std::string after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return bad("unexpected text after the [IPv6] host");
      port = after.substr(1);
      if (port.empty()) return bad("empty port after ':'");
    }
  } else {
    const size_t colon = rest.find(':');
    u.host = rest.substr(0, colon);
    if (colon != std::string::npos) {
      port = rest.substr(colon + 1);
      if (port.empty()) return bad("empty port after ':'");
    }
  }
  if (u.host.empty()) return bad("no host");
  if (!port.empty() && !parse_int(port, 1, 65535, &u.port))
    return bad("port \"" + port + "\" is not a number in 1..65535");
  if (!path.empty() && !parse_int(path, 0, 100000, &u.db)) return bad("database \"" + path + "\" is not a number");
  size_t pos = 0;
  while (pos < query.size()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string::npos) amp = query.size();
    const std::string kv = query.substr(pos, amp - pos);
    pos = amp + 1;
    if (kv.empty()) continue;
    const size_t eq = kv.find('=');
    const std::string key = kv.substr(0, eq);
    std::string value;
    if (eq == std::string::npos || !decode(kv.substr(eq + 1), &value))
      return bad("query parameter \"" + key + "\" needs a value");
    if (value.empty()) return bad("query parameter \"" + key + "\" is empty");
    if (key == "stream") {
      u.stream = value;
    } else if (key == "group") {
      u.group = value;
    } else {
      return bad("unknown query parameter \"" + key + "\" (known: stream, group)");
    }
  }
  return u;
}

}  // namespace dfm::jobs
