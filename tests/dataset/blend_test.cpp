// self_blend / swap_blend on aligned crops of the sample photos: mask range, untouched background,
// changed face, determinism per seed.
#include <gtest/gtest.h>

#include <cstdio>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "dataset_util.h"
#include "dfm/dataset/dataset.h"
#include "dfm/detectors/face.h"

namespace dfm {
namespace {

using namespace dfm::testing;

struct AlignedFace {
  cv::Mat crop;
  std::array<cv::Point2f, 68> lm{};
};

// Detected, aligned 224x224 crops of biden.jpg and obama2.jpg, made once per process.
class BlendTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto det = make_face_detector(DetectorOptions{});
    ASSERT_TRUE(det.ok()) << det.status().to_string();
    for (const char* name : {"biden.jpg", "obama2.jpg"}) {
      cv::Mat img = cv::imread(sample(std::string("images/") + name).string(), cv::IMREAD_COLOR);
      ASSERT_FALSE(img.empty()) << name;
      auto faces = (*det)->detect(img);
      ASSERT_TRUE(faces.ok() && !faces->empty()) << name;
      AlignOptions a;
      cv::Mat m = alignment_transform((*faces)[0].landmarks, a);
      AlignedFace f;
      cv::warpAffine(img, f.crop, m, cv::Size(a.size, a.size), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
      f.lm = transform_landmarks((*faces)[0].landmarks, m);
      faces_.push_back(f);
    }
  }
  static void TearDownTestSuite() { faces_.clear(); }
  void SetUp() override { ASSERT_EQ(faces_.size(), 2u) << "suite set-up failed"; }

  static inline std::vector<AlignedFace> faces_;
};

// Checks the invariants of one blend result against its target.
void check_blend(const cv::Mat& target, const cv::Mat& out, const cv::Mat& mask, const std::string& what) {
  ASSERT_EQ(out.size(), target.size()) << what;
  ASSERT_EQ(out.type(), CV_8UC3) << what;
  ASSERT_EQ(mask.size(), target.size()) << what;
  ASSERT_EQ(mask.type(), CV_32F) << what;
  double lo = 0, hi = 0;
  cv::minMaxLoc(mask, &lo, &hi);
  EXPECT_GE(lo, 0.0) << what;
  EXPECT_LE(hi, 1.0 + 1e-6) << what;
  EXPECT_GE(hi, 0.25 - 1e-6) << what;  // the weakest blend ratio is 0.25
  // Outside the mask the target is untouched, bit for bit.
  cv::Mat outside = mask == 0;
  ASSERT_GT(cv::countNonZero(outside), 0) << what << ": mask covers the whole crop";
  cv::Mat diff;
  cv::absdiff(out, target, diff);
  cv::Mat diff_grey;
  cv::cvtColor(diff, diff_grey, cv::COLOR_BGR2GRAY);
  double max_outside = 0;
  cv::Mat any_diff;
  cv::transform(diff, any_diff, cv::Matx13f(1, 1, 1));  // sum over channels
  cv::minMaxLoc(any_diff, nullptr, &max_outside, nullptr, nullptr, outside);
  EXPECT_EQ(max_outside, 0.0) << what << ": pixels outside the mask changed";
  // Inside the mask's core the image changes.
  cv::Mat inside = mask >= static_cast<float>(hi * 0.9);
  ASSERT_GT(cv::countNonZero(inside), 500) << what;
  const double mean_inside = cv::mean(any_diff, inside)[0];
  EXPECT_GT(mean_inside, 1.0) << what << ": the face region did not change";
}

// The mask sits on the face: its centre of mass is near the landmarks' centre.
void check_mask_on_face(const cv::Mat& mask, const std::array<cv::Point2f, 68>& lm, const std::string& what) {
  cv::Moments mo = cv::moments(mask);
  ASSERT_GT(mo.m00, 0) << what;
  const cv::Point2f c(static_cast<float>(mo.m10 / mo.m00), static_cast<float>(mo.m01 / mo.m00));
  cv::Rect2f box = cv::boundingRect(std::vector<cv::Point2f>(lm.begin(), lm.end()));
  EXPECT_TRUE(box.contains(c)) << what << ": mask centre " << c << " outside the landmarks' box " << box;
}

TEST_F(BlendTest, SelfBlendMaskInRangeBackgroundUnchangedFaceChanged) {
  const AlignedFace& f = faces_[0];
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    cv::Mat mask;
    cv::Mat out = self_blend(f.crop, f.lm, seed, &mask);
    check_blend(f.crop, out, mask, "self_blend seed " + std::to_string(seed));
    check_mask_on_face(mask, f.lm, "self_blend seed " + std::to_string(seed));
  }
}

