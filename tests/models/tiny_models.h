// Access to the tiny ONNX models of the `tiny_models` ctest fixture and their PyTorch reference outputs.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

namespace dfm::testing {

inline std::string tiny_dir() { return DFM_TINY_MODELS; }

inline nlohmann::json load_expected() {
  std::ifstream in(std::filesystem::path(tiny_dir()) / "expected.json");
  EXPECT_TRUE(in.good()) << "no expected.json in " << tiny_dir() << " (run ctest with the make_tiny_models fixture)";
  if (!in) return nlohmann::json::object();
  return nlohmann::json::parse(in);
}

// Renders an expected.json input recipe as described in its "note" (RGB), returned as a BGR crop.
inline cv::Mat render_recipe(const nlohmann::json& r, int w, int h) {
  cv::Mat rgb(h, w, CV_8UC3);
  const std::string kind = r.at("kind");
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      cv::Vec3b v;
      if (kind == "constant") {
        for (int c = 0; c < 3; ++c) v[c] = static_cast<uchar>(r["rgb"][c].get<int>());
      } else if (kind == "gradient") {
        v = cv::Vec3b(static_cast<uchar>(x * 255 / (w - 1)), static_cast<uchar>(y * 255 / (h - 1)),
                      static_cast<uchar>((x + y) * 255 / (w + h - 2)));
      } else if (kind == "checker") {
        const int cell = r.at("cell");
        const bool odd = ((x / cell) + (y / cell)) % 2 == 1;
        const auto& c3 = r.at(odd ? "rgb1" : "rgb0");
        for (int c = 0; c < 3; ++c) v[c] = static_cast<uchar>(c3[c].get<int>());
      } else {
        ADD_FAILURE() << "unknown recipe kind " << kind;
      }
      rgb.at<cv::Vec3b>(y, x) = v;
    }
  }
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  return bgr;
}

// Copies NAME.onnx + NAME.json of the tiny models into `dir` (created fresh).
inline void copy_tiny_models(const std::filesystem::path& dir, const std::vector<std::string>& names) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir);
  for (const auto& n : names) {
    for (const char* ext : {".onnx", ".json"}) {
      fs::copy_file(fs::path(tiny_dir()) / (n + ext), dir / (n + ext), fs::copy_options::overwrite_existing);
    }
  }
}

}  // namespace dfm::testing
