// dfmondetect in real pipelines with the tiny generated models: inspection, events, metas, passthrough
// and overlay pixels, and start-up errors.
#include <gst/video/gstvideometa.h>

#include <algorithm>
#include <memory>
#include <opencv2/imgproc.hpp>
#include <set>

#include "gst_test_util.h"

namespace dfm::testing {
namespace {

const char* kFake = "synthetic_fake_d18.mp4";  // 480x480, 30 fps, 7.2 s, one face throughout

std::string tiny_pipeline(const std::string& format, const std::string& detect_props) {
  return "filesrc location=" + clip(kFake) + " ! decodebin ! videoconvert ! video/x-raw,format=" + format +
         " ! dfmondetect name=det models-dir=" + DFM_TINY_MODELS + " " + detect_props +
         " ! fakesink name=sink sync=false";
}

TEST(DfmonDetect, GstInspectDocumentsTheProperties) {
  auto [rc, out] = run_command(plugin_env() + "gst-inspect-1.0 dfmondetect");
  ASSERT_EQ(rc, 0) << out;
  for (const char* prop :
       {"models-dir", "models", "backend", "sample-fps", "detect-every", "detect-max-width", "min-face", "ema",
        "alert-threshold", "clear-threshold", "min-duration", "overlay", "emit-scores", "stream-id"}) {
    EXPECT_NE(out.find(std::string("  ") + prop + " "), std::string::npos) << "property " << prop << " not listed";
  }
  // Defaults come from the config schema (scoring.fps 5, alert on 0.7 / off 0.4).
  EXPECT_NE(out.find("Filter/Analyzer/Video"), std::string::npos);
  EXPECT_NE(out.find("Default:             0.7"), std::string::npos) << out;
}

struct Collected {
  int buffers = 0;
  int with_meta = 0;
  int faces_in_meta = 0;
  int roi_faces = 0;
  std::vector<double> meta_pts;
  std::set<int> meta_tracks;
  bool roi_matches_meta = true;
};

TEST(DfmonDetect, TinyModelsPostEventsAndAttachMeta) {
  Collected c;
  std::function<void(GstPad*, GstBuffer*)> on_out = [&](GstPad*, GstBuffer* buf) {
    c.buffers++;
    DfmonFaceMeta* m = dfmon_buffer_get_face_meta(buf);
    if (!m) return;
    c.with_meta++;
    c.faces_in_meta += static_cast<int>(m->n_faces);
    c.meta_pts.push_back(m->pts_s);
    for (guint i = 0; i < m->n_faces; ++i) {
      const DfmonFace& f = m->faces[i];
      c.meta_tracks.insert(f.track);
      bool found = false;
      gpointer state = nullptr;
      while (GstMeta* meta =
                 gst_buffer_iterate_meta_filtered(buf, &state, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)) {
        auto* roi = reinterpret_cast<GstVideoRegionOfInterestMeta*>(meta);
        GstStructure* p = gst_video_region_of_interest_meta_get_param(roi, "dfmon");
        int track = -1;
        double score = -1;
        if (p && gst_structure_get_int(p, "track", &track) && track == f.track &&
            gst_structure_get_double(p, "score", &score) && score == f.score && roi->id == f.track) {
          found = true;
        }
      }
      if (found) c.roi_faces++;
    }
  };
  guint64 analysed = 0, dropped = 0;
  RunResult r = run_pipeline(
      tiny_pipeline("BGR", "stream-id=cam-t sample-fps=5 detect-every=3"),
      [&](GstElement* p) { probe(p, "det", "src", &on_out); },
      [&](GstElement* p) {
        analysed = get_u64(p, "det", "frames-analysed");
        dropped = get_u64(p, "det", "frames-dropped");
      });
  ASSERT_TRUE(r.error.empty()) << r.error;
  ASSERT_TRUE(r.eos);
  EXPECT_EQ(analysed, 36u);
  EXPECT_EQ(dropped, 0u) << "synchronous analysis never skips a sampled frame";

  // Every frame comes out; analysed ones (7.2 s at 5 fps by PTS = 36) carry the meta.
  EXPECT_EQ(c.buffers, 216);
  EXPECT_EQ(c.with_meta, 36);
  for (size_t i = 0; i < c.meta_pts.size(); ++i) EXPECT_NEAR(c.meta_pts[i], 0.2 * static_cast<double>(i), 0.02) << i;
  EXPECT_GE(c.faces_in_meta, 30) << "the clip shows a face in (nearly) every frame";
  EXPECT_EQ(c.roi_faces, c.faces_in_meta) << "each face also has a GstVideoRegionOfInterestMeta with dfmon params";

  // One score event per face in the metas, in order, numbered without gaps.
  int scores = 0, starts = 0, ends = 0;
  std::set<int> open;
  for (size_t i = 0; i < r.events.size(); ++i) {
    const EventMsg& e = r.events[i];
    EXPECT_EQ(e.seq, i + 1);
    EXPECT_EQ(e.stream, "cam-t");
    EXPECT_GE(e.track, 1);
    auto j = nlohmann::json::parse(e.json);
    EXPECT_EQ(j["schema"], "dfmon.event/1");
    EXPECT_EQ(j["type"], e.type);
    EXPECT_EQ(j["seq"].get<uint64_t>(), e.seq);
    EXPECT_EQ(j["track"].get<int>(), e.track);
    EXPECT_NEAR(j["score"].get<double>(), e.score, 1e-4);
    if (e.type == "score") {
      ++scores;
      EXPECT_TRUE(c.meta_tracks.count(e.track)) << "score event for a track no meta carried";
      EXPECT_EQ(e.models.size(), 2u);
      EXPECT_TRUE(e.models.count("tiny_a") && e.models.count("tiny_b"));
      EXPECT_GT(e.bbox.width, 40);
      EXPECT_EQ(j["bbox"], nlohmann::json({e.bbox.x, e.bbox.y, e.bbox.width, e.bbox.height}));
      EXPECT_NEAR(j["raw"].get<double>(), e.raw, 1e-4);
      for (const auto& [name, p] : e.models) EXPECT_NEAR(j["models"][name].get<double>(), p, 1e-4);
      EXPECT_TRUE(e.score >= 0 && e.score <= 1 && e.raw >= 0 && e.raw <= 1);
    } else if (e.type == "alert_start") {
      ++starts;
      EXPECT_TRUE(open.insert(e.track).second);
    } else if (e.type == "alert_end") {
      ++ends;
      EXPECT_EQ(open.erase(e.track), 1u) << "alert_end without alert_start";
      EXPECT_GE(e.duration_s, 0);
      EXPECT_TRUE(j.contains("peak") && j.contains("duration_s"));
    } else {
      ADD_FAILURE() << "unexpected event type " << e.type;
    }
  }
  EXPECT_EQ(scores, c.faces_in_meta);
  EXPECT_EQ(starts, ends);
  EXPECT_TRUE(open.empty()) << "EOS closes every open alert";
}

// Input vs output pixels of every buffer: the sink-pad probe keeps a deep copy of the frame, the
// src-pad probe (same streaming thread, right after the in-place transform) compares.
struct PixelCheck {
  GstVideoInfo info{};
  GstBuffer* in = nullptr;
  int frames = 0, identical = 0, with_faces = 0, overlay_ok = 0;
  std::vector<std::string> problems;

