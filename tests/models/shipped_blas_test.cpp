// The bundled models score the same through the BLAS layers as through OpenCV's own layers (which
// shipped_models_parity checks against PyTorch), on real face crops and on noise.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "blas_layers.h"
#include "dfm/models/models.h"

namespace fs = std::filesystem;

namespace dfm {
namespace {

std::vector<cv::Mat> crops() {
  std::vector<cv::Mat> out;
  const fs::path src(DFM_SOURCE_DIR);
  for (const char* f : {"models/selfcheck.jpg", "samples/images/obama2.jpg", "samples/images/biden.jpg",
                        "samples/images/two_people.jpg"}) {
    cv::Mat img = cv::imread((src / f).string(), cv::IMREAD_COLOR);
    EXPECT_FALSE(img.empty()) << f;
    if (img.empty()) continue;
    const int side = std::min(img.cols, img.rows);
    cv::Mat sq = img(cv::Rect((img.cols - side) / 2, (img.rows - side) / 2, side, side)), r;
    cv::resize(sq, r, cv::Size(224, 224), 0, 0, cv::INTER_AREA);
    out.push_back(r);
  }
  cv::Mat noise(224, 224, CV_8UC3);
  cv::RNG(1).fill(noise, cv::RNG::UNIFORM, 0, 256);
  out.push_back(noise);
  return out;
}

std::vector<FaceScore> score(bool blas_layers, const std::vector<cv::Mat>& c, int batch) {
  ModelSetOptions o;
  o.dir = (fs::path(DFM_SOURCE_DIR) / "models").string();
  o.backend = Backend::kCpu;
  o.batch = batch;
  o.blas_layers = blas_layers;
  auto set = ModelSet::load(o);
  EXPECT_TRUE(set.ok()) << set.status().message();
  if (!set.ok()) return {};
  auto runner = EnsembleRunner::create(*set);
  EXPECT_TRUE(runner.ok()) << runner.status().message();
  if (!runner.ok()) return {};
  auto s = (*runner)->score(c);
  EXPECT_TRUE(s.ok()) << s.status().message();
  return s.ok() ? *s : std::vector<FaceScore>{};
}

TEST(ShippedModelsBlas, SameScoresAsOpenCVLayers) {
  if (!blas::optimized()) GTEST_SKIP() << "BLAS is " << blas::library_name() << "; the BLAS layers are not used";
  const std::vector<cv::Mat> c = crops();
  ASSERT_EQ(c.size(), 5u);
  for (int batch : {1, 5}) {
    const auto stock = score(false, c, batch), ours = score(true, c, batch);
    ASSERT_EQ(stock.size(), c.size());
    ASSERT_EQ(ours.size(), c.size());
    double worst = 0;
    for (size_t i = 0; i < c.size(); ++i) {
      ASSERT_EQ(ours[i].per_model.size(), stock[i].per_model.size());
      for (size_t k = 0; k < stock[i].per_model.size(); ++k) {
        worst = std::max(worst, static_cast<double>(std::abs(ours[i].per_model[k] - stock[i].per_model[k])));
      }
    }
    EXPECT_LE(worst, 1e-5) << "batch " << batch;
    std::printf("batch %d: max |dP(fake)| %.3g\n", batch, worst);
  }
}

TEST(ShippedModelsBlas, EveryConvAndLinearRunsOnBlas) {
  if (!blas::optimized()) GTEST_SKIP() << "BLAS is " << blas::library_name();
  // resnet18: its 20 convolutions but the RGB stem (OpenCV's kernel is faster there), and the
  // classifier. vit (its RGB patch embedding stays OpenCV's): per block 2 LayerNorms as 2 products each
  // with an averaging vector, q, k, v, proj and 2 MLP layers (12 x 10), the head's LayerNorm (2) and
  // classifier, and the 12 GELUs' Erf.
  for (const auto& [name, expected] : std::vector<std::pair<std::string, int>>{{"resnet18", 20}, {"vit", 135}}) {
    const std::string path = (fs::path(DFM_SOURCE_DIR) / "models" / (name + ".onnx")).string();
    cv::dnn::Net net = blas::build_net([&] { return cv::dnn::readNetFromONNX(path); });
    EXPECT_EQ(blas::count_layers(net), expected) << name;
  }
}

}  // namespace
}  // namespace dfm
