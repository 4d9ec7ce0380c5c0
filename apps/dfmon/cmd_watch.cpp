// `dfmon watch --config FILE`: live monitoring; alert feed on WebSocket, /healthz, /metrics, dashboard.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <thread>

#include "app.h"
#include "dfm/common/log.h"
#include "dfm/config/config.h"
#include "dfm/pipeline/monitor.h"
#include "dfm/server/event_bus.h"
#include "dfm/server/metrics.h"
#include "dfm/server/server.h"
#include "dfm/server/sink.h"
#include "dfm/web/dashboard.h"

namespace dfm::app {

namespace {

struct WatchOptions {
  std::string config_path;
  std::string listen;      // overrides server.listen
  double duration_s = 0;   // 0 = until SIGINT/SIGTERM
};

// SIGINT/SIGTERM are blocked in every thread we start and taken with sigtimedwait, so no handler runs
// inside GStreamer or Asio. Libraries start threads before main (OpenBLAS's pool) with them unblocked;
// a signal the kernel hands to one of those must not take the default action (terminate): this handler
// only records it, for next_stop_signal to return.
std::atomic<int> g_stray_signal{0};
extern "C" void on_stray_signal(int sig) { g_stray_signal.store(sig); }

void take_stop_signals(sigset_t* sigs) {
  sigemptyset(sigs);
  sigaddset(sigs, SIGINT);
  sigaddset(sigs, SIGTERM);
  struct sigaction sa = {};
  sa.sa_handler = on_stray_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  pthread_sigmask(SIG_BLOCK, sigs, nullptr);
}

const char* signal_name(int sig) { return sig == SIGINT ? "SIGINT" : "SIGTERM"; }

// The next SIGINT/SIGTERM within `wait_ms`, or 0.
int next_stop_signal(const sigset_t& sigs, long wait_ms) {
  timespec ts{wait_ms / 1000, (wait_ms % 1000) * 1000 * 1000};
  const int sig = sigtimedwait(&sigs, nullptr, &ts);
  if (sig == SIGINT || sig == SIGTERM) return sig;
  return g_stray_signal.exchange(0);
}

// Owned by run() from the first SIGINT/SIGTERM until the clean stop is over. A shutdown that takes
// long says which step it waits on (every 10 s), and a second signal exits at once: an operator can
// always get the terminal back, and a test that times out sees where it stuck.
class ShutdownWatch {
 public:
  ShutdownWatch(const sigset_t& sigs, std::shared_ptr<spdlog::logger> log)
      : sigs_(sigs), log_(std::move(log)), thread_([this] { run(); }) {}
  ~ShutdownWatch() { finish(); }
  void step(const char* what) { step_.store(what); }
  void finish() {
    done_.store(true);
    if (thread_.joinable()) thread_.join();
  }

