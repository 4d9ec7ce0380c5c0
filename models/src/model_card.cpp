// Model card parsing and validation.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "dfm/models/models.h"

namespace dfm {

namespace {

using nlohmann::json;

Status key_error(const std::string& source, const std::string& key, const std::string& what) {
  return InvalidArgument(source + ": " + key + ": " + what);
}

// Reads an optional typed field; a present field of the wrong type is an error naming the key.
template <typename T>
Status read(const json& obj, const char* key, const std::string& path, const std::string& source, T* out, bool required) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    return required ? key_error(source, path + key, "missing") : Status::Ok();
  }
  if constexpr (std::is_same_v<T, int>) {
    // get<int>() casts 1e10 (undefined behaviour), wraps 4294967297 to 1 and reads true as 1.
    if (!it->is_number()) return key_error(source, path + key, std::string("wrong type (") + it->type_name() + ")");
    const double v = it->get<double>();
    if (!(v == std::floor(v) && v >= std::numeric_limits<int>::min() && v <= std::numeric_limits<int>::max())) {
      return key_error(source, path + key, "expected an integer, got " + it->dump());
    }
    *out = static_cast<int>(v);
    return Status::Ok();
  }
  try {
    *out = it->get<T>();
  } catch (const json::exception&) {
    return key_error(source, path + key, std::string("wrong type (") + it->type_name() + ")");
  }
  return Status::Ok();
}

}  // namespace

Result<ModelCard> parse_model_card(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number such as 1e999
    return InvalidArgument(source + ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) return InvalidArgument(source + ": a model card must be a JSON object");
  ModelCard c;
  std::string schema;
  DFM_RETURN_IF_ERROR(read(j, "schema", "", source, &schema, false));
  if (!schema.empty() && schema != "dfmon.model_card/1") {
    return key_error(source, "schema", "unsupported \"" + schema + "\" (expected dfmon.model_card/1)");
  }
  DFM_RETURN_IF_ERROR(read(j, "name", "", source, &c.name, true));
  DFM_RETURN_IF_ERROR(read(j, "architecture", "", source, &c.architecture, false));
  DFM_RETURN_IF_ERROR(read(j, "file", "", source, &c.file, true));
  if (!j.contains("input") || !j["input"].is_object()) return key_error(source, "input", "missing or not an object");
  if (!j.contains("output") || !j["output"].is_object()) return key_error(source, "output", "missing or not an object");
  const json& in = j["input"];
  const json& out = j["output"];
  int channels = 3;
  std::string layout = "NCHW";
  DFM_RETURN_IF_ERROR(read(in, "width", "input.", source, &c.width, true));
  DFM_RETURN_IF_ERROR(read(in, "height", "input.", source, &c.height, true));
  DFM_RETURN_IF_ERROR(read(in, "channels", "input.", source, &channels, false));
  DFM_RETURN_IF_ERROR(read(in, "color", "input.", source, &c.color, false));
  DFM_RETURN_IF_ERROR(read(in, "layout", "input.", source, &layout, false));
  DFM_RETURN_IF_ERROR(read(in, "scale", "input.", source, &c.scale, false));
  DFM_RETURN_IF_ERROR(read(in, "mean", "input.", source, &c.mean, true));
  DFM_RETURN_IF_ERROR(read(in, "std", "input.", source, &c.std, true));
  DFM_RETURN_IF_ERROR(read(in, "max_batch", "input.", source, &c.max_batch, false));
  DFM_RETURN_IF_ERROR(read(out, "type", "output.", source, &c.output_type, false));
  DFM_RETURN_IF_ERROR(read(out, "labels", "output.", source, &c.labels, true));
  DFM_RETURN_IF_ERROR(read(out, "fake_index", "output.", source, &c.fake_index, true));

  if (c.width < 8 || c.width > 4096 || c.height < 8 || c.height > 4096) {
    return key_error(source, "input.width/height", "out of range 8..4096");
  }
  if (channels != 3) return key_error(source, "input.channels", "only 3-channel models are supported");
  if (layout != "NCHW") return key_error(source, "input.layout", "only NCHW is supported");
  if (c.color != "RGB" && c.color != "BGR") return key_error(source, "input.color", "must be RGB or BGR");
  if (!(c.scale > 0)) return key_error(source, "input.scale", "must be > 0");
  if (c.mean.size() != 3) return key_error(source, "input.mean", "needs 3 values, has " + std::to_string(c.mean.size()));
  if (c.std.size() != 3) return key_error(source, "input.std", "needs 3 values, has " + std::to_string(c.std.size()));
  for (double s : c.std) {
    if (!(s > 0)) return key_error(source, "input.std", "values must be > 0");
  }
  if (c.max_batch < 0) return key_error(source, "input.max_batch", "must be >= 0 (0 = any)");
  if (c.output_type != "logits" && c.output_type != "probabilities") {
    return key_error(source, "output.type", "must be logits or probabilities");
  }
  if (c.labels.size() < 2) return key_error(source, "output.labels", "needs at least 2 labels");
  if (c.fake_index < 0 || c.fake_index >= static_cast<int>(c.labels.size())) {
    return key_error(source, "output.fake_index", std::to_string(c.fake_index) + " is outside the " +
                                                       std::to_string(c.labels.size()) + " labels");
  }
  c.raw_json = text;
  return c;
}

