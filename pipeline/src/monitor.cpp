// Live monitor: wiring of sources, analysis workers and the shared inference worker (see monitor.h).
#include "dfm/pipeline/monitor.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "dfm/common/log.h"
#include "dfm/pipeline/follow.h"

namespace dfm {

namespace {

using Clock = std::chrono::steady_clock;

int64_t now_ns() { return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count(); }

// A face crop on its way to inference, or a note that a track ended (so its open alert is closed in
// order with that stream's scores).
struct CropItem {
  bool expire = false;
  size_t stream = 0;
  int track = 0;
  double pts_s = 0;
  int64_t arrival_ns = 0;
  cv::Rect bbox;
  cv::Mat crop;
};

// Bounded FIFO between analysis and inference. Full -> the oldest crop is dropped (live data ages fast);
// track-end notes are never dropped, they are tiny and alerts depend on them.
class CropQueue {
 public:
  explicit CropQueue(size_t capacity) : capacity_(std::max<size_t>(capacity, 1)) {}

  // Returns the stream index of a dropped crop, or -1.
  long push(CropItem item) {
    std::lock_guard<std::mutex> lock(mu_);
    long dropped = -1;
    if (!item.expire && crops_ >= capacity_) {
      for (auto it = q_.begin(); it != q_.end(); ++it) {
        if (!it->expire) {
          dropped = static_cast<long>(it->stream);
          q_.erase(it);
          --crops_;
          ++dropped_;
          break;
        }
      }
    }
    if (!item.expire) ++crops_;
    q_.push_back(std::move(item));
    high_water_ = std::max<int64_t>(high_water_, static_cast<int64_t>(q_.size()));
    cv_.notify_one();
    return dropped;
  }

  // Up to `max` crops (plus any track-end notes among them), waiting up to `deadline` for the batch to
  // fill once the first item is there. Empty result = closed and drained.
  std::vector<CropItem> pop_batch(size_t max, std::chrono::milliseconds deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !q_.empty() || closed_; });
    if (q_.empty()) return {};
    const auto until = Clock::now() + deadline;
    cv_.wait_until(lock, until, [&] { return crops_ >= max || closed_; });
    std::vector<CropItem> out;
    size_t n = 0;
    while (!q_.empty() && (n < max || q_.front().expire)) {
      if (!q_.front().expire) {
        ++n;
        --crops_;
      }
      out.push_back(std::move(q_.front()));
      q_.pop_front();
    }
    return out;
  }

  void close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    cv_.notify_all();
  }
  int64_t depth() const {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<int64_t>(q_.size());
  }
  int64_t high_water() const {
    std::lock_guard<std::mutex> lock(mu_);
    return high_water_;
  }
  int64_t dropped() const {
    std::lock_guard<std::mutex> lock(mu_);
    return dropped_;
  }

 private:
  const size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<CropItem> q_;
  size_t crops_ = 0;
  int64_t high_water_ = 0, dropped_ = 0;
  bool closed_ = false;
};

size_t bucket_of(double v) {
  const auto& b = latency_buckets_s();
  return static_cast<size_t>(std::lower_bound(b.begin(), b.end(), v) - b.begin());
}

}  // namespace

const std::vector<double>& latency_buckets_s() {
  static const std::vector<double> b = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0};
  return b;
}

Status validate_monitor_options(const MonitorOptions& o) {
  if (!(o.scoring_fps > 0) || o.scoring_fps > 60) return InvalidArgument("scoring.fps: must be within (0, 60]");
  if (o.detect_every < 1 || o.detect_every > 100) return InvalidArgument("detector.detect_every: must be within 1..100");
  if (o.batch < 1 || o.batch > 64) return InvalidArgument("models.batch: must be within 1..64");
  if (o.batch_deadline_ms < 0 || o.batch_deadline_ms > 1000) return InvalidArgument("batch deadline: must be within 0..1000 ms");
  if (o.crop_queue < 1) return InvalidArgument("crop queue: must be >= 1");
  if (o.analysis_threads < 1 || o.analysis_threads > 16) return InvalidArgument("analysis threads: must be within 1..16");
  DFM_RETURN_IF_ERROR(validate_tracker_options(o.tracker));
  DFM_RETURN_IF_ERROR(validate_scoring_options(o.smoothing, o.alert));
  return Status::Ok();
}

