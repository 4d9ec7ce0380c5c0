// PtsSampler: see pts_sampler.h.
#include "dfm/pipeline/pts_sampler.h"

#include <cmath>

namespace dfm {
namespace {

// Timescale rounding (e.g. 1001/30000 s frames) must not push a due frame to the next one.
constexpr int64_t kSampleTolerance = GST_MSECOND;

}  // namespace

void PtsSampler::set_rate(double sample_fps) {
  step_ns_ = sample_fps > 0 ? static_cast<int64_t>(std::llround(1e9 / sample_fps)) : 0;
}

void PtsSampler::reset_segment() {
  gst_segment_init(&segment_, GST_FORMAT_TIME);
  have_segment_ = false;
}

GstBuffer* PtsSampler::take(GstPadProbeInfo* info) {
  if (info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) {
    GstEvent* ev = GST_PAD_PROBE_INFO_EVENT(info);
    if (GST_EVENT_TYPE(ev) == GST_EVENT_SEGMENT) {
      const GstSegment* seg = nullptr;
      gst_event_parse_segment(ev, &seg);
      gst_segment_copy_into(seg, &segment_);
      have_segment_ = true;
    }
    return nullptr;
  }
  return GST_PAD_PROBE_INFO_BUFFER(info);
}

std::optional<int64_t> PtsSampler::media_time_ns(GstBuffer* buf) const {
  GstClockTime pts = GST_BUFFER_PTS(buf);
  if (!GST_CLOCK_TIME_IS_VALID(pts)) return std::nullopt;
  if (have_segment_) {
    guint64 st = 0;
    int sign = gst_segment_to_stream_time_full(&segment_, GST_FORMAT_TIME, pts, &st);
    if (sign > 0) return static_cast<int64_t>(st);
    if (sign < 0) return -static_cast<int64_t>(st);
  }
  return static_cast<int64_t>(pts);
}

bool PtsSampler::due(int64_t t) {
  if (step_ns_ <= 0) return true;
  if (!sampled_any_) {
    sampled_any_ = true;
    next_due_ns_ = t + step_ns_;
    return true;
  }
  if (t < next_due_ns_ - kSampleTolerance) return false;
  next_due_ns_ += step_ns_;
  // A whole slot went by without a frame (gap, or a source slower than sample_fps): re-anchor
  // the grid on this frame instead of emitting a burst to catch up.
  if (next_due_ns_ <= t) next_due_ns_ = t + step_ns_;
  return true;
}

}  // namespace dfm
