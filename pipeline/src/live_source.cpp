// LiveSource: a supervisor thread per stream that runs, watches and rebuilds a GStreamer pipeline
// (the graph itself is in live_source_gst.cpp).
#include "dfm/pipeline/live_source.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>

#include "dfm/pipeline/decoder.h"
#include "live_source_internal.h"

namespace dfm {
namespace {

using Clock = std::chrono::steady_clock;
using live::Kind;

// Bus poll slice: bounds how fast stop(), stalls and first frames are noticed.
constexpr GstClockTime kBusPoll = 50 * GST_MSECOND;

std::string secs(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", s);
  return buf;
}

}  // namespace

// How one attempt ended.
struct LiveSource::Impl::RunEnd {
  enum What { kFailed, kStopped, kEos, kRestart } what = kFailed;
  Status status;         // kFailed: why (never ok once the attempt is over)
  bool healthy = false;  // was live for healthy_after_s before it ended
};

void LiveSource::Impl::emit(std::string name, std::string reason, double retry_in_s, int failures) {
  SourceState s{std::move(name), std::move(reason), retry_in_s, failures};
  {
    std::lock_guard<std::mutex> lock(state_mu);
    state = s;
  }
  if (s.state == "retrying")
    log->warn("retrying in {} s: {}", secs(s.retry_in_s), s.reason);
  else if (s.state == "failed")
    log->error("failed: {}", s.reason);
  else
    log->info("{}", s.state);
  if (!on_state) return;
  std::lock_guard<std::timed_mutex> lock(callback_mu);
  if (abandoned) return;
  try {
    on_state(s);
  } catch (const std::exception& e) {  // exceptions don't cross threads
    log->error("state callback threw: {}", e.what());
  } catch (...) {
    log->error("state callback threw");
  }
}

// Terminal states: finished() and a non-waiting pop() hold by the time observers hear of them.
void LiveSource::Impl::finish(std::string name, std::string reason, int failures) {
  done = true;
  queue.close();
  emit(std::move(name), std::move(reason), 0, failures);
}

// One attempt: build, play, watch the bus until it ends; always torn down on return.
LiveSource::Impl::RunEnd LiveSource::Impl::run_once() {
  reset_run();
  RunEnd end;
  Status st = build();
  if (st.ok() && gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    st = IoError(tag + ": the pipeline failed to start");
    if (GstMessage* msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR)) {
      st = live::describe_error(tag, msg);
      gst_message_unref(msg);
    }
  }
  if (!st.ok()) {
    teardown();
    end.status = st;
    return end;
  }
  const auto stall = std::chrono::duration<double>(opt.stall_timeout_s);
  auto last_progress = Clock::now();
  std::optional<Clock::time_point> live_since;
  std::string last_warning;  // rtspsrc warns "server closed the connection", then sends EOS
  int64_t seen = 0;
  auto over = [&end] { return end.what != RunEnd::kFailed || !end.status.ok(); };
  while (!over()) {
    if (stopping) {
      end.what = RunEnd::kStopped;
      break;
    }
    if (GstMessage* msg = gst_bus_timed_pop(bus, kBusPoll)) {
      switch (GST_MESSAGE_TYPE(msg)) {
        case GST_MESSAGE_ERROR:
          end.status = live::describe_error(tag, msg);
          break;
        case GST_MESSAGE_WARNING:
          last_warning = live::describe_error(tag, msg).message();
          log->warn("{}", last_warning);
          break;
        case GST_MESSAGE_EOS:
          if (kind == Kind::kFile && opt.loop) {
            loops.fetch_add(1);
            auto flags = static_cast<GstSeekFlags>(GST_SEEK_FLAG_FLUSH | GST_SEEK_FLAG_KEY_UNIT);
            if (!gst_element_seek_simple(pipeline, GST_FORMAT_TIME, flags, 0)) end.what = RunEnd::kRestart;
          } else if (kind == Kind::kFile) {
            end.what = RunEnd::kEos;
          } else {  // a network stream that ends is a failure to recover from, not a finish
            end.status =
                IoError(last_warning.empty() ? tag + ": end of stream" : last_warning + " (then end of stream)");
          }
          break;
        case GST_MESSAGE_CLOCK_LOST:  // the documented recovery: re-select a clock
          gst_element_set_state(pipeline, GST_STATE_PAUSED);
          gst_element_set_state(pipeline, GST_STATE_PLAYING);
          break;
        default:
          break;
      }
      gst_message_unref(msg);
      if (over()) break;
    }
    if (!live_since && run_sampled > 0) {
      live_since = Clock::now();
      emit("live");
    }
    if (Status p = link_problem(); !p.ok()) {
      end.status = p;
      break;
    }
    // Progress = any decoded frame, so sparse sampling never looks like a stall.
    if (int64_t n = run_decoded.load(); n != seen) {
      seen = n;
      last_progress = Clock::now();
    } else if (Clock::now() - last_progress > stall) {
      std::string why = live_since ? "no frame decoded for " + secs(opt.stall_timeout_s) + " s (stalled)"
                                   : "no video frame within " + secs(opt.stall_timeout_s) + " s of connecting";
      std::lock_guard<std::mutex> lock(err_mu);
      end.status = Timeout(swallowed.empty() ? tag + ": " + why : swallowed + " (" + why + ")");
    }
  }
  end.healthy = live_since && Clock::now() - *live_since >= std::chrono::duration<double>(opt.healthy_after_s);
  teardown();
  return end;
}

// Sleeps for the backoff delay; false when stop() interrupted it.
bool LiveSource::Impl::wait_backoff(double seconds) {
  std::unique_lock<std::mutex> lock(mu);
  return !cv.wait_for(lock, std::chrono::duration<double>(seconds), [this] { return stopping.load(); });
}

