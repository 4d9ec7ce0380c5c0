// The data that flows through the pipeline: plain structs stamped with stream id and time.
#pragma once

#include <cstdint>
#include <string>

#include <opencv2/core.hpp>

namespace dfm {

struct Frame {
  std::string stream;     // stream id (live) or source path/URI (audit)
  int64_t index = 0;      // decoded-frame index in the source (counts every decoded frame)
  double pts_s = 0.0;     // presentation time in seconds from the start of the source
  cv::Mat bgr;            // 8-bit BGR image, owned (continuous)
  int64_t arrival_ns = 0; // steady_clock time the frame left the decoder (latency measurements)
};

}  // namespace dfm
