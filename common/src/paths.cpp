// Resource lookup and atomic file writes.
#include "dfm/common/paths.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

namespace fs = std::filesystem;

namespace dfm {

namespace {
std::string exe_dir() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : p.parent_path().string();
}
}  // namespace

std::vector<std::string> default_model_dirs() {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("DFMON_MODELS"); env && *env) dirs.emplace_back(env);
  if (auto e = exe_dir(); !e.empty()) dirs.push_back((fs::path(e) / ".." / "share" / "dfmon" / "models").string());
  dirs.emplace_back(std::string(DFM_INSTALL_DATADIR) + "/models");
  dirs.emplace_back(std::string(DFM_SOURCE_DIR) + "/models");
  return dirs;
}

std::string find_default_model_dir() {
  for (const auto& d : default_model_dirs()) {
    std::error_code ec;
    if (fs::is_directory(d, ec) && fs::exists(fs::path(d) / "resnet18.json", ec)) return fs::weakly_canonical(d, ec).string();
  }
  return {};
}

std::string find_landmark_model() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("DFMON_LANDMARKS"); env && *env) candidates.emplace_back(env);
  candidates.emplace_back("/usr/share/dlib/shape_predictor_68_face_landmarks.dat");
  candidates.emplace_back(std::string(DFM_INSTALL_DATADIR) + "/shape_predictor_68_face_landmarks.dat");
  for (const auto& c : candidates) {
    std::error_code ec;
    if (fs::is_regular_file(c, ec)) return c;
  }
  return {};
}

namespace {
// A hidden, randomly named file beside `target` ("dir/.name<tag>123456"): same directory, same filesystem,
// so a rename onto `target` is atomic and a probe tests the directory that will be written.
fs::path sibling_temp(const fs::path& target, const char* tag) {
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::random_device rd;
  return dir / ("." + target.filename().string() + tag + std::to_string(rd() % 1000000));
}
}  // namespace

bool check_writable(const std::string& path, std::string* error) {
  fs::path target(path);
  std::error_code ec;
  if (fs::is_directory(target, ec)) {
    if (error) *error = path + ": cannot write: is a directory";
    return false;
  }
  const fs::path probe = sibling_temp(target, ".probe");
  {
    std::ofstream out(probe, std::ios::binary | std::ios::trunc);
    if (!out) {
      if (error) *error = path + ": cannot write: " + std::strerror(errno);
      return false;
    }
  }
  fs::remove(probe, ec);
  return true;
}

bool write_file_atomic(const std::string& path, const std::string& data, std::string* error) {
  fs::path target(path);
  const fs::path tmp = sibling_temp(target, ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) {
      if (error) *error = path + ": cannot write: " + std::strerror(errno);
      return false;
    }
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    out.flush();
    if (!out) {
      if (error) *error = path + ": write failed: " + std::strerror(errno);
      out.close();
      std::error_code ec;
      fs::remove(tmp, ec);
      return false;
    }
  }
  std::error_code ec;
  fs::rename(tmp, target, ec);
  if (ec) {
    if (error) *error = path + ": cannot rename temp file: " + ec.message();
    fs::remove(tmp, ec);
    return false;
  }
  return true;
}

}  // namespace dfm
