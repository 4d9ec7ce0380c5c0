// `dfmon dataset synth`: one or more synthetic fakes per real crop, written beside them as class "fake".
#include <filesystem>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "dfm/common/log.h"
#include "dfm/dataset/dataset.h"

namespace fs = std::filesystem;

namespace dfm {

namespace {

struct RealCrop {
  std::string file;   // relative to the dataset dir
  std::string group;
  std::array<cv::Point2f, 68> lm{};
};

Result<std::vector<RealCrop>> read_landmarks(const std::string& dir) {
  const fs::path path = fs::path(dir) / "landmarks.jsonl";
  std::ifstream in(path);
  if (!in) return NotFound(path.string() + ": missing (run `dfmon dataset extract` first)");
  std::vector<RealCrop> out;
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty()) continue;
    try {
      auto j = nlohmann::json::parse(line);
      RealCrop r;
      r.file = j.at("file").get<std::string>();
      r.group = j.at("group").get<std::string>();
      auto v = j.at("landmarks").get<std::vector<float>>();
      if (v.size() != 136) throw std::runtime_error("landmarks must have 136 numbers");
      for (size_t i = 0; i < 68; ++i) r.lm[i] = cv::Point2f(v[2 * i], v[2 * i + 1]);
      out.push_back(std::move(r));
    } catch (const std::exception& e) {
      return InvalidArgument(path.string() + ":" + std::to_string(lineno) + ": " + e.what());
    }
  }
  return out;
}

}  // namespace

Result<SynthStats> synthesize_fakes(const SynthOptions& opt) {
  if (opt.per_real < 1 || opt.per_real > 20) return InvalidArgument("--per-real: must be within 1..20");
  if (opt.swap_fraction < 0 || opt.swap_fraction > 1) return InvalidArgument("--swap-fraction: must be within 0..1");
  DFM_ASSIGN_OR_RETURN(std::vector<RealCrop> reals, read_landmarks(opt.dir));
  auto log = get_logger("dataset");
  SynthStats stats;
  stats.reals = static_cast<int64_t>(reals.size());
  // Donors for swaps come from the same split (val fakes never use train faces) and another group.
  std::map<std::string, std::vector<size_t>> by_split;
  for (size_t i = 0; i < reals.size(); ++i) by_split[reals[i].file.substr(0, reals[i].file.find('/'))].push_back(i);
  for (const auto& [split, members] : by_split) {  // a dataset copied without its empty fake/ folders
    std::error_code ec;
    fs::create_directories(fs::path(opt.dir) / split / "fake", ec);
    if (ec) return IoError((fs::path(opt.dir) / split / "fake").string() + ": cannot create: " + ec.message());
  }
  cv::RNG pick(opt.seed);
  for (size_t i = 0; i < reals.size(); ++i) {
    const RealCrop& r = reals[i];
    cv::Mat target = cv::imread((fs::path(opt.dir) / r.file).string(), cv::IMREAD_COLOR);
    if (target.empty()) {
      log->warn("{}: unreadable, skipped", r.file);
      stats.skipped++;
      continue;
    }
    const std::string split = r.file.substr(0, r.file.find('/'));
    const auto& pool = by_split[split];
    for (int k = 0; k < opt.per_real; ++k) {
      const uint64_t seed = opt.seed * 1000003ull + i * 131ull + static_cast<uint64_t>(k);
      cv::Mat fake;
      bool swapped = false;
      if (pick.uniform(0.0, 1.0) < opt.swap_fraction && pool.size() > 1) {
        for (int attempt = 0; attempt < 8 && !swapped; ++attempt) {
          const RealCrop& d = reals[pool[static_cast<size_t>(pick.uniform(0, static_cast<int>(pool.size())))]];
          if (d.group == r.group) continue;
          cv::Mat donor = cv::imread((fs::path(opt.dir) / d.file).string(), cv::IMREAD_COLOR);
          if (donor.empty()) continue;
          fake = swap_blend(target, r.lm, donor, d.lm, seed, nullptr, opt.balanced_detail);
          swapped = true;
        }
      }
      if (!swapped) fake = self_blend(target, r.lm, seed, nullptr, opt.balanced_detail);
      const std::string stem = fs::path(r.file).stem().string();
      const fs::path out = fs::path(opt.dir) / split / "fake" / (stem + (swapped ? "_swap" : "_sbi") + std::to_string(k) + ".jpg");
      if (!cv::imwrite(out.string(), fake, {cv::IMWRITE_JPEG_QUALITY, opt.jpeg_quality})) {
        return IoError(out.string() + ": cannot write");
      }
      (swapped ? stats.swapped : stats.self_blended)++;
    }
  }
  return stats;
}

}  // namespace dfm
