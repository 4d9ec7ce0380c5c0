// LiveSource's GStreamer side: building one attempt's graph and the streaming-thread callbacks
// (PTS sampling before conversion, continuous timeline, BGR hand-off to the FrameQueue).
#include <gst/video/video.h>

#include <algorithm>
#include <cstring>

#include "decoder_gst.h"
#include "live_source_internal.h"

namespace dfm {
namespace {

using live::Kind;

// Timescale rounding (1001/30000 s frames) must not push a due frame to the next one.
constexpr int64_t kSampleTolerance = GST_MSECOND;
// The FrameQueue does the buffering; the appsink only hands over (drop=true: it never blocks).
constexpr guint kAppsinkMaxBuffers = 2;
// rtspsrc waits this long for the server's TEARDOWN reply when stopping (a dead server never replies).
constexpr guint64 kTeardownTimeout = 100 * GST_MSECOND;
// Mirrors GstAutoplugSelectResult, which playback plugins do not export in a header.
enum AutoplugSelect { kAutoplugTry = 0, kAutoplugSkip = 2 };

void set_if_exists(GstElement* e, const char* prop, const std::string& value) {
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(e), prop))
    gst_util_set_object_arg(G_OBJECT(e), prop, value.c_str());
}

}  // namespace

int64_t LiveSource::Impl::media_time_ns(GstBuffer* buf) {
  GstClockTime pts = GST_BUFFER_PTS(buf);
  if (!GST_CLOCK_TIME_IS_VALID(pts)) return have_out ? last_out_ns - offset_ns + frame_dur_ns : 0;
  if (have_segment) {
    guint64 st = 0;
    int sign = gst_segment_to_stream_time_full(&segment, GST_FORMAT_TIME, pts, &st);
    if (sign > 0) return static_cast<int64_t>(st);
    if (sign < 0) return -static_cast<int64_t>(st);
  }
  return static_cast<int64_t>(pts);
}

// Maps a buffer onto the source's own timeline, which never goes back (see the header).
int64_t LiveSource::Impl::timeline_ns(int64_t raw, int64_t prev_decode_ns) {
  if (first_in_run) {  // a new attempt: continue after the outage, in wall-clock time
    first_in_run = false;
    if (have_out) offset_ns = last_out_ns + std::max(live::now_ns() - prev_decode_ns, frame_dur_ns) - raw;
  }
  int64_t out = raw + offset_ns;
  if (have_out && out <= last_out_ns) {  // a loop restart or a timestamp reset
    offset_ns = last_out_ns + frame_dur_ns - raw;
    out = last_out_ns + frame_dur_ns;
  } else if (have_out && out - last_out_ns < GST_SECOND) {
    frame_dur_ns = out - last_out_ns;
  }
  last_out_ns = out;
  have_out = true;
  return out;
}

// The offline decoder's rule: a fixed grid of 1/sample_fps, re-anchored after a gap (no bursts).
bool LiveSource::Impl::due(int64_t t) {
  if (step_ns <= 0) return true;
  if (!sampled_any) {
    sampled_any = true;
    next_due_ns = t + step_ns;
    return true;
  }
  if (t < next_due_ns - kSampleTolerance) return false;
  next_due_ns += step_ns;
  if (next_due_ns <= t) next_due_ns = t + step_ns;
  return true;
}

GstPadProbeReturn LiveSource::Impl::on_probe(GstPad*, GstPadProbeInfo* info, gpointer user) {
  auto* d = static_cast<Impl*>(user);
  if (info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) {
    GstEvent* ev = GST_PAD_PROBE_INFO_EVENT(info);
    if (GST_EVENT_TYPE(ev) == GST_EVENT_SEGMENT) {
      const GstSegment* seg = nullptr;
      gst_event_parse_segment(ev, &seg);
      gst_segment_copy_into(seg, &d->segment);
      d->have_segment = true;
    }
    return GST_PAD_PROBE_OK;
  }
  GstBuffer* buf = GST_PAD_PROBE_INFO_BUFFER(info);
  if (!buf) return GST_PAD_PROBE_OK;
  int64_t index = d->decoded.fetch_add(1);
  d->run_decoded.fetch_add(1);
  int64_t prev = d->last_decode_ns.exchange(live::now_ns());
  int64_t t = d->timeline_ns(d->media_time_ns(buf), prev);
  // Dropping here means videoscale/videoconvert/appsink never see unsampled frames.
  if (!d->due(t)) return GST_PAD_PROBE_DROP;
  d->kept_pts = GST_BUFFER_PTS(buf);
  d->kept_out_ns = t;
  d->kept_index = index;
  return GST_PAD_PROBE_OK;
}

