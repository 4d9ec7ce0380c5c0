// Tests for VideoDecoder against clips generated at test time (codecs, containers, rates, VFR, bad input).
#include "dfm/pipeline/decoder.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <random>
#include <thread>
#include <vector>

#include "clip_gen.h"

namespace dfm {
namespace {

using namespace dfm::testclips;
using Clock = std::chrono::steady_clock;

struct Decoded {
  std::vector<Frame> frames;
  Status end;  // ok = clean end of stream
  int64_t decoded = 0;
  double duration = -1;
};

// Reads until EOS or error, with a frame cap so a broken decoder cannot loop forever.
Decoded decode_all(const std::string& input, DecodeOptions opt, size_t cap = 5000) {
  Decoded out;
  auto dec = VideoDecoder::open(input, opt);
  if (!dec.ok()) {
    out.end = dec.status();
    return out;
  }
  while (out.frames.size() < cap) {
    auto r = (*dec)->next();
    if (!r.ok()) {
      out.end = r.status();
      break;
    }
    if (!r->has_value()) break;
    out.frames.push_back(std::move(**r));
  }
  out.decoded = (*dec)->frames_decoded();
  out.duration = (*dec)->duration_s();
  return out;
}

// Sampled frames: count ≈ duration × fps (±1), monotonic pts, spacing within one source frame
// interval of the sampling step, and on average the step.
void expect_sampling(const std::vector<Frame>& f, double duration, double fps, double max_frame_gap) {
  const double step = 1.0 / fps, tol = 0.0011;
  EXPECT_NEAR(static_cast<double>(f.size()), duration * fps, 1.0);
  for (size_t i = 1; i < f.size(); ++i) {
    double d = f[i].pts_s - f[i - 1].pts_s;
    EXPECT_GT(f[i].index, f[i - 1].index);
    EXPECT_GE(d, step - max_frame_gap - tol) << "frame " << i << " pts " << f[i].pts_s;
    EXPECT_LE(d, step + max_frame_gap + tol) << "frame " << i << " pts " << f[i].pts_s;
  }
  if (f.size() > 2) {
    double mean = (f.back().pts_s - f.front().pts_s) / static_cast<double>(f.size() - 1);
    EXPECT_NEAR(mean, step, max_frame_gap / 2 + tol);
  }
}

void expect_frames_shape(const std::vector<Frame>& f, int w, int h, const std::string& input) {
  for (const Frame& fr : f) {
    ASSERT_EQ(fr.bgr.type(), CV_8UC3);
    ASSERT_EQ(fr.bgr.cols, w);
    ASSERT_EQ(fr.bgr.rows, h);
    ASSERT_TRUE(fr.bgr.isContinuous());
    ASSERT_EQ(fr.stream, input);
  }
}

// ---- formats and frame rates ------------------------------------------------------------------

struct FormatCase {
  std::string label;
  std::string file;        // container by extension
  std::string codec_args;  // ffmpeg encoder arguments
  std::string rate;        // ffmpeg rate
  double fps;
  std::string encoder;                    // ffmpeg encoder that must exist
  std::vector<std::string> gst_decoders;  // any one must exist
};

// Names the case in ctest/gtest output instead of dumping the struct's bytes.
void PrintTo(const FormatCase& c, std::ostream* os) {
  *os << c.label;
}

class DecoderFormats : public ::testing::TestWithParam<FormatCase> {};

TEST_P(DecoderFormats, SamplesByTimestampAndCountsEveryFrame) {
  const FormatCase& c = GetParam();
  if (!ffmpeg_has_encoder(c.encoder)) GTEST_SKIP() << "ffmpeg encoder " << c.encoder << " not available";
  bool have_dec = false;
  for (const auto& d : c.gst_decoders) have_dec = have_dec || gst_has_element(d);
  if (!have_dec) GTEST_SKIP() << "no GStreamer decoder for " << c.label;

  TempDir dir;
  std::string err;
  std::string clip = make_ffmpeg_clip(dir, clip_spec(c.file, c.codec_args, c.rate, 4.0), &err);
  ASSERT_FALSE(clip.empty()) << err;
  long expected = ffprobe_frame_count(clip);
  ASSERT_GT(expected, 0);
  double duration = expected / c.fps;

  DecodeOptions opt;
  opt.sample_fps = 5;
  opt.stall_timeout_s = 15;
  Decoded d = decode_all(clip, opt);
  ASSERT_TRUE(d.end.ok()) << d.end.to_string();
  EXPECT_EQ(d.decoded, expected);
  EXPECT_NEAR(d.duration, duration, 0.15);
  expect_sampling(d.frames, duration, 5, 1.0 / c.fps);
  expect_frames_shape(d.frames, 320, 240, clip);
  ASSERT_FALSE(d.frames.empty());
  EXPECT_NEAR(d.frames.front().pts_s, 0.0, 1e-3);
  EXPECT_EQ(d.frames.front().index, 0);
}

const char* kX264 = "-c:v libx264 -preset ultrafast -g 30";
INSTANTIATE_TEST_SUITE_P(
    Codecs, DecoderFormats,
    ::testing::Values(FormatCase{"h264_mp4_25", "c.mp4", kX264, "25", 25, "libx264", {"avdec_h264"}},
                      FormatCase{
                          "h264_mp4_2997", "c.mp4", kX264, "30000/1001", 30000.0 / 1001, "libx264", {"avdec_h264"}},
                      FormatCase{"h264_mkv_60", "c.mkv", kX264, "60", 60, "libx264", {"avdec_h264"}},
                      FormatCase{"vp8_webm_30",
                                 "c.webm",
                                 "-c:v libvpx -deadline realtime -cpu-used 16 -lag-in-frames 0 -threads 1 -b:v 400k",
                                 "30",
                                 30,
                                 "libvpx",
                                 {"vp8dec", "avdec_vp8"}},
                      FormatCase{"mpeg4_avi_25", "c.avi", "-c:v mpeg4 -q:v 5", "25", 25, "mpeg4", {"avdec_mpeg4"}},
                      FormatCase{"mpeg4_mkv_30", "c.mkv", "-c:v mpeg4 -q:v 5", "30", 30, "mpeg4", {"avdec_mpeg4"}},
                      FormatCase{"h265_mp4_30",
                                 "c.mp4",
                                 "-c:v libx265 -preset ultrafast -tag:v hvc1 -x265-params log-level=error",
                                 "30",
                                 30,
                                 "libx265",
                                 {"avdec_h265", "libde265dec"}},
                      FormatCase{"av1_mkv_25",
                                 "c.mkv",
                                 "-c:v libsvtav1 -preset 12",
                                 "25",
                                 25,
                                 "libsvtav1",
                                 {"av1dec", "dav1ddec", "avdec_av1"}}),
    [](const ::testing::TestParamInfo<FormatCase>& i) { return i.param.label; });

// The exact pipeline from the product docs: gst-launch x264enc ! mp4mux.
TEST(DecoderGstClip, X264Mp4FromGstLaunch) {
  if (!has_program("gst-launch-1.0") || !gst_has_element("x264enc")) GTEST_SKIP() << "gst-launch-1.0/x264enc missing";
  TempDir dir;
  std::string clip = dir.file("gst.mp4");
  ASSERT_TRUE(
      run("gst-launch-1.0 -q videotestsrc num-buffers=75 ! video/x-raw,framerate=25/1,width=320,height=240 "
          "! x264enc speed-preset=ultrafast ! mp4mux ! filesink location='" +
              clip + "'",
          clip + ".log"))
      << read_text(clip + ".log");
  Decoded d = decode_all(clip, DecodeOptions{});
  ASSERT_TRUE(d.end.ok()) << d.end.to_string();
  EXPECT_EQ(d.decoded, 75);
  expect_sampling(d.frames, 3.0, 5, 0.04);
  expect_frames_shape(d.frames, 320, 240, clip);
}

// ---- sampling ---------------------------------------------------------------------------------

TEST(DecoderSampling, ZeroFpsReturnsEveryFrame) {
  TempDir dir;
  std::string err;
  std::string clip = make_ffmpeg_clip(dir, clip_spec("all.mp4", kX264, "30", 2.0), &err);
  ASSERT_FALSE(clip.empty()) << err;
  DecodeOptions opt;
  opt.sample_fps = 0;
  Decoded d = decode_all(clip, opt);
  ASSERT_TRUE(d.end.ok()) << d.end.to_string();
  ASSERT_EQ(d.frames.size(), 60u);
  EXPECT_EQ(d.decoded, 60);
  for (size_t i = 0; i < d.frames.size(); ++i) {
    EXPECT_EQ(d.frames[i].index, static_cast<int64_t>(i));
    EXPECT_NEAR(d.frames[i].pts_s, i / 30.0, 1e-3);
  }
}

TEST(DecoderSampling, VariableFrameRateSegments) {
  // 2 s at 10 fps, 2 s at 50 fps, 2 s at 25 fps, timestamps kept as-is (VFR).
  TempDir dir;
  std::string err;
  FfmpegClip c = clip_spec("vfr.mkv", kX264, "50", 6.0);
  c.vf = "select='if(lt(t,2),not(mod(n,5)),if(lt(t,4),1,not(mod(n,2))))'";
  std::string clip = make_ffmpeg_clip(dir, c, &err);
  ASSERT_FALSE(clip.empty()) << err;
  long expected = ffprobe_frame_count(clip);
  ASSERT_EQ(expected, 170);
  Decoded d = decode_all(clip, DecodeOptions{});
  ASSERT_TRUE(d.end.ok()) << d.end.to_string();
  EXPECT_EQ(d.decoded, expected);
  expect_sampling(d.frames, 6.0, 5, 0.1);
}

TEST(DecoderSampling, GapYieldsOneFrameNotABurst) {
  // 10 fps with nothing between 2.0 s and 3.0 s.
  TempDir dir;
  std::string err;
  FfmpegClip c = clip_spec("gap.mkv", kX264, "10", 4.0);
  c.vf = "select='not(between(t,2,3))'";
  std::string clip = make_ffmpeg_clip(dir, c, &err);
  ASSERT_FALSE(clip.empty()) << err;
  Decoded d = decode_all(clip, DecodeOptions{});
  ASSERT_TRUE(d.end.ok()) << d.end.to_string();
  EXPECT_EQ(d.decoded, ffprobe_frame_count(clip));
  // 0.0 .. 1.8 (10), then 3.1, 3.3, 3.5, 3.7, 3.9 after re-anchoring on the first frame past the gap.
  ASSERT_EQ(d.frames.size(), 15u);
  EXPECT_NEAR(d.frames[10].pts_s, 3.1, 1e-3);
  for (size_t i = 1; i < d.frames.size(); ++i) EXPECT_GE(d.frames[i].pts_s - d.frames[i - 1].pts_s, 0.2 - 0.0011);
}

TEST(DecoderSampling, SourceSlowerThanSampleRateYieldsEveryFrame) {
  TempDir dir;
  std::string err;
  std::string clip = make_ffmpeg_clip(dir, clip_spec("slow.mp4", kX264, "2", 3.0), &err);
  ASSERT_FALSE(clip.empty()) << err;
  Decoded d = decode_all(clip, DecodeOptions{});
  ASSERT_TRUE(d.end.ok()) << d.end.to_string();
  EXPECT_EQ(d.frames.size(), 6u);
  EXPECT_EQ(d.decoded, 6);
}

// ---- scaling ----------------------------------------------------------------------------------

TEST(DecoderScaling, MaxWidthKeepsAspect) {
  TempDir dir;
  std::string err;
  FfmpegClip c = clip_spec("wide.mp4", kX264, "25", 1.0, 640, 360);
  std::string clip = make_ffmpeg_clip(dir, c, &err);
  ASSERT_FALSE(clip.empty()) << err;
  struct Case {
    int max_width, w, h;
  };
  for (Case k : {Case{320, 320, 180}, Case{1000, 640, 360}, Case{640, 640, 360}, Case{0, 640, 360}}) {
    DecodeOptions opt;
    opt.max_width = k.max_width;
    Decoded d = decode_all(clip, opt);
    ASSERT_TRUE(d.end.ok()) << d.end.to_string();
    EXPECT_EQ(d.frames.size(), 5u) << "max_width " << k.max_width;
    expect_frames_shape(d.frames, k.w, k.h, clip);
  }
  DecodeOptions odd;
  odd.max_width = 101;  // 101 x 56.8: height rounds, width is exact
  Decoded d = decode_all(clip, odd);
  ASSERT_TRUE(d.end.ok()) << d.end.to_string();
  ASSERT_FALSE(d.frames.empty());
  EXPECT_EQ(d.frames[0].bgr.cols, 101);
  EXPECT_NEAR(d.frames[0].bgr.rows, 101 * 360 / 640.0, 1.0);
}

// ---- bad inputs -------------------------------------------------------------------------------

void expect_error_naming(const Status& st, const std::string& input) {
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find(input), std::string::npos) << st.to_string();
}

TEST(DecoderErrors, MissingFileIsNotFound) {
  TempDir dir;
  std::string path = dir.file("nope.mp4");
  auto r = VideoDecoder::open(path, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNotFound);
  expect_error_naming(r.status(), path);
}

TEST(DecoderErrors, ZeroByteFile) {
  TempDir dir;
  std::string path = dir.file("empty.mp4");
  std::ofstream(path).close();
  auto r = VideoDecoder::open(path, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("empty"), std::string::npos);
  expect_error_naming(r.status(), path);
}

TEST(DecoderErrors, DirectoryPath) {
  TempDir dir;
  auto r = VideoDecoder::open(dir.path().string(), {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("directory"), std::string::npos);
  expect_error_naming(r.status(), dir.path().string());
}

TEST(DecoderErrors, BadOptionsRejected) {
  DecodeOptions o;
  o.sample_fps = -1;
  EXPECT_EQ(VideoDecoder::open("/x.mp4", o).status().code(), Code::kInvalidArgument);
  o = {};
  o.stall_timeout_s = 0;
  EXPECT_EQ(VideoDecoder::open("/x.mp4", o).status().code(), Code::kInvalidArgument);
  o = {};
  o.max_width = -5;
  EXPECT_EQ(VideoDecoder::open("/x.mp4", o).status().code(), Code::kInvalidArgument);
}

TEST(DecoderErrors, RandomBytesNamedMp4) {
  TempDir dir;
  std::string path = dir.file("junk.mp4");
  std::mt19937 rng(7);
  std::ofstream out(path, std::ios::binary);
  for (int i = 0; i < 64 * 1024; ++i) out.put(static_cast<char>(rng() & 0xff));
  out.close();
  DecodeOptions opt;
  opt.stall_timeout_s = 10;
  Decoded d = decode_all(path, opt);
  EXPECT_TRUE(d.frames.empty());
  expect_error_naming(d.end, path);
}

TEST(DecoderErrors, UnknownUriScheme) {
  Decoded d = decode_all("nosuchscheme://host/clip.mp4", {});
  expect_error_naming(d.end, "nosuchscheme://host/clip.mp4");
}

TEST(DecoderErrors, AudioOnlyIsUnsupported) {
  TempDir dir;
  for (std::string name : {"tone.m4a", "tone.mp4", "tone.ogg"}) {
    std::string path = dir.file(name);
    std::string codec = name == "tone.ogg" ? "-c:a libvorbis" : "-c:a aac";
    ASSERT_TRUE(
        run("ffmpeg -nostdin -y -f lavfi -i sine=frequency=440:duration=2 " + codec + " '" + path + "'", path + ".log"))
        << read_text(path + ".log");
    DecodeOptions opt;
    opt.stall_timeout_s = 10;
    Decoded d = decode_all(path, opt);
    EXPECT_EQ(d.end.code(), Code::kUnsupported) << d.end.to_string();
    EXPECT_NE(d.end.message().find("no video stream"), std::string::npos) << d.end.to_string();
    expect_error_naming(d.end, path);
  }
}

// Hides every H.264 decoder from autoplugging (rank NONE) for the test's duration.
class HideH264Decoders {
 public:
  HideH264Decoders() {
    ensure_gstreamer();
    GList* decoders = gst_element_factory_list_get_elements(GST_ELEMENT_FACTORY_TYPE_DECODER, GST_RANK_NONE);
    GstCaps* h264 = gst_caps_from_string("video/x-h264");
    for (GList* l = decoders; l; l = l->next) {
      auto* f = GST_ELEMENT_FACTORY(l->data);
      if (!gst_element_factory_can_sink_any_caps(f, h264)) continue;
      auto* feature = GST_PLUGIN_FEATURE(gst_object_ref(f));
      saved_.emplace_back(feature, gst_plugin_feature_get_rank(feature));
      gst_plugin_feature_set_rank(feature, GST_RANK_NONE);
    }
    gst_caps_unref(h264);
    gst_plugin_feature_list_free(decoders);
  }
  size_t hidden() const { return saved_.size(); }
  ~HideH264Decoders() {
    for (auto& [feature, rank] : saved_) {
      gst_plugin_feature_set_rank(feature, rank);
      gst_object_unref(feature);
    }
  }

 private:
  std::vector<std::pair<GstPluginFeature*, guint>> saved_;
};

TEST(DecoderErrors, NoDecoderForCodecIsUnsupported) {
  TempDir dir;
  std::string err;
  std::string clip = make_ffmpeg_clip(dir, clip_spec("h264.mp4", kX264, "25", 1.0), &err);
  ASSERT_FALSE(clip.empty()) << err;
  HideH264Decoders hide;
  ASSERT_GT(hide.hidden(), 0u);
  DecodeOptions opt;
  opt.stall_timeout_s = 10;
  Decoded d = decode_all(clip, opt);
  EXPECT_TRUE(d.frames.empty());
  EXPECT_EQ(d.end.code(), Code::kUnsupported) << d.end.to_string();
  EXPECT_NE(d.end.message().find("no decoder available for video/x-h264"), std::string::npos) << d.end.to_string();
  expect_error_naming(d.end, clip);
}

// Truncated files must give back what decodes, then EOS or an error -- never hang or crash.
TEST(DecoderErrors, TruncatedMp4) {
  TempDir dir;
  std::string err;
  for (std::string movflags : {"+faststart", ""}) {
    FfmpegClip c = clip_spec("t.mp4", kX264, "25", 4.0);
    if (!movflags.empty()) c.extra += " -movflags " + movflags;
    std::string clip = make_ffmpeg_clip(dir, c, &err);
    ASSERT_FALSE(clip.empty()) << err;
    auto size = fs::file_size(clip);
    fs::resize_file(clip, size / 2);
    DecodeOptions opt;
    opt.sample_fps = 0;
    opt.stall_timeout_s = 5;
    auto t0 = Clock::now();
    Decoded d = decode_all(clip, opt);
    EXPECT_LT(Clock::now() - t0, std::chrono::seconds(15));
    EXPECT_LT(d.decoded, 100) << "movflags " << movflags;
    if (movflags == "+faststart") {
      EXPECT_GT(d.frames.size(), 0u) << d.end.to_string();
    } else {
      expect_error_naming(d.end, clip);  // the index (moov) was lost with the second half
    }
    if (!d.end.ok()) {
      expect_error_naming(d.end, clip);
    }
    EXPECT_NE(d.end.code(), Code::kTimeout) << d.end.to_string();
    fs::remove(clip);
  }
}

// A demuxer that fails while decodebin is still plugging it has its error swallowed by decodebin;
// the decoder must still report it promptly (not after the stall timeout). Racy by nature, so
// repeat a few times.
TEST(DecoderErrors, CorruptHeaderFailsFastNotTimeout) {
  TempDir dir;
  std::string err;
  std::string clip = make_ffmpeg_clip(dir, clip_spec("moov_at_end.mp4", kX264, "25", 2.0), &err);
  ASSERT_FALSE(clip.empty()) << err;
  fs::resize_file(clip, 30000);  // mdat only, no moov
  DecodeOptions opt;
  opt.stall_timeout_s = 20;
  for (int i = 0; i < 6; ++i) {
    auto t0 = Clock::now();
    Decoded d = decode_all(clip, opt);
    EXPECT_LT(Clock::now() - t0, std::chrono::seconds(6));
    EXPECT_TRUE(d.frames.empty());
    EXPECT_NE(d.end.code(), Code::kTimeout) << d.end.to_string();
    expect_error_naming(d.end, clip);
  }
}

// A server that accepts the connection and never answers: the stall timeout must fire.
TEST(DecoderErrors, StalledSourceTimesOut) {
  if (!gst_has_element("souphttpsrc")) GTEST_SKIP() << "souphttpsrc (gst-plugins-good soup) not installed";
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  std::string uri = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/clip.mp4";

  DecodeOptions opt;
  opt.stall_timeout_s = 1.0;
  auto t0 = Clock::now();
  Decoded d = decode_all(uri, opt);
  auto took = Clock::now() - t0;
  ::close(fd);
  if (!d.end.ok() && d.end.code() != Code::kTimeout && d.end.message().find("soup") != std::string::npos) {
    GTEST_SKIP() << "libsoup unavailable: " << d.end.to_string();
  }
  EXPECT_EQ(d.end.code(), Code::kTimeout) << d.end.to_string();
  expect_error_naming(d.end, uri);
  EXPECT_LT(took, std::chrono::seconds(8));
}

// ---- lifecycle --------------------------------------------------------------------------------

TEST(DecoderLifecycle, DestroyMidStreamIsPrompt) {
  TempDir dir;
  std::string err;
  std::string clip = make_ffmpeg_clip(dir, clip_spec("long.mp4", kX264, "25", 20.0), &err);
  ASSERT_FALSE(clip.empty()) << err;
  DecodeOptions opt;
  opt.sample_fps = 0;
  auto dec = VideoDecoder::open(clip, opt);
  ASSERT_TRUE(dec.ok()) << dec.status().to_string();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE((*dec)->next().ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let the appsink queue fill and block
  auto t0 = Clock::now();
  dec = Status(Cancelled("released"));  // drops the decoder
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(3));
}

TEST(DecoderLifecycle, EndIsSticky) {
  TempDir dir;
  std::string err;
  std::string clip = make_ffmpeg_clip(dir, clip_spec("s.mp4", kX264, "25", 0.4), &err);
  ASSERT_FALSE(clip.empty()) << err;
  auto dec = VideoDecoder::open(clip, {});
  ASSERT_TRUE(dec.ok());
  int n = 0;
  for (;;) {
    auto r = (*dec)->next();
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    if (!r->has_value()) break;
    ++n;
  }
  EXPECT_EQ(n, 2);
  auto again = (*dec)->next();
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->has_value());
}

TEST(DecoderLifecycle, ConcurrentDecodersInitOnce) {
  TempDir dir;
  std::string err;
  std::string clip = make_ffmpeg_clip(dir, clip_spec("c.mp4", kX264, "25", 2.0), &err);
  ASSERT_FALSE(clip.empty()) << err;
  std::vector<Decoded> results(3);
  std::vector<std::thread> threads;
  for (auto& r : results) threads.emplace_back([&r, &clip] { r = decode_all(clip, DecodeOptions{}); });
  for (auto& t : threads) t.join();
  for (const auto& r : results) {
    EXPECT_TRUE(r.end.ok()) << r.end.to_string();
    EXPECT_EQ(r.frames.size(), 10u);
    EXPECT_EQ(r.decoded, 50);
  }
}

// ---- helpers and the real clip ----------------------------------------------------------------

TEST(DecoderUri, IsUriAndToUri) {
  EXPECT_TRUE(is_uri("file:///tmp/a.mp4"));
  EXPECT_TRUE(is_uri("rtsp://cam/1"));
  EXPECT_TRUE(is_uri("http+unix://x"));
  EXPECT_FALSE(is_uri("/tmp/a.mp4"));
  EXPECT_FALSE(is_uri("a.mp4"));
  EXPECT_FALSE(is_uri("c:/video.mp4"));
  EXPECT_FALSE(is_uri("://x"));
  EXPECT_EQ(to_uri("rtsp://cam/1"), "rtsp://cam/1");
  EXPECT_EQ(to_uri("/tmp/a b.mp4"), "file:///tmp/a%20b.mp4");
  std::string rel = to_uri("rel.mp4");
  EXPECT_EQ(rel.rfind("file:///", 0), 0u) << rel;
  EXPECT_NE(rel.find("/rel.mp4"), std::string::npos) << rel;
}

TEST(DecoderUri, FileUriInput) {
  TempDir dir;
  std::string err;
  std::string clip = make_ffmpeg_clip(dir, clip_spec("u v.mp4", kX264, "25", 1.0), &err);
  ASSERT_FALSE(clip.empty()) << err;
  Decoded d = decode_all(to_uri(clip), {});
  ASSERT_TRUE(d.end.ok()) << d.end.to_string();
  EXPECT_EQ(d.frames.size(), 5u);
  auto missing = VideoDecoder::open(to_uri(dir.file("gone.mp4")), {});
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
}

// Its video track starts 0.85 s into the 10 s file (audio starts at 0), so ~9.2 s of video: 46 frames.
TEST(DecoderRealClip, HamiltonTenSecondsAtFiveFps) {
  const char* env = std::getenv("DFM_REAL_CLIP");
  std::string clip = env ? env : "/work/shared/data/real/videos/short_hamilton_clip.mp4";
  if (!fs::exists(clip)) GTEST_SKIP() << clip << " not present";
  Decoded d = decode_all(clip, DecodeOptions{});
  ASSERT_TRUE(d.end.ok()) << d.end.to_string();
  ASSERT_GT(d.frames.size(), 2u);
  EXPECT_GT(d.duration, 0);
  const double frame = 1001.0 / 30000;  // upper bound for the sampling jitter check below
  double video_span = d.frames.back().pts_s - d.frames.front().pts_s + 0.2;
  expect_sampling(d.frames, video_span, 5, frame);
  if (!env) {
    EXPECT_NEAR(d.duration, 10.0, 0.1);
    EXPECT_NEAR(d.frames.front().pts_s, 0.852, 0.01);
    EXPECT_NEAR(static_cast<double>(d.frames.size()), (10.008 - 0.852) * 5, 1.0);
  }
  if (has_program("ffprobe")) {
    EXPECT_EQ(d.decoded, ffprobe_frame_count(clip));
  }
}

}  // namespace
}  // namespace dfm
