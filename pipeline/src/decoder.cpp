// VideoDecoder: a GStreamer uridecodebin pipeline that samples by timestamp before conversion.
#include "dfm/pipeline/decoder.h"

#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <limits>
#include <mutex>
#include <system_error>

#include "decoder_gst.h"
#include "dfm/common/log.h"

namespace dfm {
namespace {

namespace fs = std::filesystem;
using namespace gstutil;
using Clock = std::chrono::steady_clock;

// How long one appsink pull waits; bounds the latency of noticing errors and stalls.
constexpr GstClockTime kPullSlice = 50 * GST_MSECOND;
// Timescale rounding (e.g. 1001/30000 s frames) must not push a due frame to the next one.
constexpr int64_t kSampleTolerance = GST_MSECOND;
// Small and blocking: an audit must not lose sampled frames, and memory stays bounded.
constexpr guint kAppsinkMaxBuffers = 4;

// Mirrors GstAutoplugSelectResult, which playback plugins do not export in a header.
enum AutoplugSelect { kAutoplugTry = 0, kAutoplugExpose = 1, kAutoplugSkip = 2 };

// After decodebin swallowed an error (see gstutil::tap_errors) and nothing got linked for this
// long, report that error instead of waiting for the stall timeout.
constexpr int64_t kSwallowedErrorGraceNs = 1500 * GST_MSECOND;

// Rejects inputs GStreamer would report confusingly (or only after starting a pipeline).
Status check_local_file(const std::string& input, const std::string& path) {
  std::error_code ec;
  fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) return NotFound(input + ": no such file");
  if (fs::is_directory(st)) return InvalidArgument(input + ": is a directory, expected a video file");
  if (fs::is_regular_file(st) && fs::file_size(path, ec) == 0 && !ec) {
    return InvalidArgument(input + ": file is empty (0 bytes)");
  }
  return Status::Ok();
}

Status check_options(const DecodeOptions& o) {
  if (!std::isfinite(o.sample_fps) || o.sample_fps < 0) {
    return InvalidArgument("sample_fps must be >= 0 (0 = every frame), got " + std::to_string(o.sample_fps));
  }
  if (!std::isfinite(o.stall_timeout_s) || o.stall_timeout_s <= 0) {
    return InvalidArgument("stall_timeout_s must be > 0, got " + std::to_string(o.stall_timeout_s));
  }
  if (o.max_width < 0) return InvalidArgument("max_width must be >= 0, got " + std::to_string(o.max_width));
  return Status::Ok();
}

}  // namespace

bool is_uri(const std::string& s) {
  // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then "://".
  if (s.empty() || !std::isalpha(static_cast<unsigned char>(s[0]))) return false;
  size_t i = 1;
  while (i < s.size() && (std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '+' || s[i] == '-' || s[i] == '.'))
    ++i;
  return s.compare(i, 3, "://") == 0;
}

std::string to_uri(const std::string& path_or_uri) {
  if (is_uri(path_or_uri)) return path_or_uri;
  ensure_gstreamer();
  gchar* uri = gst_filename_to_uri(path_or_uri.c_str(), nullptr);
  std::string out = uri ? uri : "";
  g_free(uri);
  return out;
}

// State shared between the owner thread and GStreamer streaming threads (signals, pad probe).
struct VideoDecoder::Impl {
  struct Pending {  // a buffer the probe kept, awaiting its sample at the appsink
    GstClockTime pts;
    int64_t time_ns;
    int64_t index;
  };

  std::string input;
  DecodeOptions opt;
  std::shared_ptr<spdlog::logger> log = get_logger("decoder");
  GstElement* pipeline = nullptr;
  GstElement* head = nullptr;  // first element of the video branch
  GstElement* appsink = nullptr;
  GstBus* bus = nullptr;

  // Written from streaming threads.
  std::atomic<int64_t> decoded{0};
  std::atomic<int64_t> last_time_ns{std::numeric_limits<int64_t>::min()};
  std::atomic<bool> video_linked{false};
  std::atomic<bool> no_more_pads{false};
  std::atomic<bool> saw_other_stream{false};
  std::atomic<int64_t> last_activity_ns{0};  // steady clock; any autoplug/pad callback
  std::mutex mu;
  std::deque<Pending> pending;      // guarded by mu
  std::string unknown_video_caps;   // guarded by mu
  std::string link_error;           // guarded by mu
  GstMessage* swallowed = nullptr;  // guarded by mu: first ERROR seen by the tap
  int64_t swallowed_at_ns = 0;      // guarded by mu

