// Private to LiveSource: the per-source state shared by the supervisor (live_source.cpp), the
// GStreamer graph and its streaming-thread callbacks (live_source_gst.cpp), and URI helpers
// (live_source_uri.cpp).
#pragma once

#include <gst/app/gstappsink.h>
#include <gst/gst.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "decoder_gst.h"
#include "dfm/common/log.h"
#include "dfm/common/status.h"
#include "dfm/pipeline/live_source.h"
#include "dfm/pipeline/pts_sampler.h"

namespace dfm {
namespace live {

enum class Kind { kFile, kRtsp, kHttp, kUdp, kSrt, kV4l2, kOther };

std::string scheme_of(const std::string& uri);  // lower-case, "" when not a URI
Kind kind_of(const std::string& uri);
// Sources that would otherwise run faster than real time (files, HTTP) sync to the clock.
bool paced_by_clock(Kind kind);

// Problems no retry can fix: unsupported scheme, missing GStreamer source plugin, missing or
// empty local file. `tag` prefixes the message (`stream "id": uri`).
Status check_source(const std::string& uri, const std::string& tag);

// Errors name the key and the stream.
Status validate_options(const LiveSourceOptions& options);

// rtsp://user:secret@host/x -> rtsp://user:***@host/x (reasons end up on dashboards).
std::string redact_uri(const std::string& uri);

// An ERROR/WARNING message as our Status: `tag: GError text (last line of the debug detail)`.
Status describe_error(const std::string& tag, GstMessage* msg);

constexpr int64_t kDefaultFrameDur = 40 * GST_MSECOND;

}  // namespace live

struct LiveSource::Impl {
  LiveSourceOptions opt;
  StateCallback on_state;
  std::string uri;  // normalised (plain paths made file://)
  live::Kind kind = live::Kind::kOther;
  std::string tag;  // `stream "id": uri` with any password hidden
  std::shared_ptr<spdlog::logger> log;
  FrameQueue queue;
  std::thread thread;
  bool started = false;  // guarded by mu
  bool exited = false;   // the supervisor thread has finished; guarded by mu, signalled on cv
  std::atomic<bool> abandoned{false};  // stop() gave up waiting: no more on_state calls
  std::timed_mutex callback_mu;        // held around on_state, so stop() can wait out a running call

  std::mutex mu;
  std::condition_variable cv;  // wakes the backoff wait on stop(), and stop() once the thread exits
  std::atomic<bool> stopping{false};
  std::chrono::steady_clock::time_point stop_deadline;  // guarded by mu; set by the first stop request
  std::atomic<bool> done{false};
  mutable std::mutex state_mu;
  SourceState state;  // guarded by state_mu

  std::atomic<int64_t> decoded{0}, sampled{0}, reconnects{0}, loops{0};
  std::atomic<int64_t> last_decode_ns{0}, last_sample_ns{0};

  // The current attempt's pipeline (supervisor thread), and what its streaming threads report.
  GstElement* pipeline = nullptr;
  GstElement* head = nullptr;  // first element of the video branch
  GstBus* bus = nullptr;
  std::atomic<int64_t> run_decoded{0}, run_sampled{0};
  std::atomic<bool> video_linked{false}, no_more_pads{false};
  std::mutex err_mu;
  std::string swallowed;   // guarded by err_mu: an ERROR a bin kept off the bus
  std::string link_error;  // guarded by err_mu

  // Timeline and sampler: only the video streaming thread touches these, and attempts never overlap.
  PtsSampler sampler;
  bool first_in_run = true;
  bool have_out = false;
  int64_t last_out_ns = 0, offset_ns = 0, frame_dur_ns = live::kDefaultFrameDur;
  // Probe -> appsink hand-over. Both run in one push call on the same thread (no queue between).
  GstClockTime kept_pts = GST_CLOCK_TIME_NONE;
  int64_t kept_out_ns = 0, kept_index = 0;

  Impl(const LiveSourceOptions& o, StateCallback cb)
      : opt(o), on_state(std::move(cb)), queue(static_cast<size_t>(o.queue_frames), o.drop) {}

  // live_source_gst.cpp: one attempt's graph.
  Status build();         // uridecodebin -> [videoscale -> capsfilter] -> videoconvert -> appsink (BGR)
  void teardown();        // NULL (joins streaming threads), unref; safe when nothing was built
  void reset_run();       // per-attempt flags, before build()
  Status link_problem();  // a reason this attempt can never produce video, if the callbacks found one

  // Streaming-thread side.
  int64_t media_time_ns(GstBuffer* buf);
  int64_t timeline_ns(int64_t raw, int64_t prev_decode_ns);
  static GstPadProbeReturn on_probe(GstPad*, GstPadProbeInfo* info, gpointer user);
  static GstFlowReturn on_new_sample(GstAppSink* sink, gpointer user);
  static int on_autoplug_select(GstElement*, GstPad*, GstCaps*, GstElementFactory* factory, gpointer);
  static void on_no_more_pads(GstElement*, gpointer user);
  static void on_pad_added(GstElement*, GstPad* pad, gpointer user);
  static void on_source_setup(GstElement*, GstElement* source, gpointer user);
  static void on_deep_element_added(GstBin*, GstBin*, GstElement* element, gpointer user);

  // live_source.cpp: supervision.
  void emit(std::string name, std::string reason = {}, double retry_in_s = 0, int failures = 0);
  void finish(std::string name, std::string reason = {}, int failures = 0);  // eos | failed
  struct RunEnd;
  RunEnd run_once();
  bool wait_backoff(double seconds);
  void supervise();
};

}  // namespace dfm
