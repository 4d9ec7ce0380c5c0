// GStreamer plumbing shared by the decoder and live sources: init once, GError -> Status, the
// error tap, the BGR graph and the PTS sampler.
#include "decoder_gst.h"

#include "dfm/common/log.h"

#include <gst/gsttracer.h>
#include <gst/video/video.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <system_error>
#include <unordered_map>

#include "dfm/pipeline/decoder.h"

namespace dfm {
namespace {

// A minimal GstTracer: GStreamer's only public hook that sees messages before bins handle them.
struct DfmErrorTap {
  GstTracer parent;
};
struct DfmErrorTapClass {
  GstTracerClass parent_class;
};
G_DEFINE_TYPE(DfmErrorTap, dfm_error_tap, GST_TYPE_TRACER)
void dfm_error_tap_class_init(DfmErrorTapClass*) {}
void dfm_error_tap_init(DfmErrorTap*) {}

std::mutex g_tap_mu;
std::unordered_map<GstObject*, std::function<void(GstMessage*)>>& taps() {
  static auto* m = new std::unordered_map<GstObject*, std::function<void(GstMessage*)>>();
  return *m;
}

void on_post_message_pre(GObject*, GstClockTime, GstElement* element, GstMessage* msg) {
  if (GST_MESSAGE_TYPE(msg) != GST_MESSAGE_ERROR || !element) return;
  // Only errors are handled, so walking up to the top-level bin is cheap enough.
  GstObject* top = GST_OBJECT(gst_object_ref(element));
  while (GstObject* parent = gst_object_get_parent(top)) {
    gst_object_unref(top);
    top = parent;
  }
  {
    std::lock_guard<std::mutex> lock(g_tap_mu);
    auto it = taps().find(top);
    if (it != taps().end()) it->second(msg);
  }
  gst_object_unref(top);
}

}  // namespace

void ensure_gstreamer() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Every stream thread waits here for the first one, in 'connecting': a slow start shows in the log.
    // (A full plugin-registry rebuild takes ~2 s here. Streams stuck in 'connecting' for good were the
    // GObject type deadlock preload_source_elements() prevents.)
    const auto t0 = std::chrono::steady_clock::now();
    gst_init(nullptr, nullptr);
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (took > 2.0) get_logger("gstreamer")->warn("GStreamer took {:.1f} s to initialise", took);
    // Hooks must be registered before any pipeline runs (GStreamer's rule), hence here.
    auto* tap = static_cast<GstTracer*>(g_object_new(dfm_error_tap_get_type(), nullptr));
    gst_object_ref_sink(tap);
    gst_tracing_register_hook(tap, "element-post-message-pre", G_CALLBACK(&on_post_message_pre));
    gst_object_unref(tap);  // the tracing registry keeps its own reference
  });
}

