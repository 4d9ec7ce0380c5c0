// Live stream source for `dfmon watch`: one supervised GStreamer pipeline per configured stream,
// sampled BGR frames out through a bounded queue that drops instead of blocking the decoder.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "dfm/common/status.h"
#include "dfm/pipeline/frame.h"

namespace dfm {

// What a full live queue discards. There is deliberately no `block`: a live source must never
// stall its decoder on a slow consumer (the config's `block` is for offline audits only).
enum class LiveDropPolicy { kDropOldest, kDropNewest };

// Bounded, thread-safe frame queue between a source's streaming thread and the analysis side.
class FrameQueue {
 public:
  struct Counters {
    int64_t pushed = 0;      // frames offered to push()
    int64_t dropped = 0;     // frames discarded because the queue was full
    int64_t depth = 0;       // frames waiting now
    int64_t high_water = 0;  // largest depth seen
  };

  FrameQueue(size_t capacity, LiveDropPolicy policy);  // capacity 0 is treated as 1

  // Never blocks. When full, drops the oldest queued frame or the new one, per policy.
  void push(Frame frame);
  // Waits up to `wait` for a frame. After close(), returns what is left, then nullopt at once.
  std::optional<Frame> pop(std::chrono::milliseconds wait);
  // Wakes every waiter; later pushes are ignored.
  void close();
  Counters counters() const;
  size_t capacity() const { return capacity_; }

 private:
  const size_t capacity_;
  const LiveDropPolicy policy_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Frame> frames_;
  Counters counters_;
  bool closed_ = false;
};

struct LiveSourceOptions {
  std::string id;                  // stream id: names frames, log lines and error messages
  std::string uri;                 // file:// rtsp:// rtsps:// http(s):// (incl. HLS) udp://host:port (MPEG-TS) srt://
                                   // v4l2:///dev/videoN; a plain path means file://
  bool loop = false;               // file:// only: restart at EOS (pts keeps increasing)
  int latency_ms = 200;            // rtspsrc/srtsrc jitter buffer
  std::string transport = "auto";  // RTSP lower transport: auto | tcp | udp
  double sample_fps = 5.0;         // frames kept per second of stream time, chosen by PTS before conversion; 0 = all
  int max_width = 0;               // 0 = native; else downscale (before BGR conversion) to at most this width
  // Threads per software video decoder (libav's max-threads); 0 = its default, one per core. With
  // more streams than cores, 1 decodes the same frames with ~17 % less CPU (no frame-thread hand-offs;
  // 8 x 720p25 H.264 measured): Monitor::create sets it then.
  int decoder_threads = 0;
  int queue_frames = 4;            // FrameQueue capacity
  LiveDropPolicy drop = LiveDropPolicy::kDropOldest;
  double initial_backoff_s = 1.0;   // first retry delay
  double max_backoff_s = 30.0;      // delay cap
  double backoff_multiplier = 2.0;  // growth per consecutive failure
  int max_attempts = 0;             // consecutive failures before `failed`; 0 = retry forever
  double stall_timeout_s = 10.0;    // no decoded frame this long (while connecting or live) = failure
  // Live this long = healthy: the failure count and backoff reset to their start. A stream that
  // fails sooner keeps backing off, so a flapping camera cannot reconnect in a tight loop.
  double healthy_after_s = 10.0;
  // stop() waits this long for GStreamer to tear the pipeline down; past it the supervisor thread is
  // abandoned (an error is logged, its pipeline leaks) so that shutting down never hangs on one stream.
  double stop_timeout_s = 5.0;
};

// Values of SourceState::state, as in the `stream_state` event.
//   connecting: building/starting a pipeline (first attempt or a retry)
//   live:       the first frame of this attempt reached the queue
//   retrying:   the attempt failed (error, stall, or end of a network stream); next try in retry_in_s
//   eos:        a file without `loop` ended; the source is finished
//   failed:     a permanent error (bad scheme, missing file, missing plugin, unplayable file) or
//               max_attempts consecutive failures; the source is finished
// state() also returns "idle" before start() and "stopped" after stop(); those are never emitted.
struct SourceState {
  std::string state = "idle";
  std::string reason;       // retrying/failed: `stream "cam-3": rtsp://host/x: <what went wrong>`
  double retry_in_s = 0.0;  // retrying: the backoff delay before the next attempt
  int failures = 0;         // consecutive failed attempts so far
};

struct LiveSourceStats {
  int64_t frames_decoded = 0;  // every decoded frame, sampled or not
  int64_t frames_sampled = 0;  // frames kept by the sampler and converted to BGR
  int64_t frames_dropped = 0;  // sampled frames lost to queue overflow
  int64_t reconnects = 0;      // attempts started after a failure
  int64_t loops = 0;           // file restarts (loop: true)
  int64_t queue_depth = 0;
  int64_t queue_high_water = 0;
  double last_frame_age_s = -1;  // since the last sampled frame; -1 = none yet
};

// One supervised live stream. A supervisor thread owns the GStreamer pipeline, polls its bus,
// detects stalls and rebuilds the pipeline with exponential backoff; frames are pulled with pop().
//
// Frame::pts_s is strictly increasing for the life of the source: a file loop continues one frame
// after the last pts, a reconnect continues after the last pts plus the outage's wall-clock length.
// Frame::index counts every decoded frame since start().
class LiveSource {
 public:
  using StateCallback = std::function<void(const SourceState&)>;

  // Validates the options (errors name the key and the stream). URI problems are not errors here:
  // they surface as state `failed` after start(), where the dashboard shows them.
  // on_state runs on the supervisor thread; it must be quick and must not call stop().
  static Result<std::unique_ptr<LiveSource>> create(const LiveSourceOptions& options, StateCallback on_state = {});
  ~LiveSource();  // stop()s
  LiveSource(const LiveSource&) = delete;
  LiveSource& operator=(const LiveSource&) = delete;

  // Starts the supervisor thread; once only (later calls are ignored).
  void start();
  // Interrupts any attempt or backoff wait, tears the pipeline down and joins the thread (well
  // under a second). Bounded by stop_timeout_s: a thread wedged inside GStreamer is detached, and
  // on_state is not called once stop() has returned (short of a call that was already running and
  // never returns). Idempotent. Frames still queued can be popped afterwards.
  void stop();
  // Asks the supervisor to stop and returns at once; the stop_timeout_s bound of a later stop()
  // counts from the first request. Stopping many sources: request_stop() all, then stop() each, so
  // they tear down in parallel and the whole takes one timeout at worst, not one per source.
  void request_stop();

  // Next sampled frame, waiting up to `wait`. Returns nullopt at once when the source has finished
  // (eos, failed, stopped) and the queue is empty.
  std::optional<Frame> pop(std::chrono::milliseconds wait);

  SourceState state() const;
  LiveSourceStats stats() const;
  bool finished() const;  // eos, failed or stopped
  const LiveSourceOptions& options() const;

 private:
  struct Impl;
  explicit LiveSource(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;  // shared with the supervisor thread, which may outlive an abandoning stop()
};

}  // namespace dfm
