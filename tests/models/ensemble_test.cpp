// ModelSet / EnsembleRunner on the tiny ONNX models: parity with PyTorch, batching, weights, load errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "dfm/common/sha256.h"
#include "dfm/models/models.h"
#include "tiny_models.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace dfm {
namespace {

using testing::copy_tiny_models;
using testing::load_expected;
using testing::render_recipe;
using testing::tiny_dir;

std::shared_ptr<const ModelSet> load_set(std::vector<std::string> names, std::vector<double> weights = {}, int batch = 8) {
  ModelSetOptions o;
  o.dir = tiny_dir();
  o.names = std::move(names);
  o.weights = std::move(weights);
  o.backend = Backend::kCpu;
  o.batch = batch;
  auto r = ModelSet::load(o);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? *r : nullptr;
}

std::unique_ptr<EnsembleRunner> make_runner(std::shared_ptr<const ModelSet> set) {
  auto r = EnsembleRunner::create(std::move(set));
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? std::move(r).value() : nullptr;
}

// The synthetic inputs of expected.json as BGR crops, in file order.
std::vector<cv::Mat> expected_inputs(const json& e) {
  std::vector<cv::Mat> crops;
  for (const auto& r : e.at("inputs")) crops.push_back(render_recipe(r, e.at("width"), e.at("height")));
  return crops;
}

fs::path scratch(const std::string& name) {
  fs::path d = fs::path(DFM_TEST_TMP) / ("models_" + name);
  std::error_code ec;
  fs::remove_all(d, ec);
  fs::create_directories(d);
  return d;
}

Status load_status(const std::string& dir, std::vector<std::string> names = {}, std::vector<double> weights = {}, int batch = 8) {
  ModelSetOptions o;
  o.dir = dir;
  o.names = std::move(names);
  o.weights = std::move(weights);
  o.backend = Backend::kCpu;
  o.batch = batch;
  auto r = ModelSet::load(o);
  return r.ok() ? Status::Ok() : r.status();
}

TEST(ModelSet, LoadsTinyModelsWithEqualWeightsAndIdentity) {
  auto set = load_set({"tiny_a", "tiny_b"});
  ASSERT_NE(set, nullptr);
  ASSERT_EQ(set->models().size(), 2u);
  EXPECT_EQ(set->names(), (std::vector<std::string>{"tiny_a", "tiny_b"}));
  EXPECT_EQ(set->weights(), (std::vector<double>{0.5, 0.5}));
  EXPECT_EQ(set->backend(), Backend::kCpu);
  EXPECT_EQ(set->models()[0].card.max_batch, 0);
  EXPECT_EQ(set->models()[1].card.max_batch, 1);
  for (const auto& m : set->models()) {
    EXPECT_EQ(m.onnx_path, (fs::path(tiny_dir()) / (m.card.name + ".onnx")).string());
    auto file_hash = sha256_file(m.onnx_path);
    ASSERT_TRUE(file_hash.ok());
    EXPECT_EQ(m.sha256, *file_hash);
    // The exporter records the hash in the card too.
    EXPECT_EQ(m.sha256, json::parse(m.card.raw_json).at("onnx_sha256").get<std::string>());
    EXPECT_FALSE(m.onnx_bytes.empty());
  }
}

TEST(ModelSet, EmptyNamesLoadsEveryCardAndSkipsOtherJson) {
  // The tiny dir also holds expected.json, which is not a model card.
  ASSERT_TRUE(fs::exists(fs::path(tiny_dir()) / "expected.json"));
  ModelSetOptions o;
  o.dir = tiny_dir();
  o.backend = Backend::kCpu;
  auto r = ModelSet::load(o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ((*r)->names(), (std::vector<std::string>{"tiny_a", "tiny_b"}));
}

TEST(ModelSet, OrderFollowsNames) {
  auto set = load_set({"tiny_b", "tiny_a"}, {1, 3});
  ASSERT_NE(set, nullptr);
  EXPECT_EQ(set->names(), (std::vector<std::string>{"tiny_b", "tiny_a"}));
  EXPECT_EQ(set->weights(), (std::vector<double>{0.25, 0.75}));
}

TEST(EnsembleRunner, ScoresMatchPyTorchOnSyntheticInputs) {
  const json e = load_expected();
  ASSERT_TRUE(e.contains("models"));
  const double tol = std::max(e.value("tolerance", 1e-4), 1e-4);
  auto set = load_set({"tiny_a", "tiny_b"});
  ASSERT_NE(set, nullptr);
  auto runner = make_runner(set);
  ASSERT_NE(runner, nullptr);
  const auto crops = expected_inputs(e);
  ASSERT_EQ(crops.size(), 8u);
  auto scores = runner->score(crops);
  ASSERT_TRUE(scores.ok()) << scores.status().to_string();
  ASSERT_EQ(scores->size(), crops.size());
  for (size_t k = 0; k < set->models().size(); ++k) {
    const auto& name = set->models()[k].card.name;
    const int fake = set->models()[k].card.fake_index;
    const auto& probs = e["models"][name]["probs"];
    ASSERT_EQ(probs.size(), crops.size()) << name;
    for (size_t i = 0; i < crops.size(); ++i) {
      EXPECT_NEAR((*scores)[i].per_model[k], probs[i][fake].get<double>(), tol)
          << name << " on " << e["inputs"][i]["name"].get<std::string>();
    }
  }
  // The references spread over [0, 1], so a constant output (e.g. a preprocessing bug) cannot pass.
  double lo = 1, hi = 0;
  for (const auto& s : *scores) lo = std::min<double>(lo, s.per_model[0]), hi = std::max<double>(hi, s.per_model[0]);
  EXPECT_GT(hi - lo, 0.3);
}

TEST(EnsembleRunner, ScoreModelMatchesPyTorchPerModel) {
  const json e = load_expected();
  ASSERT_TRUE(e.contains("models"));
  auto set = load_set({"tiny_b"});
  ASSERT_NE(set, nullptr);
  auto runner = make_runner(set);
  ASSERT_NE(runner, nullptr);
  auto p = runner->score_model(0, expected_inputs(e));
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  for (size_t i = 0; i < p->size(); ++i) EXPECT_NEAR((*p)[i], e["models"]["tiny_b"]["probs"][i][1].get<double>(), 1e-4) << i;
  EXPECT_FALSE(runner->score_model(1, expected_inputs(e)).ok());  // index out of range
}

TEST(EnsembleRunner, BatchOfFiveEqualsSingleCropScores) {
  const json e = load_expected();
  ASSERT_TRUE(e.contains("inputs"));
  auto all = expected_inputs(e);
  std::vector<cv::Mat> five(all.begin() + 1, all.begin() + 6);
  // batch 8: tiny_a runs all five at once; tiny_b (max_batch 1) one at a time. batch 2: chunks 2+2+1.
  for (int batch : {8, 2}) {
    auto set = load_set({"tiny_a", "tiny_b"}, {}, batch);
    ASSERT_NE(set, nullptr);
    auto runner = make_runner(set);
    ASSERT_NE(runner, nullptr);
    auto batched = runner->score(five);
    ASSERT_TRUE(batched.ok()) << batched.status().to_string();
    ASSERT_EQ(batched->size(), 5u);
    for (size_t i = 0; i < five.size(); ++i) {
      auto single = runner->score({five[i]});
      ASSERT_TRUE(single.ok()) << single.status().to_string();
      for (size_t k = 0; k < 2; ++k) {
        EXPECT_NEAR((*batched)[i].per_model[k], (*single)[0].per_model[k], 1e-5) << "batch " << batch << " crop " << i << " model " << k;
      }
      EXPECT_NEAR((*batched)[i].ensemble, (*single)[0].ensemble, 1e-5);
    }
  }
}

TEST(EnsembleRunner, EnsembleIsWeightedMeanOfModels) {
  const json e = load_expected();
  ASSERT_TRUE(e.contains("inputs"));
  const auto crops = expected_inputs(e);
  for (const auto& weights : {std::vector<double>{}, std::vector<double>{3, 1}}) {
    auto set = load_set({"tiny_a", "tiny_b"}, weights);
    ASSERT_NE(set, nullptr);
    const double wa = weights.empty() ? 0.5 : 0.75, wb = 1.0 - wa;
    EXPECT_NEAR(set->weights()[0], wa, 1e-12);
    EXPECT_NEAR(set->weights()[1], wb, 1e-12);
    auto runner = make_runner(set);
    ASSERT_NE(runner, nullptr);
    auto scores = runner->score(crops);
    ASSERT_TRUE(scores.ok()) << scores.status().to_string();
    for (size_t i = 0; i < crops.size(); ++i) {
      const auto& s = (*scores)[i];
      ASSERT_EQ(s.per_model.size(), 2u);
      EXPECT_NEAR(s.ensemble, wa * s.per_model[0] + wb * s.per_model[1], 1e-6) << "crop " << i;
      EXPECT_GE(s.ensemble, 0.f);
      EXPECT_LE(s.ensemble, 1.f);
    }
  }
}

TEST(EnsembleRunner, RejectsBadCropsAndNullSet) {
  EXPECT_FALSE(EnsembleRunner::create(nullptr).ok());
  auto set = load_set({"tiny_a"});
  ASSERT_NE(set, nullptr);
  auto runner = make_runner(set);
  ASSERT_NE(runner, nullptr);
  EXPECT_FALSE(runner->score({cv::Mat()}).ok());
  EXPECT_FALSE(runner->score({cv::Mat(224, 224, CV_8UC1, cv::Scalar(3))}).ok());
  auto none = runner->score({});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  // Crops of another size are resized to the card's input.
  auto other = runner->score({cv::Mat(100, 80, CV_8UC3, cv::Scalar(30, 60, 200))});
  ASSERT_TRUE(other.ok()) << other.status().to_string();
  EXPECT_TRUE(std::isfinite(other->front().ensemble));
}

ThreadPlan plan_of(std::vector<std::string> names, int threads, bool parallel, Backend backend = Backend::kCpu) {
  ModelSetOptions o;
  o.dir = tiny_dir();
  o.names = std::move(names);
  o.backend = backend;
  o.threads = threads;
  o.parallel = parallel;
  auto r = ModelSet::load(o);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? (*r)->thread_plan() : ThreadPlan{-1, -1};
}

TEST(ThreadPlan, ModelsSideBySideSplitTheThreads) {
  auto eq = [](ThreadPlan p, int lanes, int per) { return p.lanes == lanes && p.threads_per_lane == per; };
  EXPECT_TRUE(eq(plan_of({"tiny_a", "tiny_b"}, 2, true), 2, 1));
  EXPECT_TRUE(eq(plan_of({"tiny_a", "tiny_b"}, 5, true), 2, 2));
  EXPECT_TRUE(eq(plan_of({"tiny_a", "tiny_b"}, 2, false), 1, 2));  // --sequential-models
  EXPECT_TRUE(eq(plan_of({"tiny_a", "tiny_b"}, 1, true), 1, 1));   // one thread: nothing to split
  EXPECT_TRUE(eq(plan_of({"tiny_a"}, 2, true), 1, 2));             // one model: all threads to it
  EXPECT_TRUE(eq(plan_of({"tiny_a", "tiny_b", "tiny_a"}, 2, true), 2, 1));  // more models than threads
  ThreadPlan all = plan_of({"tiny_a", "tiny_b"}, 0, true);  // 0 = every core
  const int cores = std::max(1, cv::getNumberOfCPUs());
  EXPECT_EQ(all.lanes, cores > 1 ? 2 : 1);
  EXPECT_EQ(all.threads_per_lane, cores > 1 ? cores / 2 : 1);
  ModelSetOptions bad;
  bad.dir = tiny_dir();
  bad.backend = Backend::kCpu;
  bad.threads = -1;
  EXPECT_FALSE(ModelSet::load(bad).ok());
}

// Side by side gives the scores of one-after-another, three models on two lanes included, for every
// call size (1-3 crops: the lanes split the models; 4-8: the crops, 5 and 7 unevenly), and an error in
// a lane comes back as the call's error.
TEST(ThreadPlan, SideBySideScoresEqualSequentialScores) {
  const json e = load_expected();
  ASSERT_TRUE(e.contains("inputs"));
  const auto crops = expected_inputs(e);
  for (std::vector<std::string> names : {std::vector<std::string>{"tiny_a", "tiny_b"}, {"tiny_b", "tiny_a", "tiny_b"}}) {
    std::vector<std::vector<FaceScore>> results;
    std::vector<std::vector<std::vector<FaceScore>>> prefixes;  // [parallel][size - 1]
    for (bool parallel : {false, true}) {
      ModelSetOptions o;
      o.dir = tiny_dir();
      o.names = names;
      o.backend = Backend::kCpu;
      o.threads = 2;
      o.parallel = parallel;
      auto set = ModelSet::load(o);
      ASSERT_TRUE(set.ok()) << set.status().to_string();
      EXPECT_EQ((*set)->thread_plan().lanes, parallel ? 2 : 1);
      auto runner = make_runner(*set);
      ASSERT_NE(runner, nullptr);
      for (int rep = 0; rep < 3; ++rep) {  // the lanes are reused across calls
        auto s = runner->score(crops);
        ASSERT_TRUE(s.ok()) << s.status().to_string();
        if (rep == 0) results.push_back(*s);
      }
      prefixes.emplace_back();
      for (size_t size = 1; size <= crops.size(); ++size) {
        auto s = runner->score(std::vector<cv::Mat>(crops.begin(), crops.begin() + static_cast<long>(size)));
        ASSERT_TRUE(s.ok()) << s.status().to_string();
        ASSERT_EQ(s->size(), size);
        prefixes.back().push_back(*s);
      }
      std::vector<cv::Mat> bad = crops;
      bad[3] = cv::Mat();
      auto err = runner->score(bad);
      ASSERT_FALSE(err.ok());
      EXPECT_NE(err.status().message().find("crops"), std::string::npos) << err.status().message();
    }
    ASSERT_EQ(results.size(), 2u);
    for (size_t i = 0; i < crops.size(); ++i) {
      ASSERT_EQ(results[1][i].per_model.size(), names.size());
      for (size_t k = 0; k < names.size(); ++k) EXPECT_NEAR(results[0][i].per_model[k], results[1][i].per_model[k], 1e-6);
      EXPECT_NEAR(results[0][i].ensemble, results[1][i].ensemble, 1e-6);
    }
    for (size_t size = 1; size <= crops.size(); ++size) {
      for (size_t i = 0; i < size; ++i) {
        ASSERT_EQ(prefixes[1][size - 1][i].per_model.size(), names.size());
        for (size_t k = 0; k < names.size(); ++k) {
          EXPECT_NEAR(prefixes[1][size - 1][i].per_model[k], results[0][i].per_model[k], 1e-6) << size << " crops";
        }
        EXPECT_NEAR(prefixes[1][size - 1][i].ensemble, results[0][i].ensemble, 1e-6) << size << " crops";
      }
    }
  }
}

TEST(ModelSetErrors, CorruptOnnxNamesTheFile) {
  const fs::path dir = scratch("corrupt_onnx");
  fs::copy_file(fs::path(tiny_dir()) / "tiny_a.json", dir / "tiny_a.json");
  { std::ofstream(dir / "tiny_a.onnx", std::ios::binary) << std::string(4096, '\x07') << "definitely not protobuf"; }
  Status st = load_status(dir.string(), {"tiny_a"});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find((dir / "tiny_a.onnx").string()), std::string::npos) << st.message();
  // Same when the dir is scanned for cards.
  Status scanned = load_status(dir.string());
  ASSERT_FALSE(scanned.ok());
  EXPECT_NE(scanned.message().find("tiny_a.onnx"), std::string::npos) << scanned.message();
}

TEST(ModelSetErrors, EmptyOnnxNamesTheFile) {
  const fs::path dir = scratch("empty_onnx");
  fs::copy_file(fs::path(tiny_dir()) / "tiny_a.json", dir / "tiny_a.json");
  { std::ofstream(dir / "tiny_a.onnx", std::ios::binary); }
  Status st = load_status(dir.string(), {"tiny_a"});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find((dir / "tiny_a.onnx").string()), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("empty"), std::string::npos) << st.message();
}

