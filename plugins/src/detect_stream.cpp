// Per-stream work of dfmondetect: sampling, analysis, events, metas, overlay.
#include "detect_stream.h"

#include <gst/video/gstvideometa.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "face_meta_impl.h"
#include "video_bgr.h"

#define GST_CAT_DEFAULT dfmon_detect_debug

namespace dfm::gst {

DetectStream::DetectStream(GstElement* owner, std::unique_ptr<FrameAnalyzer> analyzer, std::string stream,
                           double sample_fps, bool async, DetectCounters* counters)
    : owner_(owner),
      analyzer_(std::move(analyzer)),
      stream_(std::move(stream)),
      sample_fps_(sample_fps),
      async_(async),
      counters_(counters) {
  sampler_.set_rate(sample_fps_);
  if (async_) worker_ = std::thread([this] { worker_loop(); });
}

DetectStream::~DetectStream() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

std::optional<int64_t> media_time_ns(const GstSegment* segment, GstClockTime pts) {
  if (!GST_CLOCK_TIME_IS_VALID(pts)) return std::nullopt;
  if (segment->format == GST_FORMAT_TIME) {
    guint64 st = 0;
    const int sign = gst_segment_to_stream_time_full(segment, GST_FORMAT_TIME, pts, &st);
    if (sign > 0) return static_cast<int64_t>(st);
    if (sign < 0) return -static_cast<int64_t>(st);
  }
  return static_cast<int64_t>(pts);
}

void DetectStream::process(GstVideoFrame* frame, const GstSegment* segment, bool overlay) {
  GstBuffer* buf = frame->buffer;
  const int w = GST_VIDEO_FRAME_WIDTH(frame), h = GST_VIDEO_FRAME_HEIGHT(frame);
  const auto t_ns = media_time_ns(segment, GST_BUFFER_PTS(buf));
  const int64_t index = frames_++;
  if (!t_ns) GST_LOG_OBJECT(owner_, "buffer without PTS passes unanalysed");

  std::optional<Job> job;
  if (t_ns && sampler_.due(*t_ns)) {
    bool idle = true;
    if (async_) {
      std::lock_guard<std::mutex> lock(mu_);
      idle = !busy_ && !job_;
    }
    if (!idle) {
      counters_->dropped++;
      GST_LOG_OBJECT(owner_, "worker busy: frame at %.3f s not analysed", static_cast<double>(*t_ns) / 1e9);
    } else if (auto bgr = frame_to_bgr(frame); !bgr.ok()) {
      GST_ELEMENT_WARNING(owner_, STREAM, FORMAT,
                          ("stream \"%s\": %s", stream_.c_str(), bgr.status().message().c_str()), (nullptr));
    } else {
      job =
          Job{Frame{stream_, index, static_cast<double>(*t_ns) / 1e9, std::move(bgr).value(), 0}, GST_BUFFER_PTS(buf)};
    }
  }

  if (job && !async_) {
    if (auto done = run(*job)) {
      attach(buf, *done, w, h);
      std::lock_guard<std::mutex> lock(mu_);
      last_faces_ = std::move(done->faces);
      last_t_ns_ = *t_ns;
    }
  } else if (async_) {
    std::optional<Done> done;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (job) job_ = std::move(job);
      done.swap(done_);
    }
    cv_.notify_one();
    if (done) attach(buf, *done, w, h);
  }

  if (!overlay || !t_ns) return;
  std::vector<OverlayBox> boxes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // The last faces stay on screen for 1.5 sample periods (async results arrive later: 1 s at least),
    // so boxes do not blink between samples.
    double hold_ns = sample_fps_ > 0 ? 1.5e9 / sample_fps_ : 0.0;
    if (async_) hold_ns = std::max(hold_ns, 1e9);
    if (last_t_ns_ < 0 || std::abs(static_cast<double>(*t_ns - last_t_ns_)) > hold_ns) return;
    char label[64];
    for (const auto& a : last_faces_) {
      std::snprintf(label, sizeof label, "#%d %.2f", a.track, a.smoothed);
      boxes.push_back({a.bbox, label, a.alert});
    }
  }
  auto st = draw_overlay(frame, boxes);
  if (!st.ok()) GST_WARNING_OBJECT(owner_, "%s", st.message().c_str());
}

void DetectStream::worker_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || job_.has_value(); });
    if (!job_) return;  // stopping with nothing queued
    Job job = std::move(*job_);
    job_.reset();
    busy_ = true;
    lock.unlock();
    std::optional<Done> done = run(job);
    lock.lock();
    busy_ = false;
    if (done) {
      last_faces_ = done->faces;
      last_t_ns_ = static_cast<int64_t>(std::llround(done->pts_s * 1e9));
      done_ = std::move(done);
    }
    cv_.notify_all();  // close() waits for an idle worker
  }
}

