// `dfmon bench`: crop latency, offline audit speed and live capacity, each next to its reference.
//
// The groups (see docs/benchmarks.md for what each measures and how):
//   crop   per-crop latency of each model and the ensemble at several batch sizes (OpenCV DNN, our
//          preprocessing included) next to PyTorch eager on the same weights and crops
//          (bench/reference/crop_reference.py) and the FLOP-bound limit (model GFLOPs / sgemm GFLOP/s);
//   audit  real-time factor of the offline audit on a generated 720p25 talking-head clip next to a
//          Python reference audit (bench/reference/audit_reference.py);
//   live   `dfmon watch` on N RTSP streams of a 720p25 clip from a local server: the largest N at which
//          every face is still scored >= 5 times per second without growing drops, frame -> score
//          latency percentiles and peak RSS.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dfm/common/status.h"
#include "dfm/models/models.h"

namespace dfm::bench {

struct BenchOptions {
  std::vector<std::string> groups = {"crop", "audit", "live"};
  bool quick = false;                  // ~1-2 minute smoke run: shorter timings, clips and live steps
  std::string out_dir;                 // bench.json, plots, crops, logs (must exist)
  std::string work_dir;                // generated clips and configs (must exist; caller removes it)
  std::string source_dir;              // the source tree: samples/, bench/reference/, training/
  std::string python = "/usr/bin/python3";
  std::string clip;                    // talking-head clip the 720p25 clips are made from
  std::vector<std::string> checkpoints;  // NAME=PATH: PyTorch reference from a training checkpoint
  std::string backend = "auto";        // passed to `dfmon watch`
  int threads = 0;                     // 0 = OpenCV's default; the PyTorch side uses the same count
  std::string dfmon_exe;               // this binary, for `dfmon watch`
  std::string rtsp_server_exe;         // dfm_bench_rtsp_server
  std::vector<int> batches = {1, 4, 8};
  int max_streams = 16;                // live: never try more streams than this
  std::vector<int> live_streams;       // live: exactly these stream counts (no search); empty = search
  bool opencv_layers = false;          // passed to `dfmon watch` (--opencv-layers)
  double live_window_s = 0;            // live: measured seconds per step (0 = 20, quick 6)
  std::function<void(const std::string&)> log;  // progress lines (stderr)
};

// Runs the selected groups and returns the result document ("schema": "dfmon.bench/1"). Also writes
// bench.json and the SVG plots into out_dir. Failures of one part are reported inside the document
// (an "error" next to the missing numbers), never thrown.
nlohmann::json run_bench(std::shared_ptr<const ModelSet> models, const BenchOptions& options);

// Human-readable tables of a result document.
std::string format_tables(const nlohmann::json& result);

// ---- pieces, exposed for tests and the Google Benchmark binary ---------------------------------

struct Timing {
  double median_ms = 0;
  double min_ms = 0;
  int reps = 0;
};
// Warm-up calls, then calls until both min_time_s and min_reps are reached; median and min per call.
Timing time_calls(const std::function<void()>& fn, double min_time_s, int min_reps = 3, int warmup = 2);

// Single-precision GEMM throughput of cv::gemm on n x n matrices (best of repeated runs), GFLOP/s.
double measure_sgemm_gflops(int n, double min_time_s);

// One sample of a Prometheus text exposition.
struct PromSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};
std::vector<PromSample> parse_prometheus(const std::string& text);
// Sum of the samples named `name` whose labels include `match` (all of them).
double prom_value(const std::vector<PromSample>& samples, const std::string& name,
                  const std::map<std::string, std::string>& match = {});

// Cumulative histogram buckets (upper bound -> cumulative count, +Inf as infinity), e.g. the
// difference of two scrapes.
struct Histogram {
  std::vector<double> bounds;      // ascending upper bounds, last may be +inf
  std::vector<double> cumulative;  // same length
  double sum = 0, count = 0;
};
Histogram prom_histogram(const std::vector<PromSample>& samples, const std::string& name);
Histogram histogram_delta(const Histogram& later, const Histogram& earlier);
// Quantile by linear interpolation inside the bucket (Prometheus' histogram_quantile); NaN if empty.
// A quantile in the +Inf bucket returns the largest finite bound.
double histogram_quantile(const Histogram& h, double q);

// Plain HTTP/1.0 GET on a TCP address; the body, or an error.
Result<std::string> http_get(const std::string& host, int port, const std::string& path, double timeout_s);
// A TCP port on 127.0.0.1 that was free a moment ago.
int free_tcp_port();

// Child processes.
class Child {
 public:
  Child() = default;
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  // Spawns argv (stdout to a pipe when capture_stdout, else to log_path; stderr to log_path).
  Status start(const std::vector<std::string>& argv, const std::string& log_path, bool capture_stdout);
  // First stdout line within timeout_s ("" + error when none).
  Result<std::string> read_line(double timeout_s);
  // SIGTERM, wait up to grace_s, then SIGKILL; returns the exit status (-1 if killed / unknown).
  int stop(double grace_s = 10.0);
  // Waits up to timeout_s for exit; true with *code when it exited.
  bool wait(double timeout_s, int* code);
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  std::string buffered_;
};
// Runs argv to completion (output appended to log_path); exit code, or -1 on timeout (killed).
int run_process(const std::vector<std::string>& argv, const std::string& log_path, double timeout_s);

// /proc readings: peak resident set (VmHWM) in KiB and CPU seconds (user + system) of a process.
long proc_vm_hwm_kb(pid_t pid);
double proc_cpu_seconds(pid_t pid);

// A self-contained SVG line chart.
struct Series {
  std::string name;
  std::vector<double> x, y;  // NaN y values are skipped
  bool dashed = false;
};
struct HLine {
  std::string name;
  double y = 0;
};
std::string svg_line_chart(const std::string& title, const std::string& x_label, const std::string& y_label,
                           const std::vector<Series>& series, const std::vector<HLine>& hlines = {});

}  // namespace dfm::bench
