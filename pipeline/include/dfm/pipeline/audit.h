// Offline audit of one video: decode -> sample -> detect/track -> align -> ensemble -> smooth -> verdict.
// One Auditor per worker thread (it owns a detector and an EnsembleRunner); the ModelSet is shared.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "dfm/common/status.h"
#include "dfm/detectors/face.h"
#include "dfm/models/models.h"
#include "dfm/pipeline/scoring.h"
#include "dfm/pipeline/tracker.h"

namespace dfm {

struct AuditOptions {
  double sample_fps = 5.0;       // analysed frames per second of media time
  int detect_every = 5;          // run the detector on every Nth analysed frame; track (landmarks only) between
  double stall_timeout_s = 20.0; // a decode that produces nothing for this long is an error
  double threshold = 0.5;        // reported per-face label threshold (alerts use alert.on/off)
  int max_timeline = 20000;      // timeline points kept per input (the rest still count in tracks)
  int batch = 0;                 // crops per forward pass, collected across frames; 0 = the ModelSet's batch
  DetectorOptions detector;
  AlignOptions align;
  TrackerOptions tracker;
  SmoothingOptions smoothing;
  AlertOptions alert;
  VerdictOptions verdict;
};

Status validate_audit_options(const AuditOptions& options);

struct TimelinePoint {
  double t = 0;
  int track = 0;
  cv::Rect bbox;
  std::vector<float> models;  // P(fake) per model, ModelSet order
  float ensemble = 0;
  float smoothed = 0;
};

struct AlertRecord {
  int track = 0;
  double start_s = 0, end_s = 0, peak = 0;
};

struct TrackReport {
  TrackSummary summary;
  cv::Mat best_crop;   // aligned crop with the highest ensemble score (thumbnail)
  double best_score = -1;
  double best_t = 0;
};

struct InputReport {
  std::string source;
  bool ok = false;
  std::string error;  // when !ok
  Verdict verdict = Verdict::kNoFaces;
  double score = 0;
  double duration_s = 0;
  int64_t frames_decoded = 0, frames_analyzed = 0, faces_scored = 0;
  std::vector<TrackReport> tracks;
  std::vector<TimelinePoint> timeline;
  std::vector<AlertRecord> alerts;
  double elapsed_s = 0;
};

struct AuditProgress {
  const std::string* source;
  double media_s;     // current position
  double duration_s;  // -1 if unknown
  int64_t frames, faces;
};

class Auditor {
 public:
  static Result<std::unique_ptr<Auditor>> create(std::shared_ptr<const ModelSet> models, const AuditOptions& options);
  // Never fails as a call: an unreadable input comes back with ok=false and an error naming it.
  InputReport audit(const std::string& source, const std::function<void(const AuditProgress&)>& progress = {},
                    const std::atomic<bool>* cancel = nullptr);

 private:
  Auditor() = default;
  AuditOptions options_;
  std::shared_ptr<const ModelSet> models_;
  std::unique_ptr<FaceDetector> detector_;
  std::unique_ptr<EnsembleRunner> runner_;
};

}  // namespace dfm