void DetectStream::close() {
  if (async_) {
    // Queued and running analyses finish first, so their events precede the alert_end below and the
    // worker is idle (no concurrent post()) while this thread posts.
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !busy_ && !job_; });
    done_.reset();
  }
  for (auto& e : analyzer_->close()) post(std::move(e), GST_CLOCK_TIME_NONE);
  sampler_ = PtsSampler();
  sampler_.set_rate(sample_fps_);
  std::lock_guard<std::mutex> lock(mu_);
  last_faces_.clear();
  last_t_ns_ = -1;
}

std::optional<DetectStream::Done> DetectStream::run(const Job& job) {
  const gint64 t0 = g_get_monotonic_time();
  auto r = analyzer_->process(job.frame);
  if (!r.ok()) {
    // Like the live monitor: a failed frame is lost, the stream goes on.
    GST_ELEMENT_WARNING(owner_, STREAM, FAILED, ("%s", r.status().message().c_str()), (nullptr));
    return std::nullopt;
  }
  counters_->analysed++;
  for (auto& e : r->events) post(std::move(e), job.pts);
  GST_DEBUG_OBJECT(owner_, "analysed frame at %.3f s: %zu faces in %.1f ms", job.frame.pts_s, r->faces.size(),
                   static_cast<double>(g_get_monotonic_time() - t0) / 1e3);
  return Done{job.frame.pts_s, std::move(r->faces)};
}

void DetectStream::attach(GstBuffer* buf, const Done& done, int width, int height) {
  std::vector<DfmonFace> faces;
  for (const auto& a : done.faces) {
    faces.push_back({a.track, a.smoothed, a.score.ensemble, a.alert ? TRUE : FALSE, a.bbox.x, a.bbox.y, a.bbox.width,
                     a.bbox.height});
    // The standard ROI meta too, so generic consumers see the faces; its box must lie inside the frame.
    const cv::Rect in = a.bbox & cv::Rect(0, 0, width, height);
    if (in.area() > 0) {
      GstVideoRegionOfInterestMeta* roi =
          gst_buffer_add_video_region_of_interest_meta(buf, "face", in.x, in.y, in.width, in.height);
      roi->id = a.track;
      gst_video_region_of_interest_meta_add_param(
          roi, gst_structure_new("dfmon", "track", G_TYPE_INT, a.track, "score", G_TYPE_DOUBLE, a.smoothed, "raw",
                                 G_TYPE_DOUBLE, static_cast<double>(a.score.ensemble), "alert", G_TYPE_BOOLEAN,
                                 a.alert ? TRUE : FALSE, nullptr));
    }
  }
  dfmon_buffer_add_face_meta(buf, done.pts_s, faces.data(), static_cast<guint>(faces.size()));
}

void DetectStream::post(Event e, GstClockTime timestamp) {
  e.seq = ++seq_;
  const std::string json = event_to_json(e).dump();
  GstStructure* s = gst_structure_new(
      "dfmon-event", "type", G_TYPE_STRING, event_type_name(e.type), "seq", G_TYPE_UINT64, static_cast<guint64>(e.seq),
      "stream", G_TYPE_STRING, e.stream.c_str(), "pts_s", G_TYPE_DOUBLE, e.pts_s, "track", G_TYPE_INT, e.track, "score",
      G_TYPE_DOUBLE, e.score, "raw", G_TYPE_DOUBLE, e.raw, "x", G_TYPE_INT, e.bbox.x, "y", G_TYPE_INT, e.bbox.y, "w",
      G_TYPE_INT, e.bbox.width, "h", G_TYPE_INT, e.bbox.height, nullptr);
  GstStructure* models = gst_structure_new_empty("models");
  for (const auto& [name, p] : e.models) gst_structure_set(models, name.c_str(), G_TYPE_DOUBLE, p, nullptr);
  gst_structure_set(s, "models", GST_TYPE_STRUCTURE, models, nullptr);
  gst_structure_free(models);
  if (e.type == EventType::kAlertEnd) {
    gst_structure_set(s, "duration_s", G_TYPE_DOUBLE, e.duration_s, "peak", G_TYPE_DOUBLE, e.peak, nullptr);
  }
  if (GST_CLOCK_TIME_IS_VALID(timestamp)) gst_structure_set(s, "timestamp", G_TYPE_UINT64, timestamp, nullptr);
  gst_structure_set(s, "json", G_TYPE_STRING, json.c_str(), nullptr);
  GST_LOG_OBJECT(owner_, "event %s", json.c_str());
  gst_element_post_message(owner_, gst_message_new_element(GST_OBJECT(owner_), s));
}

}  // namespace dfm::gst
