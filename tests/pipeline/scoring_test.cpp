// Tests of TrackScorer (EMA, alert hysteresis, finish) and the verdict rule.
#include "dfm/pipeline/scoring.h"

#include <cmath>
#include <vector>

#include <gtest/gtest.h>

namespace dfm {
namespace {

TrackScorer make(double alpha, double on = 0.7, double off = 0.4, double min_duration_s = 1.0) {
  auto r = make_track_scorer(SmoothingOptions{alpha}, AlertOptions{on, off, min_duration_s});
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return std::move(r).value();
}

// Feeds raw scores at 0.2 s steps starting at t0; returns the updates.
std::vector<ScoreUpdate> feed(TrackScorer& s, double t0, const std::vector<double>& raws) {
  std::vector<ScoreUpdate> out;
  for (size_t i = 0; i < raws.size(); ++i) out.push_back(s.update(t0 + 0.2 * static_cast<double>(i), raws[i]));
  return out;
}

TEST(Scoring, EmaMatchesHandComputedValues) {
  TrackScorer s = make(0.3);
  EXPECT_DOUBLE_EQ(s.update(0.0, 0.0).smoothed, 0.0);    // first sample: s = x
  EXPECT_NEAR(s.update(0.2, 1.0).smoothed, 0.3, 1e-12);  // 0.3*1 + 0.7*0
  EXPECT_NEAR(s.update(0.4, 1.0).smoothed, 0.51, 1e-12); // 0.3 + 0.7*0.3
  EXPECT_NEAR(s.update(0.6, 0.5).smoothed, 0.507, 1e-12);  // 0.15 + 0.7*0.51

  TrackScorer h = make(0.5);
  EXPECT_DOUBLE_EQ(h.update(0.0, 0.2).smoothed, 0.2);
  EXPECT_NEAR(h.update(0.2, 0.6).smoothed, 0.4, 1e-12);
  EXPECT_NEAR(h.update(0.4, 1.0).smoothed, 0.7, 1e-12);

  TrackScorer none = make(1.0);  // alpha 1: no smoothing
  EXPECT_DOUBLE_EQ(none.update(0.0, 0.9).smoothed, 0.9);
  EXPECT_DOUBLE_EQ(none.update(0.2, 0.1).smoothed, 0.1);
}

TEST(Scoring, AlertStartsOnlyAfterMinDurationAboveOn) {
  TrackScorer s = make(1.0);  // no smoothing, so smoothed == raw
  // Crosses at t = 0.2, stays >= 0.7; 1.0 s later (t = 1.2) the alert starts, dated 0.2.
  auto u = feed(s, 0.0, {0.1, 0.8, 0.75, 0.95, 0.7, 0.8, 0.8});
  for (int i = 0; i < 6; ++i) EXPECT_EQ(u[i].event, ScoreEvent::kNone) << "sample " << i;
  EXPECT_EQ(u[6].event, ScoreEvent::kAlertStart);
  EXPECT_DOUBLE_EQ(u[6].start_s, 0.2);
  EXPECT_DOUBLE_EQ(u[6].score, 0.8);
  EXPECT_DOUBLE_EQ(u[6].peak, 0.95);
  EXPECT_TRUE(s.alert_open());
  EXPECT_TRUE(s.stats().alert_open);
}

TEST(Scoring, DipBelowOnRestartsTheWait) {
  TrackScorer s = make(1.0);
  // >= on from 0.0 to 0.6, dip to 0.69 at 0.8, >= on again from 1.0: starts at 2.0, dated 1.0.
  auto u = feed(s, 0.0, {0.8, 0.8, 0.8, 0.8, 0.69, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8});
  for (int i = 0; i < 10; ++i) EXPECT_EQ(u[i].event, ScoreEvent::kNone) << "sample " << i;
  EXPECT_EQ(u[10].event, ScoreEvent::kAlertStart);
  EXPECT_DOUBLE_EQ(u[10].start_s, 1.0);
}

TEST(Scoring, NoFlappingBetweenOffAndOnAndEndBelowOff) {
  TrackScorer s = make(1.0);
  auto u = feed(s, 0.0, {0.8, 0.8, 0.8, 0.8, 0.8, 0.9});  // starts at t = 1.0
  EXPECT_EQ(u[5].event, ScoreEvent::kAlertStart);
  EXPECT_DOUBLE_EQ(u[5].start_s, 0.0);
  // Wandering between off and on (and back above on) neither ends nor restarts it.
  auto mid = feed(s, 1.2, {0.5, 0.69, 0.41, 0.4, 0.85, 0.6, 0.45});
  for (const auto& m : mid) EXPECT_EQ(m.event, ScoreEvent::kNone);
  // First sample below off ends it at that sample's time.
  ScoreUpdate end = s.update(2.6, 0.39);
  EXPECT_EQ(end.event, ScoreEvent::kAlertEnd);
  EXPECT_DOUBLE_EQ(end.start_s, 0.0);
  EXPECT_DOUBLE_EQ(end.end_s, 2.6);
  EXPECT_DOUBLE_EQ(end.duration_s, 2.6);
  EXPECT_DOUBLE_EQ(end.peak, 0.9);
  EXPECT_FALSE(s.alert_open());
  // Once ended, the band between off and on does not re-raise it, and a short return above on neither.
  auto after = feed(s, 2.8, {0.5, 0.65, 0.75, 0.75, 0.6, 0.9, 0.9, 0.9});
  for (const auto& a : after) EXPECT_EQ(a.event, ScoreEvent::kNone);

  ASSERT_EQ(s.stats().alerts.size(), 1u);
  EXPECT_DOUBLE_EQ(s.stats().alerts[0].start_s, 0.0);
  EXPECT_DOUBLE_EQ(s.stats().alerts[0].end_s, 2.6);
  EXPECT_DOUBLE_EQ(s.stats().alerts[0].peak, 0.9);
}

TEST(Scoring, SmoothingDelaysAndHoldsAlerts) {
  // With the default alpha 0.3 a single raw spike never reaches `on`.
  TrackScorer s = make(0.3, 0.7, 0.4, 0.0);
  auto u = feed(s, 0.0, {0.1, 0.1, 1.0, 0.1, 0.1});
  for (const auto& x : u) EXPECT_EQ(x.event, ScoreEvent::kNone);
  EXPECT_NEAR(s.stats().max_smoothed, 0.37, 1e-12);  // 0.3*1 + 0.7*0.1
  EXPECT_DOUBLE_EQ(s.stats().max_raw, 1.0);
  EXPECT_DOUBLE_EQ(s.stats().max_smoothed_s, 0.4);
}

TEST(Scoring, MinDurationZeroStartsAtTheFirstCrossing) {
  TrackScorer s = make(1.0, 0.7, 0.4, 0.0);
  EXPECT_EQ(s.update(0.0, 0.5).event, ScoreEvent::kNone);
  ScoreUpdate u = s.update(0.2, 0.7);  // == on counts as crossing
  EXPECT_EQ(u.event, ScoreEvent::kAlertStart);
  EXPECT_DOUBLE_EQ(u.start_s, 0.2);
  EXPECT_DOUBLE_EQ(u.score, 0.7);
  EXPECT_EQ(s.update(0.4, 0.8).event, ScoreEvent::kNone);
  ScoreUpdate e = s.update(0.6, 0.1);
  EXPECT_EQ(e.event, ScoreEvent::kAlertEnd);
  EXPECT_NEAR(e.duration_s, 0.4, 1e-12);
  EXPECT_DOUBLE_EQ(e.peak, 0.8);
}

TEST(Scoring, FinishClosesAnOpenAlert) {
  TrackScorer s = make(1.0);
  feed(s, 0.0, {0.2, 0.8, 0.8, 0.8, 0.8, 0.8, 0.97, 0.8});  // starts at 1.2, dated 0.2; last_s 1.4
  ASSERT_TRUE(s.alert_open());
  ScoreUpdate e = s.finish(3.0);  // EOS later than the last sample
  EXPECT_EQ(e.event, ScoreEvent::kAlertEnd);
  EXPECT_DOUBLE_EQ(e.start_s, 0.2);
  EXPECT_DOUBLE_EQ(e.end_s, 3.0);
  EXPECT_DOUBLE_EQ(e.duration_s, 2.8);
  EXPECT_DOUBLE_EQ(e.peak, 0.97);
  EXPECT_FALSE(s.alert_open());
  EXPECT_EQ(s.stats().alerts.size(), 1u);
  EXPECT_EQ(s.finish(3.0).event, ScoreEvent::kNone);  // nothing left open

  // A time before the last sample is clamped to it (tracker expiry passes last_s).
  TrackScorer t = make(1.0, 0.7, 0.4, 0.0);
  feed(t, 0.0, {0.9, 0.9, 0.9});  // last_s 0.4
  ScoreUpdate c = t.finish(0.1);
  EXPECT_EQ(c.event, ScoreEvent::kAlertEnd);
  EXPECT_DOUBLE_EQ(c.end_s, 0.4);
  EXPECT_DOUBLE_EQ(c.duration_s, 0.4);
}

TEST(Scoring, FinishDropsAnUnconfirmedAlert) {
  TrackScorer s = make(1.0);
  feed(s, 0.0, {0.9, 0.9, 0.9});  // only 0.4 s above on
  EXPECT_EQ(s.finish(0.4).event, ScoreEvent::kNone);
  EXPECT_TRUE(s.stats().alerts.empty());
  EXPECT_EQ(s.summary(1).verdict, Verdict::kReal);
  // Fed again after finish(): the wait starts over.
  EXPECT_EQ(s.update(0.6, 0.9).event, ScoreEvent::kNone);
}

TEST(Scoring, StatsSummariseTheTrack) {
  TrackScorer s = make(0.5);
  feed(s, 2.0, {0.2, 0.6, 1.0, 0.2});  // smoothed 0.2, 0.4, 0.7, 0.45
  const TrackStats& st = s.stats();
  EXPECT_EQ(st.n, 4);
  EXPECT_DOUBLE_EQ(st.first_s, 2.0);
  EXPECT_NEAR(st.last_s, 2.6, 1e-12);
  EXPECT_NEAR(st.mean_raw, 0.5, 1e-12);
  EXPECT_NEAR(st.mean_smoothed, 0.4375, 1e-12);
  EXPECT_NEAR(st.max_smoothed, 0.7, 1e-12);
  EXPECT_DOUBLE_EQ(st.max_raw, 1.0);
}

TEST(Scoring, BadSamplesAreHandled) {
  TrackScorer s = make(1.0);
  EXPECT_DOUBLE_EQ(s.update(0.0, 1.5).smoothed, 1.0);  // clamped
  ScoreUpdate n = s.update(0.2, std::nan(""));
  EXPECT_DOUBLE_EQ(n.smoothed, 1.0);  // ignored
  EXPECT_EQ(s.stats().n, 1);
  EXPECT_DOUBLE_EQ(s.update(0.4, -0.5).smoothed, 0.0);
  s.update(0.1, 0.5);  // earlier than the previous sample: treated as 0.4
  EXPECT_DOUBLE_EQ(s.stats().last_s, 0.4);
}

TEST(Scoring, InvalidOptionsNameTheKey) {
  auto msg = [](SmoothingOptions sm, AlertOptions al) {
    auto r = make_track_scorer(sm, al);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    return r.status().message();
  };
  EXPECT_EQ(msg({0.3}, {0.7, 0.8, 1.0}), "scoring.alert.off (0.8) must be below scoring.alert.on (0.7)");
  EXPECT_EQ(msg({0.3}, {0.7, 0.7, 1.0}), "scoring.alert.off (0.7) must be below scoring.alert.on (0.7)");
  EXPECT_EQ(msg({0.0}, {}), "scoring.smoothing.alpha (0) must be in (0, 1]");
  EXPECT_EQ(msg({1.5}, {}), "scoring.smoothing.alpha (1.5) must be in (0, 1]");
  EXPECT_EQ(msg({std::nan("")}, {}).rfind("scoring.smoothing.alpha", 0), 0u);
  EXPECT_EQ(msg({0.3}, {1.2, 0.4, 1.0}), "scoring.alert.on (1.2) must be in [0, 1]");
  EXPECT_EQ(msg({0.3}, {0.7, -0.1, 1.0}), "scoring.alert.off (-0.1) must be in [0, 1]");
  EXPECT_EQ(msg({0.3}, {0.7, 0.4, -1.0}), "scoring.alert.min_duration_s (-1) must be >= 0 seconds");

  EXPECT_TRUE(validate_scoring_options({1.0}, {1.0, 0.0, 0.0}).ok());  // the bounds themselves are valid
  EXPECT_TRUE(TrackScorer::Create({}, {}).ok());
}

TEST(Scoring, Names) {
  EXPECT_STREQ(event_name(ScoreEvent::kNone), "none");
  EXPECT_STREQ(event_name(ScoreEvent::kAlertStart), "alert_start");
  EXPECT_STREQ(event_name(ScoreEvent::kAlertEnd), "alert_end");
  EXPECT_STREQ(verdict_name(Verdict::kNoFaces), "no_faces");
  EXPECT_STREQ(verdict_name(Verdict::kReal), "real");
  EXPECT_STREQ(verdict_name(Verdict::kFake), "fake");
}

// ---- verdict ----

TrackSummary track(int id, int n, double score, Verdict v) {
  TrackSummary t;
  t.id = id;
  t.n = n;
  t.score = score;
  t.verdict = v;
  t.last_s = 0.2 * n;
  return t;
}

TEST(Verdict, NoFaces) {
  InputVerdict v = decide_verdict({}, {});
  EXPECT_EQ(v.verdict, Verdict::kNoFaces);
  EXPECT_DOUBLE_EQ(v.score, 0.0);
  EXPECT_EQ(v.track, 0);
  // Tracks without scored faces are not faces.
  EXPECT_EQ(decide_verdict({track(1, 0, 0.0, Verdict::kReal)}, {}).verdict, Verdict::kNoFaces);
}

TEST(Verdict, AllRealScoresTheHighestTrack) {
  InputVerdict v = decide_verdict({track(1, 10, 0.2, Verdict::kReal), track(2, 8, 0.45, Verdict::kReal)}, {});
  EXPECT_EQ(v.verdict, Verdict::kReal);
  EXPECT_DOUBLE_EQ(v.score, 0.45);
  EXPECT_EQ(v.track, 2);
}

TEST(Verdict, OneFakeTrackAmongRealMakesTheInputFake) {
  InputVerdict v = decide_verdict(
      {track(1, 10, 0.2, Verdict::kReal), track(2, 30, 0.82, Verdict::kFake), track(3, 5, 0.6, Verdict::kReal)}, {});
  EXPECT_EQ(v.verdict, Verdict::kFake);
  EXPECT_DOUBLE_EQ(v.score, 0.82);
  EXPECT_EQ(v.track, 2);
}

TEST(Verdict, ShortTracksAreIgnoredUnlessNoneQualifies) {
  // A 2-sample fake track (e.g. a detector false positive) does not flip a real input, nor does a
  // short high-scoring real track raise its score.
  InputVerdict v = decide_verdict(
      {track(1, 12, 0.3, Verdict::kReal), track(2, 2, 0.9, Verdict::kFake), track(3, 1, 0.69, Verdict::kReal)}, {});
  EXPECT_EQ(v.verdict, Verdict::kReal);
  EXPECT_DOUBLE_EQ(v.score, 0.3);
  EXPECT_EQ(v.track, 1);

  // Only short tracks: they are all used.
  InputVerdict s = decide_verdict({track(4, 2, 0.3, Verdict::kReal), track(5, 1, 0.8, Verdict::kFake)}, {});
  EXPECT_EQ(s.verdict, Verdict::kFake);
  EXPECT_DOUBLE_EQ(s.score, 0.8);
  EXPECT_EQ(s.track, 5);

  // The threshold is an option; exactly min_track_samples qualifies.
  VerdictOptions o;
  o.min_track_samples = 2;
  EXPECT_EQ(decide_verdict({track(1, 12, 0.3, Verdict::kReal), track(2, 2, 0.9, Verdict::kFake)}, o).verdict,
            Verdict::kFake);
}

TEST(Verdict, TiesGoToAFakeTrackThenTheLowestId) {
  InputVerdict v = decide_verdict({track(7, 5, 0.5, Verdict::kReal), track(3, 5, 0.5, Verdict::kReal)}, {});
  EXPECT_EQ(v.track, 3);
  InputVerdict f = decide_verdict({track(1, 5, 0.7, Verdict::kReal), track(9, 5, 0.7, Verdict::kFake)}, {});
  EXPECT_EQ(f.verdict, Verdict::kFake);
  EXPECT_EQ(f.track, 9);
}

TEST(Verdict, TrackScoreIsBandedSoFakeNeverRanksBelowReal) {
  // Real track that stayed high but too briefly to alert (0.6 s < min_duration 1.0): mean 0.95, capped.
  TrackScorer brief = make(1.0);
  feed(brief, 0.0, {0.95, 0.95, 0.95, 0.95});
  TrackSummary r = brief.summary(1);
  EXPECT_EQ(r.verdict, Verdict::kReal);
  EXPECT_DOUBLE_EQ(r.score, 0.7);
  EXPECT_EQ(r.n, 4);
  EXPECT_DOUBLE_EQ(r.first_s, 0.0);
  EXPECT_NEAR(r.last_s, 0.6, 1e-12);

  // Fake track whose alert was a short part of a long real-looking track: mean low, floored at on.
  TrackScorer partly = make(1.0);
  std::vector<double> raws(40, 0.1);
  for (int i = 10; i < 18; ++i) raws[i] = 0.9;  // 1.4 s above on -> one alert
  feed(partly, 0.0, raws);
  TrackSummary f = partly.summary(2);
  ASSERT_EQ(partly.stats().alerts.size(), 1u);
  EXPECT_EQ(f.verdict, Verdict::kFake);
  EXPECT_LT(partly.stats().mean_smoothed, 0.7);
  EXPECT_DOUBLE_EQ(f.score, 0.7);

  // Mostly fake: the mean itself (above on) is the score.
  TrackScorer mostly = make(0.5);
  feed(mostly, 0.0, std::vector<double>(20, 0.9));
  TrackSummary m = mostly.summary(3);
  EXPECT_EQ(m.verdict, Verdict::kFake);
  EXPECT_NEAR(m.score, mostly.stats().mean_smoothed, 1e-12);
  EXPECT_GT(m.score, 0.7);

  // An alert still open counts as fake.
  TrackScorer open = make(1.0, 0.7, 0.4, 0.0);
  feed(open, 0.0, {0.8, 0.1, 0.1, 0.8});  // ended, then started again
  EXPECT_TRUE(open.alert_open());
  EXPECT_EQ(open.summary(4).verdict, Verdict::kFake);

  // Low real track: the mean, unchanged.
  TrackScorer low = make(1.0);
  feed(low, 0.0, {0.1, 0.3});
  EXPECT_NEAR(low.summary(5).score, 0.2, 1e-12);
  EXPECT_EQ(TrackScorer::Create({}, {}).value().summary(6).score, 0.0);

  InputVerdict real_input = decide_verdict({r}, {});
  InputVerdict fake_input = decide_verdict({f, r}, {});
  EXPECT_EQ(real_input.verdict, Verdict::kReal);
  EXPECT_EQ(fake_input.verdict, Verdict::kFake);
  EXPECT_GE(fake_input.score, real_input.score);
  EXPECT_EQ(fake_input.track, 2);  // 0.7 tie with the capped real track: the fake track is named
}

TEST(Verdict, OptionsAreValidated) {
  EXPECT_TRUE(validate_verdict_options({}).ok());
  Status s = validate_verdict_options({0});
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_EQ(s.message(), "verdict.min_track_samples (0) must be >= 1");
}

}  // namespace
}  // namespace dfm