TEST_F(BlendTest, SelfBlendIsDeterministicPerSeed) {
  const AlignedFace& f = faces_[1];
  cv::Mat m1, m2;
  cv::Mat a = self_blend(f.crop, f.lm, 42, &m1);
  cv::Mat b = self_blend(f.crop, f.lm, 42, &m2);
  EXPECT_EQ(cv::norm(a, b, cv::NORM_INF), 0.0);
  EXPECT_EQ(cv::norm(m1, m2, cv::NORM_INF), 0.0);
  cv::Mat c = self_blend(f.crop, f.lm, 43);
  EXPECT_GT(cv::norm(a, c, cv::NORM_L1), 0.0) << "different seeds gave the same image";
  // The input is not modified in place.
  cv::Mat before = f.crop.clone();
  (void)self_blend(f.crop, f.lm, 7);
  EXPECT_EQ(cv::norm(before, f.crop, cv::NORM_INF), 0.0);
}

TEST_F(BlendTest, SwapBlendChangesFaceRegionOnly) {
  const AlignedFace& target = faces_[0];
  const AlignedFace& donor = faces_[1];
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    cv::Mat mask;
    cv::Mat out = swap_blend(target.crop, target.lm, donor.crop, donor.lm, seed, &mask);
    check_blend(target.crop, out, mask, "swap_blend seed " + std::to_string(seed));
    check_mask_on_face(mask, target.lm, "swap_blend seed " + std::to_string(seed));
  }
  // A different identity changes the face more than the self-blend's colour jitter does on average:
  // at least it must differ from both the target and the donor inside the mask.
  cv::Mat mask;
  cv::Mat out = swap_blend(target.crop, target.lm, donor.crop, donor.lm, 5, &mask);
  cv::Mat core = mask > 0.9f;
  if (cv::countNonZero(core) > 0) {
    cv::Mat d1, d2;
    cv::absdiff(out, target.crop, d1);
    cv::absdiff(out, donor.crop, d2);
    EXPECT_GT(cv::mean(d1, core)[0] + cv::mean(d1, core)[1] + cv::mean(d1, core)[2], 5.0);
  }
}

// Fine detail (Laplacian energy) of `img` inside the blend mask's core.
double core_detail(const cv::Mat& img, const cv::Mat& mask) {
  double hi = 0;
  cv::minMaxLoc(mask, nullptr, &hi);
  cv::Mat grey, lap, sq;
  cv::cvtColor(img, grey, cv::COLOR_BGR2GRAY);
  cv::Laplacian(grey, lap, CV_32F);
  cv::multiply(lap, lap, sq);
  return cv::mean(sq, mask >= static_cast<float>(hi * 0.9))[0];
}

// Share of 40 self-blends whose face core has more fine detail than the real crop's (ratio > 1.05).
double share_sharper(const AlignedFace& f, bool balanced, double* share_softer) {
  int sharper = 0, softer = 0;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    cv::Mat mask;
    cv::Mat out = self_blend(f.crop, f.lm, seed, &mask, balanced);
    const double r = core_detail(out, mask) / core_detail(f.crop, mask);
    sharper += r > 1.05;
    softer += r < 0.95;
  }
  *share_softer = softer / 40.0;
  return sharper / 40.0;
}

TEST_F(BlendTest, BalancedDetailMakesFacesSharperAboutAsOftenAsSofter) {
  // Without it, most self-blended faces are softer than the real one, and a network learns "sharp =
  // real" (measured on the models shipped 2026-11-26).
  for (const AlignedFace& f : faces_) {
    double softer = 0;
    const double sharper = share_sharper(f, false, &softer);
    double bal_softer = 0;
    const double bal_sharper = share_sharper(f, true, &bal_softer);
    std::printf("default: sharper %.2f softer %.2f | balanced: sharper %.2f softer %.2f\n", sharper, softer,
                bal_sharper, bal_softer);
    EXPECT_GT(bal_sharper, 0.3);
    EXPECT_GT(bal_softer, 0.3);
  }
}

TEST_F(BlendTest, SwapBlendIsDeterministicPerSeed) {
  const AlignedFace& t = faces_[1];
  const AlignedFace& d = faces_[0];
  cv::Mat a = swap_blend(t.crop, t.lm, d.crop, d.lm, 9);
  cv::Mat b = swap_blend(t.crop, t.lm, d.crop, d.lm, 9);
  EXPECT_EQ(cv::norm(a, b, cv::NORM_INF), 0.0);
}

}  // namespace
}  // namespace dfm
