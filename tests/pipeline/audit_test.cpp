// Auditor on a real clip with the tiny generated models: batching crops across frames must not change
// any score, alert or verdict; cancellation and bad options are errors naming the input.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>

#include "dfm/models/models.h"
#include "dfm/pipeline/audit.h"

namespace dfm {
namespace {

const std::string kClip = std::string(DFM_SOURCE_DIR) + "/samples/clips/real_d18.mp4";

std::shared_ptr<const ModelSet> tiny_set() {
  ModelSetOptions o;
  o.dir = DFM_TINY_MODELS;
  o.backend = Backend::kCpu;
  auto r = ModelSet::load(o);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? *r : nullptr;
}

InputReport audit_with(const AuditOptions& o, const std::atomic<bool>* cancel = nullptr) {
  auto a = Auditor::create(tiny_set(), o);
  EXPECT_TRUE(a.ok()) << a.status().to_string();
  return (*a)->audit(kClip, nullptr, cancel);
}

TEST(Auditor, CrossFrameBatchingGivesTheSameResultsAsBatchOne) {
  AuditOptions o;
  o.sample_fps = 5;
  o.alert.on = 0.5;  // the tiny models score near 0.5: low thresholds make alerts happen and compare them
  o.alert.off = 0.45;
  o.alert.min_duration_s = 0.2;
  o.batch = 1;
  const InputReport one = audit_with(o);
  ASSERT_TRUE(one.ok) << one.error;
  ASSERT_GT(one.faces_scored, 20);
  for (int batch : {3, 8}) {
    o.batch = batch;
    const InputReport many = audit_with(o);
    ASSERT_TRUE(many.ok) << many.error;
    EXPECT_EQ(many.faces_scored, one.faces_scored);
    ASSERT_EQ(many.timeline.size(), one.timeline.size());
    for (size_t i = 0; i < one.timeline.size(); ++i) {
      EXPECT_DOUBLE_EQ(many.timeline[i].t, one.timeline[i].t);
      EXPECT_EQ(many.timeline[i].track, one.timeline[i].track);
      EXPECT_NEAR(many.timeline[i].ensemble, one.timeline[i].ensemble, 1e-5) << "point " << i << " batch " << batch;
      EXPECT_NEAR(many.timeline[i].smoothed, one.timeline[i].smoothed, 1e-5) << "point " << i << " batch " << batch;
    }
    ASSERT_EQ(many.alerts.size(), one.alerts.size());
    for (size_t i = 0; i < one.alerts.size(); ++i) {
      EXPECT_EQ(many.alerts[i].track, one.alerts[i].track);
      EXPECT_DOUBLE_EQ(many.alerts[i].start_s, one.alerts[i].start_s);
      EXPECT_DOUBLE_EQ(many.alerts[i].end_s, one.alerts[i].end_s);
    }
    EXPECT_EQ(many.verdict, one.verdict);
    EXPECT_NEAR(many.score, one.score, 1e-5);
    ASSERT_EQ(many.tracks.size(), one.tracks.size());
    for (size_t i = 0; i < one.tracks.size(); ++i) {
      EXPECT_DOUBLE_EQ(many.tracks[i].best_t, one.tracks[i].best_t);
      EXPECT_FALSE(many.tracks[i].best_crop.empty());
    }
  }
}

TEST(Auditor, CancelIsAnErrorNamingTheInput) {
  std::atomic<bool> cancel{true};
  const InputReport r = audit_with(AuditOptions{}, &cancel);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find(kClip), std::string::npos) << r.error;
}

TEST(Auditor, BadOptionsAreRejectedByTheFactory) {
  AuditOptions o;
  o.detect_every = 0;
  auto a = Auditor::create(tiny_set(), o);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("--detect-every"), std::string::npos);
}

}  // namespace
}  // namespace dfm
