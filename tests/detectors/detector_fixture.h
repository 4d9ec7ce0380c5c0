// Shared detector + sample images for the detector tests (the landmark model loads once per process).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>

#include <opencv2/imgcodecs.hpp>

#include "dfm/detectors/face.h"

namespace dfm::testing {

inline std::string sample_image(const std::string& name) { return std::string(DFM_SOURCE_DIR) + "/samples/images/" + name; }

inline cv::Mat load_sample(const std::string& name) {
  cv::Mat img = cv::imread(sample_image(name), cv::IMREAD_COLOR);
  EXPECT_FALSE(img.empty()) << "cannot read " << sample_image(name);
  return img;
}

inline double iou(const cv::Rect& a, const cv::Rect& b) {
  const double inter = (a & b).area();
  const double uni = a.area() + b.area() - inter;
  return uni > 0 ? inter / uni : 0.0;
}

inline cv::Point2f mean_point(const std::array<cv::Point2f, 68>& lm, int from, int to) {
  cv::Point2f s(0, 0);
  for (int i = from; i <= to; ++i) s += lm[static_cast<size_t>(i)];
  return s * (1.0f / static_cast<float>(to - from + 1));
}

// One default detector for the whole suite.
class DetectorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto d = make_face_detector(DetectorOptions{});
    ASSERT_TRUE(d.ok()) << d.status().to_string();
    detector_ = std::move(d).value().release();
  }
  static void TearDownTestSuite() {
    delete detector_;
    detector_ = nullptr;
  }
  static FaceDetector& detector() { return *detector_; }

  static std::vector<FaceDetection> detect(FaceDetector& d, const cv::Mat& img) {
    auto r = d.detect(img);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? std::move(r).value() : std::vector<FaceDetection>{};
  }

  static inline FaceDetector* detector_ = nullptr;
};

}  // namespace dfm::testing
