// End-to-end tests of the dfmon CLI: runs build/bin/dfmon as a subprocess and checks stdout JSON,
// stderr messages and exit codes (0 ok, 2 error).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "dfm/common/sha256.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int kTimeoutS = 90;  // per dfmon invocation

struct CliRun {
  int code = -1;
  std::string out, err;
  std::vector<json> json_lines() const {  // every stdout line that parses as JSON
    std::vector<json> v;
    std::istringstream in(out);
    std::string line;
    while (std::getline(in, line)) {
      auto j = json::parse(line, nullptr, false);
      if (!j.is_discarded()) v.push_back(j);
    }
    return v;
  }
};

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

fs::path scratch(const std::string& name) {
  fs::path d = fs::path(DFM_TEST_TMP) / ("apps_" + name);
  std::error_code ec;
  fs::remove_all(d, ec);
  fs::create_directories(d);
  return d;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs dfmon with `args` under `timeout`; stdout captured via popen, stderr via a file.
CliRun dfmon(const std::vector<std::string>& args) {
  static int counter = 0;
  const fs::path err = fs::path(DFM_TEST_TMP) / ("apps_stderr_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  std::string cmd = "timeout " + std::to_string(kTimeoutS) + " " + quote(DFM_BIN);
  for (const auto& a : args) cmd += " " + quote(a);
  cmd += " 2>" + quote(err.string());
  CliRun r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) {
    ADD_FAILURE() << "popen failed: " << cmd;
    return r;
  }
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = read_file(err);
  std::error_code ec;
  fs::remove(err, ec);
  EXPECT_NE(r.code, 124) << "dfmon timed out after " << kTimeoutS << " s: " << cmd;
  return r;
}

std::string describe(const CliRun& r) { return "exit " + std::to_string(r.code) + "\nstdout:\n" + r.out + "\nstderr:\n" + r.err; }

// tiny_a + tiny_b only (no expected.json), so the directory holds nothing but the two models.
fs::path clean_models(const std::string& name) {
  const fs::path dir = scratch(name);
  for (const char* n : {"tiny_a", "tiny_b"}) {
    for (const char* ext : {".onnx", ".json"}) {
      fs::copy_file(fs::path(DFM_TINY_MODELS) / (std::string(n) + ext), dir / (std::string(n) + ext));
    }
  }
  return dir;
}

json expected() {
  std::ifstream in(fs::path(DFM_TINY_MODELS) / "expected.json");
  EXPECT_TRUE(in.good()) << "run with the tiny_models fixture";
  return in ? json::parse(in) : json::object();
}

std::string sample(const std::string& rel) { return (fs::path(DFM_SOURCE_DIR) / "samples" / rel).string(); }

// BGR image with a colour per index, written losslessly.
fs::path write_png(const fs::path& path, const cv::Scalar& bgr, int size = 224) {
  fs::create_directories(path.parent_path());
  cv::Mat img(size, size, CV_8UC3, bgr);
  cv::rectangle(img, cv::Rect(size / 4, size / 4, size / 2, size / 2), cv::Scalar(255, 255, 255) - bgr, cv::FILLED);
  EXPECT_TRUE(cv::imwrite(path.string(), img)) << path;
  return path;
}

TEST(CliClassify, CropPrintsPerModelScoresAndTheirMean) {
  const fs::path models = clean_models("classify_crop_models");
  const fs::path dir = scratch("classify_crop");
  const json e = expected();
  ASSERT_TRUE(e.contains("inputs"));
  // Two of the reference inputs as lossless PNGs: scores must match PyTorch's.
  std::vector<std::string> files;
  std::vector<size_t> idx = {0, 3};  // black, skin
  for (size_t i : idx) {
    const auto rgb = e["inputs"][i]["rgb"];
    files.push_back((dir / (e["inputs"][i]["name"].get<std::string>() + ".png")).string());
    cv::Mat img(224, 224, CV_8UC3, cv::Scalar(rgb[2].get<int>(), rgb[1].get<int>(), rgb[0].get<int>()));
    ASSERT_TRUE(cv::imwrite(files.back(), img));
  }
  CliRun r = dfmon({"--models", models.string(), "classify", "--crop", files[0], files[1]});
  ASSERT_EQ(r.code, 0) << describe(r);
  const auto lines = r.json_lines();
  ASSERT_EQ(lines.size(), 2u) << describe(r);
  for (size_t k = 0; k < lines.size(); ++k) {
    const json& j = lines[k];
    EXPECT_EQ(j.at("image"), files[k]);
    EXPECT_EQ(j.at("face"), 0);
    ASSERT_TRUE(j.at("models").is_object()) << j;
    ASSERT_EQ(j["models"].size(), 2u) << j;
    const double a = j["models"].at("tiny_a"), b = j["models"].at("tiny_b"), ens = j.at("ensemble");
    EXPECT_NEAR(ens, (a + b) / 2, 1e-5) << j;
    EXPECT_EQ(j.at("label"), ens >= 0.5 ? "fake" : "real") << j;
    EXPECT_EQ(j.at("bbox"), json({0, 0, 224, 224}));
    EXPECT_NEAR(a, e["models"]["tiny_a"]["probs"][idx[k]][1].get<double>(), 2e-4) << j;
    EXPECT_NEAR(b, e["models"]["tiny_b"]["probs"][idx[k]][1].get<double>(), 2e-4) << j;
  }
}

TEST(CliClassify, ThresholdChangesTheLabel) {
  const fs::path models = clean_models("classify_threshold_models");
  const fs::path crop = write_png(scratch("classify_threshold") / "c.png", cv::Scalar(40, 90, 160));
  for (const char* th : {"0", "1"}) {
    CliRun r = dfmon({"--models", models.string(), "classify", "--crop", "--threshold", th, crop.string()});
    ASSERT_EQ(r.code, 0) << describe(r);
    auto lines = r.json_lines();
    ASSERT_EQ(lines.size(), 1u) << describe(r);
    const double ens = lines[0]["ensemble"];
    EXPECT_EQ(lines[0]["label"], std::string(th) == "0" ? "fake" : (ens >= 1.0 ? "fake" : "real")) << lines[0];
  }
}

TEST(CliClassify, DetectsOneFaceInBiden) {
  const fs::path models = clean_models("classify_biden_models");
  CliRun r = dfmon({"--models", models.string(), "classify", sample("images/biden.jpg")});
  ASSERT_EQ(r.code, 0) << describe(r);
  const auto lines = r.json_lines();
  ASSERT_EQ(lines.size(), 1u) << describe(r);
  const json& j = lines[0];
  EXPECT_EQ(j.at("face"), 0);
  ASSERT_EQ(j.at("bbox").size(), 4u);
  const int x = j["bbox"][0], y = j["bbox"][1], w = j["bbox"][2], h = j["bbox"][3];
  EXPECT_GE(x, 0);
  EXPECT_GE(y, 0);
  EXPECT_GT(w, 970 / 10);  // biden.jpg is 970 px wide
  EXPECT_LE(x + w, 970);
  EXPECT_GT(h, 0);
  const double ens = j.at("ensemble");
  EXPECT_GE(ens, 0.0);
  EXPECT_LE(ens, 1.0);
  EXPECT_NEAR(ens, (j["models"]["tiny_a"].get<double>() + j["models"]["tiny_b"].get<double>()) / 2, 1e-5);
}

TEST(CliClassify, TwoPeopleGiveTwoLines) {
  const fs::path models = clean_models("classify_two_models");
  CliRun r = dfmon({"--models", models.string(), "classify", sample("images/two_people.jpg")});
  ASSERT_EQ(r.code, 0) << describe(r);
  const auto lines = r.json_lines();
  ASSERT_EQ(lines.size(), 2u) << describe(r);
  EXPECT_EQ(lines[0]["face"], 0);
  EXPECT_EQ(lines[1]["face"], 1);
}

void expect_error_line(const CliRun& r, const std::string& path) {
  EXPECT_EQ(r.code, 2) << describe(r);
  bool found = false;
  for (const auto& j : r.json_lines()) {
    if (j.contains("error") && j.value("image", "") == path) {
      found = true;
      EXPECT_FALSE(j["error"].get<std::string>().empty());
    }
  }
  EXPECT_TRUE(found) << "no JSON error line naming " << path << "\n" << describe(r);
  EXPECT_NE(r.err.find(path), std::string::npos) << "stderr does not name " << path << "\n" << describe(r);
}

TEST(CliClassify, MissingFileIsExit2WithErrorLine) {
  const fs::path models = clean_models("classify_missing_models");
  const std::string path = (scratch("classify_missing") / "nope.jpg").string();
  CliRun r = dfmon({"--models", models.string(), "classify", path});
  expect_error_line(r, path);
}

TEST(CliClassify, TextFileNamedJpgIsExit2WithErrorLine) {
  const fs::path models = clean_models("classify_text_models");
  const fs::path path = scratch("classify_text") / "photo.jpg";
  { std::ofstream(path) << "not an image\n"; }
  CliRun r = dfmon({"--models", models.string(), "classify", path.string()});
  expect_error_line(r, path.string());
}

TEST(CliClassify, NoFaceIsExit2WithErrorLine) {
  const fs::path models = clean_models("classify_dogs_models");
  CliRun r = dfmon({"--models", models.string(), "classify", sample("images/dogs.jpg")});
  expect_error_line(r, sample("images/dogs.jpg"));
}

TEST(CliClassify, GoodAndBadInputsTogetherStillScoreTheGoodOne) {
  const fs::path models = clean_models("classify_mixed_models");
  const fs::path dir = scratch("classify_mixed");
  const fs::path good = write_png(dir / "good.png", cv::Scalar(10, 20, 30));
  const std::string bad = (dir / "missing.png").string();
  CliRun r = dfmon({"--models", models.string(), "classify", "--crop", bad, good.string()});
  expect_error_line(r, bad);
  bool scored = false;
  for (const auto& j : r.json_lines()) scored = scored || (j.value("image", "") == good.string() && j.contains("ensemble"));
  EXPECT_TRUE(scored) << describe(r);
}

TEST(CliModels, CorruptOnnxIsExit2WithClearMessage) {
  const fs::path dir = scratch("corrupt_models");
  fs::copy_file(fs::path(DFM_TINY_MODELS) / "tiny_a.json", dir / "tiny_a.json");
  { std::ofstream(dir / "tiny_a.onnx", std::ios::binary) << "garbage, not an ONNX protobuf"; }
  const fs::path crop = write_png(scratch("corrupt_crop") / "c.png", cv::Scalar(1, 2, 3));
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--models", dir.string(), "classify", "--crop", crop.string()},
           {"--models", dir.string(), "models"},
       }) {
    CliRun r = dfmon(args);
    EXPECT_EQ(r.code, 2) << describe(r);
    EXPECT_NE(r.err.find((dir / "tiny_a.onnx").string()), std::string::npos) << describe(r);
    EXPECT_TRUE(r.json_lines().empty() || !r.json_lines()[0].contains("ensemble")) << describe(r);
  }
}

