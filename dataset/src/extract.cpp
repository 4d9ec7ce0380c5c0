// `dfmon dataset extract`: aligned real face crops from videos and photos, split by source group.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "dfm/common/log.h"
#include "dfm/dataset/dataset.h"
#include "dfm/pipeline/decoder.h"

namespace fs = std::filesystem;

namespace dfm {

namespace {

const std::set<std::string> kImageExt = {".jpg", ".jpeg", ".png", ".bmp", ".webp"};
const std::set<std::string> kVideoExt = {".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v"};

std::string lower_ext(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return e;
}

// Stable across runs and machines (std::hash is not guaranteed to be).
uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// Photos of one person share a stem up to trailing digits/underscores ("obama2.jpg", "obama_3.jpg").
std::string image_group(const fs::path& p) {
  std::string stem = p.stem().string();
  while (!stem.empty() && (std::isdigit(static_cast<unsigned char>(stem.back())) || stem.back() == '_' || stem.back() == '-')) {
    stem.pop_back();
  }
  return (p.parent_path() / (stem.empty() ? p.stem().string() : stem)).string();
}

std::string safe_name(const std::string& s) {
  std::string out;
  for (char c : s) out.push_back(std::isalnum(static_cast<unsigned char>(c)) || c == '-' ? c : '_');
  if (out.size() > 60) out = out.substr(out.size() - 60);
  return out;
}

cv::Mat thumbnail(const cv::Mat& crop) {
  cv::Mat g, t;
  cv::cvtColor(crop, g, cv::COLOR_BGR2GRAY);
  cv::resize(g, t, cv::Size(32, 32), 0, 0, cv::INTER_AREA);
  return t;
}

struct Writer {
  const ExtractOptions& opt;
  std::ofstream landmarks;
  ExtractStats* stats;
  std::map<std::string, int> counter;

