// `dfmon bench`: crop latency, audit speed and live capacity next to their references (bench/).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <set>

#include "app.h"
#include "dfm/bench/bench.h"
#include "dfm/common/paths.h"

namespace fs = std::filesystem;

namespace dfm::app {

namespace {

struct BenchCliOptions {
  bool json = false;
  bool quick = false;
  bool keep_work = false;
  std::string groups = "crop,audit,live";
  std::string out_dir;
  std::string python = "/usr/bin/python3";
  std::string clip;
  std::string source_dir;
  std::vector<std::string> checkpoints;
  std::vector<int> batches = {1, 4, 8};
  int max_streams = 16;
  std::vector<int> live_streams;
  double live_window_s = 0;
};

std::string exe_path() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("dfmon") : p.string();
}

// The source tree holds bench/reference/*.py, training/ and samples/.
std::string find_source_dir(const std::string& given) {
  std::vector<std::string> candidates;
  if (!given.empty()) candidates.push_back(given);
  if (const char* env = std::getenv("DFMON_SOURCE_DIR"); env && *env) candidates.emplace_back(env);
#ifdef DFM_BENCH_SOURCE_DIR
  candidates.emplace_back(DFM_BENCH_SOURCE_DIR);
#endif
  // The last default model directory is <source>/models (see common/paths.h).
  const auto dirs = default_model_dirs();
  if (!dirs.empty()) candidates.push_back(fs::path(dirs.back()).parent_path().string());
  candidates.push_back((fs::path(exe_path()).parent_path() / ".." / "..").string());
  for (const auto& c : candidates) {
    std::error_code ec;
    if (fs::exists(fs::path(c) / "bench" / "reference" / "crop_reference.py", ec)) return fs::weakly_canonical(c, ec).string();
  }
  return {};
}

std::string make_temp_dir(const std::string& prefix) {
  std::string tmpl = (fs::temp_directory_path() / (prefix + "XXXXXX")).string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  return ::mkdtemp(buf.data()) ? std::string(buf.data()) : std::string();
}

int run(const GlobalOptions& g, const BenchCliOptions& o) {
  if (auto st = apply_globals(g); !st.ok()) return fail(st);
  bench::BenchOptions b;
  b.groups.clear();
  const std::set<std::string> known = {"crop", "audit", "live"};
  size_t pos = 0;
  while (pos <= o.groups.size()) {
    size_t comma = o.groups.find(',', pos);
    std::string name = o.groups.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (!name.empty()) {
      if (!known.count(name)) return fail(InvalidArgument("--groups: unknown group \"" + name + "\" (crop, audit, live)"));
      if (std::find(b.groups.begin(), b.groups.end(), name) == b.groups.end()) b.groups.push_back(name);
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  if (b.groups.empty()) return fail(InvalidArgument("--groups: name at least one of crop, audit, live"));
  for (int n : o.batches) {
    if (n < 1 || n > 64) return fail(InvalidArgument("--batches: each must be within 1..64"));
  }
  if (o.max_streams < 1 || o.max_streams > 64) return fail(InvalidArgument("--max-streams: must be within 1..64"));
  for (int n : o.live_streams) {
    if (n < 1 || n > 64) return fail(InvalidArgument("--live-streams: each must be within 1..64"));
  }

  b.source_dir = find_source_dir(o.source_dir);
  if (b.source_dir.empty()) {
    return fail(NotFound("cannot find the source tree (bench/reference/*.py); pass --source-dir or set DFMON_SOURCE_DIR"));
  }
  b.clip = !o.clip.empty() ? o.clip : (fs::path(b.source_dir) / "samples" / "clips" / "real_d18.mp4").string();
  std::error_code ec;
  if (!fs::is_regular_file(b.clip, ec)) return fail(NotFound("--clip: no such file " + b.clip));
  b.clip = fs::absolute(b.clip, ec).string();

  auto set = load_models(g);
  if (!set.ok()) return fail(set.status());

  b.quick = o.quick;
  b.python = o.python;
  b.checkpoints = o.checkpoints;
  b.backend = g.backend;
  b.threads = g.threads;
  b.batches = o.batches;
  std::sort(b.batches.begin(), b.batches.end());
  b.batches.erase(std::unique(b.batches.begin(), b.batches.end()), b.batches.end());
  b.max_streams = o.max_streams;
  b.live_streams = o.live_streams;
  b.opencv_layers = g.opencv_layers;
  b.live_window_s = o.live_window_s;
  b.dfmon_exe = exe_path();
  b.rtsp_server_exe = (fs::path(b.dfmon_exe).parent_path() / "dfm_bench_rtsp_server").string();
  b.log = [](const std::string& line) {
    std::fprintf(stderr, "bench: %s\n", line.c_str());
    std::fflush(stderr);
  };
  b.out_dir = o.out_dir.empty() ? make_temp_dir("dfmon-bench-") : o.out_dir;
  if (b.out_dir.empty() || !(fs::create_directories(b.out_dir, ec), fs::is_directory(b.out_dir, ec))) {
    return fail(IoError("--out-dir: cannot create " + o.out_dir));
  }
  b.out_dir = fs::absolute(b.out_dir, ec).string();
  b.work_dir = make_temp_dir("dfmon-bench-work-");
  if (b.work_dir.empty()) return fail(IoError("cannot create a temporary directory"));
  b.log("results and logs go to " + b.out_dir);

  nlohmann::json result = bench::run_bench(*set, b);
  if (!o.keep_work) fs::remove_all(b.work_dir, ec);
  else b.log("generated clips kept in " + b.work_dir);
  if (o.json) {
    std::printf("%s\n", result.dump(2).c_str());
  } else {
    std::printf("%s", bench::format_tables(result).c_str());
    std::printf("full results: %s/bench.json\n", b.out_dir.c_str());
  }
  std::fflush(stdout);
  return kExitOk;
}

}  // namespace

void register_bench(CLI::App& root, GlobalOptions& g, int* exit_code) {
  auto o = std::make_shared<BenchCliOptions>();
  CLI::App* cmd = root.add_subcommand("bench", "Benchmarks: model latency, audit speed and live capacity, next to references");
  cmd->add_flag("--json", o->json, "Print the result document (schema dfmon.bench/1) to stdout instead of tables");
  cmd->add_option("--groups", o->groups, "Comma-separated groups to run: crop, audit, live")->capture_default_str();
  cmd->add_flag("--quick", o->quick, "Smoke run (~1-2 minutes): short timings and clips, live with 1 and 2 streams");
  cmd->add_option("--out-dir", o->out_dir, "Where bench.json, the SVG plots, crops and logs go (default: a new temp dir)");
  cmd->add_option("--python", o->python, "Python with torch, onnx and cv2 for the references")->capture_default_str();
  cmd->add_option("--clip", o->clip, "Talking-head clip the 720p25 test clips are made from (default: samples/clips/real_d18.mp4)");
  cmd->add_option("--torch-checkpoint", o->checkpoints,
                  "NAME=PATH: build the PyTorch reference of model NAME from a training checkpoint instead of its ONNX weights");
  cmd->add_option("--batches", o->batches, "Batch sizes of the crop group")->delimiter(',')->capture_default_str();
  cmd->add_option("--max-streams", o->max_streams, "Live: never run more streams than this")->capture_default_str();
  cmd->add_option("--live-streams", o->live_streams, "Live: measure exactly these stream counts (e.g. 8 or 6,8) instead of searching")
      ->delimiter(',');
  cmd->add_option("--live-window", o->live_window_s, "Live: measured seconds per stream count (default 20, quick 6)");
  cmd->add_option("--source-dir", o->source_dir, "Source tree with bench/reference/ (default: found from the build)");
  cmd->add_flag("--keep-work", o->keep_work, "Keep the generated clips and configs");
  cmd->footer(
      "Groups: crop = per-face latency of each model and the ensemble (OpenCV DNN) at each batch size, next to\n"
      "PyTorch eager on the same weights and crops and the FLOP-bound limit; audit = real-time factor of the\n"
      "offline audit on a generated 720p25 clip next to a Python reference audit; live = dfmon watch on N local\n"
      "RTSP 720p25 streams: largest N with every face scored >= 5 Hz, latency percentiles, peak RSS.\n"
      "Needs ffmpeg (audit, live) and /usr/bin/python3 with torch/onnx/cv2 (references). See docs/benchmarks.md.\n"
      "Exit codes: 0 ran (failures of single measurements are reported in the output), 2 bad arguments or models.");
  cmd->callback([&g, o, exit_code] { *exit_code = run(g, *o); });
}

}  // namespace dfm::app