TEST(CliModels, MissingModelsDirIsExit2) {
  CliRun r = dfmon({"--models", "/nonexistent/models", "models"});
  EXPECT_EQ(r.code, 2) << describe(r);
  EXPECT_NE(r.err.find("/nonexistent/models"), std::string::npos) << describe(r);
}

TEST(CliModels, JsonListsBothModelsWithHashesAndSelfCheck) {
  const fs::path models = clean_models("models_json");
  CliRun r = dfmon({"--models", models.string(), "models", "--json"});
  ASSERT_EQ(r.code, 0) << describe(r);
  json j = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << describe(r);
  EXPECT_EQ(j.at("backend"), "cpu");
  ASSERT_EQ(j.at("models").size(), 2u);
  std::vector<std::string> names;
  for (const auto& m : j["models"]) {
    names.push_back(m.at("name"));
    auto hash = dfm::sha256_file((models / m.at("file").get<std::string>()).string());
    ASSERT_TRUE(hash.ok());
    EXPECT_EQ(m.at("sha256"), *hash);
    EXPECT_NEAR(m.at("weight").get<double>(), 0.5, 1e-9);
    EXPECT_EQ(m.at("input"), json({224, 224}));
    std::ifstream card_file(models / (m.at("name").get<std::string>() + ".json"));
    EXPECT_EQ(m.at("metrics"), json::parse(card_file).at("metrics"));  // the card's measured quality
    const double p = m.at("selfcheck_p_fake");
    EXPECT_GE(p, 0.0);
    EXPECT_LE(p, 1.0);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"tiny_a", "tiny_b"}));
  EXPECT_EQ(j.at("selfcheck").at("ok"), true);
}

