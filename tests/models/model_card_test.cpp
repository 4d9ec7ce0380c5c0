// Model card parsing: a valid card, and every validation error names the file and the key.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "dfm/models/models.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace dfm {
namespace {

json valid_card() {
  return json::parse(R"({
    "schema": "dfmon.model_card/1",
    "name": "resnet18",
    "architecture": "resnet18",
    "file": "resnet18.onnx",
    "input": {"width": 224, "height": 192, "channels": 3, "color": "RGB", "layout": "NCHW",
              "scale": 0.00392156862745098, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
              "max_batch": 4},
    "output": {"type": "logits", "labels": ["real", "fake"], "fake_index": 1},
    "metrics": {"val": {"auc": 0.9}}
  })");
}

// Parses `card` and expects an InvalidArgument whose message names the source and `key`.
void expect_error(const json& card, const std::string& key, const std::string& dump_override = "") {
  const std::string text = dump_override.empty() ? card.dump() : dump_override;
  auto r = parse_model_card(text, "cards/m.json");
  ASSERT_FALSE(r.ok()) << "accepted a card with a bad " << key << ": " << text;
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << r.status().to_string();
  EXPECT_NE(r.status().message().find("cards/m.json"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find(key), std::string::npos) << "message does not name " << key << ": " << r.status().message();
}

TEST(ModelCard, ParsesValidCard) {
  const std::string text = valid_card().dump();
  auto r = parse_model_card(text, "resnet18.json");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const ModelCard& c = *r;
  EXPECT_EQ(c.name, "resnet18");
  EXPECT_EQ(c.architecture, "resnet18");
  EXPECT_EQ(c.file, "resnet18.onnx");
  EXPECT_EQ(c.width, 224);
  EXPECT_EQ(c.height, 192);
  EXPECT_EQ(c.color, "RGB");
  EXPECT_DOUBLE_EQ(c.scale, 1.0 / 255.0);
  EXPECT_EQ(c.mean, (std::vector<double>{0.485, 0.456, 0.406}));
  EXPECT_EQ(c.std, (std::vector<double>{0.229, 0.224, 0.225}));
  EXPECT_EQ(c.max_batch, 4);
  EXPECT_EQ(c.output_type, "logits");
  EXPECT_EQ(c.labels, (std::vector<std::string>{"real", "fake"}));
  EXPECT_EQ(c.fake_index, 1);
  EXPECT_EQ(c.raw_json, text);
}

TEST(ModelCard, OptionalFieldsTakeDefaults) {
  json j = valid_card();
  j.erase("schema");
  j.erase("architecture");
  j["input"].erase("color");
  j["input"].erase("scale");
  j["input"].erase("max_batch");
  j["input"].erase("channels");
  j["input"].erase("layout");
  j["output"].erase("type");
  auto r = parse_model_card(j.dump(), "m.json");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->color, "RGB");
  EXPECT_DOUBLE_EQ(r->scale, 1.0 / 255.0);
  EXPECT_EQ(r->max_batch, 0);
  EXPECT_EQ(r->output_type, "logits");
}

TEST(ModelCard, MetricsAreTheCardsMeasuredQualityOrNull) {
  json j = valid_card();
  auto r = parse_model_card(j.dump(), "m.json");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(model_card_metrics(*r), json({{"val", {{"auc", 0.9}}}}));
  for (const json& metrics : {json(nullptr), json("0.9"), json::array({0.9})}) {  // not an object: none
    j["metrics"] = metrics;
    r = parse_model_card(j.dump(), "m.json");
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_TRUE(model_card_metrics(*r).is_null()) << metrics;
  }
  j.erase("metrics");
  r = parse_model_card(j.dump(), "m.json");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE(model_card_metrics(*r).is_null());
}