struct Monitor::Impl {
  struct Stream {
    LiveSourceOptions options;
    std::unique_ptr<LiveSource> source;
    std::unique_ptr<FaceTracker> tracker;  // analysis worker only
    FaceFinder finder{1};                  // analysis worker only; set by create()
    std::map<int, TrackScorer> scorers;    // inference worker only
    std::atomic<int64_t> analyzed{0}, faces{0}, crops_dropped{0}, detect_errors{0};
    std::atomic<int> active_tracks{0}, open_alerts{0};
    std::mutex fps_mu;
    std::deque<int64_t> recent_ns;  // analysed-frame times of the last few seconds
  };

  MonitorOptions opt;
  std::shared_ptr<const ModelSet> models;
  EventFn on_event;
  std::vector<std::unique_ptr<Stream>> streams;
  std::vector<std::unique_ptr<FaceDetector>> detectors;  // one per analysis worker
  std::unique_ptr<EnsembleRunner> runner;
  CropQueue crops{64};
  std::atomic<bool> stopping{false};
  std::vector<std::thread> analysis;
  std::thread inference;
  bool started = false;

  mutable std::mutex stats_mu;
  int64_t batches = 0, scored = 0, latency_n = 0;
  double infer_sum = 0, latency_sum = 0;
  std::vector<int64_t> infer_counts, latency_counts;

  explicit Impl(size_t crop_capacity) : crops(crop_capacity) {}

  void emit(Event e) {
    if (e.time_ms == 0) e.time_ms = now_unix_ms();
    if (on_event) on_event(std::move(e));
  }

  void analysis_loop(size_t worker) {
    FaceDetector& det = *detectors[worker];
    std::vector<size_t> mine;
    for (size_t i = worker; i < streams.size(); i += detectors.size()) mine.push_back(i);
    const auto wait = std::chrono::milliseconds(std::max<int>(1, 20 / static_cast<int>(std::max<size_t>(mine.size(), 1))));
    while (!stopping.load()) {
      for (size_t idx : mine) {
        if (stopping.load()) break;
        auto frame = streams[idx]->source->pop(wait);
        if (frame) analyze(idx, det, *frame);
      }
    }
  }

