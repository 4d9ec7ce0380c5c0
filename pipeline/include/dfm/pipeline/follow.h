// Following tracked faces between detector runs: cheaper than HOG on the whole frame.
#pragma once

#include <cstdint>
#include <vector>

#include <opencv2/core.hpp>

#include "dfm/common/status.h"
#include "dfm/detectors/face.h"
#include "dfm/pipeline/tracker.h"

namespace dfm {

// For every active track, re-fits the 68 landmarks inside the track's last box and re-centres the box on
// them (~2 ms a face next to ~30 ms for detection at 640 px). Faces that fail to fit are left out; the
// tracker then ages them out as usual.
std::vector<FaceDetection> follow_tracks(const FaceTracker& tracker, FaceDetector& detector, const cv::Mat& bgr);

// The detect-or-follow step of one stream, shared by the audit, the monitor and the element's analyzer:
// the detector on every detect_every-th frame (the first included), follow_tracks() in between.
class FaceFinder {
 public:
  explicit FaceFinder(int detect_every) : detect_every_(detect_every < 1 ? 1 : detect_every) {}
  // Faces in this frame. A detector error comes back as it is (the caller names the stream and time);
  // the frame still counts towards the cadence.
  Result<std::vector<FaceDetection>> find(FaceDetector& detector, const FaceTracker& tracker, const cv::Mat& bgr) {
    if (frames_++ % detect_every_ == 0) return detector.detect(bgr);
    return follow_tracks(tracker, detector, bgr);
  }
  void reset() { frames_ = 0; }  // the next frame runs the detector

 private:
  int detect_every_;
  int64_t frames_ = 0;
};

}  // namespace dfm
