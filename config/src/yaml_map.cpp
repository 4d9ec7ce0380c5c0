// Strict YAML mapping reader (see yaml_map.h).
#include "yaml_map.h"

#include <algorithm>

namespace dfm::config::internal {
namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
      diag = up;
    }
  }
  return row[b.size()];
}

// yaml-cpp's conversions (hex integers, yes/no booleans) are lenient enough for a config file.
template <typename T>
bool convert_scalar(const YAML::Node& node, T* out) {
  if (!node.IsScalar()) return false;
  try {
    *out = node.as<T>();
    return true;
  } catch (const YAML::Exception&) {
    return false;
  }
}

}  // namespace

void ParseContext::fail(const YAML::Mark& mark, const std::string& path, const std::string& message) {
  if (error) return;
  std::string where = source;
  if (!mark.is_null()) where += ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
  error = InvalidArgument(where + ": " + (path.empty() ? "" : path + ": ") + message);
}

YAML::Mark ParseContext::mark_for(std::string path) const {
  while (true) {
    auto it = marks.find(path);
    if (it != marks.end()) return it->second;
    size_t cut = path.find_last_of(".[");
    if (cut == std::string::npos || cut == 0) break;
    path.erase(cut);
  }
  auto root = marks.find("");
  return root != marks.end() ? root->second : YAML::Mark::null_mark();
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "null (empty value)";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Scalar:
      return quote(node.Scalar());
    default:
      return "nothing";
  }
}

MapReader::MapReader(ParseContext& ctx, const YAML::Node& node, std::string path) : ctx_(ctx), path_(std::move(path)) {
  ctx_.marks[path_] = node.Mark();
  if (node.IsNull()) return;
  if (!node.IsMap()) {
    fail_at(node, path_, "expected a mapping (key: value), got " + describe(node));
    return;
  }
  std::vector<YAML::Node> merged;
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) {
      fail_at(kv.first, path_, "keys must be plain strings, got " + describe(kv.first));
      return;
    }
    std::string key = kv.first.Scalar();
    if (key == "<<") {  // YAML merge key: yaml-cpp leaves it to us
      if (kv.second.IsSequence())
        for (const auto& m : kv.second) merged.push_back(m);
      else
        merged.push_back(kv.second);
      continue;
    }
    auto dup = std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.key == key; });
    if (dup != entries_.end()) {
      fail_at(
          kv.first, path_,
          "duplicate key " + quote(key) + " (first set at line " + std::to_string(dup->key_node.Mark().line + 1) + ")");
      return;
    }
    entries_.push_back({key, kv.first, kv.second});
  }
  for (const auto& m : merged) {
    if (!m.IsMap()) {
      fail_at(m, path_, "merge key << needs a mapping, got " + describe(m));
      return;
    }
    for (const auto& kv : m) {
      std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "";
      bool present = std::any_of(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.key == key; });
      if (!present) entries_.push_back({key, kv.first, kv.second});
    }
  }
  for (const auto& e : entries_) ctx_.marks[child_path(e.key)] = e.value.Mark();
}

std::string MapReader::child_path(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

const YAML::Node* MapReader::find(const std::string& key) {
  known_.insert(key);
  for (const auto& e : entries_)
    if (e.key == key) return &e.value;
  return nullptr;
}

template <typename T>
void MapReader::read_scalar(const std::string& key, T* out, const char* what) {
  const YAML::Node* node = find(key);
  if (!node || ctx_.failed()) return;
  T value{};
  if (!convert_scalar(*node, &value)) {
    fail_at(*node, child_path(key), std::string("expected ") + what + ", got " + describe(*node));
    return;
  }
  *out = value;
}

template <typename T>
void MapReader::read_list(const std::string& key, std::vector<T>* out, const char* what) {
  const YAML::Node* node = find(key);
  if (!node || ctx_.failed()) return;
  if (!node->IsSequence()) {
    fail_at(*node, child_path(key), std::string("expected a list of ") + what + "s, got " + describe(*node));
    return;
  }
  std::vector<T> values;
  for (size_t i = 0; i < node->size(); ++i) {
    const YAML::Node item = (*node)[i];
    std::string item_path = child_path(key) + "[" + std::to_string(i) + "]";
    ctx_.marks[item_path] = item.Mark();
    T value{};
    if (!convert_scalar(item, &value)) {
      fail_at(item, item_path, std::string("expected ") + what + ", got " + describe(item));
      return;
    }
    values.push_back(value);
  }
  *out = std::move(values);
}

void MapReader::read(const std::string& key, int* out) { read_scalar(key, out, "an integer"); }
void MapReader::read(const std::string& key, double* out) { read_scalar(key, out, "a number"); }
void MapReader::read(const std::string& key, bool* out) { read_scalar(key, out, "true or false"); }
void MapReader::read(const std::string& key, std::string* out) { read_scalar(key, out, "a string"); }
void MapReader::read(const std::string& key, std::vector<std::string>* out) { read_list(key, out, "a string"); }
void MapReader::read(const std::string& key, std::vector<double>* out) { read_list(key, out, "a number"); }

void MapReader::reject(const std::string& key, const std::string& why) {
  const YAML::Node* node = find(key);
  if (node) fail_at(*node, child_path(key), why);
}

void MapReader::finish() {
  for (const auto& e : entries_) {
    if (known_.count(e.key)) continue;
    std::string message = "unknown key " + quote(e.key);
    std::string best;
    size_t best_distance = 3;  // suggest only close misspellings
    for (const auto& k : known_) {
      size_t d = edit_distance(e.key, k);
      if (d < best_distance) best_distance = d, best = k;
    }
    if (!best.empty()) message += " (did you mean " + quote(best) + "?)";
    fail_at(e.key_node, path_, message);
    return;
  }
}

}  // namespace dfm::config::internal