namespace gstutil {

void preload_source_elements() {
  static std::once_flag once;
  std::call_once(once, [] {
    ensure_gstreamer();
    const auto t0 = std::chrono::steady_clock::now();
    // What uridecodebin picks for each network scheme, and the demuxers decodebin picks for HLS/DASH
    // (GStreamer 1.22 prefers the *demux2 ones, whose plugin loads libsoup itself). A plugin that is not
    // installed is skipped: the stream that needs it reports that itself.
    for (const char* name : {"uridecodebin", "souphttpsrc", "hlsdemux2", "dashdemux2", "hlsdemux", "rtspsrc",
                             "udpsrc", "srtsrc", "rtpjitterbuffer"}) {
      GstElementFactory* factory = gst_element_factory_find(name);
      if (!factory) continue;
      if (GstElement* e = gst_element_factory_create(factory, nullptr)) gst_object_unref(e);
      gst_object_unref(factory);
    }
    get_logger("gstreamer")
        ->debug("source plugins loaded in {:.0f} ms",
                1e3 * std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  });
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string shorten(std::string s, size_t max) {
  if (s.size() > max) s = s.substr(0, max) + "...";
  return s;
}

std::string caps_string(const GstCaps* caps) {
  if (!caps) return "(no caps)";
  gchar* s = gst_caps_to_string(caps);
  std::string out = s ? s : "";
  g_free(s);
  return shorten(out);
}

Status status_from_gerror(const std::string& input, const GError* err, const gchar* debug) {
  Code code = Code::kInternal;
  if (err->domain == GST_RESOURCE_ERROR) {
    code = err->code == GST_RESOURCE_ERROR_NOT_FOUND ? Code::kNotFound : Code::kIo;
  } else if (err->domain == GST_STREAM_ERROR) {
    switch (err->code) {
      case GST_STREAM_ERROR_CODEC_NOT_FOUND:
      case GST_STREAM_ERROR_TYPE_NOT_FOUND:
      case GST_STREAM_ERROR_WRONG_TYPE:
      case GST_STREAM_ERROR_NOT_IMPLEMENTED:
      case GST_STREAM_ERROR_FORMAT:
        code = Code::kUnsupported;
        break;
      default:  // DECODE, DEMUX, FAILED: the data itself is broken or truncated.
        code = Code::kInvalidArgument;
    }
  } else if (err->domain == GST_CORE_ERROR && err->code == GST_CORE_ERROR_MISSING_PLUGIN) {
    code = Code::kUnsupported;
  }
  std::string msg = input + ": " + shorten(err->message ? err->message : "unknown GStreamer error");
  // GStreamer's debug string (source file, element path) helps us, not the user: log it, keep it out
  // of the error that reports and events carry.
  if (debug && *debug) get_logger("decoder")->debug("{} ({})", msg, shorten(debug));
  return Status(code, msg);
}

ParsedMessage::ParsedMessage(GstMessage* msg) {
  if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_WARNING)
    gst_message_parse_warning(msg, &err, &debug);
  else
    gst_message_parse_error(msg, &err, &debug);
}

ParsedMessage::~ParsedMessage() {
  if (err) g_error_free(err);
  g_free(debug);
}

Status status_from_error_message(const std::string& input, GstMessage* error_msg) {
  ParsedMessage m(error_msg);
  return status_from_gerror(input, m.err, m.debug);
}

void tap_errors(GstElement* pipeline, std::function<void(GstMessage*)> on_error) {
  std::lock_guard<std::mutex> lock(g_tap_mu);
  taps()[GST_OBJECT(pipeline)] = std::move(on_error);
}

void untap_errors(GstElement* pipeline) {
  std::lock_guard<std::mutex> lock(g_tap_mu);
  taps().erase(GST_OBJECT(pipeline));
}

Status check_local_file(const std::string& who, const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) return NotFound(who + ": no such file");
  if (fs::is_directory(st)) return InvalidArgument(who + ": is a directory, expected a video file");
  if (fs::is_regular_file(st) && fs::file_size(path, ec) == 0 && !ec) {
    return InvalidArgument(who + ": file is empty (0 bytes)");
  }
  return Status::Ok();
}

Result<VideoGraph> add_video_graph(GstElement* pipeline, const std::string& who, const std::string& uri, int max_width,
                                   const AppsinkMode& mode, const std::string& link_failure) {
  GstElement* src = gst_element_factory_make("uridecodebin", "src");
  GstElement* scale = max_width > 0 ? gst_element_factory_make("videoscale", "scale") : nullptr;
  GstElement* size = max_width > 0 ? gst_element_factory_make("capsfilter", "size") : nullptr;
  GstElement* convert = gst_element_factory_make("videoconvert", "convert");
  GstElement* appsink = gst_element_factory_make("appsink", "sink");
  if (!pipeline || !src || !convert || !appsink || (max_width > 0 && (!scale || !size))) {
    for (GstElement* e : {src, scale, size, convert, appsink}) {
      if (e) gst_object_unref(gst_object_ref_sink(e));
    }
    return Unsupported(who +
                       ": GStreamer elements uridecodebin/videoconvert/videoscale/appsink are missing "
                       "(install gstreamer1.0-plugins-base)");
  }
  g_object_set(src, "uri", uri.c_str(), nullptr);

  GstCaps* bgr = gst_caps_from_string("video/x-raw,format=BGR");
  g_object_set(appsink, "caps", bgr, "emit-signals", FALSE, "sync", mode.sync ? TRUE : FALSE, "max-buffers",
               mode.max_buffers, "drop", mode.drop ? TRUE : FALSE, "enable-last-sample", FALSE, nullptr);
  gst_caps_unref(bgr);

  gst_bin_add_many(GST_BIN(pipeline), src, convert, appsink, nullptr);
  VideoGraph g{src, convert, appsink};
  bool linked = true;
  if (scale) {
    // Width range + square pixels: videoscale fixates the height from the display aspect ratio,
    // and leaves frames already narrow enough untouched. Scaling before BGR conversion is cheaper.
    std::string c = "video/x-raw,width=[1," + std::to_string(max_width) + "],pixel-aspect-ratio=1/1";
    GstCaps* limit = gst_caps_from_string(c.c_str());
    g_object_set(size, "caps", limit, nullptr);
    gst_caps_unref(limit);
    gst_bin_add_many(GST_BIN(pipeline), scale, size, nullptr);
    linked = gst_element_link_many(scale, size, convert, appsink, nullptr);
    g.head = scale;
  } else {
    linked = gst_element_link(convert, appsink);
  }
  if (!linked) return Internal(who + ": " + link_failure);
  return g;
}

void destroy_pipeline(GstElement*& pipeline, GstBus*& bus) {
  if (pipeline) {
    gst_element_set_state(pipeline, GST_STATE_NULL);
    untap_errors(pipeline);
    gst_object_unref(pipeline);
    pipeline = nullptr;
  }
  if (bus) gst_object_unref(bus);
  bus = nullptr;
}

bool is_audio_decoder(GstElementFactory* factory) {
  const gchar* klass = gst_element_factory_get_metadata(factory, GST_ELEMENT_METADATA_KLASS);
  return klass && strstr(klass, "Decoder") && strstr(klass, "Audio");
}

PadCaps pad_caps(GstPad* pad) {
  GstCaps* caps = gst_pad_get_current_caps(pad);
  if (!caps) caps = gst_pad_query_caps(pad, nullptr);
  PadCaps out;
  if (caps && !gst_caps_is_empty(caps)) out.name = gst_structure_get_name(gst_caps_get_structure(caps, 0));
  out.desc = caps_string(caps);
  if (caps) gst_caps_unref(caps);
  return out;
}

GstPadLinkReturn link_video_pad(GstPad* pad, GstElement* head, GstPadProbeCallback probe, gpointer user) {
  GstPad* sink = gst_element_get_static_pad(head, "sink");
  GstPadLinkReturn r = gst_pad_link(pad, sink);
  gst_object_unref(sink);
  if (r == GST_PAD_LINK_OK) {
    gst_pad_add_probe(pad,
                      static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM),
                      probe, user, nullptr);
  }
  return r;
}

