// `dfmon evaluate DIR`: metrics per model and for the ensemble on a seed-layout image folder.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <opencv2/imgcodecs.hpp>

#include "app.h"
#include "dfm/common/log.h"
#include "dfm/models/metrics.h"

namespace fs = std::filesystem;

namespace dfm::app {

namespace {

struct EvaluateOptions {
  std::string dir;
  std::string split = "val";
  bool detect = false;
  bool json = false;
  double threshold = 0.5;
  int limit = 0;
  std::string scores_path;
};

struct Item {
  std::string path;
  int label;
};

Result<std::vector<Item>> list_items(const EvaluateOptions& o) {
  const fs::path root = fs::path(o.dir) / o.split;
  std::error_code ec;
  if (!fs::is_directory(o.dir, ec)) return NotFound(o.dir + ": not a directory");
  if (!fs::is_directory(root, ec)) return InvalidArgument(o.dir + ": no \"" + o.split + "\" split (expected DIR/" + o.split + "/{real,fake}/)");
  std::vector<Item> items;
  for (int label : {0, 1}) {
    const fs::path cls = root / (label ? "fake" : "real");
    if (!fs::is_directory(cls, ec)) return InvalidArgument(o.dir + ": missing " + cls.string());
    std::vector<Item> part;
    for (const auto& e : fs::directory_iterator(cls, ec)) {
      std::string ext = e.path().extension().string();
      std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (e.is_regular_file() && (ext == ".jpg" || ext == ".jpeg" || ext == ".png")) part.push_back({e.path().string(), label});
    }
    std::sort(part.begin(), part.end(), [](const Item& a, const Item& b) { return a.path < b.path; });
    if (o.limit > 0 && static_cast<int>(part.size()) > o.limit) part.resize(static_cast<size_t>(o.limit));
    if (part.empty()) return InvalidArgument(o.dir + ": " + cls.string() + " has no .jpg/.jpeg/.png images");
    items.insert(items.end(), part.begin(), part.end());
  }
  return items;
}

nlohmann::json metrics_json(const BinaryMetrics& m) {
  return {{"n", m.n},
          {"accuracy", round6(m.accuracy)},
          {"precision", round6(m.precision)},
          {"recall", round6(m.recall)},
          {"f1", round6(m.f1)},
          {"auc", std::isfinite(m.auc) ? nlohmann::json(round6(m.auc)) : nlohmann::json(nullptr)},
          {"confusion", {{"tp", m.tp}, {"fp", m.fp}, {"tn", m.tn}, {"fn", m.fn}}}};
}

int run(const GlobalOptions& g, const EvaluateOptions& o) {
  if (auto st = apply_globals(g); !st.ok()) return fail(st);
  auto items = list_items(o);
  if (!items.ok()) return fail(items.status());
  auto set = load_models(g);
  if (!set.ok()) return fail(set.status());
  auto runner = EnsembleRunner::create(*set);
  if (!runner.ok()) return fail(runner.status());
  std::unique_ptr<FaceDetector> detector;
  if (o.detect) {
    auto det = make_face_detector(DetectorOptions{});
    if (!det.ok()) return fail(det.status());
    detector = std::move(det).value();
  }
  auto log = get_logger("evaluate");
  const size_t nm = (*set)->models().size();
  std::vector<int> labels;
  std::vector<std::vector<double>> per_model(nm);
  std::vector<double> ensemble;
  std::ofstream scores_out;
  if (!o.scores_path.empty()) {
    scores_out.open(o.scores_path);
    if (!scores_out) return fail(IoError(o.scores_path + ": cannot write"));
  }
  int64_t skipped = 0;
  const size_t batch = 16;
  for (size_t start = 0; start < items->size(); start += batch) {
    std::vector<cv::Mat> crops;
    std::vector<const Item*> used;
    for (size_t i = start; i < std::min(items->size(), start + batch); ++i) {
      const Item& it = (*items)[i];
      cv::Mat img = cv::imread(it.path, cv::IMREAD_COLOR);
      if (img.empty()) {
        log->warn("{}: not a readable image, skipped", it.path);
        ++skipped;
        continue;
      }
      if (detector) {
        auto faces = detector->detect(img);
        if (!faces.ok() || faces->empty()) {
          log->warn("{}: no face found, skipped", it.path);
          ++skipped;
          continue;
        }
        img = align_face(img, (*faces)[0], AlignOptions{});
      }
      crops.push_back(img);
      used.push_back(&it);
    }
    if (crops.empty()) continue;
    auto scores = (*runner)->score(crops);
    if (!scores.ok()) return fail(scores.status());
    for (size_t i = 0; i < crops.size(); ++i) {
      const FaceScore& s = (*scores)[i];
      labels.push_back(used[i]->label);
      for (size_t k = 0; k < nm; ++k) per_model[k].push_back(s.per_model[k]);
      ensemble.push_back(s.ensemble);
      if (scores_out) {
        scores_out << nlohmann::json{{"image", used[i]->path},
                                     {"label", used[i]->label ? "fake" : "real"},
                                     {"models", per_model_json(**set, s.per_model)},
                                     {"ensemble", s.ensemble}}
                          .dump()
                   << "\n";
      }
    }
  }
  if (labels.empty()) return fail(InvalidArgument(o.dir + ": no image could be scored"));
  nlohmann::json report = {{"schema", "dfmon.evaluate/1"},
                           {"dataset", o.dir},
                           {"split", o.split},
                           {"threshold", o.threshold},
                           {"skipped", skipped},
                           {"models", nlohmann::json::object()}};
  std::vector<std::pair<std::string, BinaryMetrics>> rows;
  for (size_t k = 0; k < nm; ++k) rows.emplace_back((*set)->models()[k].card.name, compute_metrics(labels, per_model[k], o.threshold));
  rows.emplace_back("ensemble", compute_metrics(labels, ensemble, o.threshold));
  for (const auto& [name, m] : rows) report["models"][name] = metrics_json(m);
  if (o.json) {
    std::printf("%s\n", report.dump(2).c_str());
  } else {
    std::printf("%s/%s: %zu images (%lld skipped), threshold %.2f\n", o.dir.c_str(), o.split.c_str(), labels.size(),
                static_cast<long long>(skipped), o.threshold);
    std::printf("%-10s %6s %8s %9s %7s %6s %7s   %s\n", "model", "n", "accuracy", "precision", "recall", "f1", "auc", "tp fp tn fn");
    for (const auto& [name, m] : rows) {
      std::printf("%-10s %6lld %8.4f %9.4f %7.4f %6.4f %7.4f   %lld %lld %lld %lld\n", name.c_str(), static_cast<long long>(m.n),
                  m.accuracy, m.precision, m.recall, m.f1, m.auc, static_cast<long long>(m.tp), static_cast<long long>(m.fp),
                  static_cast<long long>(m.tn), static_cast<long long>(m.fn));
    }
  }
  return kExitOk;
}

}  // namespace

void register_evaluate(CLI::App& root, GlobalOptions& g, int* exit_code) {
  auto o = std::make_shared<EvaluateOptions>();
  CLI::App* cmd = root.add_subcommand("evaluate", "Accuracy, precision, recall, F1, ROC AUC per model and for the ensemble");
  cmd->add_option("dataset", o->dir, "Folder in the seed layout DIR/<split>/{real,fake}/*.{jpg,jpeg,png}")->required();
  cmd->add_option("--split", o->split, "Which split to evaluate");
  cmd->add_flag("--detect", o->detect, "Images are whole photos: detect and align the largest face first");
  cmd->add_flag("--json", o->json, "Print the metrics as JSON (schema dfmon.evaluate/1)");
  cmd->add_option("--threshold", o->threshold, "P(fake) at or above which an image counts as fake")->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--limit", o->limit, "At most N images per class (0 = all)");
  cmd->add_option("--scores", o->scores_path, "Also write every image's scores as JSON lines to this file");
  cmd->footer("Exit codes: 0 ok, 2 bad layout or unreadable models.");
  cmd->callback([&g, o, exit_code] { *exit_code = run(g, *o); });
}

}  // namespace dfm::app