TEST(CliModels, FixtureDirWithExpectedJsonLoadsOnlyTheCards) {
  // The fixture dir also holds expected.json (not a model card); it must not be taken for one.
  CliRun r = dfmon({"--models", DFM_TINY_MODELS, "models", "--json"});
  ASSERT_EQ(r.code, 0) << describe(r);
  json j = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << describe(r);
  ASSERT_EQ(j.at("models").size(), 2u) << j;
}

TEST(CliModels, PlainTextListing) {
  const fs::path models = clean_models("models_text");
  CliRun r = dfmon({"--models", models.string(), "--backend", "cuda", "models"});
  ASSERT_EQ(r.code, 0) << describe(r);
  EXPECT_NE(r.out.find("tiny_a"), std::string::npos) << describe(r);
  EXPECT_NE(r.out.find("tiny_b"), std::string::npos) << describe(r);
  EXPECT_NE(r.out.find("backend cpu"), std::string::npos) << "cuda must fall back to cpu\n" << describe(r);
}

// DIR/val/{real,fake}/ with n coloured PNGs per class.
fs::path make_seed_layout(const std::string& name, int n, bool with_fake = true) {
  const fs::path root = scratch(name);
  for (int i = 0; i < n; ++i) {
    write_png(root / "val" / "real" / ("r" + std::to_string(i) + ".png"), cv::Scalar(20 * i, 200 - 10 * i, 90));
    if (with_fake) write_png(root / "val" / "fake" / ("f" + std::to_string(i) + ".png"), cv::Scalar(250 - 30 * i, 40, 15 * i));
  }
  return root;
}

