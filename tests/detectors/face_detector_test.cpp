// dlib HOG detector + 68-point landmarks on the sample photos, downscaling, and factory validation.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <opencv2/imgproc.hpp>

#include "detector_fixture.h"
#include "dfm/detectors/face.h"

namespace fs = std::filesystem;

namespace dfm {
namespace {

using testing::DetectorTest;
using testing::iou;
using testing::load_sample;
using testing::mean_point;

TEST_F(DetectorTest, BidenHasExactlyOneFaceOfPlausibleSize) {
  cv::Mat img = load_sample("biden.jpg");
  ASSERT_FALSE(img.empty());
  auto faces = detect(detector(), img);
  ASSERT_EQ(faces.size(), 1u);
  const FaceDetection& f = faces[0];
  const cv::Rect frame(0, 0, img.cols, img.rows);
  EXPECT_EQ(f.box & frame, f.box) << "box leaves the frame";
  // A portrait: the face is a sizeable part of the width, but not all of it.
  EXPECT_GT(f.box.width, img.cols / 10);
  EXPECT_LT(f.box.width, img.cols * 9 / 10);
  EXPECT_GT(f.box.height, 0);
  EXPECT_NEAR(static_cast<double>(f.box.height) / f.box.width, 1.0, 0.35);  // HOG boxes are ~square
  EXPECT_GT(f.confidence, 0.0);
}

TEST_F(DetectorTest, BidenLandmarksLieInsideEnlargedBoxWithEyesAboveMouth) {
  cv::Mat img = load_sample("biden.jpg");
  auto faces = detect(detector(), img);
  ASSERT_EQ(faces.size(), 1u);
  const FaceDetection& f = faces[0];
  const cv::Rect& b = f.box;
  const cv::Rect2f enlarged(b.x - 0.3f * b.width, b.y - 0.3f * b.height, 1.6f * b.width, 1.6f * b.height);
  for (size_t i = 0; i < 68; ++i) {
    EXPECT_TRUE(enlarged.contains(f.landmarks[i])) << "landmark " << i << " at " << f.landmarks[i] << " outside " << enlarged;
  }
  // Not collapsed to one point: landmarks spread over a good part of the box.
  cv::Rect2f spread = cv::boundingRect(std::vector<cv::Point2f>(f.landmarks.begin(), f.landmarks.end()));
  EXPECT_GT(spread.width, 0.5f * b.width);
  EXPECT_GT(spread.height, 0.5f * b.height);

  const cv::Point2f left_eye = mean_point(f.landmarks, 36, 41), right_eye = mean_point(f.landmarks, 42, 47);
  const cv::Point2f nose = f.landmarks[30], mouth = mean_point(f.landmarks, 48, 67);
  EXPECT_LT(left_eye.y, mouth.y);
  EXPECT_LT(right_eye.y, mouth.y);
  EXPECT_LT(left_eye.y, nose.y);
  EXPECT_LT(nose.y, mouth.y);
  EXPECT_LT(left_eye.x, right_eye.x);  // iBUG 36..41 is the eye on the image's left
  EXPECT_GT(nose.x, left_eye.x);
  EXPECT_LT(nose.x, right_eye.x);
  // Jaw (0..16) runs from the image's left side to its right side, chin (8) lowest of the jaw.
  EXPECT_LT(f.landmarks[0].x, f.landmarks[16].x);
  for (int i = 0; i <= 16; ++i) EXPECT_LE(f.landmarks[static_cast<size_t>(i)].y, f.landmarks[8].y + 1.0f) << i;
}

TEST_F(DetectorTest, TwoPeopleHasTwoFacesLargestFirst) {
  cv::Mat img = load_sample("two_people.jpg");
  auto faces = detect(detector(), img);
  ASSERT_EQ(faces.size(), 2u);
  EXPECT_GE(faces[0].box.area(), faces[1].box.area());
  EXPECT_EQ((faces[0].box & faces[1].box).area(), 0) << "the two faces overlap: " << faces[0].box << " " << faces[1].box;
  for (const auto& f : faces) {
    const cv::Point2f eyes = (mean_point(f.landmarks, 36, 41) + mean_point(f.landmarks, 42, 47)) * 0.5f;
    EXPECT_LT(eyes.y, mean_point(f.landmarks, 48, 67).y);
  }
}

TEST_F(DetectorTest, DogsHaveNoFace) {
  cv::Mat img = load_sample("dogs.jpg");
  ASSERT_FALSE(img.empty());
  EXPECT_TRUE(detect(detector(), img).empty());
}

TEST_F(DetectorTest, AcceptsGreyscaleInput) {
  cv::Mat img = load_sample("biden.jpg"), grey;
  cv::cvtColor(img, grey, cv::COLOR_BGR2GRAY);
  auto colour = detect(detector(), img);
  auto mono = detect(detector(), grey);
  ASSERT_EQ(colour.size(), 1u);
  ASSERT_EQ(mono.size(), 1u);
  EXPECT_EQ(colour[0].box, mono[0].box);
}

TEST_F(DetectorTest, RejectsEmptyAndNon8BitImages) {
  auto empty = detector().detect(cv::Mat());
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), Code::kInvalidArgument);
  auto deep = detector().detect(cv::Mat(100, 100, CV_16UC3, cv::Scalar::all(1000)));
  ASSERT_FALSE(deep.ok());
  EXPECT_EQ(deep.status().code(), Code::kInvalidArgument);
  auto bad_box = detector().landmarks_for(cv::Mat(100, 100, CV_8UC3, cv::Scalar::all(0)), cv::Rect(10, 10, 0, 5));
  EXPECT_FALSE(bad_box.ok());
  // Errors are values at module boundaries: a 16-bit frame must not throw out of landmarks_for either.
  Result<FaceDetection> deep_lm = InvalidArgument("not run");
  EXPECT_NO_THROW(deep_lm = detector().landmarks_for(cv::Mat(100, 100, CV_16UC3, cv::Scalar::all(1000)), cv::Rect(10, 10, 50, 50)));
  EXPECT_FALSE(deep_lm.ok());
}

