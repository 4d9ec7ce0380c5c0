// `dfmon classify IMAGE...`: per-face P(fake) in still images, one JSON line per face.
#include <cstdio>
#include <filesystem>

#include <opencv2/imgcodecs.hpp>

#include "app.h"
#include "dfm/common/log.h"

namespace dfm::app {

namespace {

struct ClassifyOptions {
  std::vector<std::string> images;
  bool crop = false;
  double threshold = 0.5;
  int max_width = 1280;
  int upsample = 0;
};

void print_line(const nlohmann::json& j) {
  std::printf("%s\n", j.dump().c_str());
  std::fflush(stdout);
}

int run(const GlobalOptions& g, const ClassifyOptions& o) {
  if (auto st = apply_globals(g); !st.ok()) return fail(st);
  auto set = load_models(g);
  if (!set.ok()) return fail(set.status());
  auto runner = EnsembleRunner::create(*set);
  if (!runner.ok()) return fail(runner.status());
  std::unique_ptr<FaceDetector> detector;
  if (!o.crop) {
    DetectorOptions d;
    d.max_width = o.max_width;
    d.upsample = o.upsample;
    d.min_face = 20;
    auto det = make_face_detector(d);
    if (!det.ok()) return fail(det.status());
    detector = std::move(det).value();
  }
  int rc = kExitOk;
  for (const auto& path : o.images) {
    auto error_line = [&](const std::string& reason) {
      get_logger("classify")->error("{}: {}", path, reason);
      print_line({{"image", path}, {"error", reason}});
      rc = kExitError;
    };
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
      error_line("no such file");
      continue;
    }
    cv::Mat img = cv::imread(path, cv::IMREAD_COLOR);
    if (img.empty()) {
      error_line("not a readable image");
      continue;
    }
    std::vector<cv::Mat> crops;
    std::vector<cv::Rect> boxes;
    if (o.crop) {
      crops.push_back(img);
      boxes.emplace_back(0, 0, img.cols, img.rows);
    } else {
      auto faces = detector->detect(img);
      if (!faces.ok()) {
        error_line(faces.status().message());
        continue;
      }
      for (const auto& f : *faces) {
        crops.push_back(align_face(img, f, AlignOptions{}));
        boxes.push_back(f.box);
      }
      if (crops.empty()) {
        error_line("no face found (use --crop if the image is already a face crop)");
        continue;
      }
    }
    auto scores = (*runner)->score(crops);
    if (!scores.ok()) {
      error_line(scores.status().message());
      continue;
    }
    for (size_t i = 0; i < crops.size(); ++i) {
      const FaceScore& s = (*scores)[i];
      print_line({{"image", path},
                  {"face", i},
                  {"bbox", {boxes[i].x, boxes[i].y, boxes[i].width, boxes[i].height}},
                  {"models", per_model_json(**set, s.per_model)},
                  {"ensemble", round6(s.ensemble)},
                  {"label", s.ensemble >= o.threshold ? "fake" : "real"}});
    }
  }
  return rc;
}

}  // namespace

void register_classify(CLI::App& root, GlobalOptions& g, int* exit_code) {
  auto o = std::make_shared<ClassifyOptions>();
  CLI::App* cmd = root.add_subcommand("classify", "Score the faces in still images (JSON lines on stdout)");
  cmd->add_option("images", o->images, "Image files")->required();
  cmd->add_flag("--crop", o->crop, "Treat each image as an already aligned face crop (no detection)");
  cmd->add_option("--threshold", o->threshold, "P(fake) at or above which a face is labelled fake")->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--max-width", o->max_width, "Downscale wider images to this width for detection");
  cmd->add_option("--upsample", o->upsample, "Detector upsampling steps (finds smaller faces, slower)")->check(CLI::Range(0, 2));
  cmd->footer("Exit codes: 0 ok, 2 an input could not be read or had no face.");
  cmd->callback([&g, o, exit_code] { *exit_code = run(g, *o); });
}

}  // namespace dfm::app