TEST(CliEvaluate, JsonMetricsForEachModelAndEnsemble) {
  const fs::path models = clean_models("evaluate_models");
  const fs::path ds = make_seed_layout("evaluate_layout", 6);
  const fs::path scores = ds / "scores.jsonl";
  CliRun r = dfmon({"--models", models.string(), "evaluate", ds.string(), "--json", "--scores", scores.string()});
  ASSERT_EQ(r.code, 0) << describe(r);
  json j = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << describe(r);
  EXPECT_EQ(j.at("schema"), "dfmon.evaluate/1");
  EXPECT_EQ(j.at("split"), "val");
  EXPECT_EQ(j.at("skipped"), 0);
  for (const char* name : {"tiny_a", "tiny_b", "ensemble"}) {
    ASSERT_TRUE(j["models"].contains(name)) << j;
    const json& m = j["models"][name];
    EXPECT_EQ(m.at("n"), 12) << name;
    for (const char* k : {"accuracy", "precision", "recall", "f1", "auc"}) {
      ASSERT_TRUE(m.at(k).is_number()) << name << "." << k << " = " << m.at(k);
      EXPECT_GE(m[k].get<double>(), 0.0) << name << "." << k;
      EXPECT_LE(m[k].get<double>(), 1.0) << name << "." << k;
    }
    const json& c = m.at("confusion");
    EXPECT_EQ(c["tp"].get<int>() + c["fp"].get<int>() + c["tn"].get<int>() + c["fn"].get<int>(), 12) << name;
    EXPECT_EQ(c["tp"].get<int>() + c["fn"].get<int>(), 6) << name;  // 6 fakes
  }
  // Cross-check the ensemble's confusion matrix against the per-image scores file.
  std::ifstream in(scores);
  std::string line;
  int lines = 0, tp = 0, fp = 0;
  while (std::getline(in, line)) {
    json s = json::parse(line);
    ++lines;
    const double ens = s.at("ensemble");
    EXPECT_NEAR(ens, (s["models"]["tiny_a"].get<double>() + s["models"]["tiny_b"].get<double>()) / 2, 1e-5);
    if (ens >= 0.5) (s.at("label") == "fake" ? tp : fp)++;
  }
  EXPECT_EQ(lines, 12);
  EXPECT_EQ(j["models"]["ensemble"]["confusion"]["tp"], tp);
  EXPECT_EQ(j["models"]["ensemble"]["confusion"]["fp"], fp);
}