TEST(ModelSetErrors, MissingOnnxFileIsNotFound) {
  const fs::path dir = scratch("missing_onnx");
  fs::copy_file(fs::path(tiny_dir()) / "tiny_a.json", dir / "tiny_a.json");
  Status st = load_status(dir.string(), {"tiny_a"});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Code::kNotFound);
  EXPECT_NE(st.message().find("tiny_a.onnx"), std::string::npos) << st.message();
}

TEST(ModelSetErrors, LabelCountMismatchMentionsTheCard) {
  const fs::path dir = scratch("label_mismatch");
  copy_tiny_models(dir, {"tiny_a"});
  json card;
  { std::ifstream in(dir / "tiny_a.json"); card = json::parse(in); }
  card["output"]["labels"] = {"real", "fake", "other"};  // the model has 2 outputs
  { std::ofstream(dir / "tiny_a.json") << card.dump(2); }
  Status st = load_status(dir.string(), {"tiny_a"});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find((dir / "tiny_a.json").string()), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("labels"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("3"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("2"), std::string::npos) << st.message();
}

TEST(ModelSetErrors, MissingDirOrCardOrNoCards) {
  Status missing = load_status("/nonexistent/models");
  EXPECT_EQ(missing.code(), Code::kNotFound);
  EXPECT_NE(missing.message().find("/nonexistent/models"), std::string::npos) << missing.message();
  EXPECT_EQ(load_status("").code(), Code::kNotFound);

  Status no_card = load_status(tiny_dir(), {"tiny_a", "resnet99"});
  EXPECT_EQ(no_card.code(), Code::kNotFound);
  EXPECT_NE(no_card.message().find("resnet99"), std::string::npos) << no_card.message();

  const fs::path empty = scratch("no_cards");
  { std::ofstream(empty / "notes.json") << R"({"schema": "something.else/1"})"; }
  Status none = load_status(empty.string());
  EXPECT_EQ(none.code(), Code::kNotFound);
  EXPECT_NE(none.message().find(empty.string()), std::string::npos) << none.message();
}

TEST(ModelSetErrors, OnnxWithBrokenOrMissingCardIsAnErrorNotASmallerEnsemble) {
  // Loading "every model in the dir" must not quietly drop the model whose card is broken.
  const fs::path dir = scratch("broken_card");
  copy_tiny_models(dir, {"tiny_a", "tiny_b"});
  { std::ofstream(dir / "tiny_b.json") << "{ not json"; }
  Status broken = load_status(dir.string());
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.message().find("tiny_b.json"), std::string::npos) << broken.message();

  fs::remove(dir / "tiny_b.json");
  Status missing = load_status(dir.string());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("tiny_b"), std::string::npos) << missing.message();

  // An ONNX file that a card names under another stem belongs to that card.
  fs::rename(dir / "tiny_b.onnx", dir / "weights_v2.onnx");
  json card;
  { std::ifstream in(fs::path(tiny_dir()) / "tiny_b.json"); card = json::parse(in); }
  card["file"] = "weights_v2.onnx";
  { std::ofstream(dir / "tiny_b.json") << card.dump(2); }
  ModelSetOptions o;
  o.dir = dir.string();
  o.backend = Backend::kCpu;
  auto r = ModelSet::load(o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ((*r)->names(), (std::vector<std::string>{"tiny_a", "tiny_b"}));
}

