// Alignment: closed-form similarity transform, deterministic crops, eyes on the template positions.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include <opencv2/imgproc.hpp>

#include "detector_fixture.h"
#include "dfm/detectors/face.h"

namespace dfm {
namespace {

using testing::DetectorTest;
using testing::load_sample;
using testing::mean_point;

std::vector<cv::Point2f> apply_affine(const cv::Mat& m, const std::vector<cv::Point2f>& pts) {
  std::vector<cv::Point2f> out;
  for (const auto& p : pts) {
    out.emplace_back(static_cast<float>(m.at<double>(0, 0) * p.x + m.at<double>(0, 1) * p.y + m.at<double>(0, 2)),
                     static_cast<float>(m.at<double>(1, 0) * p.x + m.at<double>(1, 1) * p.y + m.at<double>(1, 2)));
  }
  return out;
}

cv::Mat make_similarity(double angle_deg, double scale, double tx, double ty) {
  const double a = scale * std::cos(angle_deg * CV_PI / 180.0), b = scale * std::sin(angle_deg * CV_PI / 180.0);
  return (cv::Mat_<double>(2, 3) << a, -b, tx, b, a, ty);
}

TEST(SimilarityTransform, RecoversKnownRotationScaleShift) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(0.f, 300.f);
  std::vector<cv::Point2f> src;
  for (int i = 0; i < 20; ++i) src.emplace_back(u(rng), u(rng));
  for (double angle : {0.0, 25.0, -70.0, 170.0}) {
    const cv::Mat truth = make_similarity(angle, 1.7, 12.5, -40.0);
    const cv::Mat m = similarity_transform(src, apply_affine(truth, src));
    ASSERT_EQ(m.rows, 2);
    ASSERT_EQ(m.cols, 3);
    ASSERT_EQ(m.type(), CV_64F);
    for (int r = 0; r < 2; ++r) {
      for (int c = 0; c < 2; ++c) EXPECT_NEAR(m.at<double>(r, c), truth.at<double>(r, c), 1e-4) << "angle " << angle;
      EXPECT_NEAR(m.at<double>(r, 2), truth.at<double>(r, 2), 1e-2) << "angle " << angle;
    }
    const double scale = std::hypot(m.at<double>(0, 0), m.at<double>(1, 0));
    EXPECT_NEAR(scale, 1.7, 1e-5);
    EXPECT_NEAR(std::atan2(m.at<double>(1, 0), m.at<double>(0, 0)) * 180.0 / CV_PI, angle, 1e-3);
  }
}

TEST(SimilarityTransform, LeastSquaresWithNoiseStaysClose) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(0.f, 200.f);
  std::normal_distribution<float> noise(0.f, 0.5f);
  std::vector<cv::Point2f> src, dst;
  const cv::Mat truth = make_similarity(-15.0, 0.6, 100.0, 30.0);
  for (int i = 0; i < 68; ++i) src.emplace_back(u(rng), u(rng));
  dst = apply_affine(truth, src);
  for (auto& p : dst) p += cv::Point2f(noise(rng), noise(rng));
  const cv::Mat m = similarity_transform(src, dst);
  EXPECT_NEAR(std::hypot(m.at<double>(0, 0), m.at<double>(1, 0)), 0.6, 0.01);
  EXPECT_NEAR(std::atan2(m.at<double>(1, 0), m.at<double>(0, 0)) * 180.0 / CV_PI, -15.0, 0.5);
}

TEST(SimilarityTransform, NeverReflects) {
  // dst is src mirrored in x: the best similarity (no reflection) must keep a positive determinant.
  std::vector<cv::Point2f> src = {{0, 0}, {10, 0}, {0, 20}, {10, 20}, {3, 7}};
  std::vector<cv::Point2f> dst;
  for (const auto& p : src) dst.emplace_back(-p.x, p.y);
  const cv::Mat m = similarity_transform(src, dst);
  const double det = m.at<double>(0, 0) * m.at<double>(1, 1) - m.at<double>(0, 1) * m.at<double>(1, 0);
  EXPECT_GE(det, 0.0);
  EXPECT_NEAR(m.at<double>(0, 0), m.at<double>(1, 1), 1e-9);
  EXPECT_NEAR(m.at<double>(0, 1), -m.at<double>(1, 0), 1e-9);
}

TEST(SimilarityTransform, DegenerateInputsGiveTranslationOrIdentity) {
  const cv::Mat id = similarity_transform({}, {});
  EXPECT_EQ(cv::countNonZero(id != (cv::Mat_<double>(2, 3) << 1, 0, 0, 0, 1, 0)), 0);
  const cv::Mat t = similarity_transform({{5, 5}, {5, 5}}, {{8, 1}, {8, 1}});
  EXPECT_DOUBLE_EQ(t.at<double>(0, 0), 1.0);
  EXPECT_DOUBLE_EQ(t.at<double>(0, 1), 0.0);
  EXPECT_DOUBLE_EQ(t.at<double>(0, 2), 3.0);
  EXPECT_DOUBLE_EQ(t.at<double>(1, 2), -4.0);
}

