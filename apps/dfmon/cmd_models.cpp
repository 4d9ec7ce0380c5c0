// `dfmon models`: which models are found, their identity, and a self-check on a sample crop.
#include <cmath>
#include <cstdio>
#include <filesystem>

#include <opencv2/imgcodecs.hpp>

#include "app.h"

namespace fs = std::filesystem;

namespace dfm::app {

namespace {

struct ModelsOptions {
  bool json = false;
};

int run(const GlobalOptions& g, const ModelsOptions& o) {
  if (auto st = apply_globals(g); !st.ok()) return fail(st);
  auto set = load_models(g);
  if (!set.ok()) return fail(set.status());
  auto runner = EnsembleRunner::create(*set);
  if (!runner.ok()) return fail(runner.status());
  // The self-check crop ships beside the models; a grey square stands in when it is missing.
  const fs::path dir = fs::path((*set)->models().front().onnx_path).parent_path();
  const fs::path sample = dir / "selfcheck.jpg";
  cv::Mat crop = cv::imread(sample.string(), cv::IMREAD_COLOR);
  const bool have_sample = !crop.empty();
  if (!have_sample) crop = cv::Mat(224, 224, CV_8UC3, cv::Scalar(128, 128, 128));
  auto scores = (*runner)->score({crop});
  if (!scores.ok()) return fail(scores.status());
  const FaceScore& s = scores->front();
  bool ok = std::isfinite(s.ensemble) && s.ensemble >= 0 && s.ensemble <= 1;
  for (float p : s.per_model) ok = ok && std::isfinite(p) && p >= 0 && p <= 1;
  nlohmann::json out = {{"dir", dir.string()}, {"backend", backend_name((*set)->backend())}, {"models", nlohmann::json::array()}};
  for (size_t i = 0; i < (*set)->models().size(); ++i) {
    const LoadedModel& m = (*set)->models()[i];
    out["models"].push_back({{"name", m.card.name},
                             {"architecture", m.card.architecture},
                             {"file", fs::path(m.onnx_path).filename().string()},
                             {"card", m.card.card_path},
                             {"sha256", m.sha256},
                             {"input", {m.card.width, m.card.height}},
                             {"weight", round6((*set)->weights()[i])},
                             {"selfcheck_p_fake", round6(s.per_model[i])},
                             {"metrics", model_card_metrics(m.card)}});
  }
  out["selfcheck"] = {{"crop", have_sample ? sample.string() : "grey 224x224"}, {"ensemble", round6(s.ensemble)}, {"ok", ok}};
  if (o.json) {
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    std::printf("models in %s (backend %s)\n", dir.string().c_str(), backend_name((*set)->backend()));
    for (const auto& m : out["models"]) {
      std::printf("  %-10s %-14s %-16s sha256 %s  weight %.2f  self-check P(fake) %.4f\n", m["name"].get<std::string>().c_str(),
                  m["architecture"].get<std::string>().c_str(), m["file"].get<std::string>().c_str(),
                  m["sha256"].get<std::string>().substr(0, 16).c_str(), m["weight"].get<double>(), m["selfcheck_p_fake"].get<double>());
    }
    for (const auto& m : out["models"]) {  // measured quality, as the card records it
      const std::string quality = model_quality_summary(m["metrics"]);
      if (!quality.empty()) std::printf("  %-10s %s (model card)\n", m["name"].get<std::string>().c_str(), quality.c_str());
    }
    std::printf("  ensemble self-check P(fake) %.4f on %s: %s\n", s.ensemble, out["selfcheck"]["crop"].get<std::string>().c_str(),
                ok ? "ok" : "FAILED");
  }
  return ok ? kExitOk : kExitError;
}

}  // namespace

void register_models(CLI::App& root, GlobalOptions& g, int* exit_code) {
  auto o = std::make_shared<ModelsOptions>();
  CLI::App* cmd = root.add_subcommand("models", "List the models found (name, file, card, sha256) and self-check them");
  cmd->add_flag("--json", o->json, "Print JSON");
  cmd->footer("Exit codes: 0 ok, 2 missing or broken model.");
  cmd->callback([&g, o, exit_code] { *exit_code = run(g, *o); });
}

}  // namespace dfm::app
