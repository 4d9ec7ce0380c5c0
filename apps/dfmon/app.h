// Shared pieces of the dfmon subcommands: global options, model/detector set-up, JSON output.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "dfm/common/status.h"
#include "dfm/detectors/face.h"
#include "dfm/models/models.h"

namespace dfm {
struct AuditOptions;
}

namespace dfm::app {

// Exit codes shared by every subcommand (docs/interfaces.md).
constexpr int kExitOk = 0;
constexpr int kExitFake = 1;
constexpr int kExitError = 2;

struct GlobalOptions {
  std::string models_dir;  // empty = bundled models
  std::string backend = "auto";
  int threads = 0;         // 0 = OpenCV's default (all cores)
  bool sequential_models = false;  // ModelSetOptions::parallel = false
  bool opencv_layers = false;      // ModelSetOptions::blas_layers = false
  std::string log_level = "info";
};

// Each subcommand registers itself on the root app and sets *exit_code when it runs.
using Register = void (*)(CLI::App& root, GlobalOptions& global, int* exit_code);

void register_classify(CLI::App& root, GlobalOptions& g, int* exit_code);
void register_evaluate(CLI::App& root, GlobalOptions& g, int* exit_code);
void register_models(CLI::App& root, GlobalOptions& g, int* exit_code);
void register_config(CLI::App& root, GlobalOptions& g, int* exit_code);
void register_dataset(CLI::App& root, GlobalOptions& g, int* exit_code);
void register_audit(CLI::App& root, GlobalOptions& g, int* exit_code);
void register_watch(CLI::App& root, GlobalOptions& g, int* exit_code);
void register_bench(CLI::App& root, GlobalOptions& g, int* exit_code);
void register_worker(CLI::App& root, GlobalOptions& g, int* exit_code);

// `dfmon audit --enqueue URL` (cmd_worker.cpp): one Redis job per expanded input; prints the job ids.
struct EnqueueItem {
  std::string source;
  std::string error;  // found while expanding the inputs: reported, not enqueued
};
int enqueue_audit_jobs(const GlobalOptions& g, const std::string& url, const std::vector<EnqueueItem>& items,
                       const AuditOptions& options, const std::string& out_dir, bool json);

// Applies --log-level and --threads; returns an error for bad values.
Status apply_globals(const GlobalOptions& g);

// Which models to load; empty fields fall back to the global options, then to the bundled pair.
struct ModelsRequest {
  std::string dir;                   // "" = --models, else the bundled models
  std::vector<std::string> names;    // "" = resnet18+vit for the bundled dir, every card for another dir
  std::vector<double> weights;       // "" = equal
  int batch = 8;
  std::optional<Backend> backend;    // unset = --backend
  int threads = 0;                   // inference threads when --threads is not given; 0 = every core
};

// Resolves the model directory and loads the ensemble.
Result<std::shared_ptr<const ModelSet>> load_models(const GlobalOptions& g, const ModelsRequest& request = {});

// Prints an error line to stderr ("dfmon: <message>") and returns kExitError.
int fail(const Status& st);

// {"resnet18": 0.91, "vit": 0.80}
nlohmann::json per_model_json(const ModelSet& set, const std::vector<float>& per_model);

// Rounds to 6 decimals so JSON stays readable and stable across runs.
double round6(double v);

}  // namespace dfm::app
