// Synchronous per-frame analysis of one stream; see frame_analyzer.h.
#include "dfm/pipeline/frame_analyzer.h"

#include "dfm/pipeline/follow.h"
#include "stage_util.h"

namespace dfm {

Status validate_frame_analyzer_options(const FrameAnalyzerOptions& o) {
  if (o.detect_every < 1 || o.detect_every > 100) {
    return InvalidArgument("detector.detect_every (" + stage_util::num(o.detect_every) + ") must be within 1..100");
  }
  DFM_RETURN_IF_ERROR(validate_tracker_options(o.tracker));
  return validate_scoring_options(o.smoothing, o.alert);
}

Result<std::unique_ptr<FrameAnalyzer>> FrameAnalyzer::create(std::shared_ptr<const ModelSet> models,
                                                             const FrameAnalyzerOptions& options) {
  DFM_RETURN_IF_ERROR(validate_frame_analyzer_options(options));
  if (!models) return InvalidArgument("frame analyzer: no models");
  DFM_ASSIGN_OR_RETURN(FaceTracker tracker, make_tracker(options.tracker));
  std::unique_ptr<FrameAnalyzer> a(new FrameAnalyzer(models, options, std::move(tracker)));
  DFM_ASSIGN_OR_RETURN(a->detector_, make_face_detector(options.detector));
  DFM_ASSIGN_OR_RETURN(a->runner_, EnsembleRunner::create(models));
  return a;
}

Result<FrameAnalysis> FrameAnalyzer::process(const Frame& frame) {
  stream_ = frame.stream;
  const std::string where = "stream \"" + frame.stream + "\" at " + stage_util::num(frame.pts_s) + " s: ";
  auto found = finder_.find(*detector_, tracker_, frame.bgr);
  if (!found.ok()) return found.status().with_context(where);
  std::vector<FaceDetection> faces = std::move(found).value();
  // Score before touching the tracker so that a failed inference leaves this stream's state as it was.
  std::vector<FaceScore> scores;
  if (!faces.empty()) {
    std::vector<cv::Mat> crops;
    crops.reserve(faces.size());
    for (const auto& f : faces) crops.push_back(align_face(frame.bgr, f, options_.align));
    auto r = runner_->score(crops);
    if (!r.ok()) return r.status().with_context(where);
    scores = std::move(r).value();
  }

  FrameAnalysis out;
  const std::vector<int> ids = tracker_.update(frame.pts_s, faces);
  for (int id : tracker_.expire(frame.pts_s)) finish_track(id, &out.events);

  const int64_t now = now_unix_ms();
  const auto& loaded = models_->models();
  for (size_t i = 0; i < faces.size(); ++i) {
    const int id = ids[i];
    auto sit = scorers_.find(id);
    if (sit == scorers_.end()) {
      sit = scorers_.emplace(id, make_track_scorer(options_.smoothing, options_.alert).value()).first;  // validated
    }
    const FaceScore& fs = scores[i];
    const ScoreUpdate u = sit->second.update(frame.pts_s, fs.ensemble);
    out.faces.push_back({id, faces[i].box, fs, u.smoothed, sit->second.alert_open()});

    Event e;
    e.time_ms = now;
    e.stream = frame.stream;
    e.pts_s = frame.pts_s;
    e.track = id;
    e.score = u.smoothed;
    e.raw = fs.ensemble;
    for (size_t k = 0; k < fs.per_model.size() && k < loaded.size(); ++k)
      e.models[loaded[k].card.name] = fs.per_model[k];
    e.bbox = faces[i].box;
    if (u.event == ScoreEvent::kAlertStart) {
      Event a = e;
      a.type = EventType::kAlertStart;
      out.events.push_back(std::move(a));
    } else if (u.event == ScoreEvent::kAlertEnd) {
      Event a = e;
      a.type = EventType::kAlertEnd;
      a.duration_s = u.duration_s;
      a.peak = u.peak;
      out.events.push_back(std::move(a));
    }
    if (options_.emit_scores) {
      e.type = EventType::kScore;
      out.events.push_back(std::move(e));
    }
  }
  return out;
}

void FrameAnalyzer::finish_track(int id, std::vector<Event>* out) {
  auto it = scorers_.find(id);
  if (it == scorers_.end()) return;
  const ScoreUpdate u = it->second.finish(it->second.stats().last_s);
  if (u.event == ScoreEvent::kAlertEnd) {
    Event e;
    e.type = EventType::kAlertEnd;
    e.time_ms = now_unix_ms();
    e.stream = stream_;
    e.track = id;
    e.pts_s = u.end_s;
    e.score = u.smoothed;
    e.duration_s = u.duration_s;
    e.peak = u.peak;
    out->push_back(std::move(e));
  }
  scorers_.erase(it);
}

std::vector<Event> FrameAnalyzer::close() {
  std::vector<Event> out;
  for (int id : tracker_.close_all()) finish_track(id, &out);
  // Tracks that never got a score have no scorer; any scorer left belongs to no live track.
  while (!scorers_.empty()) finish_track(scorers_.begin()->first, &out);
  finder_.reset();
  return out;
}

}  // namespace dfm
