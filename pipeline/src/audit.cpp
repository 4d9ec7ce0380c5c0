// Offline audit of one input; see audit.h for the stage order.
#include "dfm/pipeline/audit.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>

#include "dfm/common/log.h"
#include "dfm/pipeline/decoder.h"
#include "dfm/pipeline/follow.h"

namespace dfm {

Status validate_audit_options(const AuditOptions& o) {
  if (!(o.sample_fps > 0) || o.sample_fps > 120) return InvalidArgument("--sample-fps: must be within (0, 120]");
  if (o.detect_every < 1 || o.detect_every > 100) return InvalidArgument("--detect-every: must be within 1..100");
  if (!(o.stall_timeout_s > 0)) return InvalidArgument("--timeout: must be > 0");
  if (o.batch < 0 || o.batch > 256) return InvalidArgument("--batch: must be within 0..256 (0 = the models' batch)");
  if (o.threshold < 0 || o.threshold > 1) return InvalidArgument("--threshold: must be within 0..1");
  DFM_RETURN_IF_ERROR(validate_tracker_options(o.tracker));
  DFM_RETURN_IF_ERROR(validate_scoring_options(o.smoothing, o.alert));
  DFM_RETURN_IF_ERROR(validate_verdict_options(o.verdict));
  return Status::Ok();
}

Result<std::unique_ptr<Auditor>> Auditor::create(std::shared_ptr<const ModelSet> models, const AuditOptions& options) {
  DFM_RETURN_IF_ERROR(validate_audit_options(options));
  std::unique_ptr<Auditor> a(new Auditor());
  a->options_ = options;
  a->models_ = models;
  DFM_ASSIGN_OR_RETURN(a->detector_, make_face_detector(options.detector));
  DFM_ASSIGN_OR_RETURN(a->runner_, EnsembleRunner::create(models));
  return a;
}


InputReport Auditor::audit(const std::string& source, const std::function<void(const AuditProgress&)>& progress,
                           const std::atomic<bool>* cancel) {
  const auto t0 = std::chrono::steady_clock::now();
  auto log = get_logger("audit");
  InputReport rep;
  rep.source = source;
  auto finish_elapsed = [&] {
    rep.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };

  DecodeOptions dopt;
  dopt.sample_fps = options_.sample_fps;
  dopt.stall_timeout_s = options_.stall_timeout_s;
  auto dec = VideoDecoder::open(source, dopt);
  if (!dec.ok()) {
    rep.error = dec.status().message();
    finish_elapsed();
    return rep;
  }
  auto tracker_r = make_tracker(options_.tracker);
  if (!tracker_r.ok()) {
    rep.error = tracker_r.status().message();
    return rep;
  }
  FaceTracker tracker = std::move(tracker_r).value();
  std::map<int, TrackScorer> scorers;
  std::map<int, TrackReport> tracks;
  double last_t = 0;

  auto close_track = [&](int id) {
    auto it = scorers.find(id);
    if (it == scorers.end()) return;
    ScoreUpdate u = it->second.finish(it->second.stats().last_s);
    if (u.event == ScoreEvent::kAlertEnd) rep.alerts.push_back({id, u.start_s, u.end_s, u.peak});
  };

  // Crops wait here until a batch is full (bench: the ensemble costs 26.4 ms/face at batch 1, 22.4 at
  // batch 8); scoring stays in frame order per track, so the results equal those of batch 1.
  struct PendingCrop {
    double pts_s;
    int id;
    cv::Rect box;
    cv::Mat crop;
  };
  std::vector<PendingCrop> pending;
  const size_t batch = static_cast<size_t>(std::max(1, options_.batch > 0 ? options_.batch : models_->batch()));
  auto flush = [&]() -> Status {
    if (pending.empty()) return Status::Ok();
    std::vector<cv::Mat> crops;
    crops.reserve(pending.size());
    for (const auto& p : pending) crops.push_back(p.crop);
    auto scores = runner_->score(crops);
    if (!scores.ok()) return scores.status().with_context(source + ": ");
    for (size_t i = 0; i < pending.size(); ++i) {
      const PendingCrop& p = pending[i];
      auto sit = scorers.find(p.id);
      if (sit == scorers.end()) {
        auto sc = make_track_scorer(options_.smoothing, options_.alert);
        sit = scorers.emplace(p.id, std::move(sc).value()).first;  // options validated in create()
      }
      const FaceScore& sc = (*scores)[i];
      ScoreUpdate u = sit->second.update(p.pts_s, sc.ensemble);
      if (u.event == ScoreEvent::kAlertEnd) rep.alerts.push_back({p.id, u.start_s, u.end_s, u.peak});
      TrackReport& tr = tracks[p.id];
      if (sc.ensemble > tr.best_score) {
        tr.best_score = sc.ensemble;
        tr.best_t = p.pts_s;
        tr.best_crop = p.crop;
      }
      rep.faces_scored++;
      if (static_cast<int>(rep.timeline.size()) < options_.max_timeline) {
        rep.timeline.push_back({p.pts_s, p.id, p.box, sc.per_model, sc.ensemble, static_cast<float>(u.smoothed)});
      }
    }
    pending.clear();
    return Status::Ok();
  };

  FaceFinder finder(options_.detect_every);
  Status failure;
  while (true) {
    if (cancel && cancel->load()) {
      char at[32];
      std::snprintf(at, sizeof at, "%.1f", last_t);
      failure = Cancelled(source + ": audit interrupted at " + at + " s");
      break;
    }
    auto next = (*dec)->next();
    if (!next.ok()) {
      failure = next.status();
      break;
    }
    if (!next->has_value()) break;
    const Frame& frame = **next;
    last_t = frame.pts_s;
    rep.frames_analyzed++;

    auto found = finder.find(*detector_, tracker, frame.bgr);
    if (!found.ok()) {
      failure = found.status().with_context(source + ": ");
      break;
    }
    std::vector<FaceDetection> faces = std::move(found).value();
    std::vector<int> ids = tracker.update(frame.pts_s, faces);
    const std::vector<int> expired = tracker.expire(frame.pts_s);
    if (!expired.empty()) {
      failure = flush();  // an ending track's last crops are scored before its alert is closed
      if (!failure.ok()) break;
      for (int id : expired) close_track(id);
    }

    for (size_t i = 0; i < faces.size(); ++i) {
      pending.push_back({frame.pts_s, ids[i], faces[i].box, align_face(frame.bgr, faces[i], options_.align)});
    }
    if (pending.size() >= batch) {
      failure = flush();
      if (!failure.ok()) break;
    }
    if (progress) {
      progress(AuditProgress{&source, frame.pts_s, (*dec)->duration_s(), rep.frames_analyzed, rep.faces_scored});
    }
  }
  if (failure.ok()) failure = flush();
  rep.frames_decoded = (*dec)->frames_decoded();
  rep.duration_s = (*dec)->duration_s() > 0 ? (*dec)->duration_s() : last_t;
  if (!failure.ok()) {
    rep.error = failure.message();
    log->error("{}", rep.error);
    finish_elapsed();
    return rep;
  }
  for (auto& [id, sc] : scorers) close_track(id);
  std::sort(rep.alerts.begin(), rep.alerts.end(),
            [](const AlertRecord& a, const AlertRecord& b) { return a.start_s < b.start_s || (a.start_s == b.start_s && a.track < b.track); });
  std::vector<TrackSummary> summaries;
  for (auto& [id, sc] : scorers) {
    tracks[id].summary = sc.summary(id);
    summaries.push_back(tracks[id].summary);
    rep.tracks.push_back(std::move(tracks[id]));
  }
  InputVerdict v = decide_verdict(summaries, options_.verdict);
  rep.verdict = v.verdict;
  rep.score = v.score;
  rep.ok = true;
  finish_elapsed();
  return rep;
}

}  // namespace dfm
