// LiveSource: file loop/eos, RTSP reconnect against a real server process, drop policy, failures, stop.
#include "dfm/pipeline/live_source.h"

#include <gst/gst.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../tools/child_process.h"
#include "clip_gen.h"

namespace dfm {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

const std::string kServer = std::string(DFM_BINARY_DIR) + "/bin/dfm_rtsp_server";

// Records every emitted state; tests wait on it with a deadline.
class StateLog {
 public:
  LiveSource::StateCallback callback() {
    return [this](const SourceState& s) {
      std::lock_guard<std::mutex> lock(mu_);
      states_.push_back(s);
      cv_.notify_all();
    };
  }
  // Waits until pred(all states so far) holds.
  bool wait(const std::function<bool(const std::vector<SourceState>&)>& pred, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return pred(states_); });
  }
  // Waits for `count` more states named `name` than there were at `since` (an index into all()).
  bool wait_for(const std::string& name, std::chrono::milliseconds timeout, size_t since = 0, int count = 1) {
    return wait(
        [&](const std::vector<SourceState>& v) {
          int n = 0;
          for (size_t i = since; i < v.size(); ++i) n += v[i].state == name;
          return n >= count;
        },
        timeout);
  }
  std::vector<SourceState> all() const {
    std::lock_guard<std::mutex> lock(mu_);
    return states_;
  }
  size_t size() const { return all().size(); }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<SourceState> states_;
};

LiveSourceOptions base_options(const std::string& id, const std::string& uri) {
  LiveSourceOptions o;
  o.id = id;
  o.uri = uri;
  o.initial_backoff_s = 0.2;
  o.max_backoff_s = 2.0;
  o.stall_timeout_s = 3.0;
  return o;
}

std::unique_ptr<LiveSource> make_source(const LiveSourceOptions& o, StateLog& log) {
  auto r = LiveSource::create(o, log.callback());
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? std::move(r).value() : nullptr;
}

// A short face-free H.264 clip generated once per test.
class LiveSourceFile : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testclips::ffmpeg_has_encoder("libx264")) GTEST_SKIP() << "ffmpeg with libx264 is needed to make test clips";
    std::string error;
    clip_ = testclips::make_ffmpeg_clip(
        dir_, testclips::clip_spec("clip.mp4", "-c:v libx264 -preset ultrafast", "25", 1.0, 160, 120), &error);
    ASSERT_FALSE(clip_.empty()) << error;
  }
  testclips::TempDir dir_;
  std::string clip_;
};

TEST_F(LiveSourceFile, LoopKeepsFramesComingWithIncreasingPts) {
  StateLog log;
  LiveSourceOptions o = base_options("loop-cam", "file://" + clip_);
  o.loop = true;
  o.sample_fps = 10;
  auto src = make_source(o, log);
  ASSERT_TRUE(src);
  src->start();
  double last = -1;
  int frames = 0;
  auto deadline = Clock::now() + 15s;
  while (last < 3.2 && Clock::now() < deadline) {  // a 1 s clip: at least three plays
    auto f = src->pop(200ms);
    if (!f) continue;
    EXPECT_GT(f->pts_s, last) << "pts must keep increasing across loops";
    EXPECT_EQ(f->stream, "loop-cam");
    EXPECT_EQ(f->bgr.cols, 160);
    EXPECT_EQ(f->bgr.type(), CV_8UC3);
    last = f->pts_s;
    ++frames;
  }
  EXPECT_GE(last, 3.2) << "frames stopped before the clip had looped three times";
  // ~10 per second of stream time; the loop seam can add or lose a frame.
  EXPECT_NEAR(frames, last * 10, 4);
  LiveSourceStats st = src->stats();
  EXPECT_GE(st.loops, 3);
  EXPECT_EQ(st.reconnects, 0);
  EXPECT_GT(st.frames_decoded, st.frames_sampled);  // 25 fps decoded, 10 fps kept
  auto states = log.all();
  ASSERT_GE(states.size(), 2u);
  EXPECT_EQ(states[0].state, "connecting");
  EXPECT_EQ(states[1].state, "live");
  for (const auto& s : states) EXPECT_TRUE(s.state == "connecting" || s.state == "live") << s.state << ": " << s.reason;
}