TEST(ModelSetErrors, BadWeightsAndBatch) {
  Status count = load_status(tiny_dir(), {"tiny_a", "tiny_b"}, {1.0});
  ASSERT_FALSE(count.ok());
  EXPECT_EQ(count.code(), Code::kInvalidArgument);
  EXPECT_NE(count.message().find("weights"), std::string::npos) << count.message();
  EXPECT_FALSE(load_status(tiny_dir(), {"tiny_a", "tiny_b"}, {1.0, 2.0, 3.0}).ok());
  EXPECT_FALSE(load_status(tiny_dir(), {"tiny_a", "tiny_b"}, {-1.0, 2.0}).ok());
  EXPECT_FALSE(load_status(tiny_dir(), {"tiny_a", "tiny_b"}, {0.0, 0.0}).ok());
  EXPECT_FALSE(load_status(tiny_dir(), {"tiny_a", "tiny_b"}, {NAN, 1.0}).ok());
  EXPECT_FALSE(load_status(tiny_dir(), {"tiny_a"}, {}, 0).ok());
  EXPECT_FALSE(load_status(tiny_dir(), {"tiny_a"}, {}, 1000).ok());
  // A zero weight is allowed as long as another is positive.
  EXPECT_TRUE(load_status(tiny_dir(), {"tiny_a", "tiny_b"}, {0.0, 1.0}).ok());
}

