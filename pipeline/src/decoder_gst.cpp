// GStreamer plumbing shared by the decoder: init once, GError -> Status, and the error tap.
#include "decoder_gst.h"

#include <gst/gsttracer.h>

#include <mutex>
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
    gst_init(nullptr, nullptr);
    // Hooks must be registered before any pipeline runs (GStreamer's rule), hence here.
    auto* tap = static_cast<GstTracer*>(g_object_new(dfm_error_tap_get_type(), nullptr));
    gst_object_ref_sink(tap);
    gst_tracing_register_hook(tap, "element-post-message-pre", G_CALLBACK(&on_post_message_pre));
    gst_object_unref(tap);  // the tracing registry keeps its own reference
  });
}

namespace gstutil {

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
  if (debug && *debug) msg += " (" + shorten(debug) + ")";
  return Status(code, msg);
}

Status status_from_error_message(const std::string& input, GstMessage* error_msg) {
  GError* err = nullptr;
  gchar* debug = nullptr;
  gst_message_parse_error(error_msg, &err, &debug);
  Status st = status_from_gerror(input, err, debug);
  g_error_free(err);
  g_free(debug);
  return st;
}

void tap_errors(GstElement* pipeline, std::function<void(GstMessage*)> on_error) {
  std::lock_guard<std::mutex> lock(g_tap_mu);
  taps()[GST_OBJECT(pipeline)] = std::move(on_error);
}

void untap_errors(GstElement* pipeline) {
  std::lock_guard<std::mutex> lock(g_tap_mu);
  taps().erase(GST_OBJECT(pipeline));
}

}  // namespace gstutil
}  // namespace dfm
