// Landmark-based face alignment: least-squares similarity transform onto a fixed five-point template.
#include <algorithm>
#include <cmath>
#include <vector>

#include <opencv2/imgproc.hpp>

#include "dfm/detectors/face.h"

namespace dfm {

namespace {

// Five reference points (left eye, right eye, nose tip, left and right mouth corner) in a unit face box,
// the usual template of face-recognition alignment (normalised from a 112 px crop).
constexpr float kTemplate[5][2] = {
    {0.3419f, 0.4616f}, {0.6565f, 0.4598f}, {0.5002f, 0.6405f}, {0.3710f, 0.8247f}, {0.6319f, 0.8233f},
};

cv::Point2f mean_of(const std::array<cv::Point2f, 68>& lm, int from, int to) {
  cv::Point2f s(0, 0);
  for (int i = from; i <= to; ++i) s += lm[i];
  return s * (1.0f / static_cast<float>(to - from + 1));
}

}  // namespace

cv::Mat alignment_transform(const std::array<cv::Point2f, 68>& lm, const AlignOptions& options) {
  // Image left eye = iBUG 36..41, right eye 42..47, nose tip 30, mouth corners 48 and 54.
  const cv::Point2f src[5] = {mean_of(lm, 36, 41), mean_of(lm, 42, 47), lm[30], lm[48], lm[54]};
  const double size = options.size;
  const double face = size / (1.0 + 2.0 * options.margin);  // template box side inside the crop
  const double off = (size - face) / 2.0;
  cv::Point2d dst[5];
  for (int i = 0; i < 5; ++i) dst[i] = cv::Point2d(off + kTemplate[i][0] * face, off + kTemplate[i][1] * face);

  std::vector<cv::Point2f> s(src, src + 5), d;
  for (const auto& p : dst) d.emplace_back(static_cast<float>(p.x), static_cast<float>(p.y));
  return similarity_transform(s, d);
}

cv::Mat similarity_transform(const std::vector<cv::Point2f>& src, const std::vector<cv::Point2f>& dst) {
  const size_t n = std::min(src.size(), dst.size());
  cv::Mat m = cv::Mat::zeros(2, 3, CV_64F);
  m.at<double>(0, 0) = m.at<double>(1, 1) = 1.0;
  if (n == 0) return m;
  cv::Point2d ms(0, 0), md(0, 0);
  for (size_t i = 0; i < n; ++i) {
    ms += cv::Point2d(src[i]);
    md += cv::Point2d(dst[i]);
  }
  ms *= 1.0 / static_cast<double>(n);
  md *= 1.0 / static_cast<double>(n);
  double sxx = 0, sxy = 0, var = 0;
  for (size_t i = 0; i < n; ++i) {
    const cv::Point2d s = cv::Point2d(src[i]) - ms;
    const cv::Point2d d = cv::Point2d(dst[i]) - md;
    sxx += s.x * d.x + s.y * d.y;
    sxy += s.x * d.y - s.y * d.x;
    var += s.x * s.x + s.y * s.y;
  }
  if (var < 1e-9) {  // degenerate points: translation only
    m.at<double>(0, 2) = md.x - ms.x;
    m.at<double>(1, 2) = md.y - ms.y;
    return m;
  }
  const double a = sxx / var, b = sxy / var;  // scale*cos, scale*sin
  m.at<double>(0, 0) = a;
  m.at<double>(0, 1) = -b;
  m.at<double>(1, 0) = b;
  m.at<double>(1, 1) = a;
  m.at<double>(0, 2) = md.x - (a * ms.x - b * ms.y);
  m.at<double>(1, 2) = md.y - (b * ms.x + a * ms.y);
  return m;
}

cv::Mat align_face(const cv::Mat& bgr, const FaceDetection& face, const AlignOptions& options) {
  cv::Mat m = alignment_transform(face.landmarks, options);
  cv::Mat crop;
  cv::warpAffine(bgr, crop, m, cv::Size(options.size, options.size), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
  return crop;
}

std::array<cv::Point2f, 68> transform_landmarks(const std::array<cv::Point2f, 68>& lm, const cv::Mat& affine) {
  std::array<cv::Point2f, 68> out{};
  cv::Mat m;
  affine.convertTo(m, CV_64F);
  for (size_t i = 0; i < lm.size(); ++i) {
    const double x = lm[i].x, y = lm[i].y;
    out[i] = cv::Point2f(static_cast<float>(m.at<double>(0, 0) * x + m.at<double>(0, 1) * y + m.at<double>(0, 2)),
                         static_cast<float>(m.at<double>(1, 0) * x + m.at<double>(1, 1) * y + m.at<double>(1, 2)));
  }
  return out;
}

}  // namespace dfm