TEST(ModelCard, QualitySummaryReadsTheCardsFiguresOrSaysNothing) {
  const json shipped = {{"synthetic_val", {{"auc", 0.8312}}},
                        {"real_deepfakes", {{"video_auc", 0.502}, {"n_videos", 46}}}};
  EXPECT_EQ(model_quality_summary(shipped), "synthetic val AUC 0.83 · real deepfakes video AUC 0.50 (46 videos)");
  EXPECT_EQ(model_quality_summary({{"val", {{"auc", 0.65}}}}), "synthetic val AUC 0.65");  // train.py's own card
  EXPECT_EQ(model_quality_summary({{"real_deepfakes", {{"video_auc", 0.9}}}}), "real deepfakes video AUC 0.90");
  // Free-form: wrong types and shapes are skipped, not thrown on.
  for (const json& m : {json(nullptr), json("x"), json::array({1}), json({{"val", 0.9}}), json({{"val", {{"auc", "0.9"}}}}),
                        json({{"real_deepfakes", {{"video_auc", nullptr}}}})}) {
    EXPECT_EQ(model_quality_summary(m), "") << m;
  }
  EXPECT_EQ(model_quality_summary({{"real_deepfakes", {{"video_auc", 0.5}, {"n_videos", "46"}}}}), "real deepfakes video AUC 0.50");
}

TEST(ModelCard, RecordedRealDeepfakeAucPrefersTheEnsembleFigure) {
  // As the bundled cards: each model's figure and the pair's.
  const json a = {{"real_deepfakes", {{"video_auc", 0.502}}}, {"ensemble_real_deepfakes_video_auc", 0.512}};
  json b = {{"real_deepfakes", {{"video_auc", 0.518}}}, {"ensemble_real_deepfakes_video_auc", 0.512}};
  EXPECT_DOUBLE_EQ(recorded_real_deepfake_auc({a, b}), 0.512);
  EXPECT_DOUBLE_EQ(recorded_real_deepfake_auc({a}), 0.502);  // alone, a model is not an ensemble
  // Paired with a model not measured with it (no or another ensemble figure): the better single model.
  b.erase("ensemble_real_deepfakes_video_auc");
  EXPECT_DOUBLE_EQ(recorded_real_deepfake_auc({a, b}), 0.518);
  b["ensemble_real_deepfakes_video_auc"] = 0.7;
  EXPECT_DOUBLE_EQ(recorded_real_deepfake_auc({a, b}), 0.518);
  EXPECT_DOUBLE_EQ(recorded_real_deepfake_auc({b, {{"real_deepfakes", {{"video_auc", 0.61}}}}}), 0.61);
  EXPECT_TRUE(std::isnan(recorded_real_deepfake_auc({json(nullptr), {{"val", {{"auc", 0.9}}}}, json("x")})));
  EXPECT_TRUE(std::isnan(recorded_real_deepfake_auc({{{"real_deepfakes", {{"video_auc", "0.9"}}}}})));  // not a number

  EXPECT_NE(model_quality_caution(0.512).find("video AUC of only 0.51 "), std::string::npos);
  EXPECT_EQ(model_quality_caution(kTrustedRealDeepfakeAuc), "");
  EXPECT_EQ(model_quality_caution(0.93), "");
  EXPECT_EQ(model_quality_caution(std::nan("")), "");
}

TEST(ModelCard, AcceptsBgrProbabilitiesAndOtherFakeIndex) {
  json j = valid_card();
  j["input"]["color"] = "BGR";
  j["output"]["type"] = "probabilities";
  j["output"]["labels"] = {"fake", "real", "other"};
  j["output"]["fake_index"] = 0;
  auto r = parse_model_card(j.dump(), "m.json");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->color, "BGR");
  EXPECT_EQ(r->output_type, "probabilities");
  EXPECT_EQ(r->fake_index, 0);
  EXPECT_EQ(r->labels.size(), 3u);
}

