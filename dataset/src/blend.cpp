// Synthetic fakes: self-blended images and cross-identity swaps with soft landmark masks.
#include <algorithm>
#include <cmath>
#include <vector>

#include <opencv2/imgproc.hpp>

#include "dfm/dataset/dataset.h"

namespace dfm {

namespace {

// Landmark subsets whose hull is the blended region: the whole face, the lower face (nose and mouth),
// or the eye band. Varying them teaches boundaries anywhere on the face, not only at the jaw line.
std::vector<int> region_indices(int kind) {
  std::vector<int> idx;
  if (kind == 1) {
    for (int i = 2; i <= 14; ++i) idx.push_back(i);
    for (int i = 29; i <= 35; ++i) idx.push_back(i);
  } else if (kind == 2) {
    for (int i = 17; i <= 26; ++i) idx.push_back(i);
    for (int i = 36; i <= 47; ++i) idx.push_back(i);
    idx.push_back(0);
    idx.push_back(16);
    idx.push_back(29);
  } else {
    for (int i = 0; i < 68; ++i) idx.push_back(i);
  }
  return idx;
}

int odd(int k) { return k % 2 == 1 ? k : k + 1; }

// Deformed, blurred hull mask in [0,1] (CV_32F, crop size).
cv::Mat make_mask(const cv::Size& size, const std::array<cv::Point2f, 68>& lm, int kind, cv::RNG& rng) {
  std::vector<cv::Point2f> pts;
  for (int i : region_indices(kind)) pts.push_back(lm[static_cast<size_t>(i)]);
  std::vector<cv::Point2f> hull;
  cv::convexHull(pts, hull);
  cv::Point2f c(0, 0);
  for (const auto& p : hull) c += p;
  c *= 1.0f / static_cast<float>(std::max<size_t>(hull.size(), 1));
  // Anisotropic scale + per-vertex jitter: the mask edge must not always follow the landmarks exactly.
  const float sx = static_cast<float>(rng.uniform(0.88, 1.12)), sy = static_cast<float>(rng.uniform(0.88, 1.12));
  const float jitter = size.width * 0.015f;
  std::vector<cv::Point> poly;
  for (const auto& p : hull) {
    cv::Point2f q = c + cv::Point2f((p.x - c.x) * sx, (p.y - c.y) * sy);
    q += cv::Point2f(static_cast<float>(rng.gaussian(jitter)), static_cast<float>(rng.gaussian(jitter)));
    poly.emplace_back(cvRound(q.x), cvRound(q.y));
  }
  cv::Mat mask = cv::Mat::zeros(size, CV_32F);
  if (poly.size() >= 3) cv::fillConvexPoly(mask, poly, cv::Scalar(1.0));
  // Erode or dilate a little, then blur with a random width: sharp and soft boundaries both occur.
  const int morph = rng.uniform(0, 3);
  if (morph > 0) {
    cv::Mat k = cv::getStructuringElement(cv::MORPH_ELLIPSE, cv::Size(2 * morph + 1, 2 * morph + 1));
    if (rng.uniform(0, 2) == 0) cv::erode(mask, mask, k); else cv::dilate(mask, mask, k);
  }
  const int kernel = odd(rng.uniform(size.width / 40, size.width / 8 + 1));
  cv::GaussianBlur(mask, mask, cv::Size(kernel, kernel), 0);
  double mx = 0;
  cv::minMaxLoc(mask, nullptr, &mx);
  if (mx > 0) mask /= mx;
  // Partial blend strengths as in SBI: the boundary is sometimes faint.
  static const double kRatios[] = {0.25, 0.5, 0.75, 1.0, 1.0, 1.0};
  mask *= kRatios[rng.uniform(0, 6)];
  return mask;
}

cv::Mat blend(const cv::Mat& src, const cv::Mat& dst, const cv::Mat& mask) {
  cv::Mat s, d, m3, out;
  src.convertTo(s, CV_32FC3);
  dst.convertTo(d, CV_32FC3);
  cv::Mat ch[] = {mask, mask, mask};
  cv::merge(ch, 3, m3);
  out = s.mul(m3) + d.mul(cv::Scalar(1, 1, 1) - m3);
  out.convertTo(out, CV_8UC3);
  return out;
}

cv::Mat unsharp(const cv::Mat& img, double sigma, double amount) {
  cv::Mat blur, out;
  cv::GaussianBlur(img, blur, cv::Size(0, 0), sigma);
  cv::addWeighted(img, 1.0 + amount, blur, -amount, 0, out);
  return out;
}

// Balanced detail: the blended face comes out softer or sharper than the real one with equal odds. It is
// applied after blending because the misregistered blend itself averages away fine detail: with the
// default jitter 93% of self-blended faces are softer than the real crop (blend_test), and a network
// learns "sharp = real": the models shipped on 2026-11-26 score a real face whose interior was sharpened
// as more real (P(fake) 0.32 -> 0.19) and rank DeepFaceLive swaps, sharper than their sources, below them.
cv::Mat balanced_detail(const cv::Mat& face, cv::RNG& rng) {
  cv::Mat out;
  if (rng.uniform(0, 2) == 0) {
    cv::GaussianBlur(face, out, cv::Size(0, 0), rng.uniform(0.5, 1.5));
  } else {
    out = unsharp(face, rng.uniform(0.5, 1.0), rng.uniform(1.0, 2.5));
  }
  if (rng.uniform(0, 4) == 0) {  // another sensor's grain
    cv::Mat noise(out.size(), CV_32FC3), f;
    rng.fill(noise, cv::RNG::NORMAL, 0.0, rng.uniform(2.0, 6.0));
    out.convertTo(f, CV_32FC3);
    f += noise;
    f.convertTo(out, CV_8UC3);
  }
  return out;
}

// Colour, sharpness and small geometric changes that make the "source" face differ from its target.
cv::Mat jitter_source(const cv::Mat& crop, cv::RNG& rng, bool balanced) {
  cv::Mat f;
  crop.convertTo(f, CV_32FC3);
  // Per-channel gain and offset (colour temperature, exposure).
  cv::Scalar gain(rng.uniform(0.9, 1.1), rng.uniform(0.9, 1.1), rng.uniform(0.9, 1.1));
  cv::Scalar offset(rng.uniform(-12.0, 12.0), rng.uniform(-12.0, 12.0), rng.uniform(-12.0, 12.0));
  f = f.mul(gain) + offset;
  // Contrast around the mean.
  const double contrast = rng.uniform(0.85, 1.15);
  cv::Scalar mean = cv::mean(f);
  f = (f - mean) * contrast + mean;
  cv::Mat out;
  f.convertTo(out, CV_8UC3);
  const int sharp = balanced ? 2 : rng.uniform(0, 3);  // balanced: detail is set after blending
  if (sharp == 0) {
    const double sigma = rng.uniform(0.6, 1.6);
    cv::GaussianBlur(out, out, cv::Size(0, 0), sigma);
  } else if (sharp == 1) {
    out = unsharp(out, 1.2, 0.6);
  }
  // Small scale + shift: the blended face is slightly misregistered, as in real swaps.
  const double s = rng.uniform(0.95, 1.05);
  const double tx = rng.uniform(-0.02, 0.02) * crop.cols, ty = rng.uniform(-0.02, 0.02) * crop.rows;
  cv::Mat m = cv::getRotationMatrix2D(cv::Point2f(crop.cols / 2.f, crop.rows / 2.f), 0, s);
  m.at<double>(0, 2) += tx;
  m.at<double>(1, 2) += ty;
  cv::warpAffine(out, out, m, out.size(), cv::INTER_LINEAR, cv::BORDER_REFLECT);
  return out;
}

}  // namespace

cv::Mat self_blend(const cv::Mat& crop, const std::array<cv::Point2f, 68>& lm, uint64_t seed, cv::Mat* mask_out,
                   bool balanced) {
  cv::RNG rng(seed ? seed : 1);
  cv::Mat source = jitter_source(crop, rng, balanced);
  static const int kKinds[] = {0, 0, 0, 1, 2};  // whole hull most often
  cv::Mat mask = make_mask(crop.size(), lm, kKinds[rng.uniform(0, 5)], rng);
  if (mask_out) *mask_out = mask;
  cv::Mat out = blend(source, crop, mask);
  return balanced ? blend(balanced_detail(out, rng), crop, mask) : out;
}

cv::Mat swap_blend(const cv::Mat& target, const std::array<cv::Point2f, 68>& tlm, const cv::Mat& donor,
                   const std::array<cv::Point2f, 68>& dlm, uint64_t seed, cv::Mat* mask_out, bool balanced) {
  cv::RNG rng(seed ? seed : 1);
  std::vector<cv::Point2f> s(dlm.begin(), dlm.end()), d(tlm.begin(), tlm.end());
  cv::Mat m = similarity_transform(s, d);
  cv::Mat warped;
  cv::warpAffine(donor, warped, m, target.size(), cv::INTER_LINEAR, cv::BORDER_REFLECT);
  // Swap tools often render a smoother, lower-detail face than the camera's.
  if (!balanced && rng.uniform(0, 2) == 0) cv::GaussianBlur(warped, warped, cv::Size(0, 0), rng.uniform(0.5, 1.5));
  cv::Mat mask = make_mask(target.size(), tlm, rng.uniform(0, 4) == 0 ? 1 : 0, rng);
  // Colour transfer in Lab inside the mask: the donor takes the target's skin tone and lighting.
  cv::Mat hard = mask > 0.5;
  if (cv::countNonZero(hard) > 50) {
    cv::Mat wl, tl;
    cv::cvtColor(warped, wl, cv::COLOR_BGR2Lab);
    cv::cvtColor(target, tl, cv::COLOR_BGR2Lab);
    cv::Scalar wm, ws, tm, ts;
    cv::meanStdDev(wl, wm, ws, hard);
    cv::meanStdDev(tl, tm, ts, hard);
    cv::Mat wf;
    wl.convertTo(wf, CV_32FC3);
    std::vector<cv::Mat> ch;
    cv::split(wf, ch);
    for (int c = 0; c < 3; ++c) ch[c] = (ch[c] - wm[c]) * (ts[c] / std::max(ws[c], 1.0)) + tm[c];
    cv::merge(ch, wf);
    wf.convertTo(wl, CV_8UC3);
    cv::cvtColor(wl, warped, cv::COLOR_Lab2BGR);
  }
  if (mask_out) *mask_out = mask;
  cv::Mat out = blend(warped, target, mask);
  return balanced ? blend(balanced_detail(out, rng), target, mask) : out;
}

}  // namespace dfm
