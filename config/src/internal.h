// Helpers shared by the config parser, validator and dumper; not part of the public API.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dfm/config/config.h"

namespace dfm::config::internal {

// Names of an enum's values, as written in YAML.
template <typename E>
const std::vector<std::pair<const char*, E>>& enum_table();

template <typename E>
std::optional<E> enum_from_name(const std::string& name) {
  for (const auto& [n, v] : enum_table<E>())
    if (name == n) return v;
  return std::nullopt;
}

// "auto, cuda, opencl, cpu" for error messages.
template <typename E>
std::string enum_choices() {
  std::string out;
  for (const auto& entry : enum_table<E>()) out += (out.empty() ? "" : ", ") + std::string(entry.first);
  return out;
}

// One semantic problem: the key path ("streams[1] (id \"news\").uri") and what is wrong with it.
struct Issue {
  std::string path;
  std::string message;
};
std::optional<Issue> first_issue(const Config& config);

// Path prefix of a list element; streams carry their id so errors name the stream.
std::string stream_label(size_t index, const std::string& id);
std::string sink_label(size_t index);

// Problem with a URI (scheme, authority, port), or nullopt when it is acceptable.
std::optional<std::string> uri_problem(const std::string& uri);
// Problem with a listen host (no brackets around IPv6 here), or nullopt.
std::optional<std::string> host_problem(const std::string& host);
// `path` made absolute against base_dir (or the working directory); "" stays "".
std::string resolve_path(const std::string& path, const std::string& base_dir);
// rtsp://user:secret@host -> rtsp://user:***@host
std::string redact_uri(const std::string& uri);
// "\"x\"" with control characters escaped, for quoting user values in messages.
std::string quote(const std::string& s);

}  // namespace dfm::config::internal
