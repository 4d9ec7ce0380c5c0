// Per-frame analysis of one stream for callers that own their frames (the GStreamer element):
// detect (every Nth frame) or follow, track, align, ensemble, per-track EMA + hysteresis -> events.
// A stage: create(options) -> process(frame) per sampled frame -> close() at end of stream; no threads.
#pragma once

#include <map>
#include <memory>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "dfm/common/status.h"
#include "dfm/detectors/face.h"
#include "dfm/models/models.h"
#include "dfm/pipeline/event.h"
#include "dfm/pipeline/follow.h"
#include "dfm/pipeline/frame.h"
#include "dfm/pipeline/scoring.h"
#include "dfm/pipeline/tracker.h"

namespace dfm {

struct FrameAnalyzerOptions {
  int detect_every = 5;     // detector on every Nth processed frame; landmarks-only following between
  bool emit_scores = true;  // a `score` event per scored face (alerts are always emitted)
  DetectorOptions detector;
  AlignOptions align;
  TrackerOptions tracker;
  SmoothingOptions smoothing;
  AlertOptions alert;
};

// detect_every within 1..100, plus the tracker and scoring ranges (messages name the config keys).
Status validate_frame_analyzer_options(const FrameAnalyzerOptions& options);

// One scored face of a processed frame.
struct AnalyzedFace {
  int track = 0;
  cv::Rect bbox;        // frame pixels
  FaceScore score;      // per-model and ensemble P(fake) of this frame
  double smoothed = 0;  // the track's EMA after this frame
  bool alert = false;   // the track has an open alert after this frame
};

struct FrameAnalysis {
  std::vector<AnalyzedFace> faces;
  // In emission order: alert_end of tracks that expired, then per face alert_start/alert_end before
  // its score. seq is 0 (the publisher numbers them); time_ms is set.
  std::vector<Event> events;
};

// Same per-frame semantics as the live monitor (monitor.cpp), run synchronously: a face's events come
// out of the process() call that saw it. Not thread-safe; one per stream.
class FrameAnalyzer {
 public:
  static Result<std::unique_ptr<FrameAnalyzer>> create(std::shared_ptr<const ModelSet> models,
                                                       const FrameAnalyzerOptions& options);

  // frame.bgr: 8-bit BGR; frame.stream names the events. Fails on detector/inference errors (the
  // message names the stream and time); tracks and scores are then unchanged by this frame.
  Result<FrameAnalysis> process(const Frame& frame);

  // End of stream: closes every track; returns alert_end for each open alert. process() may be called
  // again afterwards (new tracks, new ids).
  std::vector<Event> close();

  const ModelSet& models() const { return *models_; }

 private:
  FrameAnalyzer(std::shared_ptr<const ModelSet> models, const FrameAnalyzerOptions& options, FaceTracker tracker)
      : options_(options), models_(std::move(models)), tracker_(std::move(tracker)), finder_(options.detect_every) {}
  void finish_track(int id, std::vector<Event>* out);

  FrameAnalyzerOptions options_;
  std::shared_ptr<const ModelSet> models_;
  std::unique_ptr<FaceDetector> detector_;
  std::unique_ptr<EnsembleRunner> runner_;
  FaceTracker tracker_;
  std::map<int, TrackScorer> scorers_;
  std::string stream_;  // of the last processed frame, for close()
  FaceFinder finder_;
};

}  // namespace dfm
