// `dfmon worker URL` and `dfmon audit --enqueue URL`: audits as jobs on a Redis Stream that any number of
// workers on any number of machines share (docs/scale-out.md).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "app.h"
#include "dfm/common/log.h"
#include "dfm/common/paths.h"
#include "dfm/jobs/redis_queue.h"
#include "dfm/pipeline/audit.h"
#include "dfm/pipeline/decoder.h"
#include "dfm/pipeline/report.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace dfm::app {

namespace {

std::atomic<bool> g_stop{false};
extern "C" void on_stop_signal(int) {
  g_stop.store(true);
}

struct WorkerCliOptions {
  std::string url;
  std::string consumer;
  std::string out_dir = "dfmon-results";
  double min_idle_s = 60;
  int max_attempts = 3;
  int max_jobs = 0;
  bool drain = false;
  bool json = false;
  bool html = true;
};

// The job carries only the options a user sets on `dfmon audit`; the rest stay worker defaults.
json job_options_json(const AuditOptions& o) {
  return {{"sample_fps", o.sample_fps},      {"detect_every", o.detect_every},
          {"threshold", o.threshold},        {"alert_on", o.alert.on},
          {"alert_off", o.alert.off},        {"min_duration_s", o.alert.min_duration_s},
          {"alpha", o.smoothing.alpha},      {"max_width", o.detector.max_width},
          {"min_face", o.detector.min_face}, {"timeout_s", o.stall_timeout_s}};
}

// Job "options" JSON -> AuditOptions over the defaults; unknown keys and wrong types are errors.
Status apply_job_options(const std::string& text, AuditOptions* o) {
  try {
    const json j = text.empty() ? json::object() : json::parse(text);
    if (!j.is_object()) return InvalidArgument("job options: not a JSON object");
    for (const auto& [key, v] : j.items()) {
      if (!v.is_number()) return InvalidArgument("job options: \"" + key + "\" must be a number");
      if (key == "sample_fps")
        o->sample_fps = v.get<double>();
      else if (key == "detect_every")
        o->detect_every = v.get<int>();
      else if (key == "threshold")
        o->threshold = v.get<double>();
      else if (key == "alert_on")
        o->alert.on = v.get<double>();
      else if (key == "alert_off")
        o->alert.off = v.get<double>();
      else if (key == "min_duration_s")
        o->alert.min_duration_s = v.get<double>();
      else if (key == "alpha")
        o->smoothing.alpha = v.get<double>();
      else if (key == "max_width")
        o->detector.max_width = v.get<int>();
      else if (key == "min_face")
        o->detector.min_face = v.get<int>();
      else if (key == "timeout_s")
        o->stall_timeout_s = v.get<double>();
      else
        return InvalidArgument("job options: unknown key \"" + key + "\"");
    }
  } catch (const json::exception& e) {
    return InvalidArgument(std::string("job options: ") + e.what());
  }
  return validate_audit_options(*o).with_context("job options: ");
}

std::string default_consumer() {
  char host[256] = {0};
  if (::gethostname(host, sizeof(host) - 1) != 0 || host[0] == 0) std::snprintf(host, sizeof(host), "host");
  return std::string(host) + "-" + std::to_string(::getpid());
}

// Sleeps up to `s`, returning early on SIGINT/SIGTERM.
void sleep_unless_stopped(double s) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(s);
  while (!g_stop.load() && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

class Worker {
 public:
  Worker(const GlobalOptions& g, const WorkerCliOptions& o, std::shared_ptr<const ModelSet> models,
         std::unique_ptr<jobs::RedisJobQueue> q)
      : g_(g), o_(o), models_(std::move(models)), queue_(std::move(q)), log_(get_logger("worker")) {}

  int run();

 private:
  enum class Outcome { kDone, kAbandoned, kFatal };
  Outcome process(const jobs::Job& job);
  Result<Auditor*> auditor_for(const std::string& options_text, const AuditOptions& options);
  Result<bool> store(const jobs::Job& job, const jobs::Fields& result);

  const GlobalOptions& g_;
  const WorkerCliOptions& o_;
  std::shared_ptr<const ModelSet> models_;
  std::unique_ptr<jobs::RedisJobQueue> queue_;
  std::shared_ptr<spdlog::logger> log_;
  std::unique_ptr<Auditor> auditor_;  // rebuilt only when a job asks for other options
  std::string auditor_key_;
  int finished_ = 0;
};

Result<Auditor*> Worker::auditor_for(const std::string& options_text, const AuditOptions& options) {
  if (!auditor_ || options_text != auditor_key_) {
    auditor_.reset();
    DFM_ASSIGN_OR_RETURN(auditor_, Auditor::create(models_, options));
    auditor_key_ = options_text;
  }
  return auditor_.get();
}

// Store + ack survives a short Redis outage: the finished audit is worth a few retries.
Result<bool> Worker::store(const jobs::Job& job, const jobs::Fields& result) {
  Status last;
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (attempt > 0) sleep_unless_stopped(1 << (attempt - 1));
    auto r = queue_->ack(job, o_.consumer, result);
    if (r.ok()) return r;
    last = r.status();
    log_->warn("job {}: storing the result failed (attempt {}): {}", job.id, attempt + 1, last.message());
    if (g_stop.load()) break;
  }
  return last;
}

Worker::Outcome Worker::process(const jobs::Job& job) {
  const std::string input = job.field("input");
  const std::string out_dir = job.field("out").empty() ? o_.out_dir : job.field("out");
  log_->info("job {} claimed: {} (delivery {}{})", job.id, input, job.deliveries, job.reclaimed ? ", reclaimed" : "");
  AuditOptions options;
  Status st = input.empty() ? InvalidArgument("the job has no \"input\" field")
                            : apply_job_options(job.field("options"), &options);
  InputReport rep;
  rep.source = input;
  if (st.ok()) {
    auto auditor = auditor_for(job.field("options"), options);
    if (auditor.ok()) {
      rep = (*auditor)->audit(input, {}, &g_stop);
    } else {
      st = auditor.status();
    }
  }
  if (!st.ok()) rep.error = "job " + job.id + ": " + st.message();
  if (!rep.ok && g_stop.load()) {
    // Interrupted, not finished: never ack it; hand it back so another worker takes it at once.
    auto rel = queue_->release(job, o_.consumer);
    log_->warn(
        "job {} abandoned on signal; {}", job.id,
        rel.ok() ? "released to the other workers" : "left pending (reclaimed after --min-idle): " + rel.message());
    return Outcome::kAbandoned;
  }

  // Reports as files first: the Redis result points at them, so they must exist before it is stored.
  const json report = audit_report_json({rep}, *models_, options, DFM_VERSION);
  const std::string report_path = (fs::path(out_dir) / (job.id + ".json")).string();
  const std::string html_path = o_.html ? (fs::path(out_dir) / (job.id + ".html")).string() : "";
  std::string write_error;
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) {
    write_error = out_dir + ": cannot create directory: " + ec.message();
  } else if (!write_file_atomic(report_path, report.dump(2) + "\n", &write_error) ||
             (o_.html && !write_file_atomic(html_path, audit_report_html(report, {rep}), &write_error))) {
    write_error = "cannot write the report: " + write_error;
  }
  // The stored result is the report's input entry without the per-frame timeline (that stays in the file).
  json entry = report["inputs"][0];
  entry.erase("timeline");
  const bool ok = rep.ok && write_error.empty();
  const std::string error = !rep.ok ? rep.error : write_error;
  jobs::Fields result = {{"status", ok ? "ok" : "error"},
                         {"error", error},
                         {"report", write_error.empty() ? fs::absolute(report_path).string() : ""},
                         {"html", write_error.empty() && o_.html ? fs::absolute(html_path).string() : ""},
                         {"result", entry.dump()},
                         {"version", DFM_VERSION}};
  if (rep.ok) {
    result.emplace_back("verdict", verdict_name(rep.verdict));
    result.emplace_back("score", entry.value("score", json(rep.score)).dump());  // as rounded in the report
  }
  auto stored = store(job, result);
  if (!stored.ok()) {
    log_->error("job {}: result not stored, the job will run again after --min-idle: {}", job.id,
                stored.status().message());
    return Outcome::kFatal;
  }
  if (!*stored) log_->warn("job {} was already finished by another worker; this result is not stored", job.id);
  log_->info("job {} done: {} {} -> {}", job.id, ok ? verdict_name(rep.verdict) : "error",
             ok ? std::to_string(rep.score) : error, report_path);
  if (o_.json) {
    json line = {{"job", job.id},         {"input", input},          {"status", ok ? "ok" : "error"},
                 {"report", report_path}, {"consumer", o_.consumer}, {"deliveries", job.deliveries},
                 {"stored", *stored}};
    if (ok) {
      line["verdict"] = verdict_name(rep.verdict);
      line["score"] = entry.value("score", json(rep.score));
    } else {
      line["error"] = error;
    }
    std::printf("%s\n", line.dump().c_str());
  } else if (ok) {
    std::printf("%-8s %.3f  %s  (job %s)\n", verdict_name(rep.verdict), rep.score, input.c_str(), job.id.c_str());
  } else {
    std::printf("%-8s        %s  (job %s)\n", "error", error.c_str(), job.id.c_str());
  }
  std::fflush(stdout);
  return Outcome::kDone;
}

