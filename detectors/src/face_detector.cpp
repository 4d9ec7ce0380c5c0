// dlib HOG frontal face detector + 68-point shape predictor behind the FaceDetector interface.
#include <dlib/image_processing.h>
#include <dlib/image_processing/frontal_face_detector.h>
#include <dlib/opencv/cv_image.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <mutex>

#include <opencv2/imgproc.hpp>

#include "dfm/common/paths.h"
#include "dfm/detectors/face.h"
#include "shape_model.h"

namespace dfm {

namespace {

// The landmark model is ~100 MB in memory; load it once per path and share it (evaluation is const).
Result<std::shared_ptr<const detail::ShapeModel>> load_shape_predictor(const std::string& path) {
  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<const detail::ShapeModel>> cache;
  std::lock_guard<std::mutex> lock(mu);
  if (auto it = cache.find(path); it != cache.end()) {
    if (auto sp = it->second.lock()) return sp;
  }
  auto loaded = detail::ShapeModel::load(path);
  if (!loaded.ok()) return InvalidArgument("landmark model " + path + ": cannot load: " + loaded.status().message());
  std::shared_ptr<const detail::ShapeModel> shared = std::move(loaded).value();
  if (shared->num_parts() != 68) {
    return InvalidArgument("landmark model " + path + ": has " + std::to_string(shared->num_parts()) +
                           " points, expected the 68-point iBUG model");
  }
  cache[path] = shared;
  return shared;
}

cv::Mat to_gray(const cv::Mat& bgr) {
  if (bgr.channels() == 1) return bgr;
  cv::Mat gray;
  cv::cvtColor(bgr, gray, bgr.channels() == 4 ? cv::COLOR_BGRA2GRAY : cv::COLOR_BGR2GRAY);
  return gray;
}

class DlibHogDetector final : public FaceDetector {
 public:
  DlibHogDetector(DetectorOptions opts, std::shared_ptr<const detail::ShapeModel> sp)
      : opts_(std::move(opts)), detector_(dlib::get_frontal_face_detector()), predictor_(std::move(sp)) {}

  Result<std::vector<FaceDetection>> detect(const cv::Mat& bgr) override {
    if (bgr.empty()) return InvalidArgument("empty image");
    if (bgr.depth() != CV_8U) return InvalidArgument("image must be 8-bit");
    cv::Mat gray = to_gray(bgr);
    // HOG cost grows with pixel count; detect on a downscaled copy and map boxes back.
    double scale = 1.0;
    cv::Mat small = gray;
    if (opts_.max_width > 0 && gray.cols > opts_.max_width) {
      scale = static_cast<double>(opts_.max_width) / gray.cols;
      cv::resize(gray, small, cv::Size(), scale, scale, cv::INTER_AREA);
    }
    std::vector<dlib::rect_detection> dets;
    try {
      dlib::cv_image<unsigned char> img(small);
      if (opts_.upsample > 0) {
        dlib::array2d<unsigned char> up;
        dlib::assign_image(up, img);
        for (int i = 0; i < opts_.upsample; ++i) dlib::pyramid_up(up);
        detector_(up, dets, opts_.threshold);
        scale *= std::pow(2.0, opts_.upsample);
      } else {
        detector_(img, dets, opts_.threshold);
      }
    } catch (const std::exception& e) {
      return Internal(std::string("dlib face detector: ") + e.what());
    }
    std::vector<FaceDetection> faces;
    const cv::Rect frame(0, 0, gray.cols, gray.rows);
    for (const auto& d : dets) {
      cv::Rect box(static_cast<int>(std::lround(d.rect.left() / scale)),
                   static_cast<int>(std::lround(d.rect.top() / scale)),
                   static_cast<int>(std::lround(d.rect.width() / scale)),
                   static_cast<int>(std::lround(d.rect.height() / scale)));
      box &= frame;
      if (box.width < opts_.min_face || box.height <= 0) continue;
      FaceDetection f;
      f.box = box;
      f.confidence = d.detection_confidence;
      fill_landmarks(gray, box, &f);
      faces.push_back(f);
    }
    // Largest first: callers that want one face per image take faces[0].
    std::sort(faces.begin(), faces.end(),
              [](const FaceDetection& a, const FaceDetection& b) { return a.box.area() > b.box.area(); });
    return faces;
  }

  Result<FaceDetection> landmarks_for(const cv::Mat& bgr, const cv::Rect& box) override {
    if (bgr.empty()) return InvalidArgument("empty image");
    if (bgr.depth() != CV_8U) return InvalidArgument("image must be 8-bit");
    if (box.width <= 0 || box.height <= 0) return InvalidArgument("empty face box");
    FaceDetection f;
    f.box = box;
    fill_landmarks(to_gray(bgr), box, &f);
    return f;
  }

 private:
  // Landmarks at full resolution: the downscaled frame would cost accuracy on small faces.
  void fill_landmarks(const cv::Mat& gray, const cv::Rect& box, FaceDetection* f) const {
    dlib::cv_image<unsigned char> img(gray);
    dlib::rectangle r(box.x, box.y, box.x + box.width - 1, box.y + box.height - 1);
    dlib::full_object_detection shape = (*predictor_)(img, r);
    for (unsigned i = 0; i < 68 && i < shape.num_parts(); ++i) {
      f->landmarks[i] = cv::Point2f(static_cast<float>(shape.part(i).x()), static_cast<float>(shape.part(i).y()));
    }
  }

  DetectorOptions opts_;
  dlib::frontal_face_detector detector_;
  std::shared_ptr<const detail::ShapeModel> predictor_;
};

}  // namespace

Result<std::unique_ptr<FaceDetector>> make_face_detector(const DetectorOptions& options) {
  if (options.type != "dlib_hog") {
    return InvalidArgument("detector.type: unknown detector \"" + options.type + "\" (available: dlib_hog)");
  }
  if (options.max_width != 0 && options.max_width < 64) {
    return InvalidArgument("detector.max_width: " + std::to_string(options.max_width) + " is below 64 (0 = no downscaling)");
  }
  if (options.min_face < 0) return InvalidArgument("detector.min_face: must be >= 0");
  if (options.upsample < 0 || options.upsample > 2) return InvalidArgument("detector.upsample: must be 0, 1 or 2");
  std::string path = options.landmark_model.empty() ? find_landmark_model() : options.landmark_model;
  if (path.empty()) {
    return NotFound(
        "dlib 68-point landmark model not found (looked in $DFMON_LANDMARKS and "
        "/usr/share/dlib/shape_predictor_68_face_landmarks.dat; install Debian's libdlib-data)");
  }
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return NotFound("landmark model " + path + ": no such file");
  DFM_ASSIGN_OR_RETURN(auto sp, load_shape_predictor(path));
  return std::unique_ptr<FaceDetector>(new DlibHogDetector(options, std::move(sp)));
}

}  // namespace dfm
