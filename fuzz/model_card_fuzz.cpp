// Fuzz target: model card JSON text -> parse_model_card (JSON parse + typed reads + validation), the same
// function ModelSet::load uses before it looks at any ONNX file.
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "dfm/models/models.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto card = dfm::parse_model_card(text, "fuzz.json");
  if (!card.ok()) return 0;
  // What a validated card promises to the preprocessing code.
  const dfm::ModelCard& c = *card;
  if (c.mean.size() != 3 || c.std.size() != 3 || c.labels.size() < 2) std::abort();
  if (c.fake_index < 0 || c.fake_index >= static_cast<int>(c.labels.size())) std::abort();
  if (c.width < 8 || c.height < 8 || c.width > 4096 || c.height > 4096 || !(c.scale > 0)) std::abort();
  // Integer fields hold the number the card wrote (no wrap-around, no truncation).
  const auto j = nlohmann::json::parse(c.raw_json);
  const auto same = [](const nlohmann::json& v, int x) { return v.is_number() && v.get<double>() == x; };
  if (!same(j["input"]["width"], c.width) || !same(j["input"]["height"], c.height)) std::abort();
  if (!same(j["output"]["fake_index"], c.fake_index)) std::abort();
  if (j["input"].contains("max_batch") && !j["input"]["max_batch"].is_null() &&
      !same(j["input"]["max_batch"], c.max_batch)) {
    std::abort();
  }
  return 0;
}