nlohmann::json model_card_metrics(const ModelCard& card) {
  const auto j = nlohmann::json::parse(card.raw_json, nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && j.contains("metrics") && j["metrics"].is_object()) return j["metrics"];
  return nullptr;
}

namespace {
// The number at metrics[outer][key], or NaN: the metrics object is free-form, so every level is checked.
double metric(const nlohmann::json& m, const char* outer, const char* key) {
  if (!m.is_object() || !m.contains(outer) || !m[outer].is_object() || !m[outer].contains(key)) return std::nan("");
  const nlohmann::json& v = m[outer][key];
  return v.is_number() ? v.get<double>() : std::nan("");
}
std::string fixed(double v, int prec) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f", prec, v);
  return buf;
}
}  // namespace

std::string model_quality_summary(const nlohmann::json& m) {
  std::string out;
  double val = metric(m, "synthetic_val", "auc");
  if (std::isnan(val)) val = metric(m, "val", "auc");  // cards written by train.py alone
  if (!std::isnan(val)) out = "synthetic val AUC " + fixed(val, 2);
  const double video = metric(m, "real_deepfakes", "video_auc");
  if (!std::isnan(video)) {
    if (!out.empty()) out += " · ";
    out += "real deepfakes video AUC " + fixed(video, 2);
    const double n = metric(m, "real_deepfakes", "n_videos");
    if (n > 0) out += " (" + fixed(n, 0) + " videos)";
  }
  return out;
}

double recorded_real_deepfake_auc(const std::vector<nlohmann::json>& card_metrics) {
  // The ensemble figure holds only for the models it was measured with: use it when every card records
  // the same one (an exported pair), else the best single model's.
  double best = std::numeric_limits<double>::quiet_NaN(), ensemble = best;
  bool same_ensemble = card_metrics.size() > 1;
  for (const auto& m : card_metrics) {
    const nlohmann::json* e = m.is_object() && m.contains("ensemble_real_deepfakes_video_auc")
                                  ? &m["ensemble_real_deepfakes_video_auc"]
                                  : nullptr;
    if (!e || !e->is_number() || (!std::isnan(ensemble) && e->get<double>() != ensemble)) same_ensemble = false;
    if (e && e->is_number()) ensemble = e->get<double>();
    const double v = metric(m, "real_deepfakes", "video_auc");
    if (!std::isnan(v) && !(v <= best)) best = v;
  }
  return same_ensemble ? ensemble : best;
}

std::string model_quality_caution(double auc) {
  if (!std::isfinite(auc) || auc >= kTrustedRealDeepfakeAuc) return "";
  return "Measured on real deepfake videos, these models reach a video AUC of only " + fixed(auc, 2) +
         " (0.5 is chance; see the model cards). Treat a verdict as a lead for review, not as evidence.";
}

Result<ModelCard> load_model_card(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("model card " + path + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  DFM_ASSIGN_OR_RETURN(ModelCard card, parse_model_card(ss.str(), path));
  card.card_path = path;
  return card;
}

}  // namespace dfm