TEST_F(LiveSourceFile, WithoutLoopEndsInEos) {
  StateLog log;
  LiveSourceOptions o = base_options("once", clip_);  // a plain path is accepted as file://
  o.sample_fps = 5;
  o.max_width = 80;  // 160x120 -> 80x60, scaled before conversion
  auto src = make_source(o, log);
  ASSERT_TRUE(src);
  src->start();
  ASSERT_TRUE(log.wait_for("eos", 10s)) << "no eos; last state " << src->state().state;
  EXPECT_TRUE(src->finished());
  int frames = 0;
  while (auto f = src->pop(0ms)) {
    EXPECT_EQ(f->bgr.cols, 80);
    EXPECT_EQ(f->bgr.rows, 60);
    ++frames;
  }
  EXPECT_NEAR(frames, 5, 1);
  auto t0 = Clock::now();
  EXPECT_FALSE(src->pop(2s)) << "a finished source must not make pop() wait";
  EXPECT_LT(Clock::now() - t0, 500ms);
  EXPECT_EQ(log.all().back().state, "eos");
  EXPECT_EQ(src->state().state, "eos");
}

TEST_F(LiveSourceFile, SlowConsumerDropsOldestAndDecodingContinues) {
  StateLog log;
  LiveSourceOptions o = base_options("slow", "file://" + clip_);
  o.loop = true;
  o.sample_fps = 0;  // every frame: 25/s into a 3-frame queue nobody reads
  o.queue_frames = 3;
  auto src = make_source(o, log);
  ASSERT_TRUE(src);
  src->start();
  ASSERT_TRUE(log.wait_for("live", 10s));
  std::this_thread::sleep_for(1s);
  LiveSourceStats a = src->stats();
  std::this_thread::sleep_for(1s);
  LiveSourceStats b = src->stats();
  EXPECT_GT(b.frames_decoded, a.frames_decoded + 15) << "decoding must not wait for the consumer";
  EXPECT_GT(b.frames_dropped, a.frames_dropped + 15);
  EXPECT_LE(b.queue_depth, 3);
  EXPECT_LE(b.queue_high_water, 3);
  // Drop-oldest: what is left is the newest frames, in order.
  double prev = -1;
  int left = 0;
  while (auto f = src->pop(0ms)) {
    EXPECT_GT(f->pts_s, prev);
    prev = f->pts_s;
    ++left;
  }
  EXPECT_GE(left, 2);
  EXPECT_GT(prev, 1.2) << "queued frames should be recent, not the first ones";
}

// Progressive HTTP: played at real-time pace like a file; the end of a network stream is a retry.
TEST_F(LiveSourceFile, HttpPlaysInRealTimeAndEndRetries) {
  if (!testclips::has_program("python3")) GTEST_SKIP() << "python3 is needed for a local HTTP server";
  testtools::ChildProcess http;
  std::string why;
  std::string line = http.start(
      {"python3", "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", dir_.path().string()},
      dir_.file("http.log"), &why);
  size_t at = line.find(" port ");
  ASSERT_NE(at, std::string::npos) << why << line;
  std::string uri = "http://127.0.0.1:" + std::to_string(std::stoi(line.substr(at + 6))) + "/clip.mp4";
  StateLog log;
  LiveSourceOptions o = base_options("cam-http", uri);
  o.sample_fps = 5;
  o.max_attempts = 1;  // fail at the end instead of replaying
  auto src = make_source(o, log);
  ASSERT_TRUE(src);
  src->start();
  std::vector<Frame> frames;
  auto deadline = Clock::now() + 10s;
  while (!src->finished() && Clock::now() < deadline) {
    if (auto f = src->pop(100ms)) frames.push_back(std::move(*f));
  }
  ASSERT_TRUE(log.wait_for("failed", 1s));
  EXPECT_NE(log.all().back().reason.find("end of stream"), std::string::npos) << log.all().back().reason;
  ASSERT_NEAR(static_cast<double>(frames.size()), 5.0, 1.0);
  double wall_s = static_cast<double>(frames.back().arrival_ns - frames.front().arrival_ns) / 1e9;
  EXPECT_GT(wall_s, 0.5) << "an HTTP file should play at its own pace, not as fast as it decodes";
}

