// Raw video frames <-> OpenCV for dfmondetect: a BGR copy of a mapped frame for analysis, and drawing
// face boxes on the mapped frame in place (every accepted format, in colour).
#pragma once

#include <gst/video/video.h>

#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "dfm/common/status.h"

namespace dfm::gst {

// The caps formats the element accepts (also used for its pad templates).
#define DFMON_VIDEO_FORMATS "{ BGR, BGRx, BGRA, RGB, RGBx, RGBA, I420, NV12 }"

// An owned, continuous 8-bit BGR copy of `frame`. Planar YUV frames with odd sizes lose their last
// row/column (OpenCV's YUV converters need even sizes). cv::Exception becomes a Status.
Result<cv::Mat> frame_to_bgr(const GstVideoFrame* frame);

struct OverlayBox {
  cv::Rect box;
  std::string label;   // e.g. "#3 0.82"
  bool alert = false;  // drawn red (colour formats) instead of green
};

// Draws the boxes and labels into the frame's pixels (must be mapped for writing).
Status draw_overlay(GstVideoFrame* frame, const std::vector<OverlayBox>& boxes);

}  // namespace dfm::gst