TEST_F(DetectorTest, LandmarksForDetectedBoxMatchDetection) {
  cv::Mat img = load_sample("obama2.jpg");
  auto faces = detect(detector(), img);
  ASSERT_GE(faces.size(), 1u);
  auto again = detector().landmarks_for(img, faces[0].box);
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_EQ(again->box, faces[0].box);
  for (size_t i = 0; i < 68; ++i) {
    EXPECT_NEAR(again->landmarks[i].x, faces[0].landmarks[i].x, 1e-3) << i;
    EXPECT_NEAR(again->landmarks[i].y, faces[0].landmarks[i].y, 1e-3) << i;
  }
}

// Detection on a downscaled copy must map the box back to full-frame pixels.
TEST(FaceDetectorScaling, MaxWidthDownscalingMapsBoxBack) {
  cv::Mat img = load_sample("biden.jpg");
  ASSERT_GT(img.cols, 640);  // so both downscaled settings below actually downscale
  DetectorOptions full;
  full.max_width = 0;
  auto dfull = make_face_detector(full);
  ASSERT_TRUE(dfull.ok()) << dfull.status().to_string();
  auto ref = (*dfull)->detect(img);
  ASSERT_TRUE(ref.ok());
  ASSERT_EQ(ref->size(), 1u);
  for (int mw : {640, 400}) {
    DetectorOptions o;
    o.max_width = mw;
    auto d = make_face_detector(o);
    ASSERT_TRUE(d.ok()) << d.status().to_string();
    auto small = (*d)->detect(img);
    ASSERT_TRUE(small.ok());
    ASSERT_EQ(small->size(), 1u) << "max_width " << mw;
    const cv::Rect a = (*ref)[0].box, b = (*small)[0].box;
    EXPECT_GT(iou(a, b), 0.7) << "max_width " << mw << ": full " << a << " vs downscaled " << b;
    // Landmarks are computed at full resolution inside the mapped box: eyes near the full-res ones.
    const cv::Point2f e_full = mean_point((*ref)[0].landmarks, 36, 47), e_small = mean_point((*small)[0].landmarks, 36, 47);
    EXPECT_LT(cv::norm(e_full - e_small), 0.1 * a.width) << "max_width " << mw;
  }
}

TEST(FaceDetectorFactory, UnknownTypeIsInvalidArgumentNamingIt) {
  DetectorOptions o;
  o.type = "mtcnn";
  auto d = make_face_detector(o);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), Code::kInvalidArgument);
  EXPECT_NE(d.status().message().find("mtcnn"), std::string::npos) << d.status().message();
  EXPECT_NE(d.status().message().find("detector.type"), std::string::npos) << d.status().message();
}

TEST(FaceDetectorFactory, MissingLandmarkModelIsNotFoundNamingPath) {
  DetectorOptions o;
  o.landmark_model = "/nonexistent";
  auto d = make_face_detector(o);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), Code::kNotFound);
  EXPECT_NE(d.status().message().find("/nonexistent"), std::string::npos) << d.status().message();
}

TEST(FaceDetectorFactory, GarbageLandmarkModelIsAnErrorNamingPath) {
  const fs::path dir = fs::path(DFM_TEST_TMP) / "detectors_garbage_landmarks";
  fs::create_directories(dir);
  const fs::path file = dir / "shape_predictor.dat";
  { std::ofstream(file, std::ios::binary) << "this is not a dlib shape predictor"; }
  DetectorOptions o;
  o.landmark_model = file.string();
  auto d = make_face_detector(o);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find(file.string()), std::string::npos) << d.status().message();
}

TEST(FaceDetectorFactory, BadNumbersAreInvalidArgumentNamingKey) {
  struct Case {
    const char* key;
    DetectorOptions opts;
  };
  std::vector<Case> cases;
  DetectorOptions o;
  o.max_width = 10;
  cases.push_back({"max_width", o});
  o = DetectorOptions{};
  o.max_width = -5;
  cases.push_back({"max_width", o});
  o = DetectorOptions{};
  o.min_face = -1;
  cases.push_back({"min_face", o});
  o = DetectorOptions{};
  o.upsample = 3;
  cases.push_back({"upsample", o});
  o = DetectorOptions{};
  o.upsample = -1;
  cases.push_back({"upsample", o});
  for (const auto& c : cases) {
    auto d = make_face_detector(c.opts);
    ASSERT_FALSE(d.ok()) << c.key;
    EXPECT_EQ(d.status().code(), Code::kInvalidArgument) << c.key;
    EXPECT_NE(d.status().message().find(c.key), std::string::npos) << d.status().message();
  }
}

TEST(FaceDetectorFactory, ZeroMaxWidthMeansNoDownscalingAndIsValid) {
  DetectorOptions o;
  o.max_width = 0;
  auto d = make_face_detector(o);
  EXPECT_TRUE(d.ok()) << d.status().to_string();
  o.max_width = 64;
  EXPECT_TRUE(make_face_detector(o).ok());
}

}  // namespace
}  // namespace dfm