TEST(LiveSourceQueue, DropPoliciesAndClose) {
  auto frame = [](double pts) {
    Frame f;
    f.pts_s = pts;
    return f;
  };
  FrameQueue oldest(2, LiveDropPolicy::kDropOldest);
  FrameQueue newest(2, LiveDropPolicy::kDropNewest);
  for (double p : {1.0, 2.0, 3.0, 4.0}) {
    oldest.push(frame(p));
    newest.push(frame(p));
  }
  EXPECT_EQ(oldest.counters().dropped, 2);
  EXPECT_EQ(oldest.counters().high_water, 2);
  EXPECT_EQ(oldest.pop(0ms)->pts_s, 3.0);
  EXPECT_EQ(newest.pop(0ms)->pts_s, 1.0);
  newest.close();
  EXPECT_EQ(newest.pop(1s)->pts_s, 2.0);  // what was queued is still handed out
  auto t0 = Clock::now();
  EXPECT_FALSE(newest.pop(2s));
  EXPECT_LT(Clock::now() - t0, 500ms);
}

TEST(LiveSourceErrors, InvalidOptionsNameKeyAndStream) {
  LiveSourceOptions o = base_options("cam-x", "rtsp://127.0.0.1:1/x");
  o.transport = "quic";
  auto r = LiveSource::create(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("transport"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("cam-x"), std::string::npos) << r.status().message();
  o = base_options("cam-x", "rtsp://127.0.0.1:1/x");
  o.backoff_multiplier = 0.5;
  EXPECT_FALSE(LiveSource::create(o).ok());
}

TEST(LiveSourceErrors, BadSchemeAndMissingFileFail) {
  for (auto [uri, expect] :
       {std::pair<std::string, std::string>{"ftp://127.0.0.1/clip.mp4", "unsupported URI scheme \"ftp\""},
        {"file:///nonexistent/dfm/clip.mp4", "no such file"}}) {
    StateLog log;
    auto src = make_source(base_options("cam-bad", uri), log);
    ASSERT_TRUE(src);
    src->start();
    ASSERT_TRUE(log.wait_for("failed", 5s)) << uri;
    SourceState s = log.all().back();
    EXPECT_EQ(s.state, "failed");
    EXPECT_NE(s.reason.find("stream \"cam-bad\": " + uri), std::string::npos) << s.reason;
    EXPECT_NE(s.reason.find(expect), std::string::npos) << s.reason;
    EXPECT_TRUE(src->finished());
  }
}

// A port nothing listens on: bind an ephemeral one and release it.
int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  close(fd);
  return port;
}

TEST(LiveSourceErrors, UnreachableRtspRetriesThenGivesUp) {
  StateLog log;
  std::string uri = "rtsp://127.0.0.1:" + std::to_string(free_port()) + "/none";
  LiveSourceOptions o = base_options("cam-down", uri);
  o.transport = "tcp";
  o.max_attempts = 3;
  auto src = make_source(o, log);
  ASSERT_TRUE(src);
  src->start();
  ASSERT_TRUE(log.wait_for("failed", 15s)) << "last state " << src->state().state;
  std::vector<double> delays;
  for (const auto& s : log.all()) {
    if (s.state != "retrying") continue;
    delays.push_back(s.retry_in_s);
    EXPECT_NE(s.reason.find("stream \"cam-down\": " + uri), std::string::npos) << s.reason;
  }
  EXPECT_EQ(delays, (std::vector<double>{0.2, 0.4}));
  EXPECT_NE(log.all().back().reason.find("gave up after 3"), std::string::npos) << log.all().back().reason;
  EXPECT_EQ(src->stats().reconnects, 2);
}

// Devices and other network kinds fail like RTSP does: a reason naming the stream, then retries.
TEST(LiveSourceErrors, MissingDeviceAndUnreachableSrtRetry) {
  std::vector<std::string> uris = {"v4l2:///dev/dfm-no-such-video"};
  if (testclips::gst_has_element("srtsrc")) uris.push_back("srt://127.0.0.1:" + std::to_string(free_port()));
  for (const std::string& uri : uris) {
    StateLog log;
    LiveSourceOptions o = base_options("cam-dev", uri);
    o.max_attempts = 2;
    o.stall_timeout_s = 2;
    auto src = make_source(o, log);
    ASSERT_TRUE(src);
    src->start();
    ASSERT_TRUE(log.wait_for("failed", 15s)) << uri << ": last state " << src->state().state;
    auto states = log.all();
    ASSERT_GE(states.size(), 3u);
    EXPECT_EQ(states[1].state, "retrying") << uri;
    EXPECT_NE(states[1].reason.find("stream \"cam-dev\": " + uri + ": "), std::string::npos) << states[1].reason;
    EXPECT_NE(states.back().reason.find("gave up after 2"), std::string::npos) << states.back().reason;
  }
}

