// stderr logging with the component/stream name on every line.
#include "dfm/common/log.h"

#include <mutex>

#include <spdlog/sinks/stdout_color_sinks.h>

namespace dfm {

namespace {
std::mutex g_mu;
spdlog::level::level_enum g_level = spdlog::level::info;
}  // namespace

Status init_logging(const std::string& level) {
  auto lvl = spdlog::level::from_str(level);
  // from_str maps unknown strings to "off"; only accept that for the literal "off".
  if (lvl == spdlog::level::off && level != "off") {
    return InvalidArgument("--log-level: unknown level \"" + level + "\" (trace|debug|info|warn|error|off)");
  }
  std::lock_guard<std::mutex> lock(g_mu);
  g_level = lvl;
  spdlog::set_level(lvl);
  spdlog::apply_all([lvl](const std::shared_ptr<spdlog::logger>& l) { l->set_level(lvl); });
  return Status::Ok();
}

std::shared_ptr<spdlog::logger> get_logger(const std::string& name) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (auto existing = spdlog::get(name)) return existing;
  auto logger = spdlog::stderr_color_mt(name);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v");
  logger->set_level(g_level);
  return logger;
}

}  // namespace dfm
