// Live monitoring of many streams: per-stream sources and analysis, one shared inference worker.
//
// Threads (all owned here, stopped by stop()):
//   LiveSource (per stream)  GStreamer + supervisor threads; sampled BGR frames -> bounded FrameQueue
//   analysis workers (N)     each owns a FaceDetector and a fixed subset of streams (so one stream's
//                            frames are analysed in order): detect/track, align -> CropQueue
//   inference worker (1)     owns the EnsembleRunner: batches crops across streams (up to `batch` or
//                            `batch_deadline_ms`), then per-track EMA + hysteresis -> events
// Events go to the callback given at creation, from the inference worker or a source's thread; the
// callback must not block (the event bus hands them to sinks with their own queues).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dfm/common/status.h"
#include "dfm/detectors/face.h"
#include "dfm/models/models.h"
#include "dfm/pipeline/event.h"
#include "dfm/pipeline/live_source.h"
#include "dfm/pipeline/scoring.h"
#include "dfm/pipeline/tracker.h"

namespace dfm {

struct MonitorOptions {
  double scoring_fps = 5.0;      // analysed frames per second per stream
  int detect_every = 5;          // detector on every Nth analysed frame; landmarks-only tracking between
  int batch = 8;                 // crops per inference call at most
  int batch_deadline_ms = 20;    // wait this long for more crops before running a partial batch
  int crop_queue = 64;           // crops waiting for inference; full -> oldest dropped (counted)
  int analysis_threads = 1;      // analysis workers
  bool emit_scores = true;       // publish a `score` event per scored face (sinks filter by type)
  // Optional metric hooks, called from the inference worker: seconds per inference call, and seconds
  // from a frame leaving its decoder to its score event.
  std::function<void(double)> observe_inference;
  std::function<void(double)> observe_frame_to_event;
  // Optional, from the inference worker just before an alert_start event is emitted: that event and the
  // aligned face crop that raised it (BGR, valid during the call only). Lets the dashboard keep a
  // thumbnail without events carrying images. Must be quick: it runs on the inference path.
  std::function<void(const Event&, const cv::Mat& crop)> observe_alert_start;
  DetectorOptions detector;
  AlignOptions align;
  TrackerOptions tracker;
  SmoothingOptions smoothing;
  AlertOptions alert;
};

Status validate_monitor_options(const MonitorOptions& options);

// Latency histogram bucket bounds (seconds) shared by the stats and /metrics.
const std::vector<double>& latency_buckets_s();

struct StreamStats {
  std::string id;
  std::string uri;
  SourceState state;
  LiveSourceStats source;
  int64_t frames_analyzed = 0;
  int64_t faces_scored = 0;
  int64_t crops_dropped = 0;     // crops of this stream dropped before inference
  int64_t detect_errors = 0;     // frames the face detector failed on (logged; analysed as no faces)
  int active_tracks = 0;
  int open_alerts = 0;
  double analyzed_fps = 0;       // over the last few seconds
};

struct MonitorStats {
  std::vector<StreamStats> streams;
  int64_t crop_queue_depth = 0, crop_queue_high_water = 0, crops_dropped = 0;
  int64_t inference_batches = 0, inference_crops = 0;
  double inference_seconds_sum = 0;
  std::vector<int64_t> inference_latency_counts;  // per latency_buckets_s() bucket (non-cumulative) + overflow
  double frame_to_event_seconds_sum = 0;           // frame arrival -> score event, all streams
  std::vector<int64_t> frame_to_event_counts;      // same buckets
  int64_t frame_to_event_n = 0;
};

class Monitor {
 public:
  using EventFn = std::function<void(Event)>;
  static Result<std::unique_ptr<Monitor>> create(std::shared_ptr<const ModelSet> models, const MonitorOptions& options,
                                                 const std::vector<LiveSourceOptions>& streams, EventFn on_event);
  ~Monitor();
  Status start();
  // Stops sources, lets queued crops finish, closes open alerts (alert_end), joins every thread.
  void stop();
  MonitorStats stats() const;

 private:
  struct Impl;
  explicit Monitor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dfm