int Worker::run() {
  constexpr int kBlockMs = 1000;   // bounds how long a signal waits for the claim loop to notice it
  constexpr int kMaxFailures = 6;  // ~1 minute of backoff before giving up on Redis
  int failures = 0;
  int rc = kExitOk;
  log_->info("consumer {} on {} (stream {}, group {}), reports to {}", o_.consumer, queue_->url().display,
             queue_->url().stream, queue_->url().group, o_.out_dir);
  while (!g_stop.load() && (o_.max_jobs == 0 || finished_ < o_.max_jobs)) {
    auto job = queue_->claim(o_.consumer, kBlockMs);
    if (!job.ok()) {
      if (++failures >= kMaxFailures) {
        log_->error("giving up after {} failed attempts: {}", failures, job.status().message());
        return fail(job.status());
      }
      const double backoff = std::min(30.0, static_cast<double>(1 << (failures - 1)));
      log_->warn("{} (retrying in {:.0f} s)", job.status().message(), backoff);
      sleep_unless_stopped(backoff);
      continue;
    }
    failures = 0;
    if (!job->has_value()) {
      if (!o_.drain) continue;
      // Drained only when nothing is left anywhere: a job pending at a dead worker must still be reclaimed.
      auto st = queue_->stats();
      if (st.ok() && st->queued == 0) {
        log_->info("stream {} is empty; exiting", queue_->url().stream);
        break;
      }
      continue;
    }
    const Outcome out = process(**job);
    if (out == Outcome::kAbandoned) break;
    if (out == Outcome::kFatal) {
      rc = kExitError;
      break;
    }
    ++finished_;
  }
  if (auto st = queue_->retire(o_.consumer); !st.ok()) log_->warn("{}", st.message());
  log_->info("consumer {} stops after {} jobs", o_.consumer, finished_);
  return rc;
}

