// Per-track score smoothing, alert hysteresis and the input verdict rule. Shared by the offline audit
// and the live monitor, so it is pure logic: no I/O, no threads, no clocks (times are passed in).
#pragma once

#include <vector>

#include "dfm/common/status.h"

namespace dfm {

// Config `scoring.smoothing`: exponential moving average of the ensemble P(fake) of one track.
// s_1 = x_1;  s_k = alpha * x_k + (1 - alpha) * s_{k-1}.  alpha in (0, 1]; 1 = no smoothing.
struct SmoothingOptions {
  double alpha = 0.3;
};

// Config `scoring.alert`: hysteresis on the smoothed score, 0 <= off < on <= 1.
// An alert starts once the smoothed score has stayed >= on continuously for min_duration_s (samples
// with smoothed < on in between restart the wait); its start_s is the time it first crossed `on`, and
// with min_duration_s = 0 the crossing sample starts it. It ends at the first sample with smoothed < off,
// so scores between off and on never toggle it, or at finish() when the track ends.
struct AlertOptions {
  double on = 0.7;
  double off = 0.4;
  double min_duration_s = 1.0;
};

// Errors name the key, e.g. "scoring.alert.off (0.8) must be below scoring.alert.on (0.7)".
Status validate_scoring_options(const SmoothingOptions& smoothing, const AlertOptions& alert);

enum class ScoreEvent { kNone, kAlertStart, kAlertEnd };
// "none", "alert_start", "alert_end" (the event feed's `type`).
const char* event_name(ScoreEvent event);

// One closed alert of a track (the audit report's `alerts` entries).
struct AlertSpan {
  double start_s = 0.0;     // first sample >= on
  double end_s = 0.0;       // first sample < off, or the time passed to finish()
  double duration_s = 0.0;  // end_s - start_s
  double peak = 0.0;        // max smoothed score in [start_s, end_s]
};

// Result of one scored sample.
struct ScoreUpdate {
  double smoothed = 0.0;
  ScoreEvent event = ScoreEvent::kNone;
  double start_s = 0.0;     // alert_start, alert_end
  double score = 0.0;       // alert_start: smoothed score at the sample that confirmed the alert
  double end_s = 0.0;       // alert_end
  double duration_s = 0.0;  // alert_end
  double peak = 0.0;        // alert_end: max smoothed over the alert (alert_start: max so far)
};

// Running summary of one track's scored samples.
struct TrackStats {
  int n = 0;                   // scored samples
  double first_s = 0.0;
  double last_s = 0.0;
  double mean_raw = 0.0;
  double mean_smoothed = 0.0;
  double max_raw = 0.0;
  double max_smoothed = 0.0;
  double max_smoothed_s = 0.0;  // when max_smoothed occurred (e.g. which crop to keep as thumbnail)
  std::vector<AlertSpan> alerts;  // closed alerts, in time order
  bool alert_open = false;        // an alert has started and not yet ended
};

enum class Verdict { kNoFaces, kReal, kFake };
// "no_faces", "real", "fake" (the audit report's `verdict`).
const char* verdict_name(Verdict verdict);

// One track as the verdict sees it (the audit report's `tracks` entries).
struct TrackSummary {
  int id = 0;
  double first_s = 0.0;
  double last_s = 0.0;
  int n = 0;                         // scored faces
  double score = 0.0;                // see TrackScorer::summary()
  Verdict verdict = Verdict::kReal;  // kFake iff the track had any alert
};

// Smooths one track's scores and raises/ends alerts. Feed samples in time order; a time earlier than
// the previous sample is treated as equal to it (durations are never negative). Raw scores are clamped
// to [0, 1]; a NaN score is ignored (returns the current smoothed score and no event).
class TrackScorer {
 public:
  static Result<TrackScorer> Create(const SmoothingOptions& smoothing, const AlertOptions& alert);

  ScoreUpdate update(double t_s, double raw);

  // Closes an open alert at the track's end (EOS, or the tracker expired it: pass the track's last_s)
  // and returns its alert_end; an alert still waiting for min_duration_s is dropped. Returns kNone when
  // nothing was open. The scorer may be fed again afterwards (a new alert needs a new crossing).
  ScoreUpdate finish(double t_s);

  const TrackStats& stats() const { return stats_; }
  bool alert_open() const { return state_ == State::kActive; }

  // Track score, with m = mean of the track's smoothed scores (the EMA already damps single outliers, and
  // the mean over the whole track keeps one bright stretch from deciding the number alone):
  //   fake track (any alert, open or closed):  score = max(m, alert.on)
  //   real track (no alert):                   score = min(m, alert.on)
  // so every fake track scores >= alert.on >= every real track scored with the same options, and a
  // track's score never contradicts its verdict. n = 0 gives score 0, verdict real.
  TrackSummary summary(int id) const;

 private:
  enum class State { kIdle, kPending, kActive };
  TrackScorer(const SmoothingOptions& smoothing, const AlertOptions& alert)
      : smoothing_(smoothing), alert_(alert) {}

  SmoothingOptions smoothing_;
  AlertOptions alert_;
  State state_ = State::kIdle;
  double smoothed_ = 0.0;
  double cross_s_ = 0.0;     // first sample >= on of the pending/active alert
  double alert_peak_ = 0.0;  // max smoothed since cross_s_
  double sum_raw_ = 0.0;
  double sum_smoothed_ = 0.0;
  TrackStats stats_;
};

// Validated factory (same as TrackScorer::Create).
Result<TrackScorer> make_track_scorer(const SmoothingOptions& smoothing, const AlertOptions& alert);

struct VerdictOptions {
  // Tracks with fewer scored faces are ignored (detector false positives, faces crossing the frame edge)
  // unless no track has this many.
  int min_track_samples = 3;
};

// "verdict.min_track_samples (0) must be >= 1".
Status validate_verdict_options(const VerdictOptions& options);

struct InputVerdict {
  Verdict verdict = Verdict::kNoFaces;
  double score = 0.0;  // 0 for no_faces
  int track = 0;       // id of the track that gave the score; 0 for no_faces
};

// The input verdict rule:
//   scored     = tracks with n >= 1;  none -> no_faces, score 0, track 0.
//   qualifying = scored tracks with n >= min_track_samples; if there are none, all scored tracks.
//   verdict    = fake if any qualifying track is fake, else real.
//   score      = max score over the qualifying tracks, track = that track's id (ties: a fake track
//                first, then the lowest id).
// Within an input a fake verdict's score is therefore >= every qualifying real track's score; with
// summaries from TrackScorer (same options) it is the best fake track's score, >= alert.on, while a real
// input scores <= alert.on, so fake inputs never rank below real ones. min_track_samples < 1 acts as 1.
InputVerdict decide_verdict(const std::vector<TrackSummary>& tracks, const VerdictOptions& options);

}  // namespace dfm