  ~PixelCheck() {
    if (in) gst_buffer_unref(in);
  }
};

// Differences between two mapped frames of the same format on plane 0, as a CV_8U mask.
cv::Mat plane0_diff(GstVideoFrame* a, GstVideoFrame* b) {
  const int w = GST_VIDEO_FRAME_WIDTH(a), h = GST_VIDEO_FRAME_HEIGHT(a);
  const int px = GST_VIDEO_FRAME_COMP_PSTRIDE(a, 0);
  cv::Mat ma(h, w * px, CV_8UC1, GST_VIDEO_FRAME_PLANE_DATA(a, 0),
             static_cast<size_t>(GST_VIDEO_FRAME_PLANE_STRIDE(a, 0)));
  cv::Mat mb(h, w * px, CV_8UC1, GST_VIDEO_FRAME_PLANE_DATA(b, 0),
             static_cast<size_t>(GST_VIDEO_FRAME_PLANE_STRIDE(b, 0)));
  cv::Mat ne;
  cv::compare(ma, mb, ne, cv::CMP_NE);
  cv::Mat per_px;
  cv::resize(ne, per_px, cv::Size(w, h), 0, 0, cv::INTER_AREA);  // any byte of a pixel differing -> > 0
  return per_px > 0;
}

void run_pixel_check(const std::string& format, bool overlay, PixelCheck* pc) {
  std::function<void(GstPad*, GstBuffer*)> on_in = [&](GstPad* pad, GstBuffer* buf) {
    if (pc->in) gst_buffer_unref(pc->in);
    pc->in = gst_buffer_copy_deep(buf);
    if (pc->frames == 0) {
      GstCaps* caps = gst_pad_get_current_caps(pad);
      gst_video_info_from_caps(&pc->info, caps);
      gst_caps_unref(caps);
    }
  };
  std::function<void(GstPad*, GstBuffer*)> on_out = [&](GstPad*, GstBuffer* out) {
    pc->frames++;
    GstMapInfo a, b;
    gst_buffer_map(pc->in, &a, GST_MAP_READ);
    gst_buffer_map(out, &b, GST_MAP_READ);
    const bool same = a.size == b.size && std::equal(a.data, a.data + a.size, b.data);
    gst_buffer_unmap(out, &b);
    gst_buffer_unmap(pc->in, &a);
    if (same) pc->identical++;
    DfmonFaceMeta* m = dfmon_buffer_get_face_meta(out);
    if (!overlay || !m || m->n_faces != 1) return;
    pc->with_faces++;
    GstVideoFrame fi, fo;
    gst_video_frame_map(&fi, &pc->info, pc->in, GST_MAP_READ);
    gst_video_frame_map(&fo, &pc->info, out, GST_MAP_READ);
    cv::Mat diff = plane0_diff(&fi, &fo);
    gst_video_frame_unmap(&fo);
    gst_video_frame_unmap(&fi);
    const cv::Rect box(m->faces[0].x, m->faces[0].y, m->faces[0].width, m->faces[0].height);
    // The outline and the label above it, nothing else; the face itself (inner half) is untouched.
    const cv::Rect allowed =
        cv::Rect(box.x - 8, box.y - 48, box.width + 16, box.height + 56) & cv::Rect(0, 0, diff.cols, diff.rows);
    const cv::Rect inner = cv::Rect(box.x + box.width / 4, box.y + box.height / 4, box.width / 2, box.height / 2) &
                           cv::Rect(0, 0, diff.cols, diff.rows);
    cv::Mat outside = diff.clone();
    outside(allowed).setTo(0);
    const int on_outline =
        cv::countNonZero(diff(cv::Rect(box.x, box.y, box.width, 3) & cv::Rect(0, 0, diff.cols, diff.rows)));
    if (cv::countNonZero(outside) == 0 && cv::countNonZero(diff(inner)) == 0 && on_outline > box.width / 2) {
      pc->overlay_ok++;
    } else if (pc->problems.size() < 3) {
      pc->problems.push_back(
          "t=" + std::to_string(m->pts_s) + ": outside=" + std::to_string(cv::countNonZero(outside)) +
          " inner=" + std::to_string(cv::countNonZero(diff(inner))) + " outline=" + std::to_string(on_outline));
    }
  };
  RunResult r =
      run_pipeline(tiny_pipeline(format, std::string("overlay=") + (overlay ? "true" : "false")), [&](GstElement* p) {
        probe(p, "det", "sink", &on_in);
        probe(p, "det", "src", &on_out);
      });
  ASSERT_TRUE(r.error.empty()) << r.error;
  ASSERT_TRUE(r.eos);
}

class DfmonDetectFormats : public ::testing::TestWithParam<std::string> {};

TEST_P(DfmonDetectFormats, PassthroughIsBitIdentical) {
  PixelCheck pc;
  run_pixel_check(GetParam(), false, &pc);
  EXPECT_EQ(pc.frames, 216);
  EXPECT_EQ(pc.identical, pc.frames);
}

TEST_P(DfmonDetectFormats, OverlayDrawsOnlyAroundTheFace) {
  PixelCheck pc;
  run_pixel_check(GetParam(), true, &pc);
  EXPECT_EQ(pc.frames, 216);
  EXPECT_GE(pc.with_faces, 30);
  EXPECT_EQ(pc.overlay_ok, pc.with_faces) << (pc.problems.empty() ? "" : pc.problems[0]);
  EXPECT_LE(pc.identical, pc.frames - pc.with_faces) << "every analysed frame with a face was drawn on";
}

INSTANTIATE_TEST_SUITE_P(Formats, DfmonDetectFormats, ::testing::Values("BGR", "BGRx", "RGBA", "I420", "NV12"));

// async=true on a source that runs far ahead of real time: the worker takes what it can, the rest of
// the sampled frames are counted as dropped, video is untouched, results ride on later buffers.
TEST(DfmonDetect, AsyncAnalysisSkipsFramesWhileBusyAndAttachesResultsLater) {
  int buffers = 0, identical = 0, metas = 0, meta_faces = 0;
  std::vector<double> meta_pts;
  bool meta_not_after_buffer = true;
  GstBuffer* in = nullptr;
  std::function<void(GstPad*, GstBuffer*)> on_in = [&](GstPad*, GstBuffer* buf) {
    if (in) gst_buffer_unref(in);
    in = gst_buffer_copy_deep(buf);
  };
  std::function<void(GstPad*, GstBuffer*)> on_out = [&](GstPad*, GstBuffer* buf) {
    buffers++;
    GstMapInfo a, b;
    gst_buffer_map(in, &a, GST_MAP_READ);
    gst_buffer_map(buf, &b, GST_MAP_READ);
    if (a.size == b.size && std::equal(a.data, a.data + a.size, b.data)) identical++;
    gst_buffer_unmap(buf, &b);
    gst_buffer_unmap(in, &a);
    if (DfmonFaceMeta* m = dfmon_buffer_get_face_meta(buf)) {
      metas++;
      meta_faces += static_cast<int>(m->n_faces);
      meta_pts.push_back(m->pts_s);
      // This clip's segment starts at 0, so stream time = PTS.
      if (m->pts_s > static_cast<double>(GST_BUFFER_PTS(buf)) / 1e9 + 1e-6) meta_not_after_buffer = false;
    }
  };
  guint64 analysed = 0, dropped = 0;
  RunResult r = run_pipeline(
      tiny_pipeline("I420", "async=true"),
      [&](GstElement* p) {
        probe(p, "det", "sink", &on_in);
        probe(p, "det", "src", &on_out);
      },
      [&](GstElement* p) {
        analysed = get_u64(p, "det", "frames-analysed");
        dropped = get_u64(p, "det", "frames-dropped");
      });
  if (in) gst_buffer_unref(in);
  ASSERT_TRUE(r.error.empty()) << r.error;
  ASSERT_TRUE(r.eos);
  EXPECT_EQ(buffers, 216);
  EXPECT_EQ(identical, 216);
  EXPECT_EQ(analysed + dropped, 36u) << "every sampled frame is either analysed or counted as dropped";
  EXPECT_GE(analysed, 1u);
  EXPECT_GT(dropped, 0u) << "decoding runs far ahead of analysis here, so the worker must have been busy";
  // A result rides on one later buffer, except possibly the last one (no buffer left after it).
  EXPECT_GE(static_cast<guint64>(metas), analysed - 1);
  EXPECT_LE(static_cast<guint64>(metas), analysed);
  EXPECT_TRUE(meta_not_after_buffer) << "a meta names a frame later than the buffer carrying it";
  EXPECT_TRUE(std::is_sorted(meta_pts.begin(), meta_pts.end()));
  int scores = 0;
  for (size_t i = 0; i < r.events.size(); ++i) {
    EXPECT_EQ(r.events[i].seq, i + 1);
    if (r.events[i].type == "score") ++scores;
  }
  EXPECT_GE(scores, meta_faces);
}

TEST(DfmonDetect, MissingModelsDirFailsToStartNamingTheDir) {
  const std::string bad = std::string(DFM_TEST_TMP) + "/no-such-models-dir";
  RunResult r = run_pipeline("videotestsrc num-buffers=5 ! dfmondetect models-dir=" + bad + " ! fakesink");
  EXPECT_FALSE(r.reached_playing);
  EXPECT_FALSE(r.eos);
  EXPECT_NE(r.error.find(bad), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("cannot load models"), std::string::npos) << r.error;
}

TEST(DfmonDetect, ClearThresholdAboveAlertThresholdIsRejected) {
  RunResult r = run_pipeline(std::string("videotestsrc num-buffers=5 ! dfmondetect models-dir=") + DFM_TINY_MODELS +
                             " alert-threshold=0.5 clear-threshold=0.6 ! fakesink");
  EXPECT_FALSE(r.reached_playing);
  EXPECT_NE(r.error.find("clear-threshold (0.6) must be below alert-threshold (0.5)"), std::string::npos) << r.error;
}

}  // namespace
}  // namespace dfm::testing