int run_worker(const GlobalOptions& g, WorkerCliOptions& o) {
  if (auto st = apply_globals(g); !st.ok()) return fail(st);
  auto url = jobs::parse_redis_url(o.url);
  if (!url.ok()) return fail(url.status());
  if (!(o.min_idle_s >= 1)) return fail(InvalidArgument("--min-idle: must be at least 1 second"));
  if (o.max_attempts < 1) return fail(InvalidArgument("--max-attempts: must be at least 1"));
  if (o.max_jobs < 0) return fail(InvalidArgument("--max-jobs: must be >= 0"));
  if (o.consumer.empty()) o.consumer = default_consumer();
  jobs::QueueOptions qo;
  qo.min_idle_s = o.min_idle_s;
  qo.max_attempts = o.max_attempts;
  // A signal during start-up still means a clean exit 0 before the first claim.
  g_stop.store(false);
  auto prev_int = std::signal(SIGINT, on_stop_signal);
  auto prev_term = std::signal(SIGTERM, on_stop_signal);
  int rc = kExitOk;
  // Connect before loading models: a wrong URL fails in seconds, not after the model load.
  auto queue = jobs::RedisJobQueue::connect(*url, qo);
  auto models = queue.ok() ? load_models(g) : Result<std::shared_ptr<const ModelSet>>(queue.status());
  if (!models.ok()) {
    rc = fail(models.status());
  } else {
    Worker worker(g, o, *models, std::move(queue).value());
    rc = worker.run();
  }
  std::signal(SIGINT, prev_int);
  std::signal(SIGTERM, prev_term);
  return rc;
}

}  // namespace