  // Touched only by the video streaming thread (inside the probe).
  GstSegment segment{};
  bool have_segment = false;
  bool sampled_any = false;
  int64_t next_due_ns = 0;
  int64_t step_ns = 0;

  // Owner thread only.
  bool finished = false;
  Status final_status;  // ok + finished = end of stream
  int64_t seen_decoded = -1;
  Clock::time_point last_progress = Clock::now();
  mutable double duration_cache = -1;

  ~Impl() {
    if (pipeline) {
      // NULL joins the streaming threads (flushing a blocked appsink), so no callback outlives us.
      gst_element_set_state(pipeline, GST_STATE_NULL);
      untap_errors(pipeline);
      gst_object_unref(pipeline);
    }
    if (bus) gst_object_unref(bus);
    if (swallowed) gst_message_unref(swallowed);
  }

  static int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
  }
  void touch() { last_activity_ns = now_ns(); }

  // Media time of a decoded buffer: stream time (0 = start of the source) when the segment allows.
  int64_t media_time_ns(GstBuffer* buf) {
    GstClockTime pts = GST_BUFFER_PTS(buf);
    int64_t last = last_time_ns.load(std::memory_order_relaxed);
    if (!GST_CLOCK_TIME_IS_VALID(pts)) {  // rare (raw AVI); extrapolate so sampling still advances
      if (last == std::numeric_limits<int64_t>::min()) return 0;
      GstClockTime dur = GST_BUFFER_DURATION(buf);
      return last + (GST_CLOCK_TIME_IS_VALID(dur) ? static_cast<int64_t>(dur) : 0);
    }
    if (have_segment) {
      guint64 st = 0;
      int sign = gst_segment_to_stream_time_full(&segment, GST_FORMAT_TIME, pts, &st);
      if (sign > 0) return static_cast<int64_t>(st);
      if (sign < 0) return -static_cast<int64_t>(st);
    }
    return static_cast<int64_t>(pts);
  }

  bool due(int64_t t) {
    if (step_ns <= 0) return true;
    if (!sampled_any) {
      sampled_any = true;
      next_due_ns = t + step_ns;
      return true;
    }
    if (t < next_due_ns - kSampleTolerance) return false;
    next_due_ns += step_ns;
    // A whole slot went by without a frame (gap, or a source slower than sample_fps): re-anchor
    // the grid on this frame instead of emitting a burst to catch up.
    if (next_due_ns <= t) next_due_ns = t + step_ns;
    return true;
  }

  static GstPadProbeReturn on_probe(GstPad*, GstPadProbeInfo* info, gpointer user) {
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
    int64_t t = d->media_time_ns(buf);
    d->last_time_ns.store(t);
    // Dropping here means videoscale/videoconvert/appsink never see unsampled frames.
    if (!d->due(t)) return GST_PAD_PROBE_DROP;
    std::lock_guard<std::mutex> lock(d->mu);
    d->pending.push_back({GST_BUFFER_PTS(buf), t, index});
    return GST_PAD_PROBE_OK;
  }

  // Audio decoding is wasted work here: skip audio decoders, leaving those streams unexposed.
  static int on_autoplug_select(GstElement*, GstPad*, GstCaps*, GstElementFactory* factory, gpointer user) {
    static_cast<Impl*>(user)->touch();
    const gchar* klass = gst_element_factory_get_metadata(factory, GST_ELEMENT_METADATA_KLASS);
    if (klass && strstr(klass, "Decoder") && strstr(klass, "Audio")) {
      static_cast<Impl*>(user)->saw_other_stream = true;
      return kAutoplugSkip;
    }
    return kAutoplugTry;
  }

  static void on_unknown_type(GstElement*, GstPad*, GstCaps* caps, gpointer user) {
    auto* d = static_cast<Impl*>(user);
    d->touch();
    std::string s = caps_string(caps);
    if (s.rfind("video/", 0) == 0) {
      std::lock_guard<std::mutex> lock(d->mu);
      if (d->unknown_video_caps.empty()) d->unknown_video_caps = s;
    } else {
      d->saw_other_stream = true;
    }
  }

  static void on_no_more_pads(GstElement*, gpointer user) {
    auto* d = static_cast<Impl*>(user);
    d->touch();
    d->no_more_pads = true;
  }

  static void on_pad_added(GstElement*, GstPad* pad, gpointer user) {
    auto* d = static_cast<Impl*>(user);
    d->touch();
    GstCaps* caps = gst_pad_get_current_caps(pad);
    if (!caps) caps = gst_pad_query_caps(pad, nullptr);
    std::string name =
        (caps && !gst_caps_is_empty(caps)) ? gst_structure_get_name(gst_caps_get_structure(caps, 0)) : "";
    std::string desc = caps_string(caps);
    if (caps) gst_caps_unref(caps);

    if (name == "video/x-raw" && !d->video_linked.load()) {
      GstPad* sink = gst_element_get_static_pad(d->head, "sink");
      GstPadLinkReturn r = gst_pad_link(pad, sink);
      gst_object_unref(sink);
      if (r != GST_PAD_LINK_OK) {
        std::lock_guard<std::mutex> lock(d->mu);
        d->link_error =
            d->input + ": cannot convert decoded video " + desc + " to BGR (" + gst_pad_link_get_name(r) + ")";
        return;
      }
      gst_pad_add_probe(pad,
                        static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM),
                        &Impl::on_probe, d, nullptr);
      d->video_linked = true;
      return;
    }
    if (name.rfind("video/", 0) != 0) d->saw_other_stream = true;
    // Any other stream (extra video, subtitles, undecoded audio) drains into a fakesink so the
    // demuxer never sees not-linked on it.
    GstElement* sink = gst_element_factory_make("fakesink", nullptr);
    if (!sink) return;
    g_object_set(sink, "sync", FALSE, "async", FALSE, "enable-last-sample", FALSE, nullptr);
    gst_bin_add(GST_BIN(d->pipeline), sink);
    gst_element_sync_state_with_parent(sink);
    GstPad* sinkpad = gst_element_get_static_pad(sink, "sink");
    gst_pad_link(pad, sinkpad);
    gst_object_unref(sinkpad);
  }

  Status build(const std::string& uri) {
    pipeline = gst_pipeline_new("dfm-decoder");
    GstElement* src = gst_element_factory_make("uridecodebin", "src");
    GstElement* scale = opt.max_width > 0 ? gst_element_factory_make("videoscale", "scale") : nullptr;
    GstElement* size = opt.max_width > 0 ? gst_element_factory_make("capsfilter", "size") : nullptr;
    GstElement* convert = gst_element_factory_make("videoconvert", "convert");
    appsink = gst_element_factory_make("appsink", "sink");
    if (!pipeline || !src || !convert || !appsink || (opt.max_width > 0 && (!scale || !size))) {
      for (GstElement* e : {src, scale, size, convert, appsink}) {
        if (e) gst_object_unref(gst_object_ref_sink(e));
      }
      appsink = nullptr;
      return Unsupported(input +
                         ": GStreamer elements uridecodebin/videoconvert/videoscale/appsink are missing "
                         "(install gstreamer1.0-plugins-base)");
    }
    g_object_set(src, "uri", uri.c_str(), nullptr);
    g_signal_connect(src, "pad-added", G_CALLBACK(&Impl::on_pad_added), this);
    g_signal_connect(src, "no-more-pads", G_CALLBACK(&Impl::on_no_more_pads), this);
    g_signal_connect(src, "unknown-type", G_CALLBACK(&Impl::on_unknown_type), this);
    g_signal_connect(src, "autoplug-select", G_CALLBACK(&Impl::on_autoplug_select), this);

    GstCaps* bgr = gst_caps_from_string("video/x-raw,format=BGR");
    g_object_set(appsink, "caps", bgr, "emit-signals", FALSE, "sync", FALSE, "max-buffers", kAppsinkMaxBuffers, "drop",
                 FALSE, "enable-last-sample", FALSE, nullptr);
    gst_caps_unref(bgr);

    gst_bin_add_many(GST_BIN(pipeline), src, convert, appsink, nullptr);
    bool linked = true;
    if (scale) {
      // Width range + square pixels: videoscale fixates the height from the display aspect ratio,
      // and leaves frames already narrow enough untouched. Scaling before BGR conversion is cheaper.
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
    if (!linked) return Internal(input + ": cannot link the decoder's conversion elements");
    bus = gst_element_get_bus(pipeline);
    tap_errors(pipeline, [this](GstMessage* msg) {
      std::lock_guard<std::mutex> lock(mu);
      if (swallowed) return;
      swallowed = gst_message_ref(msg);
      swallowed_at_ns = now_ns();
    });
    return Status::Ok();
  }

  // Consumes pending bus messages; returns the first error, translated.
  Status poll_bus() {
    while (GstMessage* msg = gst_bus_pop(bus)) {
      Status st;
      if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR || GST_MESSAGE_TYPE(msg) == GST_MESSAGE_WARNING) {
        GError* err = nullptr;
        gchar* debug = nullptr;
        bool error = GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR;
        if (error)
          gst_message_parse_error(msg, &err, &debug);
        else
          gst_message_parse_warning(msg, &err, &debug);
        if (error) {
          st = explain_error(status_from_gerror(input, err, debug));
        } else if (strstr(err->message, "type 'audio/")) {
          log->debug("{}: {}", input, shorten(err->message));  // we skip audio decoders on purpose
        } else {
          log->warn("{}: {}", input, shorten(err->message));
        }
        g_error_free(err);
        g_free(debug);
      }
      gst_message_unref(msg);
      if (!st.ok()) return st;
    }
    return Status::Ok();
  }

  // Without a linked video stream, say why in our words rather than GStreamer's.
  Status no_video_reason(const Status& fallback) {
    std::lock_guard<std::mutex> lock(mu);
    if (!link_error.empty()) return Unsupported(link_error);
    if (!unknown_video_caps.empty()) return Unsupported(input + ": no decoder available for " + unknown_video_caps);
    if (saw_other_stream) return Unsupported(input + ": no video stream");
    return fallback;
  }

  Status explain_error(const Status& st) { return video_linked ? st : no_video_reason(st); }

  // An error a bin swallowed, once it is clear nothing else will happen: no video linked and no
  // autoplug activity since (decodebin trying the next factory after a failed one is activity).
  Status swallowed_error() {
    if (video_linked) return Status::Ok();
    GstMessage* msg = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!swallowed) return Status::Ok();
      if (last_activity_ns.load() > swallowed_at_ns) {  // recovered from it; keep watching for the next one
        gst_message_unref(swallowed);
        swallowed = nullptr;
        return Status::Ok();
      }
      if (now_ns() - swallowed_at_ns < kSwallowedErrorGraceNs) return Status::Ok();
      msg = gst_message_ref(swallowed);
    }
    Status st = status_from_error_message(input, msg);
    gst_message_unref(msg);
    return explain_error(st);
  }

  Frame to_frame(GstSample* sample) {
    Frame f;
    f.stream = input;
    GstBuffer* buf = gst_sample_get_buffer(sample);
    GstClockTime pts = GST_BUFFER_PTS(buf);
    {
      std::lock_guard<std::mutex> lock(mu);
      // Every kept buffer reaches the appsink in order (drop=false), so the match is at the front.
      while (!pending.empty() && pending.front().pts != pts) pending.pop_front();
      if (!pending.empty()) {
        f.index = pending.front().index;
        f.pts_s = static_cast<double>(pending.front().time_ns) / GST_SECOND;
        pending.pop_front();
      } else {
        f.index = decoded.load() - 1;
        f.pts_s = GST_CLOCK_TIME_IS_VALID(pts) ? static_cast<double>(pts) / GST_SECOND : 0.0;
      }
    }
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
    f.arrival_ns = now_ns();
    return f;
  }
};