 private:
  void run() {
    const auto t0 = std::chrono::steady_clock::now();
    int reported = 0;
    while (!done_.load()) {
      if (const int sig = next_stop_signal(sigs_, 100)) {
        log_->error("{} while stopping (waiting for the {}): exiting without a clean stop", signal_name(sig),
                    step_.load());
        log_->flush();
        std::_Exit(kExitError);
      }
      const int secs = int(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      if (secs >= (reported + 1) * 10) {
        reported = secs / 10;
        log_->warn("still stopping after {} s, waiting for the {}; SIGINT/SIGTERM again exits at once", secs,
                   step_.load());
      }
    }
  }

  sigset_t sigs_;
  std::shared_ptr<spdlog::logger> log_;
  std::atomic<const char*> step_{"streams"};
  std::atomic<bool> done_{false};
  std::thread thread_;  // last: starts once the rest is set
};

Backend to_models_backend(config::Backend b) {
  switch (b) {
    case config::Backend::kCuda: return Backend::kCuda;
    case config::Backend::kOpenCl: return Backend::kOpenCL;
    case config::Backend::kCpu: return Backend::kCpu;
    default: return Backend::kAuto;
  }
}

std::vector<LiveSourceOptions> source_options(const config::Config& cfg) {
  std::vector<LiveSourceOptions> out;
  for (const auto& s : cfg.streams) {
    if (!s.enabled) continue;
    LiveSourceOptions o;
    o.id = s.id;
    o.uri = s.uri;
    o.loop = s.loop;
    o.latency_ms = s.latency_ms;
    o.transport = config::to_string(s.transport);
    o.queue_frames = cfg.queue.frames;
    o.drop = cfg.queue.drop == config::DropPolicy::kDropNewest ? LiveDropPolicy::kDropNewest : LiveDropPolicy::kDropOldest;
    const config::ReconnectConfig& rc = config::reconnect_for(cfg, s);
    o.initial_backoff_s = rc.initial_s;
    o.max_backoff_s = rc.max_s;
    o.backoff_multiplier = rc.multiplier;
    o.max_attempts = rc.max_attempts;
    out.push_back(o);
  }
  return out;
}

MonitorOptions monitor_options(const config::Config& cfg) {
  MonitorOptions m;
  m.scoring_fps = cfg.scoring.fps;
  m.detect_every = cfg.detector.detect_every;
  m.batch = cfg.models.batch;
  m.detector.type = cfg.detector.type;
  m.detector.max_width = cfg.detector.max_width;
  m.detector.min_face = cfg.detector.min_face;
  m.detector.upsample = cfg.detector.upsample;
  m.detector.threshold = cfg.detector.threshold;
  m.detector.landmark_model = cfg.detector.landmark_model;
  m.smoothing.alpha = cfg.scoring.smoothing.alpha;
  m.alert.on = cfg.scoring.alert.on;
  m.alert.off = cfg.scoring.alert.off;
  m.alert.min_duration_s = cfg.scoring.alert.min_duration_s;
  // Score events are only worth making when some sink wants them.
  m.emit_scores = false;
  for (const auto& s : cfg.sinks) {
    for (const auto& t : s.types) m.emit_scores = m.emit_scores || t == "score";
  }
  return m;
}

// Event types /alerts clients may ask for: the websocket sink's (there is at most one); none without it.
std::vector<std::string> feed_types(const config::Config& cfg) {
  for (const auto& s : cfg.sinks) {
    if (s.type == config::SinkType::kWebsocket) return s.types;
  }
  return {};
}

// Per-stream gauges read from one stats snapshot per scrape (cheap: a few atomics per stream).
void register_stream_metrics(server::MetricsRegistry& reg, Monitor& mon, const std::vector<LiveSourceOptions>& streams) {
  using Getter = double (*)(const StreamStats&);
  struct Def {
    const char* name;
    const char* help;
    Getter get;
  };
  static const Def defs[] = {
      {"dfmon_frames_decoded_total", "Frames decoded (sampled or not)", [](const StreamStats& s) { return double(s.source.frames_decoded); }},
      {"dfmon_frames_sampled_total", "Frames kept by the sampler", [](const StreamStats& s) { return double(s.source.frames_sampled); }},
      {"dfmon_frames_analyzed_total", "Frames analysed (detection/tracking)", [](const StreamStats& s) { return double(s.frames_analyzed); }},
      {"dfmon_frames_dropped_total", "Sampled frames dropped by the bounded frame queue", [](const StreamStats& s) { return double(s.source.frames_dropped); }},
      {"dfmon_crops_dropped_total", "Face crops dropped before inference", [](const StreamStats& s) { return double(s.crops_dropped); }},
      {"dfmon_detect_errors_total", "Frames the face detector failed on (logged)", [](const StreamStats& s) { return double(s.detect_errors); }},
      {"dfmon_faces_scored_total", "Faces scored by the ensemble", [](const StreamStats& s) { return double(s.faces_scored); }},
      {"dfmon_reconnects_total", "Reconnection attempts", [](const StreamStats& s) { return double(s.source.reconnects); }},
      {"dfmon_frame_queue_depth", "Frames waiting for analysis", [](const StreamStats& s) { return double(s.source.queue_depth); }},
      {"dfmon_frame_queue_high_water", "Largest frame queue depth seen", [](const StreamStats& s) { return double(s.source.queue_high_water); }},
      {"dfmon_analyzed_fps", "Analysed frames per second (last 5 s)", [](const StreamStats& s) { return s.analyzed_fps; }},
      {"dfmon_active_tracks", "Faces being tracked", [](const StreamStats& s) { return double(s.active_tracks); }},
      {"dfmon_open_alerts", "Alerts currently open", [](const StreamStats& s) { return double(s.open_alerts); }},
      {"dfmon_stream_live", "1 when the stream is live", [](const StreamStats& s) { return s.state.state == "live" ? 1.0 : 0.0; }},
      {"dfmon_last_frame_age_seconds", "Seconds since the last sampled frame (-1: none yet)", [](const StreamStats& s) { return s.source.last_frame_age_s; }},
  };
  for (size_t i = 0; i < streams.size(); ++i) {
    for (const Def& d : defs) {
      Getter get = d.get;
      reg.gauge_callback(d.name, d.help, {{"stream", streams[i].id}}, [&mon, i, get] {
        MonitorStats st = mon.stats();
        return i < st.streams.size() ? get(st.streams[i]) : 0.0;
      });
    }
  }
  reg.gauge_callback("dfmon_crop_queue_depth", "Face crops waiting for inference", {}, [&mon] { return double(mon.stats().crop_queue_depth); });
  reg.gauge_callback("dfmon_crop_queue_high_water", "Largest crop queue depth seen", {}, [&mon] { return double(mon.stats().crop_queue_high_water); });
}

int run(const GlobalOptions& g, const WatchOptions& o) {
  sigset_t sigs;
  take_stop_signals(&sigs);  // before any thread of ours exists (OpenCV's pool starts with the models)
  if (auto st = apply_globals(g); !st.ok()) return fail(st);
  auto log = get_logger("watch");
  auto cfg_r = config::parse_config_file(o.config_path);
  if (!cfg_r.ok()) return fail(cfg_r.status());
  config::Config cfg = std::move(cfg_r).value();
  if (!o.listen.empty()) {
    auto addr = config::parse_listen_address(o.listen);
    if (!addr.ok()) return fail(addr.status().with_context("--listen: "));
    cfg.server.listen = *addr;
    if (auto st = config::validate(cfg); !st.ok()) return fail(st);
  }
  const std::vector<LiveSourceOptions> streams = source_options(cfg);
  if (streams.empty()) return fail(InvalidArgument(o.config_path + ": every stream is disabled"));

  ModelsRequest req;
  req.dir = cfg.models.dir;
  req.names = cfg.models.use;
  req.weights = cfg.models.weights;
  req.batch = cfg.models.batch;
  req.threads = cfg.models.threads;
  if (g.backend == "auto") req.backend = to_models_backend(cfg.models.backend);  // --backend wins when given
  auto models = load_models(g, req);
  if (!models.ok()) return fail(models.status());

  server::MetricsRegistry registry;
  server::ServerOptions so;
  so.metrics = &registry;
  auto srv = server::Server::create(cfg.server, so);
  if (!srv.ok()) return fail(srv.status());
  server::EventBus bus(&registry);
  for (const auto& sc : cfg.sinks) {
    auto sink = server::make_sink(sc, srv->get());
    if (!sink.ok()) return fail(sink.status());
    bus.add_sink(std::move(sink).value());
  }
  MonitorOptions mopt = monitor_options(cfg);
  auto& infer_hist = registry.histogram("dfmon_inference_latency_seconds", "Seconds per ensemble inference call",
                                        server::default_latency_buckets());
  auto& f2e_hist = registry.histogram("dfmon_frame_to_event_seconds", "Seconds from frame decode to its score",
                                      server::default_latency_buckets());
  mopt.observe_inference = [&infer_hist](double s) { infer_hist.observe(s); };
  mopt.observe_frame_to_event = [&f2e_hist](double s) { f2e_hist.observe(s); };
  // The dashboard's alert thumbnails: the crop that raised each alert, last 64 kept.
  // The alert log lets a page opened later list the last 100 alerts raised before it.
  std::shared_ptr<web::ThumbnailStore> thumbnails;
  std::shared_ptr<web::AlertLog> alert_log;
  if (cfg.server.dashboard) {
    alert_log = std::make_shared<web::AlertLog>(100);
    bus.add_sink(web::make_alert_log_sink(alert_log));
    thumbnails = std::make_shared<web::ThumbnailStore>(64);
    mopt.observe_alert_start = [thumbnails](const Event& e, const cv::Mat& crop) {
      thumbnails->put(e.stream, e.track, crop);
    };
  }
  auto mon = Monitor::create(*models, mopt, streams, [&bus](Event e) { bus.publish(std::move(e)); });
  if (!mon.ok()) return fail(mon.status());
  Monitor& monitor = **mon;
  register_stream_metrics(registry, monitor, streams);
  const auto started = std::chrono::steady_clock::now();
  const nlohmann::json feed = {{"types", feed_types(cfg)}, {"auth", !cfg.server.token.empty()}};
  const nlohmann::json scoring = {{"alert_on", cfg.scoring.alert.on}, {"alert_off", cfg.scoring.alert.off}};
  // What the cards say about the models' quality, so the dashboard can tell operators how far to trust alerts.
  nlohmann::json model_info = nlohmann::json::array();
  std::vector<nlohmann::json> card_metrics;
  for (const auto& m : (*models)->models()) {
    card_metrics.push_back(model_card_metrics(m.card));
    model_info.push_back({{"name", m.card.name}, {"sha256", m.sha256}, {"metrics", card_metrics.back()}});
  }
  const std::string caution = model_quality_caution(recorded_real_deepfake_auc(card_metrics));
  if (!caution.empty()) log->warn("{}", caution);
  const nlohmann::json model_caution = caution.empty() ? nlohmann::json(nullptr) : nlohmann::json(caution);
  (*srv)->set_health_provider([&monitor, started, feed, scoring, model_info, model_caution] {
    MonitorStats st = monitor.stats();
    nlohmann::json j;
    bool all_live = true;
    j["streams"] = nlohmann::json::array();
    for (const auto& s : st.streams) {
      all_live = all_live && s.state.state == "live";
      j["streams"].push_back({{"id", s.id},
                              {"state", s.state.state},
                              {"reason", s.state.reason},
                              {"retry_in_s", std::round(s.state.retry_in_s * 10) / 10},
                              {"fps", std::round(s.analyzed_fps * 100) / 100},
                              {"frames_decoded", s.source.frames_decoded},
                              {"frames_analyzed", s.frames_analyzed},
                              {"frames_dropped", s.source.frames_dropped},
                              {"last_frame_age_s", std::round(s.source.last_frame_age_s * 1000) / 1000},
                              {"faces_scored", s.faces_scored},
                              {"active_tracks", s.active_tracks},
                              {"open_alerts", s.open_alerts}});
    }
    j["status"] = all_live ? "ok" : "degraded";
    j["uptime_s"] = std::round(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count() * 10) / 10;
    j["feed"] = feed;  // what the dashboard may request on /alerts, and whether it needs ?token=
    j["scoring"] = scoring;
    j["models"] = model_info;
    j["caution"] = model_caution;  // null, or one sentence to show next to the alerts
    return j;
  });
  if (cfg.server.dashboard) (*srv)->set_page_provider(web::make_dashboard({cfg.server.token, thumbnails, alert_log}));
  if (auto st = (*srv)->start(); !st.ok()) return fail(st);
  log->info("serving ws://{}/alerts, http://{}/healthz, /metrics{}; {} stream(s), models {} on {}", (*srv)->address(),
            (*srv)->address(), cfg.server.dashboard ? ", dashboard /" : "", streams.size(), (*models)->names().size(),
            backend_name((*models)->backend()));
  if (auto st = monitor.start(); !st.ok()) return fail(st);

  const auto deadline = o.duration_s > 0 ? started + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                          std::chrono::duration<double>(o.duration_s))
                                         : std::chrono::steady_clock::time_point::max();
  while (std::chrono::steady_clock::now() < deadline) {
    if (const int sig = next_stop_signal(sigs, 200)) {
      log->info("{}: stopping", signal_name(sig));
      break;
    }
  }
  // Order: no new frames, then the last crops are scored and open alerts closed (alert_end), then the
  // sinks drain, then clients get a close frame.
  ShutdownWatch watch(sigs, log);
  monitor.stop();
  watch.step("sinks");
  bus.flush();
  watch.step("server");
  (*srv)->stop();
  watch.finish();
  log->info("stopped cleanly");
  return kExitOk;
}

}  // namespace

void register_watch(CLI::App& root, GlobalOptions& g, int* exit_code) {
  auto o = std::make_shared<WatchOptions>();
  CLI::App* cmd = root.add_subcommand(
      "watch", "Monitor live streams; alerts on ws://HOST:PORT/alerts, /healthz, /metrics, dashboard /");
  cmd->add_option("--config", o->config_path, "YAML config (see examples/monitor.yaml)")->required();
  cmd->add_option("--listen", o->listen, "Override server.listen, e.g. 127.0.0.1:0 for any free port");
  cmd->add_option("--duration", o->duration_s, "Stop after this many seconds (0 = until SIGINT/SIGTERM)");
  cmd->footer("Exit codes: 0 clean stop (SIGINT/SIGTERM or --duration), 2 bad config or models, or a second\n"
              "SIGINT/SIGTERM during the stop (exits at once).");
  cmd->callback([&g, o, exit_code] { *exit_code = run(g, *o); });
}

}  // namespace dfm::app
