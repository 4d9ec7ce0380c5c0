// Private GStreamer helpers shared by VideoDecoder (decoder.cpp) and LiveSource (live_source*.cpp):
// one-time init, GError translation, the swallowed-error tap, the uridecodebin -> BGR appsink
// graph (the PTS sampler in its probe is dfm/pipeline/pts_sampler.h).
#pragma once

#include <gst/gst.h>

#include <cstdint>
#include <functional>
#include <opencv2/core.hpp>
#include <optional>
#include <string>

#include "dfm/common/status.h"

namespace dfm::gstutil {

int64_t now_ns();  // steady clock

// Loads the network source plugins and initialises their element classes once, on the calling thread.
// Call before starting several network pipelines (LiveSource::create, VideoDecoder::open of a URI):
// GLib deadlocks when two threads first touch GObject types that depend on each other (udpsrc's class
// init needs GSocket while souphttpsrc's plugin load registers GSocketAddress: faults_e2e wedged there
// with HTTP, UDP and RTSP streams starting together).
void preload_source_elements();

// Caps strings and debug text can carry kilobytes of codec data; keep messages readable.
std::string shorten(std::string s, size_t max = 300);
std::string caps_string(const GstCaps* caps);

// The GError and debug text of an ERROR or WARNING message, freed with this object.
struct ParsedMessage {
  explicit ParsedMessage(GstMessage* msg);
  ~ParsedMessage();
  ParsedMessage(const ParsedMessage&) = delete;
  ParsedMessage& operator=(const ParsedMessage&) = delete;

  GError* err = nullptr;
  gchar* debug = nullptr;
};

// Our Status from a GStreamer error: code by GError domain/code, message names the input and
// carries GError text plus (shortened) debug detail.
Status status_from_gerror(const std::string& input, const GError* err, const gchar* debug);
Status status_from_error_message(const std::string& input, GstMessage* error_msg);

// decodebin drops ERROR messages from an element it is still bringing to PAUSED (its autoplug
// "error filter"); a demuxer that fails at once (truncated header) then leaves the pipeline
// silent forever. The tap sees every ERROR posted inside `pipeline` before any bin can drop it
// and hands it to `on_error` (on a streaming thread; must be quick). Callers treat these as a
// fallback explanation only, since decodebin legitimately filters errors while trying factories.
void tap_errors(GstElement* pipeline, std::function<void(GstMessage*)> on_error);
// After this returns, `on_error` for `pipeline` is not running and will not run again.
void untap_errors(GstElement* pipeline);

// Rejects local files GStreamer would report confusingly (or only after starting a pipeline):
// missing -> NotFound, a directory or an empty file -> InvalidArgument; messages start with `who`.
Status check_local_file(const std::string& who, const std::string& path);

// ---- The graph: uridecodebin "src" -> [videoscale "scale" -> capsfilter "size"] -> videoconvert
// "convert" -> appsink "sink" (BGR).

struct AppsinkMode {
  bool sync = false;
  guint max_buffers = 1;
  bool drop = false;
};

struct VideoGraph {
  GstElement* src = nullptr;      // uridecodebin; the caller connects its signals
  GstElement* head = nullptr;     // first element of the video branch (see link_video_pad)
  GstElement* appsink = nullptr;  // BGR, no signals, no last sample
};

// Adds the graph to `pipeline`, reading `uri`. max_width > 0 inserts the scaler. Errors:
// Unsupported (`who`: a plugin is missing), Internal (`who`: `link_failure`).
Result<VideoGraph> add_video_graph(GstElement* pipeline, const std::string& who, const std::string& uri, int max_width,
                                   const AppsinkMode& mode, const std::string& link_failure);

// Stops and releases one pipeline: NULL joins its streaming threads (flushing a blocked appsink),
// so no callback outlives it, and its error tap goes. Both end null; no-op when nothing was built.
void destroy_pipeline(GstElement*& pipeline, GstBus*& bus);

// Mirrors GstAutoplugSelectResult, which playback plugins do not export in a header.
enum AutoplugSelect { kAutoplugTry = 0, kAutoplugExpose = 1, kAutoplugSkip = 2 };

// Audio decoding is wasted work here: autoplug-select skips these, leaving those streams unexposed.
bool is_audio_decoder(GstElementFactory* factory);

// A new pad's media type ("" when unknown) and its (shortened) caps text.
struct PadCaps {
  std::string name;
  std::string desc;
};
PadCaps pad_caps(GstPad* pad);

// Links the decoded video pad to the graph's head and puts `probe` on it (buffers and downstream
// events, as PtsSampler::take wants, pts_sampler.h). The probe is added only when the link succeeded.
GstPadLinkReturn link_video_pad(GstPad* pad, GstElement* head, GstPadProbeCallback probe, gpointer user);

// Any other stream drains into a fakesink so the demuxer never sees not-linked on it.
void drain_pad(GstElement* pipeline, GstPad* pad);

// The sample's image as an owned BGR copy (row stride respected); empty when it cannot be mapped.
cv::Mat copy_bgr(GstSample* sample);

}  // namespace dfm::gstutil