TEST(CliEvaluate, TextTableAndLimit) {
  const fs::path models = clean_models("evaluate_text_models");
  const fs::path ds = make_seed_layout("evaluate_text_layout", 4);
  CliRun r = dfmon({"--models", models.string(), "evaluate", ds.string(), "--limit", "2"});
  ASSERT_EQ(r.code, 0) << describe(r);
  EXPECT_NE(r.out.find("4 images"), std::string::npos) << describe(r);
  for (const char* name : {"tiny_a", "tiny_b", "ensemble"}) EXPECT_NE(r.out.find(name), std::string::npos) << describe(r);
}

TEST(CliEvaluate, BadLayoutIsExit2) {
  const fs::path models = clean_models("evaluate_bad_models");
  const fs::path ds = make_seed_layout("evaluate_bad_layout", 3, /*with_fake=*/false);
  CliRun r = dfmon({"--models", models.string(), "evaluate", ds.string(), "--json"});
  EXPECT_EQ(r.code, 2) << describe(r);
  EXPECT_NE(r.err.find("fake"), std::string::npos) << describe(r);
  CliRun missing = dfmon({"--models", models.string(), "evaluate", (ds / "nope").string()});
  EXPECT_EQ(missing.code, 2) << describe(missing);
  CliRun split = dfmon({"--models", models.string(), "evaluate", ds.string(), "--split", "test"});
  EXPECT_EQ(split.code, 2) << describe(split);
  EXPECT_NE(split.err.find("test"), std::string::npos) << describe(split);
}

TEST(CliConfig, ExampleConfigIsValid) {
  CliRun r = dfmon({"config", "check", (fs::path(DFM_SOURCE_DIR) / "examples" / "monitor.yaml").string()});
  EXPECT_EQ(r.code, 0) << describe(r);
  EXPECT_FALSE(r.out.empty()) << describe(r);
  EXPECT_EQ(r.out.find("change-me"), std::string::npos) << "token must be redacted by default\n" << describe(r);
  CliRun j = dfmon({"config", "check", "--json", (fs::path(DFM_SOURCE_DIR) / "examples" / "monitor.yaml").string()});
  ASSERT_EQ(j.code, 0) << describe(j);
  EXPECT_FALSE(json::parse(j.out, nullptr, false).is_discarded()) << describe(j);
}

TEST(CliConfig, UnknownKeyIsExit2NamingTheKey) {
  const fs::path cfg = scratch("config_bad") / "bad.yaml";
  { std::ofstream(cfg) << "streams:\n  - {id: cam-1, uri: \"rtsp://127.0.0.1:8554/x\"}\nscoring:\n  fsp: 5\n"; }
  CliRun r = dfmon({"config", "check", cfg.string()});
  EXPECT_EQ(r.code, 2) << describe(r);
  EXPECT_NE(r.err.find("fsp"), std::string::npos) << describe(r);
  CliRun missing = dfmon({"config", "check", (cfg.parent_path() / "none.yaml").string()});
  EXPECT_EQ(missing.code, 2) << describe(missing);
}