TEST(LiveSourceStop, StopDuringBackoffReturnsQuickly) {
  StateLog log;
  LiveSourceOptions o = base_options("cam-wait", "rtsp://127.0.0.1:" + std::to_string(free_port()) + "/none");
  o.transport = "tcp";
  o.initial_backoff_s = 30;
  o.max_backoff_s = 30;
  auto src = make_source(o, log);
  ASSERT_TRUE(src);
  src->start();
  ASSERT_TRUE(log.wait_for("retrying", 10s));
  EXPECT_DOUBLE_EQ(log.all().back().retry_in_s, 30.0);
  auto t0 = Clock::now();
  src->stop();
  EXPECT_LT(Clock::now() - t0, 1s);
  EXPECT_TRUE(src->finished());
  EXPECT_EQ(src->state().state, "stopped");
  EXPECT_FALSE(src->pop(1s));
}

TEST_F(LiveSourceFile, StopWhileLiveReturnsQuickly) {
  StateLog log;
  LiveSourceOptions o = base_options("cam-live", clip_);
  o.loop = true;
  auto src = make_source(o, log);
  ASSERT_TRUE(src);
  src->start();
  ASSERT_TRUE(log.wait_for("live", 10s));
  auto t0 = Clock::now();
  src.reset();  // the destructor stops
  EXPECT_LT(Clock::now() - t0, 1s);
}

// Threads of this process (all of them: GStreamer's, libav's, the test's).
int process_threads() {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/task")) {
    (void)e;
    ++n;
  }
  return n;
}

// Threads while a looping source is live and decoding.
int threads_while_live(LiveSourceOptions o) {
  StateLog log;
  o.loop = true;
  auto src = make_source(o, log);
  if (!src) return -1;
  src->start();
  for (int got = 0; got < 5;) {
    if (!src->pop(5s)) return -1;
    ++got;
  }
  const int n = process_threads();
  src->stop();
  return n;
}

TEST_F(LiveSourceFile, DecoderThreadsBoundLibavThreads) {
  if (std::thread::hardware_concurrency() < 2) GTEST_SKIP() << "one core: libav's default is one thread too";
  LiveSourceOptions o = base_options("cam-threads", "file://" + clip_);
  o.decoder_threads = 1;
  const int one = threads_while_live(o);  // first: GStreamer's pooled threads then exist for both runs
  o.decoder_threads = 0;
  const int by_default = threads_while_live(o);
  ASSERT_GT(one, 0);
  EXPECT_GT(by_default, one) << "libav's frame threads (one per core by default) did not go away";
  o.decoder_threads = -1;
  auto bad = LiveSource::create(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("decoder_threads"), std::string::npos);
}

// A state callback that wedges the supervisor thread on its first state until release(); it outlives
// the source, since an abandoned thread still calls into it.
struct Wedge {
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false;
  bool released = false;
  std::atomic<int> calls_after_stop{0};
  std::atomic<bool> stopped{false};

  static LiveSource::StateCallback callback(const std::shared_ptr<Wedge>& w) {
    return [w](const SourceState&) {
      if (w->stopped) w->calls_after_stop++;
      std::unique_lock<std::mutex> lock(w->mu);
      if (w->entered) return;
      w->entered = true;
      w->cv.notify_all();
      w->cv.wait_for(lock, 60s, [&] { return w->released; });  // 60 s at most: a broken stop() cannot hang
    };
  }
  bool wait_entered() {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, 10s, [&] { return entered; });
  }
  void release() {
    {
      std::lock_guard<std::mutex> lock(mu);
      released = true;
    }
    cv.notify_all();
  }
};

