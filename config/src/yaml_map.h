// Strict reading of YAML mappings: typed fields, duplicate and unknown keys, error positions.
#pragma once

#include <yaml-cpp/yaml.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "internal.h"

namespace dfm::config::internal {

// Error state shared by every reader of one document.
struct ParseContext {
  std::string source;                       // file name for messages
  std::optional<Status> error;              // the first error wins
  std::map<std::string, YAML::Mark> marks;  // key path -> position of its value, for validate() issues

  bool failed() const { return error.has_value(); }
  // "<source>:<line>:<col>: <path>: <message>"
  void fail(const YAML::Mark& mark, const std::string& path, const std::string& message);
  // Position of `path` or of its nearest recorded parent.
  YAML::Mark mark_for(std::string path) const;
};

// "a list", "null (empty value)" or the quoted scalar, for "expected X, got Y".
std::string describe(const YAML::Node& node);

class MapReader {
 public:
  // `node` may be null (an empty section: all defaults); anything else but a mapping is an error.
  MapReader(ParseContext& ctx, const YAML::Node& node, std::string path);

  const std::string& path() const { return path_; }
  std::string child_path(const std::string& key) const;

  // The value of `key` or nullptr; either way the key counts as known.
  const YAML::Node* find(const std::string& key);
  void read(const std::string& key, int* out);
  void read(const std::string& key, double* out);
  void read(const std::string& key, bool* out);
  void read(const std::string& key, std::string* out);
  void read(const std::string& key, std::vector<std::string>* out);
  void read(const std::string& key, std::vector<double>* out);
  template <typename E>
  void read_enum(const std::string& key, E* out);
  // A known key that does not apply here (a file sink's `topic`): an error when present.
  void reject(const std::string& key, const std::string& why);
  // Reports the first key that no find/read/reject asked for, with a spelling suggestion.
  void finish();

 private:
  template <typename T>
  void read_scalar(const std::string& key, T* out, const char* what);
  template <typename T>
  void read_list(const std::string& key, std::vector<T>* out, const char* what);
  void fail_at(const YAML::Node& node, const std::string& path, const std::string& message) {
    ctx_.fail(node.Mark(), path, message);
  }

  struct Entry {
    std::string key;
    YAML::Node key_node, value;
  };
  ParseContext& ctx_;
  std::string path_;
  std::vector<Entry> entries_;  // document order, merge keys (<<) expanded
  std::set<std::string> known_;
};

template <typename E>
void MapReader::read_enum(const std::string& key, E* out) {
  std::string name;
  const YAML::Node* node = find(key);
  if (!node) return;
  read(key, &name);
  if (ctx_.failed()) return;
  if (auto value = enum_from_name<E>(name))
    *out = *value;
  else
    fail_at(*node, child_path(key), "expected one of " + enum_choices<E>() + ", got " + quote(name));
}

}  // namespace dfm::config::internal
