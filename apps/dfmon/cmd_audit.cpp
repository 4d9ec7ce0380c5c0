// `dfmon audit INPUT...`: offline audit of video files/directories/URIs -> verdicts, JSON and HTML reports.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "app.h"
#include "dfm/common/log.h"
#include "dfm/common/paths.h"
#include "dfm/pipeline/audit.h"
#include "dfm/pipeline/decoder.h"
#include "dfm/pipeline/report.h"

namespace fs = std::filesystem;

namespace dfm::app {

namespace {

struct AuditCliOptions {
  std::vector<std::string> inputs;
  bool json = false;
  std::string report_path, html_path;
  int jobs = 1;
  bool progress = true;
  AuditOptions audit;
  std::string enqueue_url;  // set: enqueue one job per input instead of auditing here
  std::string out_dir;      // with --enqueue: where workers write the reports
};

const std::set<std::string> kVideoExt = {".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".ts", ".flv", ".wmv", ".3gp", ".gif"};

std::atomic<bool> g_cancel{false};
extern "C" void on_signal(int) { g_cancel.store(true); }

// SIGINT/SIGTERM set g_cancel for the whole command, model loading included: a signal at any point ends
// with the report written (unfinished inputs marked interrupted), never with a half-done process kill.
class CancelOnSignal {
 public:
  CancelOnSignal() {
    g_cancel.store(false);
    prev_int_ = std::signal(SIGINT, on_signal);
    prev_term_ = std::signal(SIGTERM, on_signal);
  }
  ~CancelOnSignal() {
    std::signal(SIGINT, prev_int_);
    std::signal(SIGTERM, prev_term_);
  }
  CancelOnSignal(const CancelOnSignal&) = delete;
  CancelOnSignal& operator=(const CancelOnSignal&) = delete;

 private:
  void (*prev_int_)(int);
  void (*prev_term_)(int);
};

// A work item: a path/URI to audit, or an error found while expanding the inputs.
struct Item {
  std::string source;
  std::string error;
};

std::vector<Item> expand_inputs(const std::vector<std::string>& inputs) {
  std::vector<Item> items;
  for (const auto& in : inputs) {
    if (is_uri(in)) {
      items.push_back({in, ""});
      continue;
    }
    std::error_code ec;
    if (!fs::is_directory(in, ec)) {
      items.push_back({in, ""});  // the decoder reports missing/unreadable files, naming them
      continue;
    }
    std::vector<std::string> found;
    auto it = fs::recursive_directory_iterator(in, ec);
    if (ec) {
      items.push_back({in, in + ": cannot read directory: " + ec.message()});
      continue;
    }
    for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) {
        items.push_back({in, in + ": cannot read directory: " + ec.message()});
        break;
      }
      std::error_code fec;
      if (it->is_directory(fec) && ::access(it->path().c_str(), R_OK | X_OK) != 0) {
        items.push_back({it->path().string(), it->path().string() + ": cannot read directory: permission denied"});
        it.disable_recursion_pending();
        continue;
      }
      if (!it->is_regular_file(fec)) continue;
      std::string ext = it->path().extension().string();
      std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (kVideoExt.count(ext)) found.push_back(it->path().string());
    }
    std::sort(found.begin(), found.end());
    if (found.empty()) items.push_back({in, in + ": directory holds no video files"});
    for (auto& f : found) items.push_back({f, ""});
  }
  return items;
}

// One line per worker, redrawn in place; only when stderr is a terminal.
class ProgressBar {
 public:
  explicit ProgressBar(bool enabled) : enabled_(enabled && ::isatty(STDERR_FILENO)) {}
  void update(const AuditProgress& p, double elapsed_s) {
    if (!enabled_) return;
    std::lock_guard<std::mutex> lock(mu_);
    const double frac = p.duration_s > 0 ? std::min(1.0, p.media_s / p.duration_s) : 0.0;
    const int width = 24;
    std::string bar(static_cast<size_t>(frac * width), '#');
    bar.resize(width, '.');
    std::string name = fs::path(*p.source).filename().string();
    if (name.size() > 28) name = name.substr(0, 25) + "...";
    const double eta = frac > 0.01 ? elapsed_s * (1 - frac) / frac : -1;
    std::fprintf(stderr, "\r\033[K%-28s [%s] %3.0f%%  %lld frames  %lld faces  ETA %s", name.c_str(), bar.c_str(), frac * 100,
                 static_cast<long long>(p.frames), static_cast<long long>(p.faces),
                 eta >= 0 ? (std::to_string(static_cast<int>(eta + 0.5)) + "s").c_str() : "?");
    std::fflush(stderr);
  }
  void done(const InputReport& r) {
    if (!enabled_) return;
    std::lock_guard<std::mutex> lock(mu_);
    std::fprintf(stderr, "\r\033[K%s: %s\n", r.source.c_str(),
                 r.ok ? (std::string(verdict_name(r.verdict)) + " " + std::to_string(r.score).substr(0, 5)).c_str() : ("error: " + r.error).c_str());
  }

