// EMA smoothing, alert hysteresis per track, and the verdict over an input's tracks.
#include "dfm/pipeline/scoring.h"

#include <algorithm>
#include <cmath>

#include "stage_util.h"

namespace dfm {
namespace {

using stage_util::kTimeEps;
using stage_util::num;

}  // namespace

const char* event_name(ScoreEvent event) {
  switch (event) {
    case ScoreEvent::kNone: return "none";
    case ScoreEvent::kAlertStart: return "alert_start";
    case ScoreEvent::kAlertEnd: return "alert_end";
  }
  return "none";
}

const char* verdict_name(Verdict verdict) {
  switch (verdict) {
    case Verdict::kNoFaces: return "no_faces";
    case Verdict::kReal: return "real";
    case Verdict::kFake: return "fake";
  }
  return "no_faces";
}

Status validate_scoring_options(const SmoothingOptions& s, const AlertOptions& a) {
  // Comparisons are written so that NaN fails them.
  if (!(s.alpha > 0.0 && s.alpha <= 1.0))
    return InvalidArgument("scoring.smoothing.alpha (" + num(s.alpha) + ") must be in (0, 1]");
  if (!(a.on >= 0.0 && a.on <= 1.0))
    return InvalidArgument("scoring.alert.on (" + num(a.on) + ") must be in [0, 1]");
  if (!(a.off >= 0.0 && a.off <= 1.0))
    return InvalidArgument("scoring.alert.off (" + num(a.off) + ") must be in [0, 1]");
  if (!(a.off < a.on))
    return InvalidArgument("scoring.alert.off (" + num(a.off) + ") must be below scoring.alert.on (" + num(a.on) +
                           ")");
  if (!(a.min_duration_s >= 0.0) || !std::isfinite(a.min_duration_s))
    return InvalidArgument("scoring.alert.min_duration_s (" + num(a.min_duration_s) + ") must be >= 0 seconds");
  return Status::Ok();
}

Result<TrackScorer> TrackScorer::Create(const SmoothingOptions& smoothing, const AlertOptions& alert) {
  DFM_RETURN_IF_ERROR(validate_scoring_options(smoothing, alert));
  return TrackScorer(smoothing, alert);
}

Result<TrackScorer> make_track_scorer(const SmoothingOptions& smoothing, const AlertOptions& alert) {
  return TrackScorer::Create(smoothing, alert);
}

ScoreUpdate TrackScorer::update(double t_s, double raw) {
  ScoreUpdate out;
  if (std::isnan(raw)) {
    out.smoothed = smoothed_;
    return out;
  }
  raw = std::clamp(raw, 0.0, 1.0);
  if (stats_.n > 0) t_s = std::max(t_s, stats_.last_s);

  smoothed_ = stats_.n == 0 ? raw : smoothing_.alpha * raw + (1.0 - smoothing_.alpha) * smoothed_;
  out.smoothed = smoothed_;

  if (stats_.n == 0) {
    stats_.first_s = t_s;
    stats_.max_raw = raw;
    stats_.max_smoothed = smoothed_;
    stats_.max_smoothed_s = t_s;
  }
  ++stats_.n;
  stats_.last_s = t_s;
  sum_raw_ += raw;
  sum_smoothed_ += smoothed_;
  stats_.mean_raw = sum_raw_ / stats_.n;
  stats_.mean_smoothed = sum_smoothed_ / stats_.n;
  stats_.max_raw = std::max(stats_.max_raw, raw);
  if (smoothed_ > stats_.max_smoothed) {
    stats_.max_smoothed = smoothed_;
    stats_.max_smoothed_s = t_s;
  }

  switch (state_) {
    case State::kIdle:
      if (smoothed_ < alert_.on) break;
      state_ = State::kPending;
      cross_s_ = t_s;
      alert_peak_ = smoothed_;
      [[fallthrough]];  // with min_duration_s = 0 the crossing sample confirms at once
    case State::kPending:
      if (smoothed_ < alert_.on) {  // must stay >= on without a break
        state_ = State::kIdle;
        break;
      }
      alert_peak_ = std::max(alert_peak_, smoothed_);
      if (t_s - cross_s_ + kTimeEps >= alert_.min_duration_s) {
        state_ = State::kActive;
        stats_.alert_open = true;
        out.event = ScoreEvent::kAlertStart;
        out.start_s = cross_s_;
        out.score = smoothed_;
        out.peak = alert_peak_;
      }
      break;
    case State::kActive:
      if (smoothed_ >= alert_.off) {
        alert_peak_ = std::max(alert_peak_, smoothed_);
        break;
      }
      state_ = State::kIdle;
      stats_.alert_open = false;
      AlertSpan span{cross_s_, t_s, t_s - cross_s_, alert_peak_};
      stats_.alerts.push_back(span);
      out.event = ScoreEvent::kAlertEnd;
      out.start_s = span.start_s;
      out.end_s = span.end_s;
      out.duration_s = span.duration_s;
      out.peak = span.peak;
      break;
  }
  return out;
}

ScoreUpdate TrackScorer::finish(double t_s) {
  ScoreUpdate out;
  out.smoothed = smoothed_;
  const State was = state_;
  state_ = State::kIdle;  // a pending (unconfirmed) alert is dropped
  if (was != State::kActive) return out;

  const double end = std::max(t_s, stats_.last_s);
  AlertSpan span{cross_s_, end, end - cross_s_, alert_peak_};
  stats_.alerts.push_back(span);
  stats_.alert_open = false;
  out.event = ScoreEvent::kAlertEnd;
  out.start_s = span.start_s;
  out.end_s = span.end_s;
  out.duration_s = span.duration_s;
  out.peak = span.peak;
  return out;
}

TrackSummary TrackScorer::summary(int id) const {
  TrackSummary s;
  s.id = id;
  s.first_s = stats_.first_s;
  s.last_s = stats_.last_s;
  s.n = stats_.n;
  if (stats_.n == 0) return s;
  const bool fake = !stats_.alerts.empty() || stats_.alert_open;
  s.verdict = fake ? Verdict::kFake : Verdict::kReal;
  // Banding by alert.on keeps the score consistent with the verdict (see header).
  s.score = fake ? std::max(stats_.mean_smoothed, alert_.on) : std::min(stats_.mean_smoothed, alert_.on);
  return s;
}

Status validate_verdict_options(const VerdictOptions& options) {
  if (options.min_track_samples < 1)
    return InvalidArgument("verdict.min_track_samples (" + std::to_string(options.min_track_samples) +
                           ") must be >= 1");
  return Status::Ok();
}

namespace {
// Higher score first; on a tie a fake track (so a fake verdict names a fake track), then the lower id.
bool better(const TrackSummary& a, const TrackSummary& b) {
  if (a.score != b.score) return a.score > b.score;
  const bool af = a.verdict == Verdict::kFake, bf = b.verdict == Verdict::kFake;
  if (af != bf) return af;
  return a.id < b.id;
}
}  // namespace

InputVerdict decide_verdict(const std::vector<TrackSummary>& tracks, const VerdictOptions& options) {
  const int min_n = std::max(1, options.min_track_samples);
  std::vector<const TrackSummary*> scored, qualifying;
  for (const TrackSummary& t : tracks) {
    if (t.n < 1) continue;
    scored.push_back(&t);
    if (t.n >= min_n) qualifying.push_back(&t);
  }
  InputVerdict v;
  if (scored.empty()) return v;  // no_faces
  if (qualifying.empty()) qualifying = scored;

  v.verdict = Verdict::kReal;
  const TrackSummary* best = nullptr;
  for (const TrackSummary* t : qualifying) {
    if (t->verdict == Verdict::kFake) v.verdict = Verdict::kFake;
    if (!best || better(*t, *best)) best = t;
  }
  v.score = best->score;
  v.track = best->id;
  return v;
}

}  // namespace dfm
