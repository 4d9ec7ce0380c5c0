// Face tracker: gives each detected face a stable track id across samples (pure logic, no I/O).
#pragma once

#include <map>
#include <optional>
#include <vector>

#include <opencv2/core.hpp>

#include "dfm/common/status.h"
#include "dfm/detectors/face.h"

namespace dfm {

struct TrackerOptions {
  // A face may continue a track only if its box overlaps the track's last box by at least this IoU
  // (and by more than nothing, even when 0)...
  double min_iou = 0.3;
  // ...and (when both have landmarks) the mean distance between corresponding landmarks, divided by the
  // face size (mean of the two boxes' sqrt(area)), is at most this.
  double max_landmark_dist = 0.35;
  // A track not seen for more than this many seconds is closed; the face gets a new id if it returns.
  double max_gap_s = 1.0;
};

// Checks the ranges: tracker.min_iou in [0,1), tracker.max_landmark_dist > 0, tracker.max_gap_s >= 0.
Status validate_tracker_options(const TrackerOptions& options);

// Assigns track ids to faces, sample by sample.
//
// Matching: every (live track, face) pair that passes both gates above is a candidate with cost
//   cost = 0.5 * (1 - IoU) / (1 - min_iou) + 0.5 * landmark_dist / max_landmark_dist
// (each cue scaled to its gate so they weigh equally; without landmarks on either side the IoU term is
// used alone). Candidates are taken greedily by lowest cost, one face per track and one track per face.
// Both gates must agree so that a different face passing through an old box does not steal its id.
// Faces that match nothing start new tracks. Ids start at 1 and are never reused by one tracker.
//
// Determinism: ties and new ids are decided by the faces' content (box, confidence, landmarks), not by
// their order in the input, so a shuffled detection list gets the same ids.
//
// Time must not go backwards; if it does (looped file, restarted stream) every live track is closed
// before matching, because a gap across a discontinuity is meaningless.
//
// Tracking between detections: callers that detect only every k-th sample can take last_box(id), refine
// landmarks in it (FaceDetector::landmarks_for) and pass the result to update() like a detection; it
// matches its own track (IoU 1) and keeps the track alive.
class FaceTracker {
 public:
  static Result<FaceTracker> Create(const TrackerOptions& options);

  // Closes tracks stale at t_s, then returns one track id per face (same order as `faces`).
  std::vector<int> update(double t_s, const std::vector<FaceDetection>& faces);

  // Closes the tracks not seen for more than max_gap_s at t_s and returns the ids of every track closed
  // since the previous expire()/close_all() call (including those update() closed), ascending. Callers
  // use it to finish the tracks' scorers (alert_end) once per sample.
  std::vector<int> expire(double t_s);

  // Closes every live track (end of stream) and returns all not yet reported closed ids, ascending.
  std::vector<int> close_all();

  // Live track ids, ascending.
  std::vector<int> active_tracks() const;

  // Last matched box / time of a live track; nullopt for unknown or closed ids.
  std::optional<cv::Rect> last_box(int id) const;
  std::optional<double> last_seen_s(int id) const;

  const TrackerOptions& options() const { return options_; }

 private:
  struct Track {
    FaceDetection face;  // last matched face
    bool has_landmarks = false;
    double last_s = 0.0;
  };

  explicit FaceTracker(const TrackerOptions& options) : options_(options) {}
  void close_stale(double t_s);
  void close(int id);

  TrackerOptions options_;
  std::map<int, Track> live_;   // by id
  std::vector<int> closed_;     // closed, not yet reported
  int next_id_ = 1;
  std::optional<double> last_t_;
};

// Validated factory (same as FaceTracker::Create).
Result<FaceTracker> make_tracker(const TrackerOptions& options);

// Matching cues, exposed for tests and for callers that want to reason about a match.
double box_iou(const cv::Rect& a, const cv::Rect& b);
// Mean landmark distance divided by the mean sqrt(area) of the two boxes (>= 1 px).
double landmark_distance(const FaceDetection& a, const FaceDetection& b);
// False when a detection carries no landmarks (all points at the origin, FaceDetection's default).
bool has_landmarks(const FaceDetection& face);

}  // namespace dfm
