// Self-contained HTML audit report: renders the dfmon.audit/1 JSON (the single source of numbers, so the
// page and the JSON never disagree) plus the best-crop thumbnails, which only the InputReports hold.
// Everything is inline (CSS, SVG, data: URIs) so the file can be mailed or archived and opened offline.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "dfm/pipeline/report.h"

namespace dfm {

// Not in report.h (an implementation detail); the tests declare it to check it against RFC 4648 vectors.
// A distinct namespace keeps it from clashing with other base64 helpers elsewhere in the project.
namespace report_html_detail {
std::string base64_encode(const std::string& in) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = (uint32_t(uint8_t(in[i])) << 16) | (uint32_t(uint8_t(in[i + 1])) << 8) | uint8_t(in[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  const size_t rest = in.size() - i;
  if (rest > 0) {
    uint32_t v = uint32_t(uint8_t(in[i])) << 16;
    if (rest == 2) v |= uint32_t(uint8_t(in[i + 1])) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}
}  // namespace report_html_detail

std::string html_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size() + s.size() / 8);
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

namespace {

using nlohmann::json;

constexpr size_t kMaxPlotPoints = 2000;  // per track; keeps big reports light and fast to render

// Tolerant accessors: a report from an older/partial writer (null or missing keys) still renders.
double num(const json& j, const char* key, double def = 0.0) {
  if (!j.is_object()) return def;
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : def;
}
std::string str(const json& j, const char* key, const std::string& def = "") {
  if (!j.is_object()) return def;
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : def;
}
const json& sub(const json& j, const char* key) {
  static const json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it != j.end() ? *it : kNull;
}

std::string fmt(double v, int prec) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", prec, std::isfinite(v) ? v : 0.0);
  return buf;
}

// "12.3 s" below two minutes, "m:ss" / "h:mm:ss" above (long recordings read better that way).
std::string fmt_clock(double s) {
  if (!std::isfinite(s) || s < 0) s = 0;
  const long t = std::lround(s);
  char buf[32];
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  return buf;
}
std::string fmt_duration(double s) { return std::isfinite(s) && s < 120 ? fmt(std::max(s, 0.0), 1) + " s" : fmt_clock(s); }

std::string badge(const std::string& verdict) {
  std::string cls = verdict == "fake" || verdict == "real" || verdict == "error" ? verdict : "none";
  return "<span class=\"badge " + cls + "\">" + html_escape(verdict) + "</span>";
}

std::string thumb_data_uri(const cv::Mat& crop) {
  if (crop.empty() || crop.depth() != CV_8U || (crop.channels() != 1 && crop.channels() != 3)) return "";
  cv::Mat img = crop;
  const int side = std::max(img.cols, img.rows);
  if (side > 192) cv::resize(crop, img, cv::Size(), 192.0 / side, 192.0 / side, cv::INTER_AREA);
  std::vector<uchar> buf;
  if (!cv::imencode(".jpg", img, buf, {cv::IMWRITE_JPEG_QUALITY, 85})) return "";
  return "data:image/jpeg;base64," + report_html_detail::base64_encode(std::string(buf.begin(), buf.end()));
}

// Tick step of 1, 2 or 5 x 10^k giving about `target` intervals over `span`.
double nice_step(double span, int target) {
  const double raw = span / target;
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  const double m = raw / p;
  return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

struct Pt {
  double t, raw, smoothed;
};

// Score-over-time plot of one track. Raw ensemble scores are dots (zero-length round-capped subpaths:
// one <path> instead of thousands of <circle>s), the smoothed score a line broken at gaps in the track.
std::string track_plot(int track, const std::vector<Pt>& pts, const json& alerts, double dur, double on,
                       double off, double gap_s) {
  const double W = 760, H = 230, L = 44, R = 70, T = 12, B = 34;
  const double pw = W - L - R, ph = H - T - B;
  auto X = [&](double t) { return L + std::clamp(t, 0.0, dur) / dur * pw; };
  auto Y = [&](double v) { return T + (1.0 - std::clamp(v, 0.0, 1.0)) * ph; };
  std::string s = "<svg class=\"track-plot\" data-track=\"" + std::to_string(track) + "\" viewBox=\"0 0 " +
                  fmt(W, 0) + " " + fmt(H, 0) + "\" role=\"img\" aria-label=\"Track " + std::to_string(track) +
                  " score over time\">";
  s += "<rect class=\"bg\" x=\"" + fmt(L, 1) + "\" y=\"" + fmt(T, 1) + "\" width=\"" + fmt(pw, 1) + "\" height=\"" +
       fmt(ph, 1) + "\"/>";
  // Alert spans of this track, under everything else.
  if (alerts.is_array()) {
    for (const auto& a : alerts) {
      if (static_cast<int>(num(a, "track", -1)) != track) continue;
      const double x0 = X(num(a, "start_s")), x1 = std::max(X(num(a, "end_s")), x0 + 1.5);
      s += "<rect class=\"span\" x=\"" + fmt(x0, 1) + "\" y=\"" + fmt(T, 1) + "\" width=\"" + fmt(x1 - x0, 1) +
           "\" height=\"" + fmt(ph, 1) + "\"><title>alert " + fmt(num(a, "start_s"), 1) + "–" +
           fmt(num(a, "end_s"), 1) + " s, peak " + fmt(num(a, "peak"), 3) + "</title></rect>";
    }
  }
  // Axes: y grid every 0.25, x ticks at a "nice" step.
  for (int k = 0; k <= 4; ++k) {
    const double y = Y(k * 0.25);
    s += "<line class=\"grid\" x1=\"" + fmt(L, 1) + "\" x2=\"" + fmt(L + pw, 1) + "\" y1=\"" + fmt(y, 1) + "\" y2=\"" +
         fmt(y, 1) + "\"/><text x=\"" + fmt(L - 6, 1) + "\" y=\"" + fmt(y + 4, 1) + "\" text-anchor=\"end\">" +
         fmt(k * 0.25, 2) + "</text>";
  }
  const double step = nice_step(dur, 8);
  const int dec = step >= 1 ? 0 : step >= 0.1 ? 1 : 2;
  for (int k = 0; k * step <= dur * (1 + 1e-9); ++k) {
    const double t = k * step, x = X(t);
    const std::string label = dur >= 120 ? fmt_clock(t) : fmt(t, dec);
    s += "<line class=\"tick\" x1=\"" + fmt(x, 1) + "\" x2=\"" + fmt(x, 1) + "\" y1=\"" + fmt(T + ph, 1) + "\" y2=\"" +
         fmt(T + ph + 4, 1) + "\"/><text x=\"" + fmt(x, 1) + "\" y=\"" + fmt(T + ph + 16, 1) +
         "\" text-anchor=\"middle\">" + label + "</text>";
  }
  s += "<text x=\"" + fmt(L + pw / 2, 1) + "\" y=\"" + fmt(H - 3, 1) + "\" text-anchor=\"middle\" class=\"axis\">time (" +
       (dur >= 120 ? "m:ss" : "s") + ")</text>";
  s += "<text class=\"axis\" transform=\"translate(11 " + fmt(T + ph / 2, 1) +
       ") rotate(-90)\" text-anchor=\"middle\">P(fake)</text>";
  // Alert thresholds, labelled in the right margin.
  s += "<line class=\"on\" x1=\"" + fmt(L, 1) + "\" x2=\"" + fmt(L + pw, 1) + "\" y1=\"" + fmt(Y(on), 1) + "\" y2=\"" +
       fmt(Y(on), 1) + "\"/><text class=\"on-l\" x=\"" + fmt(L + pw + 6, 1) + "\" y=\"" + fmt(Y(on) + 4, 1) +
       "\">alert " + fmt(on, 2) + "</text>";
  s += "<line class=\"off\" x1=\"" + fmt(L, 1) + "\" x2=\"" + fmt(L + pw, 1) + "\" y1=\"" + fmt(Y(off), 1) + "\" y2=\"" +
       fmt(Y(off), 1) + "\"/><text class=\"off-l\" x=\"" + fmt(L + pw + 6, 1) + "\" y=\"" + fmt(Y(off) + 4, 1) +
       "\">off " + fmt(off, 2) + "</text>";
  // Downsample in buckets: the dot keeps the bucket's highest raw score (a one-frame spike is what an
  // auditor looks for), the line the bucket's mean (the smoothed score has no spikes to lose).
  const size_t bucket = (pts.size() + kMaxPlotPoints - 1) / kMaxPlotPoints;
  std::string dots, line;
  double prev_t = -1e300;
  for (size_t i = 0; bucket > 0 && i < pts.size(); i += bucket) {
    const size_t e = std::min(pts.size(), i + bucket);
    size_t best = i;
    double st = 0, ss = 0;
    for (size_t k = i; k < e; ++k) {
      if (pts[k].raw > pts[best].raw) best = k;
      st += pts[k].t;
      ss += pts[k].smoothed;
    }
    const double n = static_cast<double>(e - i), t = st / n;
    dots += "M" + fmt(X(pts[best].t), 1) + " " + fmt(Y(pts[best].raw), 1) + "h0";
    line += (pts[i].t - prev_t > gap_s ? "M" : "L") + fmt(X(t), 1) + " " + fmt(Y(ss / n), 1);
    prev_t = pts[e - 1].t;
  }
  if (!dots.empty()) s += "<path class=\"raw\" d=\"" + dots + "\"/><path class=\"smooth\" d=\"" + line + "\"/>";
  return s + "</svg>";
}

const char* kCss = R"css(
:root{--fake:#c5221f;--real:#188038;--none:#80868b;--err:#e37400;--ink:#202124;--mute:#5f6368;--line:#dadce0}
*{box-sizing:border-box}
body{margin:0;background:#f4f5f7;color:var(--ink);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
.wrap{max-width:1080px;margin:0 auto;padding:24px 20px 48px}
h1{font-size:24px;margin:0 0 2px}h2{font-size:18px;margin:0 0 10px;display:flex;gap:10px;align-items:center}
h3{font-size:15px;margin:0 0 6px;display:flex;gap:8px;align-items:center}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:16px 20px;margin:16px 0}
.mute{color:var(--mute)}.small{font-size:12px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #eceff1;vertical-align:top}
th{font-weight:600;color:var(--mute);font-size:12px;text-transform:uppercase;letter-spacing:.03em}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.src{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px;word-break:break-all}
h2 .src{font-size:15px}
a{color:#1a73e8;text-decoration:none}a:hover{text-decoration:underline}
.badge{display:inline-block;padding:1px 9px;border-radius:10px;font-size:12px;font-weight:600;color:#fff;text-transform:uppercase;letter-spacing:.04em;white-space:nowrap}
.badge.fake{background:var(--fake)}.badge.real{background:var(--real)}.badge.none{background:var(--none)}.badge.error{background:var(--err)}
.tiles{display:flex;gap:12px;flex-wrap:wrap;margin:4px 0 14px}
.tile{flex:1;min-width:110px;border:1px solid var(--line);border-radius:6px;padding:8px 12px;border-top:3px solid var(--c,var(--line))}
.tile b{display:block;font-size:22px;font-variant-numeric:tabular-nums}
.kv{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:10px 0 0}
.kv dt{color:var(--mute)}.kv dd{margin:0}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px;background:#f1f3f4;padding:0 4px;border-radius:3px}
.errbox{color:#a50e0e;background:#fce8e6;padding:8px 12px;border-radius:6px;white-space:pre-wrap;word-break:break-word;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px}
.caution{color:#7a4300;background:#fef7e0;border-left:3px solid var(--err);padding:8px 12px;border-radius:4px;margin:10px 0 0}
.track{border-top:1px solid #eceff1;padding-top:12px;margin-top:12px}
.track-body{display:flex;gap:16px;align-items:flex-start}
svg.track-plot{flex:1 1 auto;min-width:0;width:100%;height:auto;font-size:11px}
svg text{fill:var(--mute)}svg .axis{fill:var(--ink)}
svg .bg{fill:#fbfbfc;stroke:#e0e3e7}svg .grid{stroke:#eceff1}svg .tick{stroke:#9aa0a6}
svg .span{fill:var(--fake);fill-opacity:.13}
svg .on{stroke:var(--fake);stroke-dasharray:6 4;stroke-width:1.2}svg .on-l{fill:var(--fake)}
svg .off{stroke:var(--err);stroke-dasharray:2 4;stroke-width:1.2}svg .off-l{fill:var(--err)}
svg .raw{stroke:#80868b;stroke-opacity:.6;stroke-width:3.6;stroke-linecap:round;fill:none}
svg .smooth{stroke:#1a73e8;stroke-width:2;fill:none;stroke-linejoin:round}
figure{margin:0;flex:0 0 150px;text-align:center}
img.thumb{width:140px;height:140px;object-fit:cover;border-radius:6px;border:1px solid var(--line);background:#eee}
.nothumb{width:140px;height:140px;display:flex;align-items:center;justify-content:center;border:1px dashed var(--line);border-radius:6px}
figcaption{font-size:12px;color:var(--mute);margin-top:4px}
.legend{display:flex;gap:16px;flex-wrap:wrap;font-size:12px;color:var(--mute);margin:8px 0 0}
.legend i{display:inline-block;vertical-align:middle;margin-right:5px}
@media (max-width:720px){.track-body{flex-direction:column}}
)css";

std::string legend() {
  return "<div class=\"legend\"><span><i style=\"width:7px;height:7px;border-radius:50%;background:#80868b\"></i>raw "
         "ensemble score</span><span><i style=\"width:18px;height:2px;background:#1a73e8\"></i>smoothed</span>"
         "<span><i style=\"width:18px;border-top:2px dashed var(--fake)\"></i>alert on</span><span><i "
         "style=\"width:18px;border-top:2px dotted var(--err)\"></i>alert off</span><span><i style=\"width:14px;"
         "height:10px;background:rgba(197,34,31,.18)\"></i>alert span</span></div>";
}

std::string input_section(size_t idx, const json& in, const InputReport* rep, double on, double off, double gap_s) {
  const bool ok = str(in, "status") == "ok";
  const std::string verdict = ok ? str(in, "verdict", "no_faces") : "error";
  std::string s = "<section class=\"card\" id=\"input-" + std::to_string(idx + 1) + "\"><h2><span class=\"mute\">" +
                  std::to_string(idx + 1) + ".</span><span class=\"src\">" + html_escape(str(in, "source")) +
                  "</span>" + badge(verdict) + "</h2>";
  if (!ok) {  // frame counts of a failed input are noise; the reason is what matters
    return s + "<p class=\"mute\">failed after " + fmt(num(in, "elapsed_s"), 1) + " s</p><div class=\"errbox\">" +
           html_escape(str(in, "error", "unknown error")) + "</div></section>";
  }
  s += "<p class=\"mute\">score <b>" + fmt(num(in, "score"), 3) + "</b> · duration " + fmt_duration(num(in, "duration_s")) +
       " · " + fmt(num(in, "frames_decoded"), 0) + " frames decoded, " + fmt(num(in, "frames_analyzed"), 0) + " analysed · " + fmt(num(in, "faces_scored"), 0) +
       " faces scored · " + fmt(num(in, "elapsed_s"), 1) + " s to audit</p>";

  const json& tracks = sub(in, "tracks");
  if (!tracks.is_array() || tracks.empty()) return s + "<p>No faces were found in this input.</p></section>";
  // Group the timeline by track once; the x axis spans the whole input so tracks line up across plots.
  std::map<int, std::vector<Pt>> by_track;
  double dur = num(in, "duration_s");
  const json& timeline = sub(in, "timeline");
  if (timeline.is_array()) {
    for (const auto& p : timeline) {
      const double t = num(p, "t");
      by_track[static_cast<int>(num(p, "track"))].push_back({t, num(p, "ensemble"), num(p, "smoothed")});
      dur = std::max(dur, t);
    }
  }
  for (const auto& t : tracks) dur = std::max(dur, num(t, "last_s"));
  if (!(dur > 0)) dur = 1;
  for (auto& [id, pts] : by_track) std::stable_sort(pts.begin(), pts.end(), [](const Pt& a, const Pt& b) { return a.t < b.t; });

  s += legend();
  for (const auto& t : tracks) {
    const int id = static_cast<int>(num(t, "id"));
    const std::string tv = str(t, "verdict", "real");
    s += "<div class=\"track\"><h3>Track " + std::to_string(id) + " " + badge(tv) + "</h3><div class=\"track-body\">";
    s += track_plot(id, by_track[id], sub(in, "alerts"), dur, on, off, gap_s);
    const TrackReport* tr = nullptr;
    if (rep) {
      for (const auto& k : rep->tracks) {
        if (k.summary.id == id) tr = &k;
      }
    }
    const std::string uri = tr ? thumb_data_uri(tr->best_crop) : "";
    s += "<figure>";
    s += uri.empty() ? "<div class=\"nothumb mute small\">no crop</div>"
                     : "<img class=\"thumb\" alt=\"track " + std::to_string(id) + " best crop\" src=\"" + uri + "\">";
    s += "<figcaption>highest score <b>" + fmt(num(t, "best_score", tr ? tr->best_score : 0), 3) + "</b><br>at " +
         fmt(num(t, "best_s", tr ? tr->best_t : 0), 1) + " s</figcaption></figure></div>";
    s += "<p class=\"mute small\">" + fmt(num(t, "n"), 0) + " faces scored · " + fmt(num(t, "first_s"), 1) + "–" +
         fmt(num(t, "last_s"), 1) + " s · track score <b>" + fmt(num(t, "score"), 3) + "</b> · verdict " +
         html_escape(tv) + "</p></div>";
  }
  return s + "</section>";
}

}  // namespace

std::string audit_report_html(const json& report, const std::vector<InputReport>& inputs) {
  const json& settings = sub(report, "settings");
  const json& alert = sub(settings, "alert");
  const double on = num(alert, "on", 0.7), off = num(alert, "off", 0.4);
  const double fps = num(settings, "sample_fps", 5.0);
  // A track missing for more than a few sampling periods draws as separate line pieces.
  const double gap_s = std::max(1.0, fps > 0 ? 3.0 / fps : 1.0);

  std::string h = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
                  "content=\"width=device-width,initial-scale=1\"><title>dfmon audit report</title><style>";
  h += kCss;
  h += "</style></head><body><main class=\"wrap\">";
  h += "<header><h1>dfmon audit report</h1><div class=\"mute\">dfmon " + html_escape(str(report, "version", "?")) +
       " · " + html_escape(str(report, "schema", "dfmon.audit/1")) + "</div></header>";

  // Generation info: which models (by content hash) and which settings produced these numbers.
  h += "<section class=\"card\"><h2>Run</h2><dl class=\"kv\"><dt>Models</dt><dd>";
  const json& models = sub(report, "models");
  if (models.is_array() && !models.empty()) {
    for (const auto& m : models) {
      const std::string sha = str(m, "sha256");
      h += "<div>" + html_escape(str(m, "name")) + " <span class=\"mute small\">" + html_escape(str(m, "file")) +
           "</span> <code title=\"" + html_escape(sha) + "\">" + html_escape(sha.substr(0, 12)) +
           "</code> <span class=\"mute small\">weight " + fmt(num(m, "weight"), 2);
      const std::string quality = model_quality_summary(sub(m, "metrics"));
      if (!quality.empty()) h += " · " + html_escape(quality);
      h += "</span></div>";
    }
    // Below this the verdicts are not evidence; say so where the analyst reads them.
    std::vector<json> metrics;
    for (const auto& m : models) metrics.push_back(sub(m, "metrics"));
    const std::string caution = model_quality_caution(recorded_real_deepfake_auc(metrics));
    if (!caution.empty()) h += "<div class=\"caution\">" + html_escape(caution) + "</div>";
  } else {
    h += "<span class=\"mute\">none listed</span>";
  }
  h += "</dd><dt>Sampling</dt><dd>" + fmt(fps, fps == std::floor(fps) ? 0 : 2) + " frames/s analysed";
  if (num(settings, "detect_every", 1) > 1) h += ", detector every " + fmt(num(settings, "detect_every"), 0) + " frames";
  const json& det = sub(settings, "detector");
  if (!str(det, "type").empty()) h += " · detector " + html_escape(str(det, "type"));
  if (!str(settings, "backend").empty()) h += " · backend " + html_escape(str(settings, "backend"));
  h += "</dd><dt>Alert</dt><dd>on at ≥ " + fmt(on, 2) + ", off below " + fmt(off, 2) + ", minimum duration " +
       fmt(num(alert, "min_duration_s", 1.0), 1) + " s · smoothing α " +
       fmt(num(sub(settings, "smoothing"), "alpha", 0.3), 2) + "</dd></dl></section>";

  // Summary: counts, then one row per input linking to its section.
  const json& sum = sub(report, "summary");
  const json& ins = sub(report, "inputs");
  h += "<section class=\"card\"><h2>Summary</h2><div class=\"tiles\">";
  const std::pair<const char*, const char*> tiles[] = {{"inputs", "Inputs"}, {"fake", "Fake"}, {"real", "Real"},
                                                       {"no_faces", "No faces"}, {"errors", "Errors"}};
  const char* colours[] = {"var(--line)", "var(--fake)", "var(--real)", "var(--none)", "var(--err)"};
  for (size_t k = 0; k < 5; ++k) {
    h += std::string("<div class=\"tile\" style=\"--c:") + colours[k] + "\"><b>" + fmt(num(sum, tiles[k].first), 0) +
         "</b><span class=\"mute\">" + tiles[k].second + "</span></div>";
  }
  h += "</div><table><thead><tr><th>#</th><th>Source</th><th>Verdict</th><th class=\"num\">Score</th><th "
       "class=\"num\">Duration</th><th class=\"num\">Faces scored</th><th class=\"num\">Elapsed</th></tr></thead><tbody>";
  const size_t n_in = ins.is_array() ? ins.size() : 0;
  for (size_t i = 0; i < n_in; ++i) {
    const json& in = ins[i];
    const bool ok = str(in, "status") == "ok";
    h += "<tr><td class=\"mute\">" + std::to_string(i + 1) + "</td><td class=\"src\"><a href=\"#input-" +
         std::to_string(i + 1) + "\">" + html_escape(str(in, "source")) + "</a></td><td>" +
         badge(ok ? str(in, "verdict", "no_faces") : "error") + "</td><td class=\"num\">" +
         (ok ? fmt(num(in, "score"), 3) : "—") + "</td><td class=\"num\">" +
         (ok ? fmt_duration(num(in, "duration_s")) : "—") + "</td><td class=\"num\">" +
         (ok ? fmt(num(in, "faces_scored"), 0) : "—") + "</td><td class=\"num\">" +
         fmt(num(in, "elapsed_s"), 1) + " s</td></tr>";
  }
  h += "</tbody></table></section>";

  // The inputs vector is in report["inputs"] order; a shorter one just means no thumbnails.
  for (size_t i = 0; i < n_in; ++i) h += input_section(i, ins[i], i < inputs.size() ? &inputs[i] : nullptr, on, off, gap_s);
  h += "<footer class=\"mute small\">Generated by dfmon " + html_escape(str(report, "version", "?")) +
       ". Scores are P(fake) from the model ensemble; a track is fake when its smoothed score raised an alert.</footer>";
  return h + "</main></body></html>\n";
}

}  // namespace dfm
