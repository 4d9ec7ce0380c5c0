// Landmark-only face following between detections.
#include "dfm/pipeline/follow.h"

namespace dfm {

std::vector<FaceDetection> follow_tracks(const FaceTracker& tracker, FaceDetector& detector, const cv::Mat& bgr) {
  std::vector<FaceDetection> faces;
  for (int id : tracker.active_tracks()) {
    auto box = tracker.last_box(id);
    if (!box) continue;
    auto refit = detector.landmarks_for(bgr, *box);
    if (!refit.ok()) continue;
    FaceDetection f = *refit;
    cv::Point2f c(0, 0);
    for (const auto& p : f.landmarks) c += p;
    c *= 1.0f / 68.0f;
    f.box = cv::Rect(static_cast<int>(c.x - box->width / 2.0f), static_cast<int>(c.y - box->height / 2.0f), box->width,
                     box->height);
    faces.push_back(f);
  }
  return faces;
}

}  // namespace dfm