  Status write(const cv::Mat& crop, const std::array<cv::Point2f, 68>& lm, const std::string& group, bool val) {
    const std::string split = val ? "val" : "train";
    const std::string base = safe_name(fs::path(group).filename().string()) + "_" +
                             std::to_string(fnv1a(group) % 100000) + "_" + std::to_string(counter[group]++);
    const std::string rel = split + "/real/" + base + ".jpg";
    const fs::path path = fs::path(opt.out_dir) / rel;
    if (!cv::imwrite(path.string(), crop, {cv::IMWRITE_JPEG_QUALITY, opt.jpeg_quality})) {
      return IoError(path.string() + ": cannot write");
    }
    nlohmann::json j;
    j["file"] = rel;
    j["group"] = group;
    std::vector<float> flat;
    for (const auto& p : lm) {
      flat.push_back(std::round(p.x * 100.f) / 100.f);
      flat.push_back(std::round(p.y * 100.f) / 100.f);
    }
    j["landmarks"] = flat;
    landmarks << j.dump() << "\n";
    (val ? stats->val : stats->train)++;
    stats->faces++;
    return Status::Ok();
  }
};

// Small, tight crops (UTKFace, LFW) leave HOG no context; pad them before detection.
cv::Mat pad_small(const cv::Mat& img, int* pad) {
  *pad = 0;
  if (std::max(img.cols, img.rows) >= 400) return img;
  *pad = std::max(img.cols, img.rows) / 3;
  cv::Mat out;
  cv::copyMakeBorder(img, out, *pad, *pad, *pad, *pad, cv::BORDER_REPLICATE);
  return out;
}

}  // namespace

Result<ExtractStats> extract_dataset(const std::vector<std::string>& inputs, const ExtractOptions& opt,
                                     const std::function<void(const std::string&)>& progress) {
  if (opt.out_dir.empty()) return InvalidArgument("--out: output directory required");
  if (opt.val_fraction < 0 || opt.val_fraction > 1) return InvalidArgument("--val-fraction: must be within 0..1");
  if (opt.video_fps <= 0) return InvalidArgument("--fps: must be > 0");
  if (opt.crop_size < 32 || opt.crop_size > 1024) return InvalidArgument("--size: must be within 32..1024");
  if (opt.margin < 0 || opt.margin > 1) return InvalidArgument("--margin: must be within 0..1");
  auto log = get_logger("dataset");
  // Collect files first so that the split does not depend on directory iteration order.
  std::vector<fs::path> files;
  for (const auto& in : inputs) {
    std::error_code ec;
    if (fs::is_directory(in, ec)) {
      for (auto it = fs::recursive_directory_iterator(in, fs::directory_options::skip_permission_denied, ec);
           it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (ec) break;
        if (it->is_regular_file(ec)) {
          const std::string e = lower_ext(it->path());
          if (kImageExt.count(e) || kVideoExt.count(e)) files.push_back(it->path());
        }
      }
    } else if (fs::is_regular_file(in, ec)) {
      files.emplace_back(in);
    } else {
      return NotFound(in + ": no such file or directory");
    }
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) return InvalidArgument("no images or videos found in the inputs");

  for (const char* split : {"train", "val"}) {
    for (const char* cls : {"real", "fake"}) {
      std::error_code ec;
      fs::create_directories(fs::path(opt.out_dir) / split / cls, ec);
      if (ec) return IoError(opt.out_dir + ": cannot create: " + ec.message());
    }
  }
  DFM_ASSIGN_OR_RETURN(auto detector, make_face_detector(opt.detector));
  ExtractStats stats;
  Writer writer{opt, std::ofstream(fs::path(opt.out_dir) / "landmarks.jsonl", std::ios::trunc), &stats, {}};
  if (!writer.landmarks) return IoError(opt.out_dir + "/landmarks.jsonl: cannot write");
  std::set<std::string> groups;
  AlignOptions align{opt.crop_size, opt.margin};

  auto faces_in = [&](const cv::Mat& img) -> std::vector<FaceDetection> {
    int pad = 0;
    cv::Mat padded = pad_small(img, &pad);
    auto r = detector->detect(padded);
    if (!r.ok()) return {};
    std::vector<FaceDetection> faces = std::move(r).value();
    if (!opt.all_faces && faces.size() > 1) faces.resize(1);
    for (auto& f : faces) {
      f.box -= cv::Point(pad, pad);
      for (auto& p : f.landmarks) p -= cv::Point2f(static_cast<float>(pad), static_cast<float>(pad));
    }
    return faces;
  };
  auto emit = [&](const cv::Mat& img, const FaceDetection& f, const std::string& group, bool val) -> Status {
    cv::Mat m = alignment_transform(f.landmarks, align);
    cv::Mat crop;
    cv::warpAffine(img, crop, m, cv::Size(opt.crop_size, opt.crop_size), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
    return writer.write(crop, transform_landmarks(f.landmarks, m), group, val);
  };

  for (const auto& file : files) {
    stats.sources++;
    const bool video = kVideoExt.count(lower_ext(file)) > 0;
    const std::string group = video ? file.string() : image_group(file);
    groups.insert(group);
    const bool val = static_cast<double>(fnv1a(group) % 10000) / 10000.0 < opt.val_fraction;
    if (progress) progress(file.string());
    if (!video) {
      cv::Mat img = cv::imread(file.string(), cv::IMREAD_COLOR);
      if (img.empty()) {
        log->warn("{}: not a readable image, skipped", file.string());
        stats.errors++;
        continue;
      }
      stats.images_read++;
      auto faces = faces_in(img);
      if (faces.empty()) stats.no_face++;
      for (const auto& f : faces) DFM_RETURN_IF_ERROR(emit(img, f, group, val));
      continue;
    }
    DecodeOptions dopt;
    dopt.sample_fps = opt.video_fps;
    auto dec = VideoDecoder::open(file.string(), dopt);
    if (!dec.ok()) {
      log->warn("{}", dec.status().message());
      stats.errors++;
      continue;
    }
    cv::Mat last_thumb;
    int kept = 0;
    while (kept < opt.max_per_source) {
      auto fr = (*dec)->next();
      if (!fr.ok()) {
        log->warn("{}", fr.status().message());
        stats.errors++;
        break;
      }
      if (!fr->has_value()) break;
      const Frame& frame = **fr;
      stats.frames_read++;
      auto faces = faces_in(frame.bgr);
      if (faces.empty()) {
        stats.no_face++;
        continue;
      }
      for (const auto& f : faces) {
        cv::Mat m = alignment_transform(f.landmarks, align);
        cv::Mat crop;
        cv::warpAffine(frame.bgr, crop, m, cv::Size(opt.crop_size, opt.crop_size), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
        cv::Mat thumb = thumbnail(crop);
        if (!last_thumb.empty() && cv::norm(thumb, last_thumb, cv::NORM_L1) / thumb.total() < opt.dedup_threshold) {
          stats.duplicates_skipped++;
          continue;
        }
        last_thumb = thumb;
        DFM_RETURN_IF_ERROR(writer.write(crop, transform_landmarks(f.landmarks, m), group, val));
        ++kept;
      }
    }
  }
  stats.groups = static_cast<int64_t>(groups.size());
  return stats;
}

}  // namespace dfm
