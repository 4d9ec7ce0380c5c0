// Face tracker: greedy IoU + landmark matching with gap-based track expiry.
#include "dfm/pipeline/tracker.h"

#include <algorithm>
#include <cmath>
#include <tuple>

#include "stage_util.h"

namespace dfm {
namespace {

using stage_util::kTimeEps;
using stage_util::num;

// Strict weak order on face content, so that ties and new ids do not depend on input order.
bool face_less(const FaceDetection& a, const FaceDetection& b) {
  auto key = [](const FaceDetection& f) { return std::make_tuple(f.box.x, f.box.y, f.box.width, f.box.height); };
  if (key(a) != key(b)) return key(a) < key(b);
  if (a.confidence != b.confidence) return a.confidence < b.confidence;
  for (size_t i = 0; i < a.landmarks.size(); ++i) {
    if (a.landmarks[i].x != b.landmarks[i].x) return a.landmarks[i].x < b.landmarks[i].x;
    if (a.landmarks[i].y != b.landmarks[i].y) return a.landmarks[i].y < b.landmarks[i].y;
  }
  return false;
}

}  // namespace

double box_iou(const cv::Rect& a, const cv::Rect& b) {
  if (a.width <= 0 || a.height <= 0 || b.width <= 0 || b.height <= 0) return 0.0;
  const double inter = static_cast<double>((a & b).area());
  const double uni = static_cast<double>(a.area()) + static_cast<double>(b.area()) - inter;
  return uni > 0.0 ? inter / uni : 0.0;
}

bool has_landmarks(const FaceDetection& face) {
  return std::any_of(face.landmarks.begin(), face.landmarks.end(),
                     [](const cv::Point2f& p) { return p.x != 0.0f || p.y != 0.0f; });
}

double landmark_distance(const FaceDetection& a, const FaceDetection& b) {
  double sum = 0.0;
  for (size_t i = 0; i < a.landmarks.size(); ++i) {
    const double dx = static_cast<double>(a.landmarks[i].x) - b.landmarks[i].x;
    const double dy = static_cast<double>(a.landmarks[i].y) - b.landmarks[i].y;
    sum += std::sqrt(dx * dx + dy * dy);
  }
  const double mean = sum / static_cast<double>(a.landmarks.size());
  auto side = [](const cv::Rect& r) { return std::sqrt(std::max(0.0, static_cast<double>(r.width) * r.height)); };
  const double size = std::max(1.0, 0.5 * (side(a.box) + side(b.box)));
  return mean / size;
}

Status validate_tracker_options(const TrackerOptions& o) {
  // Written as !(in range) so that NaN is rejected too.
  if (!(o.min_iou >= 0.0 && o.min_iou < 1.0))
    return InvalidArgument("tracker.min_iou (" + num(o.min_iou) + ") must be in [0, 1)");
  if (!(o.max_landmark_dist > 0.0) || !std::isfinite(o.max_landmark_dist))
    return InvalidArgument("tracker.max_landmark_dist (" + num(o.max_landmark_dist) + ") must be a positive number");
  if (!(o.max_gap_s >= 0.0) || !std::isfinite(o.max_gap_s))
    return InvalidArgument("tracker.max_gap_s (" + num(o.max_gap_s) + ") must be >= 0 seconds");
  return Status::Ok();
}

Result<FaceTracker> FaceTracker::Create(const TrackerOptions& options) {
  DFM_RETURN_IF_ERROR(validate_tracker_options(options));
  return FaceTracker(options);
}

Result<FaceTracker> make_tracker(const TrackerOptions& options) { return FaceTracker::Create(options); }

void FaceTracker::close(int id) {
  live_.erase(id);
  closed_.push_back(id);
}

void FaceTracker::close_stale(double t_s) {
  if (last_t_ && t_s < *last_t_ - kTimeEps) {
    // Time went backwards: nothing before the discontinuity can be matched meaningfully.
    while (!live_.empty()) close(live_.begin()->first);
  }
  std::vector<int> stale;
  for (const auto& [id, tr] : live_)
    if (t_s - tr.last_s > options_.max_gap_s + kTimeEps) stale.push_back(id);
  for (int id : stale) close(id);
  last_t_ = t_s;
}

std::vector<int> FaceTracker::update(double t_s, const std::vector<FaceDetection>& faces) {
  close_stale(t_s);

  struct Candidate {
    double cost;
    int track;
    size_t face;
  };
  std::vector<bool> face_lm(faces.size());
  for (size_t f = 0; f < faces.size(); ++f) face_lm[f] = has_landmarks(faces[f]);

  std::vector<Candidate> cands;
  for (const auto& [id, tr] : live_) {
    for (size_t f = 0; f < faces.size(); ++f) {
      const double iou = box_iou(tr.face.box, faces[f].box);
      if (iou < options_.min_iou || iou <= 0.0) continue;  // no overlap never continues a track
      const double iou_cost = (1.0 - iou) / (1.0 - options_.min_iou);
      double cost = iou_cost;
      if (tr.has_landmarks && face_lm[f]) {
        const double d = landmark_distance(tr.face, faces[f]);
        if (d > options_.max_landmark_dist) continue;
        cost = 0.5 * iou_cost + 0.5 * d / options_.max_landmark_dist;
      }
      cands.push_back({cost, id, f});
    }
  }
  // Lowest cost first; ties by track id, then by face content (not input position).
  std::sort(cands.begin(), cands.end(), [&](const Candidate& a, const Candidate& b) {
    if (a.cost != b.cost) return a.cost < b.cost;
    if (a.track != b.track) return a.track < b.track;
    if (face_less(faces[a.face], faces[b.face])) return true;
    if (face_less(faces[b.face], faces[a.face])) return false;
    return a.face < b.face;  // identical faces: either assignment yields the same output
  });

  std::vector<int> ids(faces.size(), 0);
  std::map<int, bool> track_taken;
  for (const Candidate& c : cands) {
    if (ids[c.face] != 0 || track_taken[c.track]) continue;
    ids[c.face] = c.track;
    track_taken[c.track] = true;
    Track& tr = live_[c.track];
    tr.face = faces[c.face];
    tr.has_landmarks = face_lm[c.face];
    tr.last_s = t_s;
  }

  // New tracks in content order so ids do not depend on the input order.
  std::vector<size_t> fresh;
  for (size_t f = 0; f < faces.size(); ++f)
    if (ids[f] == 0) fresh.push_back(f);
  std::stable_sort(fresh.begin(), fresh.end(),
                   [&](size_t a, size_t b) { return face_less(faces[a], faces[b]); });
  for (size_t f : fresh) {
    const int id = next_id_++;
    ids[f] = id;
    Track tr;
    tr.face = faces[f];
    tr.has_landmarks = face_lm[f];
    tr.last_s = t_s;
    live_.emplace(id, std::move(tr));
  }
  return ids;
}

std::vector<int> FaceTracker::expire(double t_s) {
  close_stale(t_s);
  std::vector<int> out;
  out.swap(closed_);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<int> FaceTracker::close_all() {
  while (!live_.empty()) close(live_.begin()->first);
  std::vector<int> out;
  out.swap(closed_);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<int> FaceTracker::active_tracks() const {
  std::vector<int> ids;
  ids.reserve(live_.size());
  for (const auto& kv : live_) ids.push_back(kv.first);
  return ids;
}

std::optional<cv::Rect> FaceTracker::last_box(int id) const {
  auto it = live_.find(id);
  if (it == live_.end()) return std::nullopt;
  return it->second.face.box;
}

std::optional<double> FaceTracker::last_seen_s(int id) const {
  auto it = live_.find(id);
  if (it == live_.end()) return std::nullopt;
  return it->second.last_s;
}

}  // namespace dfm