void drain_pad(GstElement* pipeline, GstPad* pad) {
  GstElement* sink = gst_element_factory_make("fakesink", nullptr);
  if (!sink) return;
  g_object_set(sink, "sync", FALSE, "async", FALSE, "enable-last-sample", FALSE, nullptr);
  gst_bin_add(GST_BIN(pipeline), sink);
  gst_element_sync_state_with_parent(sink);
  GstPad* sinkpad = gst_element_get_static_pad(sink, "sink");
  gst_pad_link(pad, sinkpad);
  gst_object_unref(sinkpad);
}

cv::Mat copy_bgr(GstSample* sample) {
  GstVideoInfo info;
  GstVideoFrame vf;
  cv::Mat out;
  if (gst_video_info_from_caps(&info, gst_sample_get_caps(sample)) &&
      gst_video_frame_map(&vf, &info, gst_sample_get_buffer(sample), GST_MAP_READ)) {
    // Respect the row stride, then copy so the image owns its pixels after the sample is freed.
    cv::Mat view(GST_VIDEO_FRAME_HEIGHT(&vf), GST_VIDEO_FRAME_WIDTH(&vf), CV_8UC3, GST_VIDEO_FRAME_PLANE_DATA(&vf, 0),
                 GST_VIDEO_FRAME_PLANE_STRIDE(&vf, 0));
    out = view.clone();
    gst_video_frame_unmap(&vf);
  }
  return out;
}

}  // namespace gstutil
}  // namespace dfm
