// Tests of FaceFinder (the detect-or-follow step) and follow_tracks, with a scripted detector.
#include "dfm/pipeline/follow.h"

#include <cmath>
#include <optional>
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

// One face in view; the tracker and a blank frame (the scripted detector ignores pixels).
class FaceFinderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    det.faces = {face_at(100, 100, 80)};
    auto r = make_tracker({});
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    tracker.emplace(std::move(r).value());
  }
  // One frame through `finder`; the tracker takes what it found.
  Result<std::vector<FaceDetection>> step(FaceFinder& finder, double t) {
    auto r = finder.find(det, *tracker, frame);
    if (r.ok()) tracker->update(t, *r);
    return r;
  }

  ScriptedDetector det;
  std::optional<FaceTracker> tracker;
  const cv::Mat frame{360, 640, CV_8UC3, cv::Scalar::all(0)};
};

TEST_F(FaceFinderTest, DetectsOnEveryNthFrameAndFollowsBetween) {
  FaceFinder finder(3);
  std::vector<int> detected_on;
  for (int k = 0; k < 7; ++k) {
    const int before = det.detects;
    auto r = step(finder, 0.2 * k);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    ASSERT_EQ(r->size(), 1u) << "frame " << k;
    if (det.detects > before) detected_on.push_back(k);
  }
  EXPECT_EQ(detected_on, (std::vector<int>{0, 3, 6}));
  EXPECT_EQ(det.refits, 4);  // frames 1, 2, 4, 5: one tracked face each
}

TEST_F(FaceFinderTest, FollowingRecentresTheTrackBoxOnTheRefittedLandmarks) {
  det.drift = 6;
  FaceFinder finder(10);
  ASSERT_TRUE(step(finder, 0.0).ok());
  auto next = step(finder, 0.2);
  ASSERT_TRUE(next.ok());
  ASSERT_EQ(next->size(), 1u);
  EXPECT_EQ((*next)[0].box.size(), cv::Size(80, 80));  // the track's size is kept
  EXPECT_NEAR((*next)[0].box.x, 106, 1);               // centred on the drifted landmarks (truncated)
  EXPECT_NEAR((*next)[0].box.y, 106, 1);
}

TEST_F(FaceFinderTest, LostLandmarksDropTheFaceAndDetectorErrorsComeBackAsValues) {
  FaceFinder finder(2);
  ASSERT_TRUE(step(finder, 0.0).ok());
  det.lose = true;
  auto r1 = finder.find(det, *tracker, frame);  // following: the refit fails, the face is left out
  ASSERT_TRUE(r1.ok());
  EXPECT_TRUE(r1->empty());
  det.error = Internal("detector broke");
  auto r2 = finder.find(det, *tracker, frame);  // detection frame: the error as it is
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.status().message().find("detector broke"), std::string::npos);
  det.error = Status::Ok();
  auto r3 = finder.find(det, *tracker, frame);  // the failed frame still counted: this one follows
  ASSERT_TRUE(r3.ok());
  EXPECT_EQ(det.detects, 2);
  finder.reset();
  det.lose = false;
  auto r4 = finder.find(det, *tracker, frame);  // after reset the detector runs again
  ASSERT_TRUE(r4.ok());
  EXPECT_EQ(det.detects, 3);
}

}  // namespace
}  // namespace dfm
