// extract_dataset on copies of the sample photos and clip: crops, landmarks, group split, dedup, errors.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include <opencv2/imgcodecs.hpp>

#include "dataset_util.h"
#include "dfm/dataset/dataset.h"

namespace dfm {
namespace {

using namespace dfm::testing;

std::string split_of(const std::string& rel) { return rel.substr(0, rel.find('/')); }

// Holding a detector keeps dlib's landmark model (shared, ~2 s to load) cached between extract_dataset
// calls in one test; the extraction itself creates its own detector as usual.
std::unique_ptr<FaceDetector> keep_landmark_model_loaded() {
  auto d = make_face_detector(DetectorOptions{});
  EXPECT_TRUE(d.ok()) << d.status().to_string();
  return d.ok() ? std::move(d).value() : nullptr;
}

TEST(ExtractDataset, PhotosAndVideoGiveAlignedCropsLandmarksAndGroupSplit) {
  const fs::path root = scratch("extract_full");
  const fs::path in = root / "in", out = root / "out";
  copy_sample("images/biden.jpg", in, "biden.jpg");
  copy_sample("images/obama2.jpg", in, "obama2.jpg");
  copy_sample("images/two_people.jpg", in, "two_people.jpg");
  copy_sample("clips/real_d18.mp4", in / "clips", "real_d18.mp4");
  ExtractOptions o;
  o.out_dir = out.string();
  o.val_fraction = 0.5;
  o.video_fps = 2.0;
  std::vector<std::string> progress;
  auto r = extract_dataset({in.string()}, o, [&](const std::string& f) { progress.push_back(f); });
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const ExtractStats& s = *r;
  EXPECT_EQ(s.sources, 4);
  EXPECT_EQ(s.groups, 4);  // biden, obama, two_people, the clip
  EXPECT_EQ(s.images_read, 3);
  EXPECT_EQ(s.errors, 0);
  EXPECT_EQ(progress.size(), 4u);
  // 7.2 s of video at 2 fps: about 15 frames sampled.
  EXPECT_GE(s.frames_read, 13);
  EXPECT_LE(s.frames_read, 16);
  EXPECT_GE(s.faces, 3 + 1);  // one face per photo (largest only) + at least one video crop
  EXPECT_EQ(s.train + s.val, s.faces);
  EXPECT_LE(s.faces - 3, s.frames_read);  // largest face only: at most one crop per frame
  for (const char* split : {"train", "val"}) {
    for (const char* cls : {"real", "fake"}) EXPECT_TRUE(fs::is_directory(out / split / cls)) << split << "/" << cls;
  }
  EXPECT_TRUE(list_files(out, "fake").empty());

  const auto lines = read_landmarks(out);
  ASSERT_EQ(static_cast<int64_t>(lines.size()), s.faces);
  const auto files = list_files(out, "real");
  ASSERT_EQ(files.size(), lines.size());
  std::map<std::string, std::set<std::string>> splits_of_group;
  std::set<std::string> listed;
  int64_t val = 0;
  for (const auto& l : lines) {
    EXPECT_TRUE(listed.insert(l.file).second) << "file listed twice: " << l.file;
    ASSERT_EQ(l.landmarks.size(), 136u) << l.file;
    EXPECT_TRUE(std::binary_search(files.begin(), files.end(), l.file)) << l.file << " not on disk";
    cv::Mat crop = cv::imread((out / l.file).string(), cv::IMREAD_COLOR);
    ASSERT_FALSE(crop.empty()) << l.file;
    EXPECT_EQ(crop.size(), cv::Size(224, 224)) << l.file;
    // Landmarks are in crop coordinates: eye centres near the alignment template (~0.34/0.66 x, 0.46 y
    // of the template box, which fills 1/1.5 of the crop).
    double lx = 0, ly = 0, rx = 0, ry = 0;
    for (int i = 36; i <= 41; ++i) lx += l.landmarks[2 * i] / 6, ly += l.landmarks[2 * i + 1] / 6;
    for (int i = 42; i <= 47; ++i) rx += l.landmarks[2 * i] / 6, ry += l.landmarks[2 * i + 1] / 6;
    const double face = 224 / 1.5, off = (224 - face) / 2;
    EXPECT_NEAR(lx, off + 0.3419 * face, 12) << l.file;
    EXPECT_NEAR(rx, off + 0.6565 * face, 12) << l.file;
    EXPECT_NEAR(ly, off + 0.46 * face, 12) << l.file;
    EXPECT_NEAR(ry, off + 0.46 * face, 12) << l.file;
    splits_of_group[l.group].insert(split_of(l.file));
    val += split_of(l.file) == "val";
  }
  EXPECT_EQ(val, s.val);
  EXPECT_EQ(splits_of_group.size(), 4u);
  for (const auto& [group, splits] : splits_of_group) EXPECT_EQ(splits.size(), 1u) << group << " is in both splits";
  // The photo group drops trailing digits: obama2.jpg belongs to ".../obama".
  EXPECT_EQ(splits_of_group.count((in / "obama").string()), 1u);
}

TEST(ExtractDataset, PhotosOfOnePersonShareAGroup) {
  const fs::path root = scratch("extract_groups");
  const fs::path in = root / "in";
  copy_sample("images/obama2.jpg", in, "obama2.jpg");
  copy_sample("images/obama2.jpg", in, "obama_13.jpg");
  ExtractOptions o;
  o.out_dir = (root / "out").string();
  o.val_fraction = 0.5;
  auto r = extract_dataset({in.string()}, o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->sources, 2);
  EXPECT_EQ(r->groups, 1);
  const auto lines = read_landmarks(root / "out");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].group, lines[1].group);
  EXPECT_EQ(split_of(lines[0].file), split_of(lines[1].file));
  EXPECT_NE(lines[0].file, lines[1].file);  // a counter keeps the names apart
}

