// The streaming-thread side of dfmondetect for one stream: PTS sampling, analysis through
// dfm::FrameAnalyzer, dfmon-event messages, metas and the overlay. Built in start(), called by the
// streaming thread (and by stop()/sink events while streaming is stopped or serialised).
//
// Synchronous mode analyses a sampled frame before it leaves. Async mode hands it to one worker thread
// through a one-slot mailbox (a sampled frame that finds the worker busy is dropped and counted) and
// attaches each finished result to the next buffer that leaves, so video never waits for inference.
#pragma once

#include <gst/gst.h>
#include <gst/video/video.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "dfm/pipeline/frame_analyzer.h"
#include "dfm/pipeline/pts_sampler.h"  // the same sampling grid as the decoder

GST_DEBUG_CATEGORY_EXTERN(dfmon_detect_debug);

namespace dfm::gst {

// Counters readable from any thread (the element's read-only properties); they outlive a DetectStream.
struct DetectCounters {
  std::atomic<uint64_t> analysed{0};  // sampled frames analysed
  std::atomic<uint64_t> dropped{0};   // sampled frames skipped because the async worker was busy
};

class DetectStream {
 public:
  // `owner` receives the messages and `counters` the counts (both borrowed: the element owns this object).
  DetectStream(GstElement* owner, std::unique_ptr<FrameAnalyzer> analyzer, std::string stream, double sample_fps,
               bool async, DetectCounters* counters);
  ~DetectStream();  // joins the worker (call close() first to keep its last events)

  // One buffer, mapped for writing: analyses it (or queues it) when the sampling grid says so, attaches
  // the metas of a finished analysis, then draws the latest faces when `overlay` is on.
  void process(GstVideoFrame* frame, const GstSegment* segment, bool overlay);

  // End of a stream (EOS, flush, new stream, stop): waits for queued analysis, posts alert_end for open
  // alerts and starts a fresh sampling grid.
  void close();

  const std::string& stream() const { return stream_; }

 private:
  struct Job {
    Frame frame;
    GstClockTime pts;
  };
  struct Done {
    double pts_s = 0;
    std::vector<AnalyzedFace> faces;
  };

  std::optional<Done> run(const Job& job);  // analysis + events; any one thread at a time
  void attach(GstBuffer* buf, const Done& done, int width, int height);
  void post(Event e, GstClockTime timestamp);
  void worker_loop();

  GstElement* owner_;
  std::unique_ptr<FrameAnalyzer> analyzer_;
  std::string stream_;
  double sample_fps_;
  bool async_;
  DetectCounters* counters_;
  PtsSampler sampler_;  // streaming thread only
  int64_t frames_ = 0;           // streaming thread only
  uint64_t seq_ = 0;             // +1 per posted event (gap-free); posts never overlap (see close())

  std::mutex mu_;  // guards everything below
  std::condition_variable cv_;
  std::optional<Job> job_;  // async mailbox
  bool busy_ = false;       // the worker is analysing
  bool stop_ = false;
  std::optional<Done> done_;              // async: finished, not yet attached to a buffer
  std::vector<AnalyzedFace> last_faces_;  // for the overlay
  int64_t last_t_ns_ = -1;
  std::thread worker_;
};

// Stream time of `pts` (0 = start of the media) when the segment allows, else the PTS itself.
std::optional<int64_t> media_time_ns(const GstSegment* segment, GstClockTime pts);

}  // namespace dfm::gst
