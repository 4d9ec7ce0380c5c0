// Conversions between mapped GstVideoFrames and OpenCV images for dfmondetect.
#include "video_bgr.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <opencv2/imgproc.hpp>

namespace dfm::gst {

namespace {

cv::Mat plane(const GstVideoFrame* f, int p, int rows, int cols, int type) {
  return cv::Mat(rows, cols, type, GST_VIDEO_FRAME_PLANE_DATA(f, p),
                 static_cast<size_t>(GST_VIDEO_FRAME_PLANE_STRIDE(f, p)));
}

// Y plane followed by the chroma plane(s), rows packed without stride padding, as OpenCV's
// COLOR_YUV2BGR_I420/NV12 expect: (h * 3 / 2) x w bytes.
cv::Mat pack_yuv420(const GstVideoFrame* f, int w, int h, bool nv12) {
  cv::Mat packed(h * 3 / 2, w, CV_8UC1);
  plane(f, 0, h, w, CV_8UC1).copyTo(packed.rowRange(0, h));
  uchar* dst = packed.ptr(h);
  if (nv12) {
    cv::Mat uv = plane(f, 1, h / 2, w, CV_8UC1);
    for (int r = 0; r < h / 2; ++r, dst += w) std::memcpy(dst, uv.ptr(r), static_cast<size_t>(w));
  } else {
    for (int p = 1; p <= 2; ++p) {
      cv::Mat c = plane(f, p, h / 2, w / 2, CV_8UC1);
      for (int r = 0; r < h / 2; ++r, dst += w / 2) std::memcpy(dst, c.ptr(r), static_cast<size_t>(w / 2));
    }
  }
  return packed;
}

// How the supported formats are laid out: plane 0 is packed RGB-ish (3 or 4 bytes) or, for 4:2:0
// YUV, the luma plane. `to_bgr` converts plane 0 of a packed format (-1: copy as is).
struct Layout {
  int type = -1;  // CV type of plane 0; -1 = unsupported format
  bool rgb_order = false;
  bool yuv420 = false;
  int to_bgr = -1;
};

Layout layout_of(GstVideoFormat fmt) {
  switch (fmt) {
    case GST_VIDEO_FORMAT_BGR:
      return {CV_8UC3, false, false, -1};
    case GST_VIDEO_FORMAT_RGB:
      return {CV_8UC3, true, false, cv::COLOR_RGB2BGR};
    case GST_VIDEO_FORMAT_BGRx:
    case GST_VIDEO_FORMAT_BGRA:
      return {CV_8UC4, false, false, cv::COLOR_BGRA2BGR};
    case GST_VIDEO_FORMAT_RGBx:
    case GST_VIDEO_FORMAT_RGBA:
      return {CV_8UC4, true, false, cv::COLOR_RGBA2BGR};
    case GST_VIDEO_FORMAT_I420:
    case GST_VIDEO_FORMAT_NV12:
      return {CV_8UC1, false, true, -1};
    default:
      return {};
  }
}

struct Yuv {
  double y, u, v;
};

// Boxes and labels on one plane drawn at `scale` of the frame's size (0.5 for 4:2:0 chroma).
void draw_boxes(cv::Mat img, const std::vector<OverlayBox>& boxes, double scale, int thick, double font,
                const std::function<cv::Scalar(bool)>& colour) {
  const int t = std::max(1, static_cast<int>(thick * scale));
  for (const auto& b : boxes) {
    const cv::Scalar c = colour(b.alert);
    int base = 0;
    const cv::Size ts = cv::getTextSize(b.label, cv::FONT_HERSHEY_SIMPLEX, font, thick, &base);
    // The label sits above the box when there is room, else just inside its top edge.
    const int y = b.box.y - 4 >= ts.height ? b.box.y - 4 : b.box.y + ts.height + 4;
    const cv::Rect box(cvRound(b.box.x * scale), cvRound(b.box.y * scale), cvRound(b.box.width * scale),
                       cvRound(b.box.height * scale));
    cv::rectangle(img, box, c, t);
    cv::putText(img, b.label, cv::Point(cvRound(b.box.x * scale), cvRound(y * scale)), cv::FONT_HERSHEY_SIMPLEX,
                font * scale, c, t);
  }
}

}  // namespace

Result<cv::Mat> frame_to_bgr(const GstVideoFrame* f) {
  const int w = GST_VIDEO_FRAME_WIDTH(f), h = GST_VIDEO_FRAME_HEIGHT(f);
  const GstVideoFormat fmt = GST_VIDEO_FRAME_FORMAT(f);
  const Layout l = layout_of(fmt);
  if (l.type < 0)
    return Unsupported(std::string("video format ") + gst_video_format_to_string(fmt) + " is not supported");
  try {
    cv::Mat bgr;
    if (l.yuv420) {
      const int we = w & ~1, he = h & ~1;
      if (we < 2 || he < 2) return InvalidArgument("frame too small for YUV 4:2:0 conversion");
      const bool nv12 = fmt == GST_VIDEO_FORMAT_NV12;
      cv::cvtColor(pack_yuv420(f, we, he, nv12), bgr, nv12 ? cv::COLOR_YUV2BGR_NV12 : cv::COLOR_YUV2BGR_I420);
    } else if (l.to_bgr < 0) {
      plane(f, 0, h, w, l.type).copyTo(bgr);
    } else {
      cv::cvtColor(plane(f, 0, h, w, l.type), bgr, l.to_bgr);
    }
    return bgr;
  } catch (const cv::Exception& e) {
    return Internal(std::string("converting a ") + gst_video_format_to_string(fmt) + " frame to BGR: " + e.what());
  }
}

Status draw_overlay(GstVideoFrame* f, const std::vector<OverlayBox>& boxes) {
  if (boxes.empty()) return Status::Ok();
  const int w = GST_VIDEO_FRAME_WIDTH(f), h = GST_VIDEO_FRAME_HEIGHT(f);
  const GstVideoFormat fmt = GST_VIDEO_FRAME_FORMAT(f);
  const Layout l = layout_of(fmt);
  if (l.type < 0)
    return Unsupported(std::string("overlay on ") + gst_video_format_to_string(fmt) + " is not supported");
  const int thick = std::max(2, std::min(w, h) / 240);
  const double font = std::max(0.5, std::min(w, h) / 720.0);
  try {
    if (!l.yuv420) {
      draw_boxes(plane(f, 0, h, w, l.type), boxes, 1.0, thick, font, [&](bool alert) {
        const double r = alert ? 255 : 0, g = alert ? 0 : 255;
        return l.rgb_order ? cv::Scalar(r, g, 0, 255) : cv::Scalar(0, g, r, 255);
      });
      return Status::Ok();
    }
    // 4:2:0: luma at full size, chroma (U and V, or interleaved UV) at half size, same shapes.
    const Yuv green{145, 54, 34}, red{81, 90, 240};  // BT.601 limited range
    auto yuv = [&](bool alert) { return alert ? red : green; };
    draw_boxes(plane(f, 0, h, w, CV_8UC1), boxes, 1.0, thick, font, [&](bool a) { return cv::Scalar(yuv(a).y); });
    if (GST_VIDEO_FRAME_FORMAT(f) == GST_VIDEO_FORMAT_NV12) {
      draw_boxes(plane(f, 1, h / 2, w / 2, CV_8UC2), boxes, 0.5, thick, font,
                 [&](bool a) { return cv::Scalar(yuv(a).u, yuv(a).v); });
    } else {
      draw_boxes(plane(f, 1, h / 2, w / 2, CV_8UC1), boxes, 0.5, thick, font,
                 [&](bool a) { return cv::Scalar(yuv(a).u); });
      draw_boxes(plane(f, 2, h / 2, w / 2, CV_8UC1), boxes, 0.5, thick, font,
                 [&](bool a) { return cv::Scalar(yuv(a).v); });
    }
  } catch (const cv::Exception& e) {
    return Internal(std::string("drawing the overlay: ") + e.what());
  }
  return Status::Ok();
}

}  // namespace dfm::gst
