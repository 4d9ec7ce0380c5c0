// synthesize_fakes on an extracted dataset: counts per real, splits, determinism per seed, errors.
#include <gtest/gtest.h>

#include <unistd.h>

#include <set>

#include <opencv2/imgcodecs.hpp>

#include "dataset_util.h"
#include "dfm/dataset/dataset.h"

namespace dfm {
namespace {

using namespace dfm::testing;

// A small real-only dataset: biden, obama and both faces of two_people (4 crops, 3 groups), everything in
// train so that cross-identity swaps have donors.
fs::path make_real_dataset(const fs::path& root) {
  const fs::path in = root / "in", out = root / "base";
  copy_sample("images/biden.jpg", in, "biden.jpg");
  copy_sample("images/obama2.jpg", in, "obama2.jpg");
  copy_sample("images/two_people.jpg", in, "two_people.jpg");
  ExtractOptions o;
  o.out_dir = out.string();
  o.val_fraction = 0.0;
  o.all_faces = true;
  auto r = extract_dataset({in.string()}, o);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  if (r.ok()) {
    EXPECT_EQ(r->faces, 4);
  }
  return out;
}

fs::path copy_dataset(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::remove_all(to, ec);
  fs::copy(from, to, fs::copy_options::recursive);
  return to;
}

class SynthTest : public ::testing::Test {
 protected:
  // Per process: ctest runs each test in its own process, possibly in parallel.
  static void SetUpTestSuite() { base_ = make_real_dataset(scratch("synth_" + std::to_string(::getpid()))); }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(base_.parent_path(), ec);
  }
  static inline fs::path base_;
};

TEST_F(SynthTest, WritesPerRealFakesBesideTheirReals) {
  const fs::path ds = copy_dataset(base_, base_.parent_path() / "per_real");
  SynthOptions o;
  o.dir = ds.string();
  o.per_real = 3;
  o.swap_fraction = 0.5;
  o.seed = 7;
  auto r = synthesize_fakes(o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->reals, 4);
  EXPECT_EQ(r->skipped, 0);
  EXPECT_EQ(r->self_blended + r->swapped, 12);
  EXPECT_GT(r->swapped, 0) << "swap_fraction 0.5 over 12 fakes with 3 identities produced no swap";
  EXPECT_GT(r->self_blended, 0);
  const auto fakes = list_files(ds, "fake");
  ASSERT_EQ(fakes.size(), 12u);
  // Every real gets per_real fakes named after it, in the same split, same size.
  for (const auto& real : read_landmarks(ds)) {
    const std::string stem = fs::path(real.file).stem().string();
    int n = 0;
    for (const auto& f : fakes) {
      if (fs::path(f).filename().string().rfind(stem + "_", 0) == 0) {
        ++n;
        EXPECT_EQ(f.substr(0, f.find('/')), real.file.substr(0, real.file.find('/'))) << f;
        cv::Mat img = cv::imread((ds / f).string());
        EXPECT_EQ(img.size(), cv::Size(224, 224)) << f;
      }
    }
    EXPECT_EQ(n, 3) << real.file;
  }
}

TEST_F(SynthTest, SwapFractionZeroOnlySelfBlends) {
  const fs::path ds = copy_dataset(base_, base_.parent_path() / "sbi_only");
  SynthOptions o;
  o.dir = ds.string();
  o.swap_fraction = 0.0;
  auto r = synthesize_fakes(o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->swapped, 0);
  EXPECT_EQ(r->self_blended, 4);
  for (const auto& f : list_files(ds, "fake")) EXPECT_NE(f.find("_sbi"), std::string::npos) << f;
}

TEST_F(SynthTest, CreatesMissingFakeFolders) {
  // A dataset copied with only its real crops (cp -r DIR/train/real ...) still takes fakes.
  const fs::path ds = copy_dataset(base_, base_.parent_path() / "no_fake_dirs");
  for (const char* split : {"train", "val"}) fs::remove_all(ds / split / "fake");
  SynthOptions o;
  o.dir = ds.string();
  auto r = synthesize_fakes(o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->skipped, 0);
  EXPECT_EQ(list_files(ds, "fake").size(), 4u);
}

TEST_F(SynthTest, SameSeedGivesByteIdenticalFilesDifferentSeedDiffers) {
  std::map<std::string, std::map<std::string, std::string>> runs;  // run -> file -> bytes
  for (const auto& [name, seed] : std::vector<std::pair<std::string, uint64_t>>{{"s1a", 1}, {"s1b", 1}, {"s2", 2}}) {
    const fs::path ds = copy_dataset(base_, base_.parent_path() / name);
    SynthOptions o;
    o.dir = ds.string();
    o.per_real = 2;
    o.swap_fraction = 0.5;
    o.seed = seed;
    auto r = synthesize_fakes(o);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    for (const auto& f : list_files(ds, "fake")) runs[name][f] = read_bytes(ds / f);
    EXPECT_EQ(runs[name].size(), 8u) << name;
  }
  ASSERT_EQ(runs["s1a"].size(), runs["s1b"].size());
  for (const auto& [file, bytes] : runs["s1a"]) {
    ASSERT_EQ(runs["s1b"].count(file), 1u) << file << " only in the first run";
    EXPECT_TRUE(bytes == runs["s1b"][file]) << file << " differs between two runs with the same seed";
  }
  bool differs = runs["s1a"].size() != runs["s2"].size();
  for (const auto& [file, bytes] : runs["s1a"]) {
    auto it = runs["s2"].find(file);
    differs = differs || it == runs["s2"].end() || it->second != bytes;
  }
  EXPECT_TRUE(differs) << "seed 2 produced exactly the files of seed 1";
}

TEST(SynthErrors, MissingLandmarksAndBadOptions) {
  const fs::path root = scratch("synth_errors");
  SynthOptions o;
  o.dir = root.string();
  auto missing = synthesize_fakes(o);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_NE(missing.status().message().find("landmarks.jsonl"), std::string::npos) << missing.status().message();

  { std::ofstream(root / "landmarks.jsonl") << R"({"file": "train/real/a.jpg", "group": "a", "landmarks": [1, 2, 3]})" << "\n"; }
  auto bad = synthesize_fakes(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("landmarks.jsonl:1"), std::string::npos) << bad.status().message();

  SynthOptions b = o;
  b.per_real = 0;
  EXPECT_FALSE(synthesize_fakes(b).ok());
  b = o;
  b.swap_fraction = 1.5;
  EXPECT_FALSE(synthesize_fakes(b).ok());
}

TEST(SynthErrors, MissingCropIsSkippedNotFatal) {
  const fs::path root = scratch("synth_skip");
  fs::create_directories(root / "train" / "fake");
  std::string lm = "[";
  for (int i = 0; i < 136; ++i) lm += (i ? "," : "") + std::to_string(50 + i % 100);
  lm += "]";
  { std::ofstream(root / "landmarks.jsonl") << R"({"file": "train/real/gone.jpg", "group": "g", "landmarks": )" << lm << "}\n"; }
  SynthOptions o;
  o.dir = root.string();
  auto r = synthesize_fakes(o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->reals, 1);
  EXPECT_EQ(r->skipped, 1);
  EXPECT_EQ(r->self_blended + r->swapped, 0);
}

}  // namespace
}  // namespace dfm