// A supervisor thread that does not come back (here: held inside the state callback, as a GStreamer
// state change that never returns would hold it) cannot hang stop(): it is abandoned after
// stop_timeout_s, the source reads as stopped, and no state reaches the callback afterwards.
TEST_F(LiveSourceFile, StopAbandonsAWedgedThreadInBoundedTime) {
  auto wedge = std::make_shared<Wedge>();
  LiveSourceOptions o = base_options("cam-wedged", clip_);
  o.stop_timeout_s = 0.3;
  auto r = LiveSource::create(o, Wedge::callback(wedge));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  auto src = std::move(r).value();
  src->start();
  ASSERT_TRUE(wedge->wait_entered());
  auto t0 = Clock::now();
  src->stop();  // returns while the thread is still wedged
  wedge->stopped = true;
  auto took = Clock::now() - t0;
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 10s);  // 0.3 s for the thread + at most 1 s for the running callback, with slack for load
  EXPECT_TRUE(src->finished());
  EXPECT_EQ(src->state().state, "stopped");
  src.reset();  // the thread keeps the internals alive; under ASan a use-after-free would show
  wedge->release();
  std::this_thread::sleep_for(1s);  // the thread now finds stopping set and exits
  EXPECT_EQ(wedge->calls_after_stop.load(), 0);
}

// How the monitor shuts down: request_stop() on every source, then stop() each. The bound counts from
// the request, so wedged sources cost one timeout together, not one each (3 x 2 s here).
TEST_F(LiveSourceFile, RequestedStopsOfWedgedSourcesShareOneTimeout) {
  constexpr int kSources = 3;
  std::vector<std::shared_ptr<Wedge>> wedges;
  std::vector<std::unique_ptr<LiveSource>> sources;
  for (int i = 0; i < kSources; ++i) {
    wedges.push_back(std::make_shared<Wedge>());
    LiveSourceOptions o = base_options("cam-wedged-" + std::to_string(i), clip_);
    o.stop_timeout_s = 1.0;
    auto r = LiveSource::create(o, Wedge::callback(wedges.back()));
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    sources.push_back(std::move(r).value());
    sources.back()->start();
  }
  for (auto& w : wedges) ASSERT_TRUE(w->wait_entered());
  auto t0 = Clock::now();
  for (auto& s : sources) s->request_stop();
  for (auto& s : sources) s->stop();
  auto took = Clock::now() - t0;
  for (auto& w : wedges) w->stopped = true;
  EXPECT_GE(took, 1s);
  // Together: 1 s + 1 s for the wedged callbacks. One after another it would be 3 x 2 s.
  EXPECT_LT(took, 4s);
  for (auto& s : sources) EXPECT_EQ(s->state().state, "stopped");
  sources.clear();
  for (auto& w : wedges) w->release();
  std::this_thread::sleep_for(1s);
  for (auto& w : wedges) EXPECT_EQ(w->calls_after_stop.load(), 0);
}

// ---- RTSP against dfm_rtsp_server ----------------------------------------------------------------

// dfm_rtsp_server as a child process; returns the URL from its READY line, or "" (why in *why).
std::string start_server(testtools::ChildProcess& child, int port, const std::string& log_path, std::string* why) {
  std::string line = child.start({kServer, "--port", std::to_string(port), "--mount", "/cam"}, log_path, why);
  if (line.rfind("READY ", 0) != 0) {
    if (!line.empty()) *why = "unexpected first line: " + line;
    return "";
  }
  return line.substr(6);
}

int port_of(const std::string& url) {  // rtsp://127.0.0.1:PORT/cam
  size_t colon = url.rfind(':');
  return std::stoi(url.substr(colon + 1));
}