TEST(CliUsage, UnknownSubcommandOrFlagIsExit2) {
  CliRun sub = dfmon({"frobnicate"});
  EXPECT_EQ(sub.code, 2) << describe(sub);
  CliRun flag = dfmon({"models", "--no-such-flag"});
  EXPECT_EQ(flag.code, 2) << describe(flag);
  CliRun none = dfmon({});
  EXPECT_EQ(none.code, 2) << describe(none);
  CliRun bad_backend = dfmon({"--backend", "tpu", "models"});
  EXPECT_EQ(bad_backend.code, 2) << describe(bad_backend);
  CliRun help = dfmon({"--help"});
  EXPECT_EQ(help.code, 0) << describe(help);
  EXPECT_NE(help.out.find("classify"), std::string::npos) << describe(help);
}

TEST(CliDataset, ExtractThenSynthThenEvaluateEndToEnd) {
  const fs::path models = clean_models("dataset_models");
  const fs::path root = scratch("dataset_e2e");
  const fs::path in = root / "in", out = root / "ds";
  fs::create_directories(in);
  for (const char* f : {"biden.jpg", "obama2.jpg"}) {
    fs::copy_file(sample(std::string("images/") + f), in / f);
  }
  CliRun ex = dfmon({"dataset", "extract", in.string(), "--out", out.string(), "--val-fraction", "0"});
  ASSERT_EQ(ex.code, 0) << describe(ex);
  auto ex_lines = ex.json_lines();
  ASSERT_EQ(ex_lines.size(), 1u) << describe(ex);
  EXPECT_EQ(ex_lines[0].at("crops"), 2);
  EXPECT_EQ(ex_lines[0].at("train"), 2);
  EXPECT_EQ(ex_lines[0].at("groups"), 2);

  CliRun sy = dfmon({"dataset", "synth", out.string(), "--per-real", "2", "--seed", "5"});
  ASSERT_EQ(sy.code, 0) << describe(sy);
  auto sy_lines = sy.json_lines();
  ASSERT_EQ(sy_lines.size(), 1u) << describe(sy);
  EXPECT_EQ(sy_lines[0].at("reals"), 2);
  EXPECT_EQ(sy_lines[0]["self_blended"].get<int>() + sy_lines[0]["swapped"].get<int>(), 4);
  int fakes = 0;
  for (const auto& e : fs::directory_iterator(out / "train" / "fake")) fakes += e.is_regular_file();
  EXPECT_EQ(fakes, 4);

  CliRun ev = dfmon({"--models", models.string(), "evaluate", out.string(), "--split", "train", "--json"});
  ASSERT_EQ(ev.code, 0) << describe(ev);
  json j = json::parse(ev.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << describe(ev);
  EXPECT_EQ(j["models"]["ensemble"]["n"], 6);
}

TEST(CliDataset, BadInputsAreExit2) {
  const fs::path root = scratch("dataset_bad");
  CliRun ex = dfmon({"dataset", "extract", (root / "nope").string(), "--out", (root / "ds").string()});
  EXPECT_EQ(ex.code, 2) << describe(ex);
  EXPECT_NE(ex.err.find((root / "nope").string()), std::string::npos) << describe(ex);
  CliRun sy = dfmon({"dataset", "synth", root.string()});
  EXPECT_EQ(sy.code, 2) << describe(sy);
  EXPECT_NE(sy.err.find("landmarks.jsonl"), std::string::npos) << describe(sy);
  CliRun missing_out = dfmon({"dataset", "extract", root.string()});
  EXPECT_EQ(missing_out.code, 2) << describe(missing_out);
}

}  // namespace
