// Helpers for the dataset tests: scratch dirs, sample copies, reading landmarks.jsonl and crop files.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace dfm::testing {

namespace fs = std::filesystem;

inline fs::path scratch(const std::string& name) {
  fs::path d = fs::path(DFM_TEST_TMP) / ("dataset_" + name);
  std::error_code ec;
  fs::remove_all(d, ec);
  fs::create_directories(d);
  return d;
}

inline fs::path sample(const std::string& rel) { return fs::path(DFM_SOURCE_DIR) / "samples" / rel; }

// Copies a sample into dir under `as` (made writable: the samples are read-only in the repo).
inline void copy_sample(const std::string& rel, const fs::path& dir, const std::string& as) {
  fs::create_directories(dir);
  fs::copy_file(sample(rel), dir / as, fs::copy_options::overwrite_existing);
  fs::permissions(dir / as, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::add);
}

struct LandmarkLine {
  std::string file, group;
  std::vector<double> landmarks;
};

inline std::vector<LandmarkLine> read_landmarks(const fs::path& dataset) {
  std::vector<LandmarkLine> out;
  std::ifstream in(dataset / "landmarks.jsonl");
  EXPECT_TRUE(in.good()) << "no landmarks.jsonl in " << dataset;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    LandmarkLine l;
    l.file = j.at("file").get<std::string>();
    l.group = j.at("group").get<std::string>();
    l.landmarks = j.at("landmarks").get<std::vector<double>>();
    out.push_back(std::move(l));
  }
  return out;
}

// Relative paths ("train/fake/x.jpg") of every regular file under dataset/<split>/<cls>.
inline std::vector<std::string> list_files(const fs::path& dataset, const std::string& cls) {
  std::vector<std::string> out;
  for (const char* split : {"train", "val"}) {
    const fs::path d = dataset / split / cls;
    std::error_code ec;
    if (!fs::is_directory(d, ec)) continue;
    for (const auto& e : fs::directory_iterator(d)) {
      if (e.is_regular_file()) out.push_back(std::string(split) + "/" + cls + "/" + e.path().filename().string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

inline std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace dfm::testing
