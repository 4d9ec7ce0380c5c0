// SHA-256 of files and buffers: model identity in reports and `dfmon models`.
#pragma once

#include <string>

#include "dfm/common/status.h"

namespace dfm {

std::string sha256_hex(const std::string& data);
Result<std::string> sha256_file(const std::string& path);

}  // namespace dfm