TEST(Backend, ParseAndNameRoundTrip) {
  for (Backend b : {Backend::kAuto, Backend::kCuda, Backend::kOpenCL, Backend::kCpu}) {
    auto p = parse_backend(backend_name(b));
    ASSERT_TRUE(p.ok()) << backend_name(b);
    EXPECT_EQ(*p, b);
  }
  EXPECT_STREQ(backend_name(Backend::kCuda), "cuda");
  for (const char* bad : {"gpu", "CUDA", "", "tensorrt"}) {
    auto p = parse_backend(bad);
    ASSERT_FALSE(p.ok()) << bad;
    EXPECT_EQ(p.status().code(), Code::kInvalidArgument);
    EXPECT_NE(p.status().message().find(std::string("\"") + bad + "\""), std::string::npos) << p.status().message();
  }
}

TEST(Backend, CudaAndAutoFallBackToCpuWithoutCuda) {
  // This OpenCV build has no CUDA DNN backend.
  EXPECT_EQ(resolve_backend(Backend::kCuda), Backend::kCpu);
  EXPECT_EQ(resolve_backend(Backend::kAuto), Backend::kCpu);
  EXPECT_EQ(resolve_backend(Backend::kCpu), Backend::kCpu);
  const Backend ocl = resolve_backend(Backend::kOpenCL);
  EXPECT_TRUE(ocl == Backend::kCpu || ocl == Backend::kOpenCL);
  // A set loaded with backend cuda falls back and still runs.
  ModelSetOptions o;
  o.dir = tiny_dir();
  o.names = {"tiny_a"};
  o.backend = Backend::kCuda;
  auto set = ModelSet::load(o);
  ASSERT_TRUE(set.ok()) << set.status().to_string();
  EXPECT_EQ((*set)->backend(), Backend::kCpu);
  auto runner = EnsembleRunner::create(*set);
  ASSERT_TRUE(runner.ok()) << runner.status().to_string();
}

}  // namespace
}  // namespace dfm