GstFlowReturn LiveSource::Impl::on_new_sample(GstAppSink* sink, gpointer user) {
  auto* d = static_cast<Impl*>(user);
  GstSample* sample = gst_app_sink_pull_sample(sink);
  if (!sample) return GST_FLOW_OK;
  GstBuffer* buf = gst_sample_get_buffer(sample);
  Frame f;
  f.stream = d->opt.id;
  f.index = d->kept_index;
  f.pts_s = static_cast<double>(d->kept_out_ns) / GST_SECOND;
  if (GST_BUFFER_PTS(buf) != d->kept_pts) d->log->debug("appsink buffer is not the one the sampler kept");
  GstVideoInfo info;
  GstVideoFrame vf;
  if (gst_video_info_from_caps(&info, gst_sample_get_caps(sample)) &&
      gst_video_frame_map(&vf, &info, buf, GST_MAP_READ)) {
    // Respect the row stride, then copy so the frame owns its pixels after the sample is freed.
    cv::Mat view(GST_VIDEO_FRAME_HEIGHT(&vf), GST_VIDEO_FRAME_WIDTH(&vf), CV_8UC3, GST_VIDEO_FRAME_PLANE_DATA(&vf, 0),
                 GST_VIDEO_FRAME_PLANE_STRIDE(&vf, 0));
    f.bgr = view.clone();
    gst_video_frame_unmap(&vf);
  }
  gst_sample_unref(sample);
  f.arrival_ns = live::now_ns();
  d->last_sample_ns = f.arrival_ns;
  d->queue.push(std::move(f));  // never blocks: full -> drop per policy, counted
  d->sampled.fetch_add(1);
  d->run_sampled.fetch_add(1);
  return GST_FLOW_OK;
}

// Audio decoding is wasted work here: skip audio decoders, leaving those streams unexposed.
int LiveSource::Impl::on_autoplug_select(GstElement*, GstPad*, GstCaps*, GstElementFactory* factory, gpointer) {
  const gchar* klass = gst_element_factory_get_metadata(factory, GST_ELEMENT_METADATA_KLASS);
  return (klass && strstr(klass, "Decoder") && strstr(klass, "Audio")) ? kAutoplugSkip : kAutoplugTry;
}

void LiveSource::Impl::on_no_more_pads(GstElement*, gpointer user) {
  static_cast<Impl*>(user)->no_more_pads = true;
}

void LiveSource::Impl::on_pad_added(GstElement*, GstPad* pad, gpointer user) {
  auto* d = static_cast<Impl*>(user);
  GstCaps* caps = gst_pad_get_current_caps(pad);
  if (!caps) caps = gst_pad_query_caps(pad, nullptr);
  std::string name = (caps && !gst_caps_is_empty(caps)) ? gst_structure_get_name(gst_caps_get_structure(caps, 0)) : "";
  std::string desc = gstutil::caps_string(caps);
  if (caps) gst_caps_unref(caps);
  if (name == "video/x-raw" && !d->video_linked) {
    GstPad* sink = gst_element_get_static_pad(d->head, "sink");
    GstPadLinkReturn r = gst_pad_link(pad, sink);
    gst_object_unref(sink);
    if (r != GST_PAD_LINK_OK) {
      std::lock_guard<std::mutex> lock(d->err_mu);
      d->link_error = d->tag + ": cannot convert decoded video " + desc + " to BGR";
      return;
    }
    gst_pad_add_probe(pad,
                      static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM),
                      &Impl::on_probe, d, nullptr);
    d->video_linked = true;
    return;
  }
  // Other streams drain into a fakesink so the demuxer never sees not-linked.
  GstElement* sink = gst_element_factory_make("fakesink", nullptr);
  if (!sink) return;
  g_object_set(sink, "sync", FALSE, "async", FALSE, "enable-last-sample", FALSE, nullptr);
  gst_bin_add(GST_BIN(d->pipeline), sink);
  gst_element_sync_state_with_parent(sink);
  GstPad* sinkpad = gst_element_get_static_pad(sink, "sink");
  gst_pad_link(pad, sinkpad);
  gst_object_unref(sinkpad);
}

// uridecodebin made its source element: apply the per-kind network settings.
void LiveSource::Impl::on_source_setup(GstElement*, GstElement* source, gpointer user) {
  auto* d = static_cast<Impl*>(user);
  if (d->kind == Kind::kRtsp || d->kind == Kind::kSrt)
    set_if_exists(source, "latency", std::to_string(d->opt.latency_ms));
  if (d->kind == Kind::kRtsp) {
    if (d->opt.transport == "tcp") set_if_exists(source, "protocols", "tcp");
    if (d->opt.transport == "udp") set_if_exists(source, "protocols", "udp+udp-mcast");
    set_if_exists(source, "teardown-timeout", std::to_string(kTeardownTimeout));
  }
  // udpsrc delivers untyped packets; say it is MPEG-TS so decodebin need not guess.
  if (d->kind == Kind::kUdp)
    set_if_exists(source, "caps", "video/mpegts,systemstream=(boolean)true,packetsize=(int)188");
}

