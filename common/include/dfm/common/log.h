// Logging setup: one spdlog logger per stream or component, so every line names its stream.
#pragma once

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

#include "dfm/common/status.h"

namespace dfm {

// Sets the global level from "trace|debug|info|warn|error|off"; logs go to stderr.
Status init_logging(const std::string& level);

// A logger whose lines carry "[name]"; created once, shared afterwards.
std::shared_ptr<spdlog::logger> get_logger(const std::string& name);

}  // namespace dfm