VideoDecoder::VideoDecoder(std::string input, std::unique_ptr<Impl> impl)
    : input_(std::move(input)), impl_(std::move(impl)) {}

VideoDecoder::~VideoDecoder() = default;

Result<std::unique_ptr<VideoDecoder>> VideoDecoder::open(const std::string& path_or_uri, const DecodeOptions& options) {
  if (path_or_uri.empty()) return InvalidArgument("video input is empty (expected a file path or URI)");
  DFM_RETURN_IF_ERROR(check_options(options).with_context(path_or_uri + ": "));
  ensure_gstreamer();

  std::string uri = to_uri(path_or_uri);
  if (uri.empty()) return InvalidArgument(path_or_uri + ": cannot make a file:// URI from this path");
  if (gchar* file = g_filename_from_uri(uri.c_str(), nullptr, nullptr)) {  // local files only
    Status st = check_local_file(path_or_uri, file);
    g_free(file);
    DFM_RETURN_IF_ERROR(st);
  }

  auto impl = std::make_unique<Impl>();
  impl->input = path_or_uri;
  impl->opt = options;
  impl->step_ns = options.sample_fps > 0 ? static_cast<int64_t>(std::llround(1e9 / options.sample_fps)) : 0;
  DFM_RETURN_IF_ERROR(impl->build(uri));

  if (gst_element_set_state(impl->pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    Status st = impl->poll_bus();
    if (st.ok()) st = Internal(path_or_uri + ": the GStreamer pipeline failed to start");
    return st;
  }
  impl->last_progress = Clock::now();
  return std::unique_ptr<VideoDecoder>(new VideoDecoder(path_or_uri, std::move(impl)));
}

Result<std::optional<Frame>> VideoDecoder::next() {
  Impl& d = *impl_;
  auto finish = [&d](Status st) -> Result<std::optional<Frame>> {
    d.finished = true;
    d.final_status = st;
    if (st.ok()) return std::optional<Frame>();
    return st;
  };
  if (d.finished) {
    if (d.final_status.ok()) return std::optional<Frame>();
    return d.final_status;
  }

  const auto stall = std::chrono::duration<double>(d.opt.stall_timeout_s);
  for (;;) {
    if (GstSample* sample = gst_app_sink_try_pull_sample(GST_APP_SINK(d.appsink), kPullSlice)) {
      Frame f = d.to_frame(sample);
      std::string caps = caps_string(gst_sample_get_caps(sample));
      gst_sample_unref(sample);
      if (f.bgr.empty()) return finish(Internal(input_ + ": cannot map a decoded frame with caps " + caps));
      d.last_progress = Clock::now();
      return std::optional<Frame>(std::move(f));
    }
    if (gst_app_sink_is_eos(GST_APP_SINK(d.appsink))) return finish(Status::Ok());
    Status st = d.poll_bus();
    if (!st.ok()) return finish(st);
    st = d.swallowed_error();
    if (!st.ok()) return finish(st);
    if (d.no_more_pads && !d.video_linked) {
      return finish(d.no_video_reason(Unsupported(input_ + ": no video stream")));
    }
    {
      std::lock_guard<std::mutex> lock(d.mu);
      if (!d.link_error.empty()) return finish(Unsupported(d.link_error));
    }
    // Progress = any decoded frame, sampled or not: sparse sampling must not look like a stall.
    int64_t n = d.decoded.load();
    if (n != d.seen_decoded) {
      d.seen_decoded = n;
      d.last_progress = Clock::now();
    } else if (Clock::now() - d.last_progress > stall) {
      char secs[32];
      std::snprintf(secs, sizeof secs, "%.1f", d.opt.stall_timeout_s);
      return finish(
          Timeout(input_ + ": no frame decoded for " + secs + " s (stalled after " + std::to_string(n) + " frames)"));
    }
  }
}

int64_t VideoDecoder::frames_decoded() const {
  return impl_->decoded.load();
}

double VideoDecoder::duration_s() const {
  if (impl_->duration_cache > 0) return impl_->duration_cache;
  gint64 dur = 0;
  if (gst_element_query_duration(impl_->pipeline, GST_FORMAT_TIME, &dur) && dur > 0) {
    impl_->duration_cache = static_cast<double>(dur) / GST_SECOND;
    return impl_->duration_cache;
  }
  int64_t last = impl_->last_time_ns.load();
  return last == std::numeric_limits<int64_t>::min() ? -1.0 : static_cast<double>(last) / GST_SECOND;
}

}  // namespace dfm
