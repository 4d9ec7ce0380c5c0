// Tests of FaceTracker: id continuity, crossing faces, gaps, order independence, options.
#include "dfm/pipeline/tracker.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include <gtest/gtest.h>

namespace dfm {
namespace {

// A synthetic face: square box of side `size` centred at (cx, cy) and 68 landmarks from a fixed
// pseudo-template. `yaw` shifts the inner points (brows, eyes, nose, mouth: 17..67) sideways by
// 0.15 * size per unit, as a head turned left (-1) or right (+1) would.
FaceDetection face(double cx, double cy, double size, double yaw = 0.0) {
  FaceDetection f;
  f.box = cv::Rect(static_cast<int>(std::lround(cx - size / 2)), static_cast<int>(std::lround(cy - size / 2)),
                   static_cast<int>(size), static_cast<int>(size));
  for (int i = 0; i < 68; ++i) {
    double u = 0.35 * std::cos(i * 2.4);
    double v = 0.35 * std::sin(i * 1.7);
    if (i >= 17) u += 0.15 * yaw;
    f.landmarks[i] = cv::Point2f(static_cast<float>(cx + u * size), static_cast<float>(cy + v * size));
  }
  f.confidence = 1.0;
  return f;
}

FaceTracker make(const TrackerOptions& o = {}) {
  auto r = make_tracker(o);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return std::move(r).value();
}

TEST(Tracker, SmoothlyMovingFaceKeepsItsId) {
  FaceTracker tr = make();
  for (int k = 0; k < 30; ++k) {
    const double t = 0.2 * k;
    auto ids = tr.update(t, {face(100 + 6 * k, 200 + 2 * k, 100 + k)});
    ASSERT_EQ(ids.size(), 1u);
    EXPECT_EQ(ids[0], 1) << "sample " << k;
    EXPECT_TRUE(tr.expire(t).empty());
  }
  EXPECT_EQ(tr.active_tracks(), std::vector<int>{1});
  ASSERT_TRUE(tr.last_box(1).has_value());
  EXPECT_EQ(tr.last_box(1)->x, face(100 + 6 * 29, 200 + 2 * 29, 129).box.x);
  EXPECT_DOUBLE_EQ(*tr.last_seen_s(1), 0.2 * 29);
}

TEST(Tracker, CrossingFacesKeepTheirIdsThanksToLandmarks) {
  // A walks right looking left, B walks left looking right; their boxes coincide at k = 10, so IoU alone
  // cannot tell which is which there and one step after.
  FaceTracker tr = make();
  for (int k = 0; k <= 20; ++k) {
    const FaceDetection a = face(100 + 10 * k, 200, 100, -1.0);
    const FaceDetection b = face(300 - 10 * k, 200, 100, +1.0);
    if (k == 10) {
      ASSERT_EQ(a.box, b.box);
    }
    // Alternate the input order too.
    if (k % 2 == 0) {
      auto ids = tr.update(0.2 * k, {a, b});
      EXPECT_EQ(ids, (std::vector<int>{1, 2})) << "sample " << k;
    } else {
      auto ids = tr.update(0.2 * k, {b, a});
      EXPECT_EQ(ids, (std::vector<int>{2, 1})) << "sample " << k;
    }
  }
  EXPECT_EQ(tr.active_tracks(), (std::vector<int>{1, 2}));
}

TEST(Tracker, WithoutLandmarksIouAloneMatches) {
  FaceTracker tr = make();
  FaceDetection f;
  f.box = cv::Rect(100, 100, 80, 80);
  EXPECT_FALSE(has_landmarks(f));
  EXPECT_EQ(tr.update(0.0, {f}), std::vector<int>{1});
  f.box.x += 10;
  EXPECT_EQ(tr.update(0.2, {f}), std::vector<int>{1});
  f.box.x += 70;  // IoU below 0.3
  EXPECT_EQ(tr.update(0.4, {f}), std::vector<int>{2});
}

TEST(Tracker, DifferentFaceInTheSameBoxStartsANewTrack) {
  // The landmark gate: same box, landmarks far apart (different head pose / different person).
  FaceTracker tr = make();
  EXPECT_EQ(tr.update(0.0, {face(200, 200, 100, -2.0)}), std::vector<int>{1});
  const FaceDetection other = face(200, 200, 100, +2.0);
  EXPECT_GT(landmark_distance(face(200, 200, 100, -2.0), other), 0.35);
  EXPECT_EQ(tr.update(0.2, {other}), std::vector<int>{2});
}

TEST(Tracker, FaceGoneLongerThanMaxGapGetsANewId) {
  FaceTracker tr = make();  // max_gap_s = 1.0
  const FaceDetection f = face(200, 200, 100);
  for (int k = 0; k <= 5; ++k) EXPECT_EQ(tr.update(0.2 * k, {f}), std::vector<int>{1});  // last seen 1.0
  // Gap of exactly max_gap_s (sums of 0.2 s steps) keeps the track.
  for (int k = 6; k <= 10; ++k) {
    EXPECT_TRUE(tr.update(0.2 * k, {}).empty());
    EXPECT_TRUE(tr.expire(0.2 * k).empty()) << "sample " << k;
  }
  EXPECT_EQ(tr.update(2.0, {f}), std::vector<int>{1});  // back after exactly 1.0 s
  // Now away for 1.2 s: closed at t = 3.2, reported once.
  for (int k = 11; k <= 15; ++k) {
    tr.update(0.2 * k, {});
    EXPECT_TRUE(tr.expire(0.2 * k).empty()) << "sample " << k;
  }
  tr.update(3.2, {});
  EXPECT_EQ(tr.expire(3.2), std::vector<int>{1});
  EXPECT_TRUE(tr.expire(3.2).empty());
  EXPECT_TRUE(tr.active_tracks().empty());
  EXPECT_FALSE(tr.last_box(1).has_value());
  EXPECT_EQ(tr.update(3.4, {f}), std::vector<int>{2});  // same place, new id: ids are never reused
}

TEST(Tracker, UpdateClosesStaleTracksAndExpireReportsThem) {
  FaceTracker tr = make();
  const FaceDetection f = face(200, 200, 100);
  EXPECT_EQ(tr.update(0.0, {f}), std::vector<int>{1});
  EXPECT_EQ(tr.update(5.0, {f}), std::vector<int>{2});  // update() itself closed 1 first
  EXPECT_EQ(tr.expire(5.0), std::vector<int>{1});
  EXPECT_EQ(tr.close_all(), std::vector<int>{2});
  EXPECT_TRUE(tr.active_tracks().empty());
  EXPECT_TRUE(tr.close_all().empty());
}

TEST(Tracker, TimeGoingBackwardsClosesAllTracks) {
  FaceTracker tr = make();
  const FaceDetection f = face(200, 200, 100);
  EXPECT_EQ(tr.update(10.0, {f}), std::vector<int>{1});
  EXPECT_EQ(tr.update(0.0, {f}), std::vector<int>{2});  // looped file: pts restarted
  EXPECT_EQ(tr.expire(0.0), std::vector<int>{1});
}

TEST(Tracker, ShuffledDetectionsGetTheSameIds) {
  // Three faces drifting apart; some appear later. Reference run in a fixed order, then every
  // permutation of each sample's list must give each face the same id.
  auto scene = [](int k) {
    std::vector<FaceDetection> fs = {face(100 + 3 * k, 150, 90, -0.5), face(400 - 3 * k, 150, 110, 0.5)};
    if (k >= 3) fs.push_back(face(250, 350 + 2 * k, 70, 0.0));
    if (k >= 5) fs.push_back(face(600, 100, 60, 1.0));
    return fs;
  };
  FaceTracker ref = make();
  std::vector<std::vector<int>> expected;
  for (int k = 0; k < 12; ++k) expected.push_back(ref.update(0.2 * k, scene(k)));

  for (int perm_seed = 0; perm_seed < 6; ++perm_seed) {
    FaceTracker tr = make();
    for (int k = 0; k < 12; ++k) {
      std::vector<FaceDetection> fs = scene(k);
      std::vector<size_t> order(fs.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = i;
      for (int r = 0; r < perm_seed + k; ++r) std::next_permutation(order.begin(), order.end());
      std::vector<FaceDetection> shuffled;
      for (size_t i : order) shuffled.push_back(fs[i]);
      auto ids = tr.update(0.2 * k, shuffled);
      for (size_t j = 0; j < order.size(); ++j)
        EXPECT_EQ(ids[j], expected[k][order[j]]) << "seed " << perm_seed << " sample " << k;
    }
  }
  // New faces at the same sample get ids by content, not position: 4 distinct tracks in all.
  EXPECT_EQ(ref.active_tracks(), (std::vector<int>{1, 2, 3, 4}));
}

TEST(Tracker, OneTrackPerFaceAndOneFacePerTrack) {
  // Two detections of nearly the same face: one continues the track, the other starts a new one.
  FaceTracker tr = make();
  EXPECT_EQ(tr.update(0.0, {face(200, 200, 100)}), std::vector<int>{1});
  auto ids = tr.update(0.2, {face(204, 200, 100), face(202, 200, 100)});
  EXPECT_EQ(ids, (std::vector<int>{2, 1}));  // the closer one keeps id 1
}

TEST(Tracker, CuesAreSane) {
  EXPECT_DOUBLE_EQ(box_iou(cv::Rect(0, 0, 10, 10), cv::Rect(0, 0, 10, 10)), 1.0);
  EXPECT_DOUBLE_EQ(box_iou(cv::Rect(0, 0, 10, 10), cv::Rect(5, 0, 10, 10)), 50.0 / 150.0);
  EXPECT_DOUBLE_EQ(box_iou(cv::Rect(0, 0, 10, 10), cv::Rect(20, 0, 10, 10)), 0.0);
  EXPECT_DOUBLE_EQ(box_iou(cv::Rect(0, 0, 0, 0), cv::Rect(0, 0, 0, 0)), 0.0);
  // Shifting every landmark by 10 px on a 100 px face is a distance of 0.1.
  EXPECT_NEAR(landmark_distance(face(200, 200, 100), face(210, 200, 100)), 0.1, 1e-6);
}

TEST(Tracker, OptionsAreValidated) {
  EXPECT_TRUE(make_tracker({}).ok());
  EXPECT_TRUE(make_tracker({0.0, 0.35, 0.0}).ok());

  auto bad_iou = make_tracker({1.0, 0.35, 1.0});
  ASSERT_FALSE(bad_iou.ok());
  EXPECT_EQ(bad_iou.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(bad_iou.status().message(), "tracker.min_iou (1) must be in [0, 1)");

  auto neg_iou = make_tracker({-0.1, 0.35, 1.0});
  ASSERT_FALSE(neg_iou.ok());
  EXPECT_NE(neg_iou.status().message().find("tracker.min_iou"), std::string::npos);

  auto bad_lm = make_tracker({0.3, 0.0, 1.0});
  ASSERT_FALSE(bad_lm.ok());
  EXPECT_NE(bad_lm.status().message().find("tracker.max_landmark_dist (0)"), std::string::npos);

  auto nan_lm = make_tracker({0.3, std::nan(""), 1.0});
  ASSERT_FALSE(nan_lm.ok());
  EXPECT_NE(nan_lm.status().message().find("tracker.max_landmark_dist"), std::string::npos);

  auto bad_gap = make_tracker({0.3, 0.35, -1.0});
  ASSERT_FALSE(bad_gap.ok());
  EXPECT_EQ(bad_gap.status().message(), "tracker.max_gap_s (-1) must be >= 0 seconds");

  EXPECT_FALSE(FaceTracker::Create({0.3, 0.35, INFINITY}).ok());
}

}  // namespace
}  // namespace dfm