TEST(LiveSourceRtsp, GoesLiveSurvivesServerRestartWithBackoff) {
  if (!fs::exists(kServer)) GTEST_SKIP() << kServer << " is not built (cmake --build ... --target dfm_rtsp_server)";
  testclips::TempDir dir;
  std::string why;
  testtools::ChildProcess server;
  std::string url = start_server(server, 0, dir.file("server.log"), &why);
  ASSERT_FALSE(url.empty()) << why;

  StateLog log;
  LiveSourceOptions o = base_options("cam-rtsp", url);
  o.transport = "tcp";
  o.sample_fps = 5;
  o.initial_backoff_s = 0.2;
  o.max_backoff_s = 1.6;
  auto src = make_source(o, log);
  ASSERT_TRUE(src);
  src->start();
  ASSERT_TRUE(log.wait_for("live", 15s)) << "last state " << src->state().state << ": " << src->state().reason;

  // Frames arrive at ~sample_fps (wall clock and stream time).
  while (src->pop(0ms)) {
  }
  std::vector<double> pts;
  auto t0 = Clock::now();
  while (Clock::now() - t0 < 3s) {
    if (auto f = src->pop(100ms)) pts.push_back(f->pts_s);
  }
  EXPECT_NEAR(static_cast<double>(pts.size()), 15.0, 4.0);
  for (size_t i = 1; i < pts.size(); ++i) EXPECT_GT(pts[i], pts[i - 1]);

  // Server dies hard: retrying, naming the stream, with a growing delay.
  size_t mark = log.size();
  server.kill_now(SIGKILL);
  ASSERT_TRUE(log.wait_for("retrying", 10s, mark, 3)) << "last state " << src->state().state;
  std::vector<double> delays;
  for (const auto& s : log.all()) {
    if (s.state == "retrying") delays.push_back(s.retry_in_s);
  }
  ASSERT_GE(delays.size(), 3u);
  EXPECT_DOUBLE_EQ(delays[0], 0.2);
  EXPECT_DOUBLE_EQ(delays[1], 0.4);
  EXPECT_DOUBLE_EQ(delays[2], 0.8);
  SourceState first_retry;
  for (size_t i = mark; i < log.all().size(); ++i) {
    if (log.all()[i].state == "retrying") {
      first_retry = log.all()[i];
      break;
    }
  }
  EXPECT_NE(first_retry.reason.find("stream \"cam-rtsp\": " + url), std::string::npos) << first_retry.reason;

  // Same port again: the same LiveSource goes live without being recreated.
  mark = log.size();
  testtools::ChildProcess again;
  ASSERT_FALSE(start_server(again, port_of(url), dir.file("server2.log"), &why).empty()) << why;
  auto back = Clock::now();
  ASSERT_TRUE(log.wait_for("live", 15s, mark)) << "last state " << src->state().state << ": " << src->state().reason;
  double reconnect_s = std::chrono::duration<double>(Clock::now() - back).count();
  std::printf("[ measure  ] reconnect after server restart: %.2f s (max backoff %.1f s)\n", reconnect_s,
              o.max_backoff_s);
  RecordProperty("reconnect_ms", static_cast<int>(reconnect_s * 1000));
  EXPECT_LT(reconnect_s, o.max_backoff_s + 5.0);
  auto f = src->pop(5s);
  ASSERT_TRUE(f);
  EXPECT_GT(f->pts_s, pts.back()) << "pts continues after a reconnect";
  EXPECT_GE(src->stats().reconnects, 3);
}

// A server that stops sending (SIGSTOP) keeps the TCP connection open: only stall detection sees it.
TEST(LiveSourceRtsp, StallWhileLiveRetriesAndRecovers) {
  if (!fs::exists(kServer)) GTEST_SKIP() << kServer << " is not built (cmake --build ... --target dfm_rtsp_server)";
  testclips::TempDir dir;
  std::string why;
  testtools::ChildProcess server;
  std::string url = start_server(server, 0, dir.file("server.log"), &why);
  ASSERT_FALSE(url.empty()) << why;
  StateLog log;
  LiveSourceOptions o = base_options("cam-stall", url);
  o.transport = "auto";  // UDP first on loopback: no TCP close to notice either
  o.stall_timeout_s = 1.5;
  auto src = make_source(o, log);
  ASSERT_TRUE(src);
  src->start();
  ASSERT_TRUE(log.wait_for("live", 15s)) << "last state " << src->state().state << ": " << src->state().reason;
  size_t mark = log.size();
  server.signal(SIGSTOP);
  auto t0 = Clock::now();
  ASSERT_TRUE(log.wait_for("retrying", 10s, mark));
  double detect_s = std::chrono::duration<double>(Clock::now() - t0).count();
  EXPECT_GE(detect_s, 1.0);
  EXPECT_LT(detect_s, 1.5 + 2.0);
  SourceState s = log.all()[log.size() - 1];
  EXPECT_NE(s.reason.find("stream \"cam-stall\": " + url), std::string::npos) << s.reason;
  EXPECT_NE(s.reason.find("stalled"), std::string::npos) << s.reason;
  // The next attempt meets the same hung server: it fails at the stall timeout too, not never, and
  // backs off twice as long (a loaded machine may have needed more than one attempt to go live, so
  // the delay is compared with the previous one rather than with the first step).
  const double first_delay = s.retry_in_s;
  ASSERT_TRUE(log.wait_for("retrying", 10s, mark, 2));
  s = log.all()[log.size() - 1];
  EXPECT_NE(s.reason.find("of connecting"), std::string::npos) << s.reason;
  EXPECT_DOUBLE_EQ(s.retry_in_s, std::min(2 * first_delay, o.max_backoff_s));
  mark = log.size();
  server.signal(SIGCONT);
  ASSERT_TRUE(log.wait_for("live", 15s, mark)) << "last state " << src->state().state << ": " << src->state().reason;
  auto t1 = Clock::now();
  src->stop();
  EXPECT_LT(Clock::now() - t1, 1s);
}