Status LiveSource::Impl::build() {
  pipeline = gst_pipeline_new(("dfm-live-" + opt.id).c_str());
  GstElement* src = gst_element_factory_make("uridecodebin", "src");
  GstElement* scale = opt.max_width > 0 ? gst_element_factory_make("videoscale", "scale") : nullptr;
  GstElement* size = opt.max_width > 0 ? gst_element_factory_make("capsfilter", "size") : nullptr;
  GstElement* convert = gst_element_factory_make("videoconvert", "convert");
  GstElement* appsink = gst_element_factory_make("appsink", "sink");
  if (!src || !convert || !appsink || (opt.max_width > 0 && (!scale || !size))) {
    for (GstElement* e : {src, scale, size, convert, appsink}) {
      if (e) gst_object_unref(gst_object_ref_sink(e));
    }
    return Unsupported(tag +
                       ": GStreamer elements uridecodebin/videoconvert/videoscale/appsink are missing "
                       "(install gstreamer1.0-plugins-base)");
  }
  g_object_set(src, "uri", uri.c_str(), nullptr);
  g_signal_connect(src, "pad-added", G_CALLBACK(&Impl::on_pad_added), this);
  g_signal_connect(src, "no-more-pads", G_CALLBACK(&Impl::on_no_more_pads), this);
  g_signal_connect(src, "autoplug-select", G_CALLBACK(&Impl::on_autoplug_select), this);
  g_signal_connect(src, "source-setup", G_CALLBACK(&Impl::on_source_setup), this);

  GstCaps* bgr = gst_caps_from_string("video/x-raw,format=BGR");
  // Files and HTTP would otherwise decode as fast as the CPU allows: sync makes them play like a
  // live feed. Live sources must not sync (late frames would be dropped or delayed).
  gboolean sync = live::paced_by_clock(kind) ? TRUE : FALSE;
  g_object_set(appsink, "caps", bgr, "sync", sync, "max-buffers", kAppsinkMaxBuffers, "drop", TRUE, "emit-signals",
               FALSE, "enable-last-sample", FALSE, nullptr);
  gst_caps_unref(bgr);
  GstAppSinkCallbacks callbacks{};
  callbacks.new_sample = &Impl::on_new_sample;
  gst_app_sink_set_callbacks(GST_APP_SINK(appsink), &callbacks, this, nullptr);

  gst_bin_add_many(GST_BIN(pipeline), src, convert, appsink, nullptr);
  bool linked = true;
  if (scale) {
    // Width range + square pixels: videoscale fixates the height from the display aspect ratio.
    std::string c = "video/x-raw,width=[1," + std::to_string(opt.max_width) + "],pixel-aspect-ratio=1/1";
    GstCaps* limit = gst_caps_from_string(c.c_str());
    g_object_set(size, "caps", limit, nullptr);
    gst_caps_unref(limit);
    gst_bin_add_many(GST_BIN(pipeline), scale, size, nullptr);
    linked = gst_element_link_many(scale, size, convert, appsink, nullptr);
    head = scale;
  } else {
    linked = gst_element_link(convert, appsink);
    head = convert;
  }
  if (!linked) return Internal(tag + ": cannot link the conversion elements");
  bus = gst_element_get_bus(pipeline);
  gstutil::tap_errors(pipeline, [this](GstMessage* msg) {
    std::lock_guard<std::mutex> lock(err_mu);
    if (swallowed.empty()) swallowed = live::describe_error(tag, msg).message();
  });
  return Status::Ok();
}

void LiveSource::Impl::teardown() {
  if (pipeline) {
    // NULL joins the streaming threads, so no callback outlives this attempt.
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gstutil::untap_errors(pipeline);
    gst_object_unref(pipeline);
    pipeline = nullptr;
  }
  if (bus) gst_object_unref(bus);
  bus = nullptr;
}

void LiveSource::Impl::reset_run() {
  run_decoded = 0;
  run_sampled = 0;
  video_linked = false;
  no_more_pads = false;
  {
    std::lock_guard<std::mutex> lock(err_mu);
    swallowed.clear();
    link_error.clear();
  }
  gst_segment_init(&segment, GST_FORMAT_TIME);
  have_segment = false;
  first_in_run = true;
}

Status LiveSource::Impl::link_problem() {
  std::lock_guard<std::mutex> lock(err_mu);
  if (!link_error.empty()) return Unsupported(link_error);
  if (no_more_pads && !video_linked) return Unsupported(tag + ": no video stream");
  return Status::Ok();
}

}  // namespace dfm
