// `dfmon config check FILE`: validate a monitor config and print it fully resolved.
#include <cstdio>

#include "app.h"
#include "dfm/config/config.h"

namespace dfm::app {

void register_config(CLI::App& root, GlobalOptions& g, int* exit_code) {
  CLI::App* cmd = root.add_subcommand("config", "Work with `dfmon watch` config files");
  cmd->require_subcommand(1);
  struct Opts {
    std::string file;
    bool json = false;
    bool show_secrets = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* check = cmd->add_subcommand("check", "Validate a config and print the resolved version (every default filled in)");
  check->add_option("file", o->file, "YAML config")->required();
  check->add_flag("--json", o->json, "Print the resolved config as JSON");
  check->add_flag("--show-secrets", o->show_secrets, "Print the token instead of redacting it");
  check->footer("Exit codes: 0 valid, 2 invalid (the message names the key and the stream).");
  check->callback([&g, o, exit_code] {
    if (auto st = apply_globals(g); !st.ok()) {
      *exit_code = fail(st);
      return;
    }
    auto cfg = config::parse_config_file(o->file);
    if (!cfg.ok()) {
      *exit_code = fail(cfg.status());
      return;
    }
    config::DumpOptions d;
    d.json = o->json;
    d.redact_secrets = !o->show_secrets;
    std::printf("%s", config::dump_config(*cfg, d).c_str());
    std::fflush(stdout);
    *exit_code = kExitOk;
  });
}

}  // namespace dfm::app
