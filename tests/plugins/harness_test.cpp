// dfmondetect under GstHarness: exact PTS sampling, meta per analysed buffer, untouched pixels, the
// overlay switched on while playing, and alert_end posted at EOS (tiny generated models).
#include <gst/check/gstharness.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "gst_test_util.h"

namespace dfm::testing {
namespace {

GstBuffer* bgr_buffer(const cv::Mat& bgr, GstClockTime pts) {
  const size_t size = bgr.total() * bgr.elemSize();
  GstBuffer* buf = gst_buffer_new_allocate(nullptr, size, nullptr);
  gst_buffer_fill(buf, 0, bgr.data, size);
  GST_BUFFER_PTS(buf) = pts;
  GST_BUFFER_DURATION(buf) = GST_CLOCK_TIME_IS_VALID(pts) ? GST_SECOND / 30 : GST_CLOCK_TIME_NONE;
  return buf;
}

bool same_bytes(GstBuffer* buf, const cv::Mat& bgr) {
  GstMapInfo m;
  if (!gst_buffer_map(buf, &m, GST_MAP_READ)) return false;
  const bool same = m.size == bgr.total() * bgr.elemSize() && std::equal(m.data, m.data + m.size, bgr.data);
  gst_buffer_unmap(buf, &m);
  return same;
}

std::vector<EventMsg> pop_events(GstBus* bus) {
  std::vector<EventMsg> out;
  while (GstMessage* msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ELEMENT)) {
    const GstStructure* s = gst_message_get_structure(msg);
    if (s && gst_structure_has_name(s, "dfmon-event")) out.push_back(parse_event(s));
    gst_message_unref(msg);
  }
  return out;
}

TEST(DfmonDetectHarness, SamplesByPtsAttachesMetaAndClosesAlertsAtEos) {
  init_gst_with_plugin();
  cv::Mat img = cv::imread(source_path("samples/images/biden.jpg"), cv::IMREAD_COLOR);
  ASSERT_FALSE(img.empty());
  cv::resize(img, img, cv::Size(640, (img.rows * 640 / img.cols) & ~1), 0, 0, cv::INTER_AREA);
  const std::string caps = "video/x-raw,format=BGR,width=640,height=" + std::to_string(img.rows) + ",framerate=30/1";

  GstElement* el = gst_element_factory_make("dfmondetect", "det");
  ASSERT_NE(el, nullptr) << "plugin not found in " << DFM_GST_PLUGIN_DIR;
  gst_object_ref_sink(el);
  // A threshold any P(fake) reaches and one no score falls below: the alert opens on the first sample
  // and can only be closed by EOS.
  g_object_set(el, "models-dir", DFM_TINY_MODELS, "sample-fps", 5.0, "detect-every", 1, "stream-id", "still",
               "alert-threshold", 1e-6, "clear-threshold", 0.0, "min-duration", 0.0, nullptr);
  GstBus* bus = gst_bus_new();
  gst_element_set_bus(el, bus);
  GstHarness* h = gst_harness_new_with_element(el, "sink", "src");  // starts it: models load here
  gst_harness_set_src_caps_str(h, caps.c_str());

  for (int i = 0; i < 30; ++i) {
    ASSERT_EQ(gst_harness_push(h, bgr_buffer(img, gst_util_uint64_scale(i, GST_SECOND, 30))), GST_FLOW_OK);
    GstBuffer* out = gst_harness_pull(h);
    ASSERT_NE(out, nullptr);
    DfmonFaceMeta* m = dfmon_buffer_get_face_meta(out);
    if (i % 6 == 0) {  // 5 fps of a 30 fps stream, by PTS
      ASSERT_NE(m, nullptr) << "frame " << i;
      EXPECT_NEAR(m->pts_s, i / 30.0, 1e-6);
      ASSERT_EQ(m->n_faces, 1u) << "frame " << i;
      EXPECT_EQ(m->faces[0].track, 1);
      EXPECT_TRUE(m->faces[0].alert);
      EXPECT_GT(m->faces[0].width, 100);
    } else {
      EXPECT_EQ(m, nullptr) << "frame " << i << " should pass unanalysed";
    }
    EXPECT_TRUE(same_bytes(out, img)) << "frame " << i << " changed with overlay off";
    gst_buffer_unref(out);
  }
  // No PTS: passes untouched and unanalysed.
  ASSERT_EQ(gst_harness_push(h, bgr_buffer(img, GST_CLOCK_TIME_NONE)), GST_FLOW_OK);
  GstBuffer* out = gst_harness_pull(h);
  EXPECT_EQ(dfmon_buffer_get_face_meta(out), nullptr);
  gst_buffer_unref(out);

  std::vector<EventMsg> ev = pop_events(bus);
  ASSERT_EQ(ev.size(), 6u);  // alert_start + 5 scores
  EXPECT_EQ(ev[0].type, "alert_start");
  EXPECT_EQ(ev[0].pts_s, 0.0);
  for (size_t i = 1; i < ev.size(); ++i) {
    EXPECT_EQ(ev[i].type, "score");
    EXPECT_NEAR(ev[i].pts_s, 0.2 * static_cast<double>(i - 1), 1e-6);
  }

  // The overlay can be switched on while playing; the next analysed frame (t = 1.0 s) is drawn on.
  g_object_set(h->element, "overlay", TRUE, nullptr);
  ASSERT_EQ(gst_harness_push(h, bgr_buffer(img, GST_SECOND)), GST_FLOW_OK);
  out = gst_harness_pull(h);
  ASSERT_NE(dfmon_buffer_get_face_meta(out), nullptr);
  EXPECT_FALSE(same_bytes(out, img));
  gst_buffer_unref(out);

  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_eos()));
  std::vector<EventMsg> rest = pop_events(bus);
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(rest[0].type, "score");
  EXPECT_EQ(rest[1].type, "alert_end");
  EXPECT_EQ(rest[1].track, 1);
  EXPECT_NEAR(rest[1].duration_s, 1.0, 1e-6);
  EXPECT_EQ(rest[1].stream, "still");
  ev.insert(ev.end(), rest.begin(), rest.end());
  for (size_t i = 0; i < ev.size(); ++i) EXPECT_EQ(ev[i].seq, i + 1) << "gap in seq";

  gst_harness_teardown(h);
  gst_object_unref(el);
  gst_object_unref(bus);
}

}  // namespace
}  // namespace dfm::testing
