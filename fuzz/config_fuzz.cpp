// Fuzz target: `dfmon watch` YAML config text -> parse_config_string (yaml-cpp + typed reader + validate),
// and for accepted configs the resolved dumps (`dfmon config check`), whose YAML must parse back to the same config.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "dfm/config/config.h"

namespace {

// YAML text must be Unicode; for other bytes the dump is lossy by design (U+FFFD), so no round trip then.
bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = s[i];
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
      n = 0, cp = c;
    } else if ((c >> 5) == 0x6) {
      n = 1, cp = c & 0x1F;
    } else if ((c >> 4) == 0xE) {
      n = 2, cp = c & 0x0F;
    } else if ((c >> 3) == 0x1E) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (s.size() - i <= n) return false;
    for (size_t k = 1; k <= n; ++k) {
      const unsigned char cc = s[i + k];
      if ((cc >> 6) != 0x2) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static const uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;  // overlong, surrogate
    i += n + 1;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  // A fixed base_dir keeps relative paths independent of where the fuzzer runs.
  auto parsed = dfm::config::parse_config_string(text, "fuzz.yaml", "/fuzz");
  if (!parsed.ok()) return 0;
  (void)dfm::config::dump_config(*parsed, {/*json=*/true, /*redact_secrets=*/true});
  (void)dfm::config::to_json(*parsed);
  const std::string yaml = dfm::config::dump_config(*parsed);
  if (!valid_utf8(text)) return 0;
  // Round trip: the resolved dump is a valid config with the same meaning (tests/config/dump_test.cpp).
  auto again = dfm::config::parse_config_string(yaml, "dump.yaml", "/fuzz");
  if (!again.ok() || *again != *parsed) std::abort();
  return 0;
}
