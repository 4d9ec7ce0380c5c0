// dfmondetect with the bundled models (label `model`): the synthetic fake clip raises an alert, the
// real clip none (the clips the watch/audit model tests use), and the README's gst-launch line works.
#include <filesystem>
#include <set>

#include "gst_test_util.h"

namespace dfm::testing {
namespace {

// No models-dir: the element finds the bundled models like the CLI does.
RunResult run_bundled(const std::string& clip_name) {
  return run_pipeline("filesrc location=" + clip(clip_name) +
                      " ! decodebin ! videoconvert ! dfmondetect name=det ! fakesink sync=false");
}

std::vector<std::string> types(const RunResult& r, bool alerts_only) {
  std::vector<std::string> out;
  for (const auto& e : r.events) {
    if (!alerts_only || e.type != "score") out.push_back(e.type);
  }
  return out;
}

TEST(DfmonDetectModels, SyntheticFakeClipRaisesAnAlert) {
  RunResult r = run_bundled("synthetic_fake_d18.mp4");
  ASSERT_TRUE(r.error.empty()) << r.error;
  ASSERT_TRUE(r.eos);
  const auto alerts = types(r, true);
  ASSERT_GE(alerts.size(), 2u);
  EXPECT_EQ(alerts[0], "alert_start");
  EXPECT_EQ(alerts[1], "alert_end");
  int scores = 0;
  for (const auto& e : r.events) {
    EXPECT_EQ(e.stream, "det");  // stream-id defaults to the element name
    if (e.type == "score") {
      ++scores;
      EXPECT_EQ(e.models.size(), 2u);
      EXPECT_TRUE(e.models.count("resnet18") && e.models.count("vit"));
    }
    if (e.type == "alert_start") {
      EXPECT_GE(e.score, 0.7);
    }
  }
  EXPECT_GE(scores, 30);
}

TEST(DfmonDetectModels, RealClipRaisesNoAlert) {
  RunResult r = run_bundled("real_d18.mp4");
  ASSERT_TRUE(r.error.empty()) << r.error;
  ASSERT_TRUE(r.eos);
  EXPECT_TRUE(types(r, true).empty()) << "alerts on the real clip";
  EXPECT_GE(r.events.size(), 30u) << "scores of the real face";
}

// The line docs/gstreamer.md and the README show, writing an annotated MP4.
TEST(DfmonDetectModels, ReadmeGstLaunchLineWorks) {
  const std::string out = std::string(DFM_TEST_TMP) + "/dfmondetect_annotated.mp4";
  std::filesystem::remove(out);
  const std::string cmd = plugin_env() + "gst-launch-1.0 -m filesrc location=" + clip("synthetic_fake_d18.mp4") +
                          " ! decodebin ! videoconvert ! dfmondetect overlay=true ! videoconvert ! x264enc ! mp4mux"
                          " ! filesink location=" +
                          out;
  auto [rc, text] = run_command(cmd);
  ASSERT_EQ(rc, 0) << text;
  EXPECT_NE(text.find("dfmon-event, type=(string)alert_start"), std::string::npos) << text;
  EXPECT_NE(text.find("Got EOS"), std::string::npos);
  EXPECT_GT(std::filesystem::file_size(out), 100000u);
}

}  // namespace
}  // namespace dfm::testing
