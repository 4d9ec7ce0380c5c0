// Training-data builder: aligned real face crops in the seed layout, and synthetic fakes made from them.
//
// Layout written: OUT/{train,val}/{real,fake}/*.jpg plus OUT/landmarks.jsonl (one line per real crop:
// file, group, 68 landmarks in crop coordinates), which `synth` reads to place its blending masks.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "dfm/common/status.h"
#include "dfm/detectors/face.h"

namespace dfm {

struct ExtractOptions {
  std::string out_dir;
  double val_fraction = 0.2;     // share of source groups (videos / identities) that go to val
  double video_fps = 2.0;        // frames sampled per second of video
  int max_per_source = 120;      // crops kept per video
  double dedup_threshold = 4.0;  // mean abs difference (0..255) of 32x32 grey thumbnails below which a
                                 // frame counts as a near-duplicate of the last kept crop of its source
  int crop_size = 224;
  double margin = 0.25;
  int jpeg_quality = 95;
  DetectorOptions detector;      // upsample etc.
  bool all_faces = false;        // false: only the largest face per image/frame
};

struct ExtractStats {
  int64_t sources = 0, groups = 0, images_read = 0, frames_read = 0, faces = 0, duplicates_skipped = 0,
          no_face = 0, errors = 0, train = 0, val = 0;
};

// Files are scanned recursively for images (.jpg .jpeg .png .bmp .webp) and videos (.mp4 .mkv .webm .avi
// .mov .m4v). Split is by group: one video = one group; an image's group is its file stem without trailing
// digits (so several photos of one person stay together), so no source lands in both splits.
Result<ExtractStats> extract_dataset(const std::vector<std::string>& inputs, const ExtractOptions& options,
                                     const std::function<void(const std::string&)>& progress = {});

struct SynthOptions {
  std::string dir;               // a dataset written by extract_dataset
  int per_real = 1;              // fakes made per real crop
  double swap_fraction = 0.3;    // share of fakes made by cross-identity swaps (rest: self-blending)
  uint64_t seed = 1;
  int jpeg_quality = 95;
  bool balanced_detail = false;  // faces as often sharper as softer than their surroundings (blend.cpp)
};

struct SynthStats {
  int64_t reals = 0, self_blended = 0, swapped = 0, skipped = 0;
};

Result<SynthStats> synthesize_fakes(const SynthOptions& options);

// One self-blended image (Shiohara & Yamasaki, CVPR 2022): a colour/sharpness/geometry-jittered copy of the
// face blended back inside a deformed, blurred landmark mask. `mask_out` receives the blend mask (0..1).
// Exposed for tests and the synthetic demo clip. `balanced_detail`: see SynthOptions.
cv::Mat self_blend(const cv::Mat& crop, const std::array<cv::Point2f, 68>& landmarks, uint64_t seed,
                   cv::Mat* mask_out = nullptr, bool balanced_detail = false);

// Cross-identity swap: the donor face (aligned the same way) colour-matched to the target inside the
// target's landmark mask, blended softly.
cv::Mat swap_blend(const cv::Mat& target, const std::array<cv::Point2f, 68>& target_lm, const cv::Mat& donor,
                   const std::array<cv::Point2f, 68>& donor_lm, uint64_t seed, cv::Mat* mask_out = nullptr,
                   bool balanced_detail = false);

}  // namespace dfm

namespace dfm {

struct FakeVideoOptions {
  uint64_t seed = 1;
  int max_frames = 0;           // 0 = whole clip
  double start_s = 0;           // frames before this time are copied unchanged (real -> fake in one clip)
  std::string fourcc = "mp4v";  // MPEG-4 Part 2: encodable by OpenCV's FFmpeg backend, decodable everywhere
};

struct FakeVideoStats {
  int64_t frames = 0, faces_blended = 0;
  double fps = 0;
};

// Writes a copy of a video in which every face from start_s on is self-blended (the same jitter and mask
// for the whole clip, so the manipulation is temporally consistent): a synthetic deepfake for demos and
// end-to-end tests. Not a realistic swap.
Result<FakeVideoStats> synthesize_fake_video(const std::string& input, const std::string& output,
                                             const FakeVideoOptions& options);

}  // namespace dfm
