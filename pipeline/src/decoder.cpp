// VideoDecoder: a GStreamer uridecodebin pipeline that samples by timestamp before conversion.
#include "dfm/pipeline/decoder.h"

#include <gst/app/gstappsink.h>
#include <gst/gst.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <limits>
#include <mutex>

#include "decoder_gst.h"
#include "dfm/common/log.h"
#include "dfm/pipeline/pts_sampler.h"

namespace dfm {
namespace {

using namespace gstutil;
using Clock = std::chrono::steady_clock;

// How long one appsink pull waits; bounds the latency of noticing errors and stalls.
constexpr GstClockTime kPullSlice = 50 * GST_MSECOND;
// Small and blocking: an audit must not lose sampled frames, and memory stays bounded.
constexpr AppsinkMode kAppsinkMode{/*sync=*/false, /*max_buffers=*/4, /*drop=*/false};

// After decodebin swallowed an error (see gstutil::tap_errors) and nothing got linked for this
// long, report that error instead of waiting for the stall timeout.
constexpr int64_t kSwallowedErrorGraceNs = 1500 * GST_MSECOND;

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

  PtsSampler sampler;  // touched only by the video streaming thread (inside the probe)

  // Owner thread only.
  bool finished = false;
  Status final_status;  // ok + finished = end of stream
  int64_t seen_decoded = -1;
  Clock::time_point last_progress = Clock::now();
  mutable double duration_cache = -1;

  ~Impl() {
    destroy_pipeline(pipeline, bus);
    if (swallowed) gst_message_unref(swallowed);
  }

  void touch() { last_activity_ns = now_ns(); }

  // Media time of a decoded buffer: the sampler's stream time, extrapolated when there is no PTS.
  int64_t media_time_ns(GstBuffer* buf) {
    if (std::optional<int64_t> t = sampler.media_time_ns(buf)) return *t;
    // Rare (raw AVI); extrapolate so sampling still advances.
    int64_t last = last_time_ns.load(std::memory_order_relaxed);
    if (last == std::numeric_limits<int64_t>::min()) return 0;
    GstClockTime dur = GST_BUFFER_DURATION(buf);
    return last + (GST_CLOCK_TIME_IS_VALID(dur) ? static_cast<int64_t>(dur) : 0);
  }

  static GstPadProbeReturn on_probe(GstPad*, GstPadProbeInfo* info, gpointer user) {
    auto* d = static_cast<Impl*>(user);
    GstBuffer* buf = d->sampler.take(info);
    if (!buf) return GST_PAD_PROBE_OK;
    int64_t index = d->decoded.fetch_add(1);
    int64_t t = d->media_time_ns(buf);
    d->last_time_ns.store(t);
    // Dropping here means videoscale/videoconvert/appsink never see unsampled frames.
    if (!d->sampler.due(t)) return GST_PAD_PROBE_DROP;
    std::lock_guard<std::mutex> lock(d->mu);
    d->pending.push_back({GST_BUFFER_PTS(buf), t, index});
    return GST_PAD_PROBE_OK;
  }

  static int on_autoplug_select(GstElement*, GstPad*, GstCaps*, GstElementFactory* factory, gpointer user) {
    static_cast<Impl*>(user)->touch();
    if (is_audio_decoder(factory)) {
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
      // Users need the format, not GStreamer's full caps (codec headers are dumped as hex there).
      if (d->unknown_video_caps.empty()) d->unknown_video_caps = s.substr(0, s.find_first_of(",;"));
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
    PadCaps caps = pad_caps(pad);
    if (caps.name == "video/x-raw" && !d->video_linked.load()) {
      GstPadLinkReturn r = link_video_pad(pad, d->head, &Impl::on_probe, d);
      if (r != GST_PAD_LINK_OK) {
        std::lock_guard<std::mutex> lock(d->mu);
        d->link_error =
            d->input + ": cannot convert decoded video " + caps.desc + " to BGR (" + gst_pad_link_get_name(r) + ")";
        return;
      }
      d->video_linked = true;
      return;
    }
    if (caps.name.rfind("video/", 0) != 0) d->saw_other_stream = true;
    // Any other stream: extra video, subtitles, undecoded audio.
    drain_pad(d->pipeline, pad);
  }

  Status build(const std::string& uri) {
    pipeline = gst_pipeline_new("dfm-decoder");
    Result<VideoGraph> graph = add_video_graph(pipeline, input, uri, opt.max_width, kAppsinkMode,
                                               "cannot link the decoder's conversion elements");
    if (!graph.ok()) return graph.status();
    GstElement* src = graph->src;
    g_signal_connect(src, "pad-added", G_CALLBACK(&Impl::on_pad_added), this);
    g_signal_connect(src, "no-more-pads", G_CALLBACK(&Impl::on_no_more_pads), this);
    g_signal_connect(src, "unknown-type", G_CALLBACK(&Impl::on_unknown_type), this);
    g_signal_connect(src, "autoplug-select", G_CALLBACK(&Impl::on_autoplug_select), this);
    head = graph->head;
    appsink = graph->appsink;
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
        ParsedMessage m(msg);
        if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
          st = explain_error(status_from_gerror(input, m.err, m.debug));
        } else if (strstr(m.err->message, "type 'audio/")) {
          log->debug("{}: {}", input, shorten(m.err->message));  // we skip audio decoders on purpose
        } else {
          log->warn("{}: {}", input, shorten(m.err->message));
        }
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
    f.bgr = copy_bgr(sample);
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
  } else {
    gstutil::preload_source_elements();  // `audit --jobs` may open network inputs on several threads
  }

  auto impl = std::make_unique<Impl>();
  impl->input = path_or_uri;
  impl->opt = options;
  impl->sampler.set_rate(options.sample_fps);
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
