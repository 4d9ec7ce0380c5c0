// Tests of the self-contained HTML audit report (report_html.cpp). audit_report_json needs a ModelSet,
// which needs ONNX files, so the report JSON is built here by hand in the same dfmon.audit/1 shape.
// Set DFM_REPORT_HTML_SAMPLE=/tmp/report_sample.html to also write the rendered sample page.
#include "dfm/pipeline/report.h"

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/imgproc.hpp>

namespace dfm {
namespace report_html_detail {
std::string base64_encode(const std::string& in);  // defined in report_html.cpp
}  // namespace report_html_detail

namespace {

using nlohmann::json;

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + needle.size())) ++n;
  return n;
}

// Mirrors report_json.cpp (minus the rounding) for a fixed list of model names.
json report_json(const std::vector<InputReport>& inputs, const AuditOptions& o) {
  const std::vector<std::string> names = {"resnet18", "vit"};
  json r = {{"schema", "dfmon.audit/1"}, {"version", "0.1.0-test"}};
  r["models"] = json::array();
  r["models"].push_back({{"name", "resnet18"}, {"file", "resnet18.onnx"}, {"sha256", std::string(64, 'a')}, {"weight", 0.5}});
  r["models"].push_back({{"name", "vit<i>"}, {"file", "vit.onnx"}, {"sha256", std::string(64, 'b')}, {"weight", 0.5}});
  r["settings"] = {{"sample_fps", o.sample_fps},
                   {"threshold", o.threshold},
                   {"detect_every", o.detect_every},
                   {"smoothing", {{"alpha", o.smoothing.alpha}}},
                   {"alert", {{"on", o.alert.on}, {"off", o.alert.off}, {"min_duration_s", o.alert.min_duration_s}}},
                   {"detector", {{"type", "dlib_hog"}, {"max_width", 640}, {"min_face", 40}}},
                   {"backend", "cpu"}};
  r["inputs"] = json::array();
  int fake = 0, real = 0, none = 0, errors = 0;
  for (const auto& in : inputs) {
    json j = {{"source", in.source}, {"status", in.ok ? "ok" : "error"}};
    j["error"] = in.ok ? json(nullptr) : json(in.error);
    if (in.ok) {
      j["verdict"] = verdict_name(in.verdict);
      j["score"] = in.score;
    }
    j["duration_s"] = in.duration_s;
    j["frames_decoded"] = in.frames_decoded;
    j["frames_analyzed"] = in.frames_analyzed;
    j["faces_scored"] = in.faces_scored;
    j["tracks"] = json::array();
    for (const auto& t : in.tracks) {
      j["tracks"].push_back({{"id", t.summary.id}, {"first_s", t.summary.first_s}, {"last_s", t.summary.last_s},
                             {"n", t.summary.n}, {"score", t.summary.score}, {"verdict", verdict_name(t.summary.verdict)},
                             {"best_s", t.best_t}, {"best_score", t.best_score}});
    }
    j["timeline"] = json::array();
    for (const auto& p : in.timeline) {
      json per = json::object();
      for (size_t k = 0; k < p.models.size() && k < names.size(); ++k) per[names[k]] = p.models[k];
      j["timeline"].push_back({{"t", p.t}, {"track", p.track}, {"bbox", {p.bbox.x, p.bbox.y, p.bbox.width, p.bbox.height}},
                               {"models", per}, {"ensemble", p.ensemble}, {"smoothed", p.smoothed}});
    }
    j["alerts"] = json::array();
    for (const auto& a : in.alerts) j["alerts"].push_back({{"track", a.track}, {"start_s", a.start_s}, {"end_s", a.end_s}, {"peak", a.peak}});
    j["elapsed_s"] = in.elapsed_s;
    r["inputs"].push_back(j);
    if (!in.ok) ++errors;
    else if (in.verdict == Verdict::kFake) ++fake;
    else if (in.verdict == Verdict::kReal) ++real;
    else ++none;
  }
  r["summary"] = {{"inputs", inputs.size()}, {"fake", fake}, {"real", real}, {"no_faces", none}, {"errors", errors}};
  return r;
}

// Scores one track with the real TrackScorer so smoothed values, alerts and summary are consistent.
TrackReport score_track(InputReport& in, int id, double t0, double t1, double fps, const AuditOptions& o,
                        double (*raw_at)(double), cv::Scalar colour) {
  auto scorer_r = make_track_scorer(o.smoothing, o.alert);
  EXPECT_TRUE(scorer_r.ok());
  TrackScorer scorer = std::move(scorer_r).value();
  TrackReport tr;
  for (double t = t0; t <= t1 + 1e-9; t += 1.0 / fps) {
    const double raw = std::clamp(raw_at(t), 0.0, 1.0);
    ScoreUpdate u = scorer.update(t, raw);
    if (u.event == ScoreEvent::kAlertEnd) in.alerts.push_back({id, u.start_s, u.end_s, u.peak});
    TimelinePoint p;
    p.t = t;
    p.track = id;
    p.bbox = cv::Rect(100 * id, 80, 120, 120);
    p.models = {static_cast<float>(raw), static_cast<float>(raw * 0.9)};
    p.ensemble = static_cast<float>(raw);
    p.smoothed = static_cast<float>(u.smoothed);
    in.timeline.push_back(p);
    if (raw > tr.best_score) {
      tr.best_score = raw;
      tr.best_t = t;
    }
  }
  ScoreUpdate end = scorer.finish(scorer.stats().last_s);
  if (end.event == ScoreEvent::kAlertEnd) in.alerts.push_back({id, end.start_s, end.end_s, end.peak});
  tr.summary = scorer.summary(id);
  tr.best_crop = cv::Mat(128, 128, CV_8UC3, colour);
  cv::circle(tr.best_crop, {64, 64}, 40, cv::Scalar(200, 210, 230), cv::FILLED);
  return tr;
}