TEST(ExtractDataset, ValFractionZeroAndOnePutEverythingInOneSplit) {
  const auto keep = keep_landmark_model_loaded();
  const fs::path root = scratch("extract_fraction");
  copy_sample("images/biden.jpg", root / "in", "biden.jpg");
  copy_sample("images/obama2.jpg", root / "in", "obama2.jpg");
  for (double frac : {0.0, 1.0}) {
    ExtractOptions o;
    o.out_dir = (root / ("out" + std::to_string(static_cast<int>(frac)))).string();
    o.val_fraction = frac;
    auto r = extract_dataset({(root / "in").string()}, o);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(r->faces, 2);
    EXPECT_EQ(frac == 0.0 ? r->train : r->val, 2) << "val_fraction " << frac;
  }
}

TEST(ExtractDataset, AllFacesKeepsBothPeople) {
  const fs::path root = scratch("extract_all_faces");
  copy_sample("images/two_people.jpg", root / "in", "two_people.jpg");
  ExtractOptions o;
  o.out_dir = (root / "out").string();
  o.all_faces = true;
  o.crop_size = 128;
  auto r = extract_dataset({(root / "in" / "two_people.jpg").string()}, o);  // a file input, not a dir
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->faces, 2);
  for (const auto& l : read_landmarks(root / "out")) {
    cv::Mat crop = cv::imread((root / "out" / l.file).string());
    EXPECT_EQ(crop.size(), cv::Size(128, 128));
  }
}

TEST(ExtractDataset, DedupThresholdSkipsNearDuplicateFrames) {
  const auto keep = keep_landmark_model_loaded();
  const fs::path root = scratch("extract_dedup");
  copy_sample("clips/real_d18.mp4", root / "in", "real_d18.mp4");
  std::map<double, ExtractStats> by_threshold;
  for (double th : {0.0, 1000.0}) {
    ExtractOptions o;
    o.out_dir = (root / ("out" + std::to_string(static_cast<int>(th)))).string();
    o.video_fps = 2.0;
    o.dedup_threshold = th;
    auto r = extract_dataset({(root / "in").string()}, o);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    by_threshold[th] = *r;
    EXPECT_EQ(static_cast<int64_t>(read_landmarks(o.out_dir).size()), r->faces);
  }
  const ExtractStats& none = by_threshold[0.0];
  const ExtractStats& all = by_threshold[1000.0];
  EXPECT_EQ(none.duplicates_skipped, 0);  // nothing is closer than 0
  ASSERT_GE(none.faces, 2);
  EXPECT_EQ(all.faces, 1);  // every later frame counts as a duplicate of the first crop
  EXPECT_EQ(all.duplicates_skipped, none.faces - 1);
  EXPECT_EQ(all.frames_read, none.frames_read);
}

TEST(ExtractDataset, MaxPerSourceLimitsVideoCrops) {
  const fs::path root = scratch("extract_max");
  copy_sample("clips/real_d18.mp4", root / "in", "clip.mp4");
  ExtractOptions o;
  o.out_dir = (root / "out").string();
  o.dedup_threshold = 0;
  o.max_per_source = 2;
  auto r = extract_dataset({(root / "in").string()}, o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->faces, 2);
}

TEST(ExtractDataset, UnreadableImageIsCountedNotFatal) {
  const fs::path root = scratch("extract_unreadable");
  fs::create_directories(root / "in");
  { std::ofstream(root / "in" / "notes.jpg") << "this is text, not a JPEG"; }
  { std::ofstream(root / "in" / "readme.txt") << "ignored: not an image extension"; }
  copy_sample("images/dogs.jpg", root / "in", "dogs.jpg");
  ExtractOptions o;
  o.out_dir = (root / "out").string();
  auto r = extract_dataset({(root / "in").string()}, o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->sources, 2);
  EXPECT_EQ(r->errors, 1);
  EXPECT_EQ(r->no_face, 1);
  EXPECT_EQ(r->faces, 0);
}

TEST(ExtractDataset, BadOptionsAndInputsAreErrors) {
  const fs::path root = scratch("extract_errors");
  ExtractOptions o;
  o.out_dir = (root / "out").string();
  auto missing = extract_dataset({(root / "nope").string()}, o);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_NE(missing.status().message().find((root / "nope").string()), std::string::npos) << missing.status().message();

  fs::create_directories(root / "empty");
  auto empty = extract_dataset({(root / "empty").string()}, o);
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), Code::kInvalidArgument);

  ExtractOptions bad = o;
  bad.out_dir = "";
  EXPECT_FALSE(extract_dataset({(root / "empty").string()}, bad).ok());
  bad = o;
  bad.val_fraction = 1.5;
  EXPECT_FALSE(extract_dataset({(root / "empty").string()}, bad).ok());
  bad = o;
  bad.video_fps = 0;
  EXPECT_FALSE(extract_dataset({(root / "empty").string()}, bad).ok());
  bad = o;
  bad.detector.landmark_model = "/nonexistent/landmarks.dat";
  copy_sample("images/biden.jpg", root / "in", "biden.jpg");
  auto det = extract_dataset({(root / "in").string()}, bad);
  ASSERT_FALSE(det.ok());
  EXPECT_NE(det.status().message().find("/nonexistent/landmarks.dat"), std::string::npos) << det.status().message();
}

}  // namespace
}  // namespace dfm