TEST(ModelCard, BadJsonIsAnErrorNamingSource) {
  auto r = parse_model_card("{\"name\": \"x\",", "cards/m.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("cards/m.json"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("JSON"), std::string::npos) << r.status().message();
  EXPECT_FALSE(parse_model_card("", "cards/m.json").ok());
  expect_error(json::array({1, 2}), "cards/m.json");  // valid JSON, not an object
}

TEST(ModelCard, EveryMissingRequiredKeyIsNamed) {
  const std::vector<std::pair<std::string, std::string>> required = {
      {"", "name"},          {"", "file"},        {"", "input"},         {"", "output"},
      {"input", "width"},    {"input", "height"}, {"input", "mean"},     {"input", "std"},
      {"output", "labels"},  {"output", "fake_index"}};
  for (const auto& [parent, key] : required) {
    json j = valid_card();
    if (parent.empty()) j.erase(key); else j[parent].erase(key);
    expect_error(j, parent.empty() ? key : parent + "." + key);
  }
  json null_name = valid_card();
  null_name["name"] = nullptr;
  expect_error(null_name, "name");
}

TEST(ModelCard, WrongTypesAreNamed) {
  json j = valid_card();
  j["input"]["width"] = "wide";
  expect_error(j, "input.width");
  j = valid_card();
  j["input"]["mean"] = "0.5";
  expect_error(j, "input.mean");
  j = valid_card();
  j["output"]["labels"] = "real,fake";
  expect_error(j, "output.labels");
  j = valid_card();
  j["name"] = 5;
  expect_error(j, "name");
  j = valid_card();
  j["input"] = "224x224";
  expect_error(j, "input");
}

TEST(ModelCard, WrongMeanOrStdLengthIsNamed) {
  json j = valid_card();
  j["input"]["mean"] = {0.5, 0.5};
  expect_error(j, "input.mean");
  j["input"]["mean"] = {0.5, 0.5, 0.5, 0.5};
  expect_error(j, "input.mean");
  j = valid_card();
  j["input"]["std"] = {0.2};
  expect_error(j, "input.std");
  j = valid_card();
  j["input"]["std"] = {0.2, 0.0, 0.2};  // division by zero in preprocessing
  expect_error(j, "input.std");
  j["input"]["std"] = {0.2, -0.1, 0.2};
  expect_error(j, "input.std");
}

TEST(ModelCard, FakeIndexOutOfRangeIsNamed) {
  json j = valid_card();
  j["output"]["fake_index"] = 2;
  expect_error(j, "output.fake_index");
  j["output"]["fake_index"] = -1;
  expect_error(j, "output.fake_index");
}

TEST(ModelCard, BadColorAndOtherBadValuesAreNamed) {
  json j = valid_card();
  j["input"]["color"] = "YUV";
  expect_error(j, "input.color");
  j["input"]["color"] = "rgb";  // case matters: the card format says RGB | BGR
  expect_error(j, "input.color");
  j = valid_card();
  j["input"]["layout"] = "NHWC";
  expect_error(j, "input.layout");
  j = valid_card();
  j["input"]["channels"] = 1;
  expect_error(j, "input.channels");
  j = valid_card();
  j["input"]["scale"] = 0;
  expect_error(j, "input.scale");
  j = valid_card();
  j["input"]["width"] = 4;
  expect_error(j, "input.width");
  j = valid_card();
  j["input"]["height"] = 100000;
  expect_error(j, "input.width/height");
  j = valid_card();
  j["input"]["max_batch"] = -1;
  expect_error(j, "input.max_batch");
  j = valid_card();
  j["output"]["type"] = "scores";
  expect_error(j, "output.type");
  j = valid_card();
  j["output"]["labels"] = {"fake"};
  j["output"]["fake_index"] = 0;
  expect_error(j, "output.labels");
  j = valid_card();
  j["schema"] = "dfmon.model_card/2";
  expect_error(j, "schema");
}

TEST(ModelCard, LoadFromFileSetsCardPath) {
  const fs::path dir = fs::path(DFM_TEST_TMP) / "models_card_load";
  fs::create_directories(dir);
  const fs::path path = dir / "resnet18.json";
  { std::ofstream(path) << valid_card().dump(2); }
  auto r = load_model_card(path.string());
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->card_path, path.string());
  EXPECT_EQ(r->name, "resnet18");
  // Errors from a file name the file.
  json bad = valid_card();
  bad["input"]["mean"] = {1};
  { std::ofstream(path) << bad.dump(); }
  auto e = load_model_card(path.string());
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find(path.string()), std::string::npos) << e.status().message();
  EXPECT_NE(e.status().message().find("input.mean"), std::string::npos) << e.status().message();
}

TEST(ModelCard, LoadMissingFileIsNotFoundNamingPath) {
  auto r = load_model_card("/nonexistent/card.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNotFound);
  EXPECT_NE(r.status().message().find("/nonexistent/card.json"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace dfm
