// dfmon.audit/1 JSON report.
#include <cmath>
#include <filesystem>

#include "dfm/pipeline/report.h"

namespace dfm {

namespace {

double r4(double v) { return std::isfinite(v) ? std::round(v * 1e4) / 1e4 : 0.0; }
double r3(double v) { return std::isfinite(v) ? std::round(v * 1e3) / 1e3 : 0.0; }

nlohmann::json input_json(const InputReport& in, const ModelSet& models) {
  nlohmann::json j;
  j["source"] = in.source;
  j["status"] = in.ok ? "ok" : "error";
  j["error"] = in.ok ? nlohmann::json(nullptr) : nlohmann::json(in.error);
  if (in.ok) {
    j["verdict"] = verdict_name(in.verdict);
    j["score"] = r4(in.score);
  }
  j["duration_s"] = r3(in.duration_s);
  j["frames_decoded"] = in.frames_decoded;
  j["frames_analyzed"] = in.frames_analyzed;
  j["faces_scored"] = in.faces_scored;
  j["tracks"] = nlohmann::json::array();
  for (const auto& t : in.tracks) {
    j["tracks"].push_back({{"id", t.summary.id},
                           {"first_s", r3(t.summary.first_s)},
                           {"last_s", r3(t.summary.last_s)},
                           {"n", t.summary.n},
                           {"score", r4(t.summary.score)},
                           {"verdict", verdict_name(t.summary.verdict)},
                           {"best_s", r3(t.best_t)},
                           {"best_score", r4(t.best_score)}});
  }
  j["timeline"] = nlohmann::json::array();
  for (const auto& p : in.timeline) {
    nlohmann::json per = nlohmann::json::object();
    for (size_t k = 0; k < p.models.size() && k < models.models().size(); ++k) per[models.models()[k].card.name] = r4(p.models[k]);
    j["timeline"].push_back({{"t", r3(p.t)},
                             {"track", p.track},
                             {"bbox", {p.bbox.x, p.bbox.y, p.bbox.width, p.bbox.height}},
                             {"models", per},
                             {"ensemble", r4(p.ensemble)},
                             {"smoothed", r4(p.smoothed)}});
  }
  j["alerts"] = nlohmann::json::array();
  for (const auto& a : in.alerts) {
    j["alerts"].push_back({{"track", a.track}, {"start_s", r3(a.start_s)}, {"end_s", r3(a.end_s)}, {"peak", r4(a.peak)}});
  }
  j["elapsed_s"] = r3(in.elapsed_s);
  return j;
}

}  // namespace

nlohmann::json audit_report_json(const std::vector<InputReport>& inputs, const ModelSet& models,
                                 const AuditOptions& o, const std::string& version) {
  nlohmann::json r;
  r["schema"] = "dfmon.audit/1";
  r["version"] = version;
  r["models"] = nlohmann::json::array();
  for (size_t i = 0; i < models.models().size(); ++i) {
    const auto& m = models.models()[i];
    r["models"].push_back({{"name", m.card.name},
                           {"file", std::filesystem::path(m.onnx_path).filename().string()},
                           {"sha256", m.sha256},
                           {"weight", r4(models.weights()[i])},
                           {"metrics", model_card_metrics(m.card)}});
  }
  r["settings"] = {{"sample_fps", o.sample_fps},
                   {"threshold", o.threshold},
                   {"detect_every", o.detect_every},
                   {"smoothing", {{"alpha", o.smoothing.alpha}}},
                   {"alert", {{"on", o.alert.on}, {"off", o.alert.off}, {"min_duration_s", o.alert.min_duration_s}}},
                   {"detector", {{"type", o.detector.type}, {"max_width", o.detector.max_width}, {"min_face", o.detector.min_face}}},
                   {"backend", backend_name(models.backend())}};
  r["inputs"] = nlohmann::json::array();
  int fake = 0, real = 0, none = 0, errors = 0;
  for (const auto& in : inputs) {
    r["inputs"].push_back(input_json(in, models));
    if (!in.ok) ++errors;
    else if (in.verdict == Verdict::kFake) ++fake;
    else if (in.verdict == Verdict::kReal) ++real;
    else ++none;
  }
  r["summary"] = {{"inputs", inputs.size()}, {"fake", fake}, {"real", real}, {"no_faces", none}, {"errors", errors}};
  return r;
}

}  // namespace dfm
