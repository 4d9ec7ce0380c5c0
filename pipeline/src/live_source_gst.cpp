// LiveSource's GStreamer side: building one attempt's graph and the streaming-thread callbacks
// (PTS sampling before conversion, continuous timeline, BGR hand-off to the FrameQueue).
#include <algorithm>

#include "decoder_gst.h"
#include "live_source_internal.h"

namespace dfm {
namespace {

using live::Kind;
using namespace gstutil;

// The FrameQueue does the buffering; the appsink only hands over (drop=true: it never blocks).
constexpr guint kAppsinkMaxBuffers = 2;
// rtspsrc waits this long for the server's TEARDOWN reply when stopping (a dead server never replies).
constexpr guint64 kTeardownTimeout = 100 * GST_MSECOND;

void set_if_exists(GstElement* e, const char* prop, const std::string& value) {
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(e), prop))
    gst_util_set_object_arg(G_OBJECT(e), prop, value.c_str());
}

}  // namespace

int64_t LiveSource::Impl::media_time_ns(GstBuffer* buf) {
  if (std::optional<int64_t> t = sampler.media_time_ns(buf)) return *t;
  return have_out ? last_out_ns - offset_ns + frame_dur_ns : 0;  // no PTS: one frame after the last
}

// Maps a buffer onto the source's own timeline, which never goes back (see the header).
int64_t LiveSource::Impl::timeline_ns(int64_t raw, int64_t prev_decode_ns) {
  if (first_in_run) {  // a new attempt: continue after the outage, in wall-clock time
    first_in_run = false;
    if (have_out) offset_ns = last_out_ns + std::max(now_ns() - prev_decode_ns, frame_dur_ns) - raw;
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

// The offline decoder's sampling rule, on the continuous timeline.
GstPadProbeReturn LiveSource::Impl::on_probe(GstPad*, GstPadProbeInfo* info, gpointer user) {
  auto* d = static_cast<Impl*>(user);
  GstBuffer* buf = d->sampler.take(info);
  if (!buf) return GST_PAD_PROBE_OK;
  int64_t index = d->decoded.fetch_add(1);
  d->run_decoded.fetch_add(1);
  int64_t prev = d->last_decode_ns.exchange(now_ns());
  int64_t t = d->timeline_ns(d->media_time_ns(buf), prev);
  // Dropping here means videoscale/videoconvert/appsink never see unsampled frames.
  if (!d->sampler.due(t)) return GST_PAD_PROBE_DROP;
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
  f.bgr = copy_bgr(sample);
  gst_sample_unref(sample);
  f.arrival_ns = now_ns();
  d->last_sample_ns = f.arrival_ns;
  d->queue.push(std::move(f));  // never blocks: full -> drop per policy, counted
  d->sampled.fetch_add(1);
  d->run_sampled.fetch_add(1);
  return GST_FLOW_OK;
}

int LiveSource::Impl::on_autoplug_select(GstElement*, GstPad*, GstCaps*, GstElementFactory* factory, gpointer) {
  return is_audio_decoder(factory) ? kAutoplugSkip : kAutoplugTry;
}

void LiveSource::Impl::on_no_more_pads(GstElement*, gpointer user) {
  static_cast<Impl*>(user)->no_more_pads = true;
}

void LiveSource::Impl::on_pad_added(GstElement*, GstPad* pad, gpointer user) {
  auto* d = static_cast<Impl*>(user);
  PadCaps caps = pad_caps(pad);
  if (caps.name == "video/x-raw" && !d->video_linked) {
    if (link_video_pad(pad, d->head, &Impl::on_probe, d) != GST_PAD_LINK_OK) {
      std::lock_guard<std::mutex> lock(d->err_mu);
      d->link_error = d->tag + ": cannot convert decoded video " + caps.desc + " to BGR";
      return;
    }
    d->video_linked = true;
    return;
  }
  drain_pad(d->pipeline, pad);
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

// decodebin made an element: a libav video decoder gets the configured thread count.
void LiveSource::Impl::on_deep_element_added(GstBin*, GstBin*, GstElement* element, gpointer user) {
  auto* d = static_cast<Impl*>(user);
  if (d->opt.decoder_threads <= 0) return;
  GstElementFactory* f = gst_element_get_factory(element);
  const char* name = f ? GST_OBJECT_NAME(f) : nullptr;
  if (name && g_str_has_prefix(name, "avdec_") &&
      g_object_class_find_property(G_OBJECT_GET_CLASS(element), "max-threads")) {
    g_object_set(element, "max-threads", d->opt.decoder_threads, nullptr);
  }
}

Status LiveSource::Impl::build() {
  pipeline = gst_pipeline_new(("dfm-live-" + opt.id).c_str());
  // Files and HTTP would otherwise decode as fast as the CPU allows: sync makes them play like a
  // live feed. Live sources must not sync (late frames would be dropped or delayed).
  AppsinkMode mode{/*sync=*/live::paced_by_clock(kind), kAppsinkMaxBuffers, /*drop=*/true};
  Result<VideoGraph> graph =
      add_video_graph(pipeline, tag, uri, opt.max_width, mode, "cannot link the conversion elements");
  if (!graph.ok()) return graph.status();
  GstElement* src = graph->src;
  g_signal_connect(src, "pad-added", G_CALLBACK(&Impl::on_pad_added), this);
  g_signal_connect(src, "no-more-pads", G_CALLBACK(&Impl::on_no_more_pads), this);
  g_signal_connect(src, "autoplug-select", G_CALLBACK(&Impl::on_autoplug_select), this);
  g_signal_connect(src, "source-setup", G_CALLBACK(&Impl::on_source_setup), this);
  g_signal_connect(src, "deep-element-added", G_CALLBACK(&Impl::on_deep_element_added), this);
  GstAppSinkCallbacks callbacks{};
  callbacks.new_sample = &Impl::on_new_sample;
  gst_app_sink_set_callbacks(GST_APP_SINK(graph->appsink), &callbacks, this, nullptr);
  head = graph->head;
  bus = gst_element_get_bus(pipeline);
  tap_errors(pipeline, [this](GstMessage* msg) {
    std::lock_guard<std::mutex> lock(err_mu);
    if (swallowed.empty()) swallowed = live::describe_error(tag, msg).message();
  });
  return Status::Ok();
}

void LiveSource::Impl::teardown() {
  destroy_pipeline(pipeline, bus);  // joins the streaming threads: no callback outlives this attempt
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
  sampler.reset_segment();
  first_in_run = true;
}

Status LiveSource::Impl::link_problem() {
  std::lock_guard<std::mutex> lock(err_mu);
  if (!link_error.empty()) return Unsupported(link_error);
  if (no_more_pads && !video_linked) return Unsupported(tag + ": no video stream");
  return Status::Ok();
}

}  // namespace dfm
