// PTS sampling of decoded video: which frames of a stream are analysed at `sample_fps`, decided in
// the decoded video pad's probe (before conversion), so unsampled frames cost only their decode. One
// grid for the file decoder, live sources and the dfmondetect element. GStreamer-facing: include it
// only where GStreamer's headers are available.
#pragma once

#include <gst/gst.h>

#include <cstdint>
#include <optional>

namespace dfm {

// DecodeOptions::sample_fps's rule (see decoder.h). Only the video streaming thread touches it.
class PtsSampler {
 public:
  void set_rate(double sample_fps);  // 0 = every frame
  // A new pipeline: forget its segment. The sampling grid carries on.
  void reset_segment();
  // One probe call: remembers a SEGMENT event and returns the buffer, or nullptr (events pass).
  GstBuffer* take(GstPadProbeInfo* info);
  // Stream time of the buffer's PTS (0 = start of the source) when the segment allows, else the
  // PTS; nullopt when the buffer has none.
  std::optional<int64_t> media_time_ns(GstBuffer* buf) const;
  // Whether the frame at media time `t` is kept (advances the grid when it is).
  bool due(int64_t t);

 private:
  GstSegment segment_{};
  bool have_segment_ = false;
  int64_t step_ns_ = 0;
  bool sampled_any_ = false;
  int64_t next_due_ns_ = 0;
};

}  // namespace dfm