  void analyze(size_t idx, FaceDetector& det, const Frame& frame) {
    Stream& s = *streams[idx];
    std::vector<FaceDetection> faces;
    auto found = s.finder.find(det, *s.tracker, frame.bgr);
    if (found.ok()) {
      faces = std::move(found).value();
    } else {  // the frame counts as analysed with no faces; said, counted, never silent
      const int64_t n = ++s.detect_errors;
      if ((n & (n - 1)) == 0) {  // 1st, 2nd, 4th, ...: a persistent fault does not flood the log
        get_logger(s.options.id)->error("face detection failed ({} so far): {}", n, found.status().message());
      }
    }
    std::vector<int> ids = s.tracker->update(frame.pts_s, faces);
    for (int id : s.tracker->expire(frame.pts_s)) {
      CropItem note;
      note.expire = true;
      note.stream = idx;
      note.track = id;
      note.pts_s = frame.pts_s;
      crops.push(std::move(note));
    }
    s.active_tracks.store(static_cast<int>(s.tracker->active_tracks().size()));
    for (size_t i = 0; i < faces.size(); ++i) {
      CropItem item;
      item.stream = idx;
      item.track = ids[i];
      item.pts_s = frame.pts_s;
      item.arrival_ns = frame.arrival_ns ? frame.arrival_ns : now_ns();
      item.bbox = faces[i].box;
      item.crop = align_face(frame.bgr, faces[i], opt.align);
      const long dropped = crops.push(std::move(item));
      if (dropped >= 0) streams[static_cast<size_t>(dropped)]->crops_dropped++;
    }
    s.analyzed++;
    std::lock_guard<std::mutex> lock(s.fps_mu);
    const int64_t t = now_ns();
    s.recent_ns.push_back(t);
    while (!s.recent_ns.empty() && t - s.recent_ns.front() > 5'000'000'000LL) s.recent_ns.pop_front();
  }

  void inference_loop() {
    auto log = get_logger("monitor");
    while (true) {
      std::vector<CropItem> batch = crops.pop_batch(static_cast<size_t>(opt.batch), std::chrono::milliseconds(opt.batch_deadline_ms));
      if (batch.empty()) break;
      std::vector<cv::Mat> mats;
      for (const auto& it : batch) {
        if (!it.expire) mats.push_back(it.crop);
      }
      std::vector<FaceScore> scores;
      if (!mats.empty()) {
        const int64_t t0 = now_ns();
        auto r = runner->score(mats);
        const double dt = static_cast<double>(now_ns() - t0) / 1e9;
        if (!r.ok()) {
          log->error("inference failed, {} crops lost: {}", mats.size(), r.status().message());
          continue;
        }
        scores = std::move(r).value();
        if (opt.observe_inference) opt.observe_inference(dt);
        std::lock_guard<std::mutex> lock(stats_mu);
        ++batches;
        scored += static_cast<int64_t>(mats.size());
        infer_sum += dt;
        infer_counts[bucket_of(dt)]++;
      }
      size_t k = 0;
      for (auto& it : batch) {
        if (it.expire) {
          finish_track(it.stream, it.track);
        } else {
          score_face(it, scores[k++]);
        }
      }
    }
    // Drained: close what is still open so every alert_start has its alert_end.
    for (size_t i = 0; i < streams.size(); ++i) {
      std::vector<int> ids;
      for (const auto& [id, sc] : streams[i]->scorers) ids.push_back(id);
      for (int id : ids) finish_track(i, id);
    }
  }

  void finish_track(size_t idx, int track) {
    Stream& s = *streams[idx];
    auto it = s.scorers.find(track);
    if (it == s.scorers.end()) return;
    ScoreUpdate u = it->second.finish(it->second.stats().last_s);
    if (u.event == ScoreEvent::kAlertEnd) {
      Event e;
      e.type = EventType::kAlertEnd;
      e.stream = s.options.id;
      e.track = track;
      e.pts_s = u.end_s;
      e.score = u.smoothed;
      e.duration_s = u.duration_s;
      e.peak = u.peak;
      s.open_alerts--;
      emit(std::move(e));
    }
    s.scorers.erase(it);
  }

  void score_face(const CropItem& it, const FaceScore& fs) {
    Stream& s = *streams[it.stream];
    auto sit = s.scorers.find(it.track);
    if (sit == s.scorers.end()) {
      sit = s.scorers.emplace(it.track, make_track_scorer(opt.smoothing, opt.alert).value()).first;  // validated
    }
    ScoreUpdate u = sit->second.update(it.pts_s, fs.ensemble);
    s.faces++;
    Event e;
    e.stream = s.options.id;
    e.pts_s = it.pts_s;
    e.track = it.track;
    e.score = u.smoothed;
    e.raw = fs.ensemble;
    for (size_t k = 0; k < fs.per_model.size() && k < models->models().size(); ++k) e.models[models->models()[k].card.name] = fs.per_model[k];
    e.bbox = it.bbox;
    {
      const double lat = static_cast<double>(now_ns() - it.arrival_ns) / 1e9;
      if (opt.observe_frame_to_event) opt.observe_frame_to_event(lat);
      std::lock_guard<std::mutex> lock(stats_mu);
      latency_sum += lat;
      latency_counts[bucket_of(lat)]++;
      ++latency_n;
    }
    if (u.event == ScoreEvent::kAlertStart) {
      Event a = e;
      a.type = EventType::kAlertStart;
      s.open_alerts++;
      // Before emit, so the thumbnail exists by the time a client reacts to the event.
      if (opt.observe_alert_start) opt.observe_alert_start(a, it.crop);
      emit(std::move(a));
    } else if (u.event == ScoreEvent::kAlertEnd) {
      Event a = e;
      a.type = EventType::kAlertEnd;
      a.duration_s = u.duration_s;
      a.peak = u.peak;
      s.open_alerts--;
      emit(std::move(a));
    }
    if (opt.emit_scores) {
      e.type = EventType::kScore;
      emit(std::move(e));
    }
  }
};

Monitor::Monitor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Monitor::~Monitor() { stop(); }

Result<std::unique_ptr<Monitor>> Monitor::create(std::shared_ptr<const ModelSet> models, const MonitorOptions& options,
                                                 const std::vector<LiveSourceOptions>& streams, EventFn on_event) {
  DFM_RETURN_IF_ERROR(validate_monitor_options(options));
  if (streams.empty()) return InvalidArgument("streams: at least one stream is required");
  auto impl = std::make_unique<Impl>(static_cast<size_t>(options.crop_queue));
  impl->opt = options;
  impl->models = models;
  impl->on_event = std::move(on_event);
  impl->infer_counts.assign(latency_buckets_s().size() + 1, 0);
  impl->latency_counts.assign(latency_buckets_s().size() + 1, 0);
  Impl* raw = impl.get();
  // More streams than cores: frame-threaded decoders only add hand-offs (see decoder_threads).
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const bool one_decoder_thread = streams.size() >= cores;
  for (const auto& so : streams) {
    auto s = std::make_unique<Impl::Stream>();
    s->options = so;
    if (one_decoder_thread && s->options.decoder_threads == 0) s->options.decoder_threads = 1;
    s->options.sample_fps = options.scoring_fps;
    const std::string id = so.id;
    auto src = LiveSource::create(s->options, [raw, id](const SourceState& st) {
      Event e;
      e.type = EventType::kStreamState;
      e.stream = id;
      e.state = st.state;
      e.reason = st.reason;
      e.retry_in_s = st.retry_in_s;
      raw->emit(std::move(e));
    });
    if (!src.ok()) return src.status().with_context("stream \"" + so.id + "\": ");
    s->source = std::move(src).value();
    DFM_ASSIGN_OR_RETURN(FaceTracker tracker, make_tracker(options.tracker));
    s->tracker = std::make_unique<FaceTracker>(std::move(tracker));
    s->finder = FaceFinder(options.detect_every);
    impl->streams.push_back(std::move(s));
  }
  const int workers = std::min<int>(options.analysis_threads, static_cast<int>(streams.size()));
  for (int i = 0; i < workers; ++i) {
    DFM_ASSIGN_OR_RETURN(auto det, make_face_detector(options.detector));
    impl->detectors.push_back(std::move(det));
  }
  DFM_ASSIGN_OR_RETURN(impl->runner, EnsembleRunner::create(models));
  return std::unique_ptr<Monitor>(new Monitor(std::move(impl)));
}

Status Monitor::start() {
  if (impl_->started) return Status::Ok();
  impl_->started = true;
  impl_->inference = std::thread([this] { impl_->inference_loop(); });
  for (size_t i = 0; i < impl_->detectors.size(); ++i) impl_->analysis.emplace_back([this, i] { impl_->analysis_loop(i); });
  for (auto& s : impl_->streams) s->source->start();
  return Status::Ok();
}

void Monitor::stop() {
  if (!impl_ || !impl_->started) return;
  impl_->started = false;
  for (auto& s : impl_->streams) s->source->request_stop();  // all tear down in parallel
  for (auto& s : impl_->streams) s->source->stop();
  impl_->stopping.store(true);
  for (auto& t : impl_->analysis) t.join();
  impl_->analysis.clear();
  impl_->crops.close();
  if (impl_->inference.joinable()) impl_->inference.join();
}

MonitorStats Monitor::stats() const {
  MonitorStats out;
  const int64_t t = now_ns();
  for (const auto& s : impl_->streams) {
    StreamStats ss;
    ss.id = s->options.id;
    ss.uri = s->options.uri;
    ss.state = s->source->state();
    ss.source = s->source->stats();
    ss.frames_analyzed = s->analyzed.load();
    ss.faces_scored = s->faces.load();
    ss.crops_dropped = s->crops_dropped.load();
    ss.detect_errors = s->detect_errors.load();
    ss.active_tracks = s->active_tracks.load();
    ss.open_alerts = s->open_alerts.load();
    {
      std::lock_guard<std::mutex> lock(s->fps_mu);
      if (s->recent_ns.size() >= 2) {
        const double span = static_cast<double>(t - s->recent_ns.front()) / 1e9;
        ss.analyzed_fps = span > 0 ? static_cast<double>(s->recent_ns.size() - 1) / std::max(span, 1.0) : 0;
      }
    }
    out.streams.push_back(ss);
  }
  out.crop_queue_depth = impl_->crops.depth();
  out.crop_queue_high_water = impl_->crops.high_water();
  out.crops_dropped = impl_->crops.dropped();
  std::lock_guard<std::mutex> lock(impl_->stats_mu);
  out.inference_batches = impl_->batches;
  out.inference_crops = impl_->scored;
  out.inference_seconds_sum = impl_->infer_sum;
  out.inference_latency_counts = impl_->infer_counts;
  out.frame_to_event_seconds_sum = impl_->latency_sum;
  out.frame_to_event_counts = impl_->latency_counts;
  out.frame_to_event_n = impl_->latency_n;
  return out;
}

}  // namespace dfm
