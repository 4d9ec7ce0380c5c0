// dfmon: deepfake face monitor. Thin CLI over the libraries; each subcommand lives in its own file.
#include <cstdio>

#include <CLI/CLI.hpp>

#include "app.h"

int main(int argc, char** argv) {
  using namespace dfm::app;
  CLI::App root{"dfmon — detects deepfaked faces in video files, live streams and images.\n"
                "Scores are P(fake) in [0,1]: the mean of a ResNet-18 and a ViT's softmax outputs."};
  root.set_version_flag("--version", DFM_VERSION);
  root.require_subcommand(1);
  root.fallthrough();
  GlobalOptions g;
  root.add_option("--models", g.models_dir, "Directory with model .onnx files and their .json cards (default: bundled)");
  root.add_option("--backend", g.backend, "Inference backend: auto|cuda|opencl|cpu (falls back to cpu with a warning)")
      ->check(CLI::IsMember({"auto", "cuda", "opencl", "cpu"}));
  root.add_option("--threads", g.threads, "Threads for inference (0 = all cores)");
  root.add_flag("--sequential-models", g.sequential_models,
                "Run the ensemble's models one after another on all threads (default: side by side, threads split)");
  root.add_flag("--opencv-layers", g.opencv_layers,
                "Run convolutions and fully-connected layers on OpenCV's own kernels instead of OpenBLAS (for comparison)");
  root.add_option("--log-level", g.log_level, "trace|debug|info|warn|error|off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));

  root.footer(
      "Run `dfmon SUBCOMMAND --help` for each subcommand's options and exit codes (also in `man dfmon`).\n"
      "Exit codes: 0 ok (audit: all real), 1 audit found a fake, 2 bad arguments, input, config or models.\n"
      "Environment: DFMON_MODELS (model directory), DFMON_LANDMARKS (dlib 68-point landmark model).\n"
      "Files: models in <prefix>/share/dfmon/models (or the source tree's models/), service config\n"
      "/etc/dfmon/monitor.yaml (packaged). Formats: docs/interfaces.md; README.md for an overview.");

  int exit_code = kExitOk;
  // Explicit registration table: the order here is the order in --help.
  const Register commands[] = {register_audit, register_watch, register_classify, register_evaluate, register_models, register_config, register_dataset, register_bench, register_worker};
  for (Register r : commands) r(root, g, &exit_code);

  try {
    root.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = root.exit(e);
    return rc == 0 ? 0 : kExitError;
  }
  return exit_code;
}
