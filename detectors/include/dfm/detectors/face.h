// Face detection, 68-point landmarks and aligned crops (dlib HOG + shape predictor).
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "dfm/common/status.h"

namespace dfm {

// One face in frame coordinates.
struct FaceDetection {
  cv::Rect box;                                  // detector box, full-frame pixels
  std::array<cv::Point2f, 68> landmarks{};       // iBUG 68-point order, full-frame pixels
  double confidence = 0.0;                       // HOG detection score (higher = more face-like)
};

struct DetectorOptions {
  std::string type = "dlib_hog";
  int max_width = 640;     // frames wider than this are downscaled for detection; boxes are mapped back
  int min_face = 40;       // faces narrower than this (full-frame px) are dropped
  int upsample = 0;        // dlib pyramid upsampling steps (0 = none; 1 finds faces ~2x smaller, 4x slower)
  double threshold = 0.0;  // HOG score threshold
  std::string landmark_model;  // path; empty = find_landmark_model()
};

// Detects faces and their landmarks in BGR frames. Not thread-safe: one per thread (dlib's detector
// keeps scratch buffers); make_face_detector() is cheap after the first call shares the loaded model.
class FaceDetector {
 public:
  virtual ~FaceDetector() = default;
  virtual Result<std::vector<FaceDetection>> detect(const cv::Mat& bgr) = 0;
  // Landmarks for a known box (tracking between detections, or a crop whose box is the whole image).
  virtual Result<FaceDetection> landmarks_for(const cv::Mat& bgr, const cv::Rect& box) = 0;
};

// Validated factory: unknown type, bad numbers or a missing landmark file are errors that say which.
Result<std::unique_ptr<FaceDetector>> make_face_detector(const DetectorOptions& options);

struct AlignOptions {
  int size = 224;        // output crop side in px
  double margin = 0.25;  // extra context around the landmark template, as a fraction of the face size
};

// Similarity transform (rotation, uniform scale, translation) that maps the landmarks to a canonical
// face template inside a size x size crop. Deterministic: same input, same crop.
cv::Mat alignment_transform(const std::array<cv::Point2f, 68>& landmarks, const AlignOptions& options);

// Least-squares similarity transform (2x3, CV_64F) taking src points onto dst points; no reflection.
// Closed form (Umeyama), so it is deterministic, unlike OpenCV's RANSAC estimators.
cv::Mat similarity_transform(const std::vector<cv::Point2f>& src, const std::vector<cv::Point2f>& dst);

// Aligned crop (BGR, size x size) of a face.
cv::Mat align_face(const cv::Mat& bgr, const FaceDetection& face, const AlignOptions& options);

// Landmarks mapped into the aligned crop's coordinates.
std::array<cv::Point2f, 68> transform_landmarks(const std::array<cv::Point2f, 68>& landmarks, const cv::Mat& affine);

}  // namespace dfm