void LiveSource::Impl::supervise() {
  if (Status pre = live::check_source(uri, tag); !pre.ok()) return finish("failed", pre.message());
  int failures = 0;  // consecutive, reset by a healthy run
  for (bool retry = false; !stopping; retry = true) {
    if (retry) reconnects.fetch_add(1);
    emit("connecting", {}, 0, failures);
    RunEnd end = run_once();
    if (end.what == RunEnd::kStopped) return;
    if (end.what == RunEnd::kEos) return finish("eos");
    if (end.what == RunEnd::kRestart) {  // an unseekable looping file: rebuild, not a failure
      retry = false;
      continue;
    }
    if (end.healthy) failures = 0;
    ++failures;
    // A file that cannot be played now will not play later; networks and devices may recover.
    bool permanent =
        kind == Kind::kFile && (end.status.code() == Code::kUnsupported || end.status.code() == Code::kNotFound);
    if (permanent) return finish("failed", end.status.message(), failures);
    if (opt.max_attempts > 0 && failures >= opt.max_attempts) {
      return finish("failed",
                    end.status.message() + " (gave up after " + std::to_string(failures) + " failed attempts in a row)",
                    failures);
    }
    double delay = std::min(opt.initial_backoff_s * std::pow(opt.backoff_multiplier, failures - 1), opt.max_backoff_s);
    emit("retrying", end.status.message(), delay, failures);
    if (!wait_backoff(delay)) return;
  }
}

// ---- public API ---------------------------------------------------------------------------------

LiveSource::LiveSource(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

LiveSource::~LiveSource() {
  stop();
}

Result<std::unique_ptr<LiveSource>> LiveSource::create(const LiveSourceOptions& o, StateCallback on_state) {
  DFM_RETURN_IF_ERROR(live::validate_options(o));
  gstutil::preload_source_elements();  // before any stream thread: see there
  auto impl = std::make_shared<Impl>(o, std::move(on_state));
  impl->uri = to_uri(o.uri);
  impl->kind = live::kind_of(impl->uri);
  impl->tag = "stream \"" + o.id + "\": " + live::redact_uri(impl->uri);
  impl->log = get_logger(o.id);
  impl->sampler.set_rate(o.sample_fps);
  return std::unique_ptr<LiveSource>(new LiveSource(std::move(impl)));
}

void LiveSource::start() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->started || impl_->stopping) return;
  impl_->started = true;
  impl_->thread = std::thread([d = impl_] {
    d->supervise();
    d->done = true;
    d->queue.close();  // wakes pop(): nothing more will come
    {
      std::lock_guard<std::mutex> lock(d->mu);
      d->exited = true;
    }
    d->cv.notify_all();
  });
}

void LiveSource::request_stop() {
  Impl& d = *impl_;
  {
    std::lock_guard<std::mutex> lock(d.mu);
    if (!d.stopping) {
      d.stop_deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(d.opt.stop_timeout_s));
    }
    d.stopping = true;
  }
  d.cv.notify_all();
}

void LiveSource::stop() {
  Impl& d = *impl_;
  request_stop();
  if (d.thread.joinable() && d.thread.get_id() != std::this_thread::get_id()) {
    std::unique_lock<std::mutex> lock(d.mu);
    bool exited = d.cv.wait_until(lock, d.stop_deadline, [&d] { return d.exited; });
    lock.unlock();
    if (exited) {
      d.thread.join();
      // Slow teardowns are how a wedge starts; say so before one hits the bound.
      const double took = d.opt.stop_timeout_s - std::chrono::duration<double>(d.stop_deadline - Clock::now()).count();
      if (took > 1.0) d.log->warn("GStreamer took {} s to stop", secs(took));
    } else {
      // Typically a GStreamer state change that never returns. Waiting longer would hang the whole
      // process's shutdown; the thread holds its own reference to Impl, so detaching is safe.
      // Taking callback_mu waits out a callback in progress, so none runs after stop() returns.
      const bool idle = d.callback_mu.try_lock_until(d.stop_deadline + std::chrono::seconds(1));
      d.abandoned = true;
      if (idle) {
        d.callback_mu.unlock();
      } else {
        d.log->error("the state callback is still running 1 s past the stop deadline");
      }
      d.log->error("GStreamer did not stop within {} s; abandoning the stream's thread and pipeline",
                   secs(d.opt.stop_timeout_s));
      d.thread.detach();
    }
  }
  d.done = true;
  d.queue.close();
  std::lock_guard<std::mutex> lock(d.state_mu);
  if (d.state.state != "eos" && d.state.state != "failed") d.state = SourceState{"stopped", {}, 0, 0};
}

std::optional<Frame> LiveSource::pop(std::chrono::milliseconds wait) {
  return impl_->queue.pop(wait);
}

SourceState LiveSource::state() const {
  std::lock_guard<std::mutex> lock(impl_->state_mu);
  return impl_->state;
}

LiveSourceStats LiveSource::stats() const {
  const Impl& d = *impl_;
  FrameQueue::Counters q = d.queue.counters();
  LiveSourceStats s;
  s.frames_decoded = d.decoded.load();
  s.frames_sampled = d.sampled.load();
  s.frames_dropped = q.dropped;
  s.reconnects = d.reconnects.load();
  s.loops = d.loops.load();
  s.queue_depth = q.depth;
  s.queue_high_water = q.high_water;
  int64_t last = d.last_sample_ns.load();
  s.last_frame_age_s = last == 0 ? -1.0 : static_cast<double>(gstutil::now_ns() - last) / 1e9;
  return s;
}

bool LiveSource::finished() const {
  return impl_->done.load();
}

const LiveSourceOptions& LiveSource::options() const {
  return impl_->opt;
}

}  // namespace dfm
