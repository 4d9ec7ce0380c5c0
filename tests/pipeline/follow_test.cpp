// Tests of FaceFinder (the detect-or-follow step) and follow_tracks, with a scripted detector.
#include "dfm/pipeline/follow.h"

#include <cmath>
#include <vector>

#include <gtest/gtest.h>

namespace dfm {
namespace {

FaceDetection face_at(int x, int y, int size) {
  FaceDetection f;
  f.box = cv::Rect(x, y, size, size);
  const double c = size / 2.0, pi = 3.14159265358979;
  for (int i = 0; i < 68; ++i) {  // on a circle: their centroid is the box centre
    f.landmarks[i] = cv::Point2f(static_cast<float>(x + c + 0.3 * size * std::cos(2 * pi * i / 68)),
                                 static_cast<float>(y + c + 0.3 * size * std::sin(2 * pi * i / 68)));
  }
  f.confidence = 1.0;
  return f;
}

// Counts calls; detect() returns `faces` or `error`, landmarks_for() refits inside the given box,
// shifted by `drift` px, or fails when `lose` is set.
struct ScriptedDetector : FaceDetector {
  std::vector<FaceDetection> faces;
  Status error;
  int drift = 0;
  bool lose = false;
  int detects = 0, refits = 0;

  Result<std::vector<FaceDetection>> detect(const cv::Mat&) override {
    ++detects;
    if (!error.ok()) return error;
    return faces;
  }
  Result<FaceDetection> landmarks_for(const cv::Mat&, const cv::Rect& box) override {
    ++refits;
    if (lose) return NotFound("no landmarks");
    return face_at(box.x + drift, box.y + drift, box.width);
  }
};

FaceTracker make_tracker_or_die() {
  auto r = make_tracker({});
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return std::move(r).value();
}

TEST(FaceFinder, DetectsOnEveryNthFrameAndFollowsBetween) {
  ScriptedDetector det;
  det.faces = {face_at(100, 100, 80)};
  FaceTracker tracker = make_tracker_or_die();
  FaceFinder finder(3);
  const cv::Mat frame(360, 640, CV_8UC3, cv::Scalar::all(0));
  std::vector<int> detected_on;
  for (int k = 0; k < 7; ++k) {
    const int before = det.detects;
    auto r = finder.find(det, tracker, frame);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    ASSERT_EQ(r->size(), 1u) << "frame " << k;
    if (det.detects > before) detected_on.push_back(k);
    tracker.update(0.2 * k, *r);
  }
  EXPECT_EQ(detected_on, (std::vector<int>{0, 3, 6}));
  EXPECT_EQ(det.refits, 4);  // frames 1, 2, 4, 5: one tracked face each
}

TEST(FaceFinder, FollowingRecentresTheTrackBoxOnTheRefittedLandmarks) {
  ScriptedDetector det;
  det.faces = {face_at(100, 100, 80)};
  det.drift = 6;
  FaceTracker tracker = make_tracker_or_die();
  FaceFinder finder(10);
  const cv::Mat frame(360, 640, CV_8UC3, cv::Scalar::all(0));
  auto first = finder.find(det, tracker, frame);
  ASSERT_TRUE(first.ok());
  tracker.update(0.0, *first);
  auto next = finder.find(det, tracker, frame);
  ASSERT_TRUE(next.ok());
  ASSERT_EQ(next->size(), 1u);
  EXPECT_EQ((*next)[0].box.size(), cv::Size(80, 80));  // the track's size is kept
  EXPECT_NEAR((*next)[0].box.x, 106, 1);               // centred on the drifted landmarks (truncated)
  EXPECT_NEAR((*next)[0].box.y, 106, 1);
}

TEST(FaceFinder, LostLandmarksDropTheFaceAndDetectorErrorsComeBackAsValues) {
  ScriptedDetector det;
  det.faces = {face_at(100, 100, 80)};
  FaceTracker tracker = make_tracker_or_die();
  FaceFinder finder(2);
  const cv::Mat frame(360, 640, CV_8UC3, cv::Scalar::all(0));
  auto r0 = finder.find(det, tracker, frame);
  ASSERT_TRUE(r0.ok());
  tracker.update(0.0, *r0);
  det.lose = true;
  auto r1 = finder.find(det, tracker, frame);  // following: the refit fails, the face is left out
  ASSERT_TRUE(r1.ok());
  EXPECT_TRUE(r1->empty());
  det.error = Internal("detector broke");
  auto r2 = finder.find(det, tracker, frame);  // detection frame: the error as it is
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.status().message().find("detector broke"), std::string::npos);
  det.error = Status::Ok();
  auto r3 = finder.find(det, tracker, frame);  // the failed frame still counted: this one follows
  ASSERT_TRUE(r3.ok());
  EXPECT_EQ(det.detects, 2);
  finder.reset();
  det.lose = false;
  auto r4 = finder.find(det, tracker, frame);  // after reset the detector runs again
  ASSERT_TRUE(r4.ok());
  EXPECT_EQ(det.detects, 3);
}

}  // namespace
}  // namespace dfm