// MPEG-TS over UDP from a gst-launch sender.
TEST(LiveSourceUdp, MpegTsOverUdpGoesLive) {
  if (!testclips::has_program("gst-launch-1.0")) GTEST_SKIP() << "gst-launch-1.0 is needed";
  int port = 0;
  {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    close(fd);
  }
  StateLog log;
  auto src = make_source(base_options("cam-udp", "udp://127.0.0.1:" + std::to_string(port)), log);
  ASSERT_TRUE(src);
  src->start();
  std::string cmd =
      "timeout 20 gst-launch-1.0 -q videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=25/1 "
      "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 ! mpegtsmux ! udpsink host=127.0.0.1 port=" +
      std::to_string(port) + " >/dev/null 2>&1 & echo $!";
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd.c_str(), "r"), pclose);
  int sender = 0;
  ASSERT_EQ(std::fscanf(p.get(), "%d", &sender), 1);
  bool live = log.wait_for("live", 15s);
  auto f = src->pop(5s);
  kill(sender, SIGTERM);
  ASSERT_TRUE(live) << "last state " << src->state().state << ": " << src->state().reason;
  ASSERT_TRUE(f);
  EXPECT_EQ(f->bgr.cols, 160);
}

// GLib deadlocks (about 1 process in 70 here) when several threads first create source elements of
// different schemes at once: udpsrc's class init wants GSocket while souphttpsrc's plugin load registers
// GSocketAddress. LiveSource::create loads them up front. Each try is a fresh process, since types are
// registered once per process; a try that does not finish in 20 s is the deadlock.
TEST(LiveSourceStart, SchemesFirstUsedTogetherDoNotDeadlock) {
  // A forked child only has the forking thread: with GStreamer already running in this process (other
  // tests ran first in it) the types are registered, and a child could inherit a held GLib lock.
  // (OpenBLAS's pool threads, started before main, take no GLib lock.)
  if (gst_is_initialized()) GTEST_SKIP() << "GStreamer already initialised here (run the test alone, as ctest does)";
  const std::vector<std::string> uris = {"http://127.0.0.1:1/a",  "udp://127.0.0.1:1", "rtsp://127.0.0.1:1/a",
                                         "https://127.0.0.1:1/b", "srt://127.0.0.1:1", "udp://127.0.0.1:2"};
  constexpr int kTries = 200;
  for (int i = 0; i < kTries; ++i) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      // The child: what Monitor does, then what its stream threads do first. A hung child must not
      // outlive a test killed by its timeout.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      int code = 4;
      try {  // nothing may unwind into gtest here: the child would go on running the other tests
        bool ok = LiveSource::create(base_options("cam", uris[0])).ok();
        std::vector<std::thread> threads;
        for (const std::string& uri : uris) {
          threads.emplace_back([uri] {
            if (GstElement* e = gst_element_make_from_uri(GST_URI_SRC, uri.c_str(), nullptr, nullptr)) {
              gst_object_unref(e);
            }
          });
        }
        for (auto& t : threads) t.join();
        code = ok ? 0 : 3;
      } catch (...) {
      }
      _exit(code);
    }
    int status = 0;
    const auto deadline = Clock::now() + 20s;
    while (waitpid(pid, &status, WNOHANG) == 0) {
      if (Clock::now() > deadline) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        FAIL() << "try " << i + 1 << " of " << kTries << ": source elements still being created after 20 s";
      }
      std::this_thread::sleep_for(10ms);
    }
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "try " << i + 1 << ": child status " << status;
  }
}

}  // namespace
}  // namespace dfm