double fake_raw(double t) { return (t > 4 && t < 9 ? 0.88 : 0.2) + 0.08 * std::sin(7.3 * t); }
double real_raw(double t) { return 0.22 + 0.1 * std::sin(3.1 * t) + 0.05 * std::cos(11.0 * t); }

struct Sample {
  std::vector<InputReport> inputs;
  json report;
};

Sample make_sample() {
  AuditOptions o;
  Sample s;
  InputReport a;
  a.source = "clips/interview.mp4";
  a.ok = true;
  a.duration_s = 12.0;
  a.frames_decoded = 300;
  a.elapsed_s = 3.4;
  a.tracks.push_back(score_track(a, 1, 0.0, 11.8, o.sample_fps, o, fake_raw, cv::Scalar(40, 60, 180)));
  a.tracks.push_back(score_track(a, 2, 2.0, 10.0, o.sample_fps, o, real_raw, cv::Scalar(60, 150, 40)));
  std::stable_sort(a.timeline.begin(), a.timeline.end(), [](const auto& x, const auto& y) { return x.t < y.t; });
  a.frames_analyzed = 60;
  a.faces_scored = static_cast<int64_t>(a.timeline.size());
  std::vector<TrackSummary> sums;
  for (const auto& t : a.tracks) sums.push_back(t.summary);
  InputVerdict v = decide_verdict(sums, o.verdict);
  a.verdict = v.verdict;
  a.score = v.score;

  InputReport b;
  b.source = "<script>alert(1)</script>.mp4";
  b.error = "cannot open <b>& broken file";
  b.elapsed_s = 0.01;
  s.inputs = {a, b};
  s.report = report_json(s.inputs, o);
  return s;
}

TEST(ReportHtml, RendersPlotsThumbnailsAndVerdicts) {
  Sample s = make_sample();
  ASSERT_EQ(s.inputs[0].verdict, Verdict::kFake);
  ASSERT_EQ(s.inputs[0].alerts.size(), 1u);
  const std::string html = audit_report_html(s.report, s.inputs);
  if (const char* path = std::getenv("DFM_REPORT_HTML_SAMPLE")) std::ofstream(path) << html;

  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_EQ(count(html, "class=\"track-plot\""), 2u);
  EXPECT_EQ(count(html, "data-track=\"1\""), 1u);
  EXPECT_EQ(count(html, "data-track=\"2\""), 1u);
  EXPECT_EQ(count(html, "<img class=\"thumb\""), 2u);
  EXPECT_EQ(count(html, "src=\"data:image/jpeg;base64,/9j/"), 2u);  // "/9j/" = base64 of the JPEG SOI marker
  EXPECT_EQ(count(html, "class=\"span\""), 1u);                      // the one alert, shaded once
  for (const char* v : {">fake<", ">real<", ">error<"}) EXPECT_NE(html.find(v), std::string::npos) << v;
  EXPECT_NE(html.find("0.1.0-test"), std::string::npos);
  EXPECT_NE(html.find(">aaaaaaaaaaaa</code>"), std::string::npos);  // short sha256 (full one in the tooltip)
}

TEST(ReportHtml, ShowsEachModelsMeasuredQualityAndCautionsWhenNearChance) {
  Sample s = make_sample();
  // As in the shipped cards: synthetic val, real deepfakes per model, and the ensemble's figure.
  s.report["models"][0]["metrics"] = {{"synthetic_val", {{"auc", 0.8306}}},
                                      {"real_deepfakes", {{"video_auc", 0.502}, {"n_videos", 46}}},
                                      {"ensemble_real_deepfakes_video_auc", 0.512}};
  s.report["models"][1]["metrics"] = {{"val", {{"auc", 0.649}}}, {"ensemble_real_deepfakes_video_auc", 0.512}};
  std::string html = audit_report_html(s.report, s.inputs);
  EXPECT_NE(html.find("synthetic val AUC 0.83 · real deepfakes video AUC 0.50 (46 videos)"), std::string::npos);
  EXPECT_NE(html.find("synthetic val AUC 0.65</span>"), std::string::npos);
  EXPECT_EQ(count(html, "class=\"caution\""), 1u);
  EXPECT_NE(html.find("video AUC of only 0.51"), std::string::npos);  // the ensemble's, not one model's

  // Without a common ensemble figure the better model stands for the pair; a good one gets no caution.
  s.report["models"][0]["metrics"].erase("ensemble_real_deepfakes_video_auc");
  s.report["models"][1]["metrics"]["real_deepfakes"] = {{"video_auc", 0.6}};
  html = audit_report_html(s.report, s.inputs);
  EXPECT_NE(html.find("video AUC of only 0.60"), std::string::npos);
  s.report["models"][1]["metrics"]["real_deepfakes"]["video_auc"] = 0.93;
  EXPECT_EQ(count(audit_report_html(s.report, s.inputs), "class=\"caution\""), 0u);

  // Cards that measured nothing (null metrics, as in older reports): no figures, no caution.
  for (auto& m : s.report["models"]) m["metrics"] = nullptr;
  html = audit_report_html(s.report, s.inputs);
  EXPECT_EQ(html.find("AUC"), std::string::npos);
  EXPECT_EQ(count(html, "class=\"caution\""), 0u);
}