TEST(TransformLandmarks, AppliesAffineToEveryPoint) {
  std::array<cv::Point2f, 68> lm{};
  for (size_t i = 0; i < 68; ++i) lm[i] = cv::Point2f(static_cast<float>(i), static_cast<float>(2 * i + 1));
  const cv::Mat m = make_similarity(90.0, 2.0, 5.0, -3.0);  // (x, y) -> (-2y + 5, 2x - 3)
  auto out = transform_landmarks(lm, m);
  for (size_t i = 0; i < 68; ++i) {
    EXPECT_NEAR(out[i].x, -2.f * lm[i].y + 5.f, 1e-3) << i;
    EXPECT_NEAR(out[i].y, 2.f * lm[i].x - 3.f, 1e-3) << i;
  }
  // A CV_32F matrix is accepted too.
  cv::Mat m32;
  m.convertTo(m32, CV_32F);
  auto out32 = transform_landmarks(lm, m32);
  EXPECT_NEAR(out32[67].x, out[67].x, 1e-3);
}

// Template positions from align.cpp: eyes at (0.3419, 0.4616) and (0.6565, 0.4598) of the template box,
// which sits centred in the crop with `margin` of context on each side.
cv::Point2f template_point(double tx, double ty, const AlignOptions& o) {
  const double face = o.size / (1.0 + 2.0 * o.margin), off = (o.size - face) / 2.0;
  return cv::Point2f(static_cast<float>(off + tx * face), static_cast<float>(off + ty * face));
}

TEST_F(DetectorTest, AlignmentPutsEyeCentresNearTemplate) {
  cv::Mat img = load_sample("biden.jpg");
  auto faces = detect(detector(), img);
  ASSERT_EQ(faces.size(), 1u);
  for (const AlignOptions& o : {AlignOptions{}, AlignOptions{112, 0.0}, AlignOptions{300, 0.5}}) {
    const cv::Mat m = alignment_transform(faces[0].landmarks, o);
    const auto in_crop = transform_landmarks(faces[0].landmarks, m);
    const cv::Point2f le = mean_point(in_crop, 36, 41), re = mean_point(in_crop, 42, 47);
    const cv::Point2f le_t = template_point(0.3419, 0.4616, o), re_t = template_point(0.6565, 0.4598, o);
    const double tol = 0.05 * o.size;  // five-point least squares: eyes land within a few % of the template
    EXPECT_LT(cv::norm(le - le_t), tol) << "size " << o.size << ": left eye " << le << " vs " << le_t;
    EXPECT_LT(cv::norm(re - re_t), tol) << "size " << o.size << ": right eye " << re << " vs " << re_t;
    // Level eyes after alignment, and the mouth below them, inside the crop.
    EXPECT_LT(std::abs(le.y - re.y), 0.04 * o.size);
    const cv::Point2f mouth = mean_point(in_crop, 48, 67);
    EXPECT_GT(mouth.y, le.y + 0.1f * o.size);
    EXPECT_LT(mouth.y, static_cast<float>(o.size));
  }
}

TEST_F(DetectorTest, AlignedCropIsDeterministicAndSized) {
  cv::Mat img = load_sample("obama2.jpg");
  auto faces = detect(detector(), img);
  ASSERT_GE(faces.size(), 1u);
  const AlignOptions o;
  cv::Mat a = align_face(img, faces[0], o);
  cv::Mat b = align_face(img, faces[0], o);
  ASSERT_EQ(a.size(), cv::Size(224, 224));
  ASSERT_EQ(a.type(), CV_8UC3);
  ASSERT_TRUE(a.isContinuous() && b.isContinuous());
  EXPECT_EQ(std::memcmp(a.data, b.data, a.total() * a.elemSize()), 0) << "same input, different crop bytes";
  // A second detection run on the same frame gives the same landmarks and so the same crop.
  auto again = detect(detector(), img);
  ASSERT_GE(again.size(), 1u);
  cv::Mat c = align_face(img, again[0], o);
  EXPECT_EQ(cv::norm(a, c, cv::NORM_INF), 0.0);
  // The crop is image content, not a flat fill.
  cv::Scalar mean, stddev;
  cv::meanStdDev(a, mean, stddev);
  EXPECT_GT(stddev[0], 10.0);
  // Different size option changes the output size.
  EXPECT_EQ(align_face(img, faces[0], AlignOptions{128, 0.25}).size(), cv::Size(128, 128));
}

TEST_F(DetectorTest, AlignmentUndoesInPlaneRotation) {
  // Rotate the photo by 20 degrees: the aligned crop's eyes must still be level and on the template.
  cv::Mat img = load_sample("biden.jpg");
  cv::Mat rot_m = cv::getRotationMatrix2D(cv::Point2f(img.cols / 2.f, img.rows / 2.f), 20.0, 1.0), rotated;
  cv::warpAffine(img, rotated, rot_m, img.size(), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
  auto faces = detect(detector(), rotated);
  ASSERT_GE(faces.size(), 1u) << "HOG should still find a face rotated by 20 degrees";
  const AlignOptions o;
  const auto in_crop = transform_landmarks(faces[0].landmarks, alignment_transform(faces[0].landmarks, o));
  const cv::Point2f le = mean_point(in_crop, 36, 41), re = mean_point(in_crop, 42, 47);
  EXPECT_LT(std::abs(le.y - re.y), 0.05 * o.size);
  EXPECT_LT(cv::norm(le - template_point(0.3419, 0.4616, o)), 0.06 * o.size);
}

}  // namespace
}  // namespace dfm
