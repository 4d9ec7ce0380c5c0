// Test helper (header-only): generates small video clips at test time with ffmpeg / gst-launch.
#pragma once

#include <gst/gst.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "dfm/pipeline/decoder.h"

namespace dfm::testclips {

namespace fs = std::filesystem;

// A unique directory under DFM_TEST_TMP, removed when the test ends.
class TempDir {
 public:
  TempDir() {
    fs::path base = fs::path(DFM_TEST_TMP) / "decoder";
    fs::create_directories(base);
    std::string tmpl = (base / "run-XXXXXX").string();
    if (mkdtemp(tmpl.data())) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

// Runs a shell command under `timeout` so a wedged encoder cannot hang the suite; output goes to
// `log` for failure messages. Returns true on exit status 0.
inline bool run(const std::string& cmd, const std::string& log, int timeout_s = 120) {
  std::string full = "timeout " + std::to_string(timeout_s) + " " + cmd + " >'" + log + "' 2>&1";
  return std::system(full.c_str()) == 0;
}

inline std::string read_text(const std::string& path, size_t max = 4000) {
  std::ifstream in(path);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return s.size() > max ? s.substr(s.size() - max) : s;
}

inline bool has_program(const std::string& name) {
  return std::system(("command -v " + name + " >/dev/null 2>&1").c_str()) == 0;
}

inline bool ffmpeg_has_encoder(const std::string& name) {
  if (!has_program("ffmpeg")) return false;
  return std::system(("ffmpeg -hide_banner -encoders 2>/dev/null | grep -qE '^ [A-Z.]{6} " + name + " '").c_str()) == 0;
}

inline bool gst_has_element(const std::string& name) {
  dfm::ensure_gstreamer();  // the decoder's init, so its message tap is installed first
  GstElementFactory* f = gst_element_factory_find(name.c_str());
  if (f) gst_object_unref(f);
  return f != nullptr;
}

// Frames the reference decoder (ffprobe) reads from the first video stream; -1 if unknown.
inline long ffprobe_frame_count(const std::string& path) {
  std::string cmd =
      "timeout 60 ffprobe -v error -select_streams v:0 -count_frames -show_entries "
      "stream=nb_read_frames -of csv=p=0 '" +
      path + "' 2>/dev/null";
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd.c_str(), "r"), pclose);
  if (!p) return -1;
  long n = -1;
  if (std::fscanf(p.get(), "%ld", &n) != 1) return -1;
  return n;
}

// ffmpeg test pattern clip. `rate` is an ffmpeg rate ("25", "30000/1001"); `vf` an optional filter
// chain applied after the source; `codec_args` selects encoder and options.
struct FfmpegClip {
  std::string name;        // output file name (extension picks the container)
  std::string codec_args;  // e.g. "-c:v libx264 -preset ultrafast"
  std::string rate = "25";
  double seconds = 4.0;
  int width = 320;
  int height = 240;
  std::string vf;  // e.g. "select='...'"
  std::string extra = "-pix_fmt yuv420p";
};

inline FfmpegClip clip_spec(std::string name, std::string codec_args, std::string rate, double seconds, int width = 320,
                            int height = 240) {
  FfmpegClip c;
  c.name = std::move(name);
  c.codec_args = std::move(codec_args);
  c.rate = std::move(rate);
  c.seconds = seconds;
  c.width = width;
  c.height = height;
  return c;
}

// Returns the path, or "" with `error` holding ffmpeg's output tail.
inline std::string make_ffmpeg_clip(const TempDir& dir, const FfmpegClip& c, std::string* error) {
  std::string out = dir.file(c.name);
  std::string cmd = "ffmpeg -nostdin -hide_banner -y -f lavfi -i testsrc2=size=" + std::to_string(c.width) + "x" +
                    std::to_string(c.height) + ":rate=" + c.rate + ":duration=" + std::to_string(c.seconds) + " ";
  if (!c.vf.empty()) cmd += "-vf \"" + c.vf + "\" -fps_mode vfr ";
  cmd += c.codec_args + " " + c.extra + " '" + out + "'";
  std::string log = out + ".log";
  if (!run(cmd, log)) {
    if (error) *error = "ffmpeg failed: " + cmd + "\n" + read_text(log);
    return "";
  }
  return out;
}

}  // namespace dfm::testclips
