// Small helpers shared by the pure-logic stages (tracker, scoring): time slack and numbers in messages.
#pragma once

#include <sstream>
#include <string>

namespace dfm::stage_util {

// Slack for comparing times built from sums of frame periods (0.2 * 5 != 1.0 exactly).
constexpr double kTimeEps = 1e-9;

// Shortest round-trip-ish text of a number for option error messages ("0.8", "1e-05").
inline std::string num(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

}  // namespace dfm::stage_util
