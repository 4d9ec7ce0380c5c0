// make_blob (colour order, scale, mean/std, layout, resizing), softmax and the ensemble mean.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include <opencv2/imgproc.hpp>

#include "dfm/models/models.h"

namespace dfm {
namespace {

ModelCard imagenet_card(int w = 224, int h = 224, const std::string& color = "RGB") {
  ModelCard c;
  c.name = "t";
  c.width = w;
  c.height = h;
  c.color = color;
  c.scale = 1.0 / 255.0;
  c.mean = {0.485, 0.456, 0.406};
  c.std = {0.229, 0.224, 0.225};
  c.labels = {"real", "fake"};
  return c;
}

double expected_value(double pixel, const ModelCard& c, int ch) { return (pixel * c.scale - c.mean[ch]) / c.std[ch]; }

float at(const cv::Mat& blob, int n, int c, int y, int x) {
  const int idx[4] = {n, c, y, x};
  return blob.at<float>(idx);
}

TEST(MakeBlob, ConstantBgrCropIsNormalisedInRgbOrder) {
  const ModelCard card = imagenet_card();
  const cv::Scalar bgr(10, 100, 200);  // rgb = (200, 100, 10)
  const double rgb[3] = {200, 100, 10};
  cv::Mat blob = make_blob({cv::Mat(224, 224, CV_8UC3, bgr)}, card);
  ASSERT_EQ(blob.dims, 4);
  ASSERT_EQ(blob.type(), CV_32F);
  EXPECT_EQ(blob.size[0], 1);
  EXPECT_EQ(blob.size[1], 3);
  EXPECT_EQ(blob.size[2], 224);
  EXPECT_EQ(blob.size[3], 224);
  for (int c = 0; c < 3; ++c) {
    const double want = expected_value(rgb[c], card, c);
    for (int y : {0, 100, 223}) {
      for (int x : {0, 57, 223}) EXPECT_NEAR(at(blob, 0, c, y, x), want, 1e-5) << "channel " << c;
    }
  }
  // Channel 0 is red: (200/255 - 0.485) / 0.229, well away from the blue value.
  EXPECT_NEAR(at(blob, 0, 0, 5, 5), (200.0 / 255.0 - 0.485) / 0.229, 1e-5);
  EXPECT_NEAR(at(blob, 0, 2, 5, 5), (10.0 / 255.0 - 0.406) / 0.225, 1e-5);
}

TEST(MakeBlob, BgrCardKeepsBgrOrder) {
  const ModelCard card = imagenet_card(224, 224, "BGR");
  const double bgr[3] = {10, 100, 200};
  cv::Mat blob = make_blob({cv::Mat(224, 224, CV_8UC3, cv::Scalar(bgr[0], bgr[1], bgr[2]))}, card);
  for (int c = 0; c < 3; ++c) EXPECT_NEAR(at(blob, 0, c, 17, 33), expected_value(bgr[c], card, c), 1e-5) << c;
}

TEST(MakeBlob, ScaleMeanStdComeFromTheCard) {
  ModelCard card = imagenet_card();
  card.scale = 1.0;
  card.mean = {127.5, 0.0, 255.0};
  card.std = {127.5, 1.0, 2.0};
  cv::Mat blob = make_blob({cv::Mat(224, 224, CV_8UC3, cv::Scalar(0, 50, 255))}, card);  // rgb (255, 50, 0)
  EXPECT_NEAR(at(blob, 0, 0, 0, 0), 1.0, 1e-5);
  EXPECT_NEAR(at(blob, 0, 1, 0, 0), 50.0, 1e-5);
  EXPECT_NEAR(at(blob, 0, 2, 0, 0), -127.5, 1e-5);
}

TEST(MakeBlob, PixelPositionsMapToNchwRowsAndColumns) {
  // Non-square card, pixel values encode their position: B = x, G = y, R = 7.
  const ModelCard card = imagenet_card(40, 24);
  cv::Mat crop(24, 40, CV_8UC3);
  for (int y = 0; y < 24; ++y) {
    for (int x = 0; x < 40; ++x) crop.at<cv::Vec3b>(y, x) = cv::Vec3b(static_cast<uchar>(x), static_cast<uchar>(y), 7);
  }
  cv::Mat blob = make_blob({crop}, card);
  ASSERT_EQ(blob.size[2], 24);
  ASSERT_EQ(blob.size[3], 40);
  for (int y = 0; y < 24; y += 5) {
    for (int x = 0; x < 40; x += 7) {
      EXPECT_NEAR(at(blob, 0, 0, y, x), expected_value(7, card, 0), 1e-5);
      EXPECT_NEAR(at(blob, 0, 1, y, x), expected_value(y, card, 1), 1e-5) << y << "," << x;
      EXPECT_NEAR(at(blob, 0, 2, y, x), expected_value(x, card, 2), 1e-5) << y << "," << x;
    }
  }
}

TEST(MakeBlob, BatchKeepsCropOrderAndResizesOtherSizes) {
  const ModelCard card = imagenet_card(64, 64);
  std::vector<cv::Mat> crops = {cv::Mat(64, 64, CV_8UC3, cv::Scalar(0, 0, 0)),
                                cv::Mat(100, 150, CV_8UC3, cv::Scalar(255, 255, 255)),  // resized to 64x64
                                cv::Mat(32, 32, CV_8UC3, cv::Scalar(30, 60, 90))};
  cv::Mat blob = make_blob(crops, card);
  ASSERT_EQ(blob.size[0], 3);
  ASSERT_EQ(blob.size[2], 64);
  ASSERT_EQ(blob.size[3], 64);
  const double values[3][3] = {{0, 0, 0}, {255, 255, 255}, {90, 60, 30}};  // rgb per crop
  for (int n = 0; n < 3; ++n) {
    for (int c = 0; c < 3; ++c) {
      EXPECT_NEAR(at(blob, n, c, 0, 0), expected_value(values[n][c], card, c), 1e-4) << n << "," << c;
      EXPECT_NEAR(at(blob, n, c, 63, 63), expected_value(values[n][c], card, c), 1e-4) << n << "," << c;
    }
  }
  // The input crops are not modified.
  EXPECT_EQ(crops[1].size(), cv::Size(150, 100));
}

TEST(Softmax, HandComputedValues) {
  const float logits[3] = {1.f, 2.f, 3.f};
  auto p = softmax(logits, 3);
  ASSERT_EQ(p.size(), 3u);
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  EXPECT_NEAR(p[0], std::exp(1.0) / z, 1e-6);  // 0.0900306
  EXPECT_NEAR(p[1], std::exp(2.0) / z, 1e-6);  // 0.2447285
  EXPECT_NEAR(p[2], std::exp(3.0) / z, 1e-6);  // 0.6652410
  EXPECT_NEAR(p[0] + p[1] + p[2], 1.0, 1e-6);
  const float two[2] = {0.f, std::log(3.f)};
  auto q = softmax(two, 2);
  EXPECT_NEAR(q[0], 0.25, 1e-6);
  EXPECT_NEAR(q[1], 0.75, 1e-6);
}

TEST(Softmax, StableForLargeLogits) {
  const float big[2] = {1000.f, 1000.f};
  auto p = softmax(big, 2);
  EXPECT_NEAR(p[0], 0.5, 1e-6);
  EXPECT_NEAR(p[1], 0.5, 1e-6);
  const float far[2] = {-1000.f, 50.f};
  auto q = softmax(far, 2);
  EXPECT_TRUE(std::isfinite(q[0]) && std::isfinite(q[1]));
  EXPECT_NEAR(q[0], 0.0, 1e-9);
  EXPECT_NEAR(q[1], 1.0, 1e-6);
  const float one[1] = {-3.f};
  EXPECT_NEAR(softmax(one, 1)[0], 1.0, 1e-7);
}

TEST(EnsembleMean, WeightedMeanHandComputed) {
  EXPECT_NEAR(ensemble_mean({0.2f, 0.8f}, {0.5, 0.5}), 0.5, 1e-7);
  EXPECT_NEAR(ensemble_mean({0.2f, 0.8f}, {0.75, 0.25}), 0.35, 1e-7);
  EXPECT_NEAR(ensemble_mean({0.1f, 0.4f, 1.0f}, {0.2, 0.3, 0.5}), 0.02 + 0.12 + 0.5, 1e-7);
  EXPECT_NEAR(ensemble_mean({0.9f}, {1.0}), 0.9, 1e-7);
  EXPECT_EQ(ensemble_mean({}, {}), 0.f);
}

}  // namespace
}  // namespace dfm