TEST(ReportHtml, EscapesEverythingFromTheInput) {
  Sample s = make_sample();
  const std::string html = audit_report_html(s.report, s.inputs);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<b>&"), std::string::npos);
  EXPECT_EQ(html.find("vit<i>"), std::string::npos);
  EXPECT_GE(count(html, "&lt;script&gt;alert(1)&lt;/script&gt;.mp4"), 2u);  // summary row + section
  EXPECT_NE(html.find("cannot open &lt;b&gt;&amp; broken file"), std::string::npos);
  EXPECT_NE(html.find("vit&lt;i&gt;"), std::string::npos);
}

TEST(ReportHtml, IsSelfContained) {
  Sample s = make_sample();
  const std::string html = audit_report_html(s.report, s.inputs);
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("src=\"//"), std::string::npos);
  EXPECT_EQ(html.find("@import"), std::string::npos);
  EXPECT_EQ(html.find("url("), std::string::npos);
}

TEST(ReportHtml, DownsamplesLongTimelines) {
  AuditOptions o;
  InputReport in;
  in.source = "long.mp4";
  in.ok = true;
  in.duration_s = 2000.0;
  in.tracks.push_back(score_track(in, 7, 0.0, 1999.8, 5.0, o, real_raw, cv::Scalar(0, 0, 0)));
  in.verdict = Verdict::kReal;
  ASSERT_EQ(in.timeline.size(), 10000u);
  const std::string html = audit_report_html(report_json({in}, o), {in});
  if (const char* path = std::getenv("DFM_REPORT_HTML_SAMPLE")) std::ofstream(std::string(path) + ".long.html") << html;
  const size_t raw = html.find("class=\"raw\" d=\"");
  ASSERT_NE(raw, std::string::npos);
  const std::string d = html.substr(raw, html.find('"', raw + 15) - raw);
  EXPECT_LE(count(d, "M"), 2000u);
  EXPECT_GE(count(d, "M"), 1000u);
  EXPECT_NE(html.find("33:20"), std::string::npos);  // 2000 s shown as m:ss
}

TEST(ReportHtml, ToleratesMissingFieldsAndThumbnails) {
  EXPECT_NE(audit_report_html(json::object(), {}).find("</html>"), std::string::npos);
  Sample s = make_sample();
  s.report["inputs"][0]["tracks"][0]["score"] = nullptr;
  s.report["inputs"][0].erase("alerts");
  const std::string html = audit_report_html(s.report, {});  // no InputReports: no thumbnails
  EXPECT_EQ(count(html, "class=\"track-plot\""), 2u);
  EXPECT_EQ(count(html, "class=\"thumb\""), 0u);
  EXPECT_EQ(count(html, "no crop"), 2u);
}

TEST(ReportHtml, NoFacesInput) {
  AuditOptions o;
  InputReport in;
  in.source = "empty.mp4";
  in.ok = true;
  in.verdict = Verdict::kNoFaces;
  const std::string html = audit_report_html(report_json({in}, o), {in});
  EXPECT_NE(html.find(">no_faces<"), std::string::npos);
  EXPECT_NE(html.find("No faces were found"), std::string::npos);
  EXPECT_EQ(count(html, "class=\"track-plot\""), 0u);
}

TEST(ReportHtmlEscape, Cases) {
  EXPECT_EQ(html_escape(""), "");
  EXPECT_EQ(html_escape("plain text 123"), "plain text 123");
  EXPECT_EQ(html_escape("a & b"), "a &amp; b");
  EXPECT_EQ(html_escape("<>\"'"), "&lt;&gt;&quot;&#39;");
  EXPECT_EQ(html_escape("&amp;"), "&amp;amp;");  // not idempotent: escape exactly once
  EXPECT_EQ(html_escape("<script>alert(1)</script>"), "&lt;script&gt;alert(1)&lt;/script&gt;");
  EXPECT_EQ(html_escape("café ✓"), "café ✓");  // UTF-8 passes through
}

TEST(ReportHtmlBase64, Rfc4648Vectors) {
  using report_html_detail::base64_encode;
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode(std::string("\xff\xd8\xff\x00", 4)), "/9j/AA==");  // high bytes and NUL
}

}  // namespace
}  // namespace dfm