int enqueue_audit_jobs(const GlobalOptions& g, const std::string& url_text, const std::vector<EnqueueItem>& items,
                       const AuditOptions& options, const std::string& out_dir, bool as_json) {
  if (auto st = apply_globals(g); !st.ok()) return fail(st);
  if (auto st = validate_audit_options(options); !st.ok()) return fail(st);
  auto url = jobs::parse_redis_url(url_text);
  if (!url.ok()) return fail(url.status());
  auto queue = jobs::RedisJobQueue::connect(*url);
  if (!queue.ok()) return fail(queue.status());
  // Workers run elsewhere, in another directory: paths travel absolute.
  const std::string opts = job_options_json(options).dump();
  const std::string out = out_dir.empty() ? "" : fs::absolute(out_dir).lexically_normal().string();
  json done = json::array(), errors = json::array();
  for (const auto& item : items) {
    std::string error = item.error;
    std::string input = item.source;
    if (error.empty()) {
      if (!is_uri(input)) input = fs::absolute(input).lexically_normal().string();
      jobs::Fields fields = {{"input", input}, {"options", opts}};
      if (!out.empty()) fields.emplace_back("out", out);
      auto id = (*queue)->enqueue(fields);
      if (id.ok()) {
        done.push_back({{"id", *id}, {"input", input}});
        if (!as_json) std::printf("queued   %s  %s\n", id->c_str(), input.c_str());
        continue;
      }
      error = input + ": " + id.status().message();
    }
    errors.push_back({{"input", item.source}, {"error", error}});
    if (!as_json) std::printf("%-8s %s\n", "error", error.c_str());
  }
  if (as_json) {
    const json doc = {{"schema", "dfmon.enqueue/1"},
                      {"queue", {{"url", url->display}, {"stream", url->stream}, {"group", url->group}}},
                      {"jobs", done},
                      {"errors", errors}};
    std::printf("%s\n", doc.dump(2).c_str());
  }
  std::fflush(stdout);
  return errors.empty() ? kExitOk : kExitError;
}

void register_worker(CLI::App& root, GlobalOptions& g, int* exit_code) {
  auto o = std::make_shared<WorkerCliOptions>();
  CLI::App* cmd =
      root.add_subcommand("worker", "Run audit jobs from a Redis Stream (enqueued by `dfmon audit --enqueue`)");
  cmd->add_option("url", o->url, "redis://[[user]:password@]host[:port][/db][?stream=NAME&group=NAME]")->required();
  cmd->add_option("--consumer", o->consumer, "Consumer name, unique per running worker (default: HOSTNAME-PID)");
  cmd->add_option("--out", o->out_dir, "Report directory for jobs that do not name one (default: dfmon-results)");
  cmd->add_option("--min-idle", o->min_idle_s,
                  "Seconds a job may stay unfinished at another worker before this one takes it over");
  cmd->add_option("--max-attempts", o->max_attempts,
                  "Deliveries without a result before a job goes to the dead letter");
  cmd->add_option("--max-jobs", o->max_jobs, "Exit after this many finished jobs (0 = no limit)");
  cmd->add_flag("--drain,--once", o->drain,
                "Exit once the stream holds no unfinished job (none new, none pending anywhere)");
  cmd->add_flag("--json", o->json, "Print one JSON line per finished job");
  cmd->add_flag("!--no-html", o->html, "Write only the JSON report per job");
  cmd->footer(
      "Per job: audit the input with the job's options, write <out>/<job id>.json and .html atomically, store\n"
      "the result in Redis (hash <stream>:result:<job id>), then acknowledge. An unreadable input is a\n"
      "finished job with status error. SIGINT/SIGTERM: the current job is handed back unfinished; exit 0.\n"
      "Exit codes: 0 clean stop, 2 bad arguments, models or Redis unreachable.");
  cmd->callback([&g, o, exit_code] { *exit_code = run_worker(g, *o); });
}

}  // namespace dfm::app