 private:
  bool enabled_;
  std::mutex mu_;
};

int run(const GlobalOptions& g, AuditCliOptions& o) {
  if (auto st = apply_globals(g); !st.ok()) return fail(st);
  if (auto st = validate_audit_options(o.audit); !st.ok()) return fail(st);
  if (o.jobs < 1 || o.jobs > 16) return fail(InvalidArgument("--jobs: must be within 1..16"));
  if (!o.enqueue_url.empty()) {
    if (!o.report_path.empty() || !o.html_path.empty()) {
      return fail(InvalidArgument("--report/--html: not used with --enqueue (workers write one report per job to --out)"));
    }
    std::vector<EnqueueItem> work;
    for (auto& item : expand_inputs(o.inputs)) work.push_back({item.source, item.error});
    return enqueue_audit_jobs(g, o.enqueue_url, work, o.audit, o.out_dir, o.json);
  }
  if (!o.out_dir.empty()) return fail(InvalidArgument("--out: only with --enqueue (use --report/--html here)"));
  CancelOnSignal cancel_on_signal;
  // Fail now, not after the whole audit, when a report cannot be written where asked.
  for (const auto& [flag, path] : {std::pair<const char*, std::string>{"--report", o.report_path}, {"--html", o.html_path}}) {
    std::string err;
    if (!path.empty() && !check_writable(path, &err)) return fail(InvalidArgument(std::string(flag) + " " + err));
  }
  auto set = load_models(g);
  if (!set.ok()) return fail(set.status());
  std::vector<Item> items = expand_inputs(o.inputs);
  std::vector<InputReport> reports(items.size());
  const int jobs = std::min<int>(o.jobs, static_cast<int>(std::max<size_t>(items.size(), 1)));
  std::vector<std::unique_ptr<Auditor>> auditors;
  for (int i = 0; i < jobs; ++i) {
    auto a = Auditor::create(*set, o.audit);
    if (!a.ok()) return fail(a.status());
    auditors.push_back(std::move(a).value());
  }
  ProgressBar bar(o.progress);
  std::atomic<size_t> next{0};
  auto worker = [&](Auditor* auditor) {
    for (size_t i = next++; i < items.size(); i = next++) {
      if (!items[i].error.empty()) {
        reports[i].source = items[i].source;
        reports[i].error = items[i].error;
        get_logger("audit")->error("{}", items[i].error);
      } else if (g_cancel.load()) {
        reports[i].source = items[i].source;
        reports[i].error = items[i].source + ": not audited (interrupted)";
      } else {
        const auto t0 = std::chrono::steady_clock::now();
        reports[i] = auditor->audit(items[i].source, [&](const AuditProgress& p) {
          bar.update(p, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }, &g_cancel);
      }
      bar.done(reports[i]);
    }
  };
  // Each worker owns its Auditor (detector + one Net per model); the ModelSet is shared read-only.
  std::vector<std::thread> threads;
  for (int i = 1; i < jobs; ++i) threads.emplace_back(worker, auditors[static_cast<size_t>(i)].get());
  worker(auditors[0].get());
  for (auto& t : threads) t.join();

  const nlohmann::json report = audit_report_json(reports, **set, o.audit, DFM_VERSION);
  int rc = kExitOk;
  for (const auto& r : reports) {
    if (!r.ok) rc = kExitError;
    else if (r.verdict == Verdict::kFake && rc == kExitOk) rc = kExitFake;
  }
  std::string err;
  if (!o.report_path.empty() && !write_file_atomic(o.report_path, report.dump(2) + "\n", &err)) {
    std::fprintf(stderr, "dfmon: --report %s\n", err.c_str());
    rc = kExitError;
  }
  if (!o.html_path.empty() && !write_file_atomic(o.html_path, audit_report_html(report, reports), &err)) {
    std::fprintf(stderr, "dfmon: --html %s\n", err.c_str());
    rc = kExitError;
  }
  if (o.json) {
    std::printf("%s\n", report.dump(2).c_str());
  } else {
    for (const auto& r : reports) {
      if (r.ok) {
        std::printf("%-8s %.3f  %s  (%lld faces, %zu tracks, %zu alerts, %.1fs media in %.1fs)\n", verdict_name(r.verdict), r.score,
                    r.source.c_str(), static_cast<long long>(r.faces_scored), r.tracks.size(), r.alerts.size(), r.duration_s, r.elapsed_s);
      } else {
        std::printf("%-8s        %s\n", "error", r.error.c_str());
      }
    }
  }
  std::fflush(stdout);
  return rc;
}

}  // namespace

void register_audit(CLI::App& root, GlobalOptions& g, int* exit_code) {
  auto o = std::make_shared<AuditCliOptions>();
  CLI::App* cmd = root.add_subcommand("audit", "Audit video files, directories (recursive) or URIs for deepfaked faces");
  cmd->add_option("inputs", o->inputs, "Video files, directories or URIs (file://, http(s)://, rtsp://)")->required();
  cmd->add_flag("--json", o->json, "Print the report (schema dfmon.audit/1) to stdout");
  cmd->add_option("--report", o->report_path, "Write the JSON report to this file (atomically)");
  cmd->add_option("--html", o->html_path, "Write a self-contained HTML report to this file (atomically)");
  cmd->add_option("--jobs", o->jobs, "Inputs audited in parallel (each job has its own detector and networks)");
  cmd->add_option("--sample-fps", o->audit.sample_fps, "Frames analysed per second of video, chosen by timestamp");
  cmd->add_option("--detect-every", o->audit.detect_every, "Run the face detector on every Nth analysed frame, track in between");
  cmd->add_option("--threshold", o->audit.threshold, "Per-face label threshold shown in reports");
  cmd->add_option("--alert-on", o->audit.alert.on, "Smoothed P(fake) at or above which an alert starts");
  cmd->add_option("--alert-off", o->audit.alert.off, "Smoothed P(fake) below which an alert ends");
  cmd->add_option("--min-duration", o->audit.alert.min_duration_s, "Seconds above --alert-on before an alert starts");
  cmd->add_option("--alpha", o->audit.smoothing.alpha, "EMA smoothing weight of the newest score (1 = none)");
  cmd->add_option("--max-width", o->audit.detector.max_width, "Frames wider than this are downscaled for detection");
  cmd->add_option("--min-face", o->audit.detector.min_face, "Ignore faces narrower than this many pixels");
  cmd->add_option("--timeout", o->audit.stall_timeout_s, "Seconds a stalled decode may take before the input fails");
  cmd->add_flag("!--no-progress", o->progress, "No progress bar on stderr");
  cmd->add_option("--enqueue", o->enqueue_url,
                  "Do not audit here: push one job per input to this Redis Stream for `dfmon worker` "
                  "(redis://[[user]:password@]host[:port][/db][?stream=NAME&group=NAME]); prints the job ids");
  cmd->add_option("--out", o->out_dir, "With --enqueue: directory the workers write each job's report to (default: the worker's --out)");
  cmd->footer(
      "Verdict per input: fake if any face track raised an alert (smoothed score >= --alert-on for\n"
      "--min-duration s), real if faces were scored without alerts, no_faces otherwise.\n"
      "Exit codes: 0 all inputs real or without faces, 1 at least one fake, 2 an input could not be read.\n"
      "With --enqueue: 0 every input enqueued, 2 an input or the queue failed (docs/scale-out.md).");
  cmd->callback([&g, o, exit_code] { *exit_code = run(g, *o); });
}

}  // namespace dfm::app
