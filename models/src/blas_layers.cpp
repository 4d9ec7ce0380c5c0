// BLAS-backed Convolution and InnerProduct layers for OpenCV DNN (see blas_layers.h).
#include "blas_layers.h"

#include <cblas.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <opencv2/dnn/all_layers.hpp>
#include <opencv2/dnn/layer.details.hpp>
#include <opencv2/dnn/shape_utils.hpp>
#include <vector>

namespace dfm::blas {

namespace {

using cv::Mat;
using cv::dnn::ActivationLayer;
using cv::dnn::Layer;
using cv::dnn::LayerParams;
using cv::dnn::MatShape;

struct Library {
  void (*set_threads)(int) = nullptr;
  int (*get_threads)() = nullptr;
  std::string name = "reference BLAS";
  bool openblas = false;
};

// cblas_sgemm comes from libblas.so.3, which Debian's alternatives point at OpenBLAS when
// libopenblas0-pthread is installed; OpenBLAS's own entry points say which one we got.
const Library& library() {
  static const Library lib = [] {
    Library l;
    l.set_threads = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
    l.get_threads = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
    auto config = reinterpret_cast<const char* (*)()>(dlsym(RTLD_DEFAULT, "openblas_get_config"));
    if (l.set_threads && config) {
      l.openblas = true;
      l.name = std::string("OpenBLAS ") + config();
    }
    return l;
  }();
  return lib;
}

// How many parts to split work of `flops` into on OpenCV's threads. When BLAS runs single-threaded
// (what set_inference_threads arranges) our layers split each product on OpenCV's pool themselves, so
// the process has one pool of inference threads and no second one spinning beside it; when BLAS has
// its own threads (a host that set none, e.g. the GStreamer element) each product is one BLAS call.
int split_parts(double flops, int units) {
  const Library& lib = library();
  if (lib.get_threads && lib.get_threads() > 1) return 1;
  const int threads = cv::getNumThreads();
  const int by_work = static_cast<int>(flops / 2e6);  // below ~2 MFLOP a part, the hand-off costs more
  return std::max(1, std::min({threads, by_work, units}));
}

// C = A * op(B) (+ C when beta is 1), row-major; split over rows of C when it has more rows than
// columns, else over column blocks (multiples of 16 so each part keeps whole SIMD blocks).
void sgemm(bool trans_b, int m, int n, int k, const float* a, int lda, const float* b, int ldb, float beta, float* c,
           int ldc) {
  const bool by_rows = m >= n;
  const int extent = by_rows ? m : n;
  const int parts = split_parts(2.0 * m * n * k, (extent + 15) / 16);
  auto run = [&](int lo, int hi) {
    if (lo >= hi) return;
    if (by_rows) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, hi - lo, n, k, 1.f,
                  a + static_cast<size_t>(lo) * lda, lda, b, ldb, beta, c + static_cast<size_t>(lo) * ldc, ldc);
    } else {
      const float* bj = trans_b ? b + static_cast<size_t>(lo) * ldb : b + lo;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, hi - lo, k, 1.f, a, lda, bj, ldb,
                  beta, c + lo, ldc);
    }
  };
  if (parts == 1) {
    run(0, extent);
    return;
  }
  const int block = ((extent + parts - 1) / parts + 15) / 16 * 16;
  cv::parallel_for_(
      cv::Range(0, parts),
      [&](const cv::Range& r) {
        for (int p = r.start; p < r.end; ++p) run(std::min(extent, p * block), std::min(extent, (p + 1) * block));
      },
      parts);
}

// Applies bias and a fused activation to `channels` planes of `plane` values at dst (NCHW, one image).
struct Epilogue {
  Mat bias;           // 1 x channels float, or empty
  bool relu = false;  // ReLU / LeakyReLU fused as `slope`
  float slope = 0.f;
  cv::Ptr<ActivationLayer> other;  // any other fused activation

  void bias_rows(float* dst, int channels, int plane) const {
    for (int c = 0; c < channels; ++c) {
      const float b = bias.empty() ? 0.f : bias.ptr<float>()[c];
      std::fill(dst + static_cast<size_t>(c) * plane, dst + static_cast<size_t>(c + 1) * plane, b);
    }
  }
  // After a product into a bias-filled dst: the activation alone.
  void activate(float* dst, int channels, int plane) const {
    const size_t n = static_cast<size_t>(channels) * plane;
    if (relu) {
      const float s = slope;
      for (size_t i = 0; i < n; ++i) dst[i] = dst[i] > 0.f ? dst[i] : dst[i] * s;
    } else if (other) {
      other->forwardSlice(dst, dst, plane, static_cast<size_t>(plane), 0, channels);
    }
  }
  // Copies one image's planes out of a [channels x stride] product with bias and activation applied.
  void scatter(const float* src, size_t stride, float* dst, int channels, int plane) const {
    for (int c = 0; c < channels; ++c) {
      const float b = bias.empty() ? 0.f : bias.ptr<float>()[c];
      const float* s = src + static_cast<size_t>(c) * stride;
      float* d = dst + static_cast<size_t>(c) * plane;
      if (relu) {
        const float k = slope;
        for (int i = 0; i < plane; ++i) {
          const float v = s[i] + b;
          d[i] = v > 0.f ? v : v * k;
        }
      } else {
        for (int i = 0; i < plane; ++i) d[i] = s[i] + b;
      }
    }
    if (other) other->forwardSlice(dst, dst, plane, static_cast<size_t>(plane), 0, channels);
  }
};

// OpenCV clears a layer's fused activation (empty `a`) each time it sets the net up for a new input
// shape, then offers the layers that follow it one by one: only the first may be taken.
bool fuse_activation(Epilogue& e, const cv::Ptr<ActivationLayer>& a) {
  if (!a) {
    e.relu = false;
    e.slope = 0.f;
    e.other.release();
    return false;
  }
  if (e.relu || e.other) return false;
  if (auto r = a.dynamicCast<cv::dnn::ReLULayer>()) {
    e.relu = true;
    e.slope = r->negativeSlope;
  } else {
    e.other = a;
  }
  return true;
}

// A weight blob as a rows x (rest) matrix, sharing its data (one copy of the weights in memory).
Mat as_rows(const Mat& w, int rows) {
  return (w.isContinuous() ? w : w.clone()).reshape(1, rows);
}

// What the BLAS layers share: CPU only, a fused activation applied in their epilogue.
class BlasLayer : public Layer {
 public:
  explicit BlasLayer(const LayerParams& p) : Layer(p) {}  // Layer(p) keeps the blobs
  bool supportBackend(int backend_id) override { return backend_id == cv::dnn::DNN_BACKEND_OPENCV; }
  bool setActivation(const cv::Ptr<ActivationLayer>& a) override { return fuse_activation(epi_, a); }

 protected:
  Epilogue epi_;
};

// 2-D convolution, group 1, as im2col + sgemm. Images whose output plane is large enough get one
// product each, written straight into the output; small planes (deep layers) are gathered across the
// batch into one wider product, which BLAS runs far more efficiently than many thin ones.
class ConvLayer : public BlasLayer {
 public:
  ConvLayer(const LayerParams& p, const cv::dnn::BaseConvolutionLayer& parsed) : BlasLayer(p) {
    const Mat& w = p.blobs[0];
    oc_ = w.size[0];
    ic_ = w.size[1];
    kh_ = w.size[2];
    kw_ = w.size[3];
    sh_ = static_cast<int>(parsed.strides[0]);
    sw_ = static_cast<int>(parsed.strides[1]);
    ph_ = static_cast<int>(parsed.pads_begin[0]);
    pw_ = static_cast<int>(parsed.pads_begin[1]);
    peh_ = static_cast<int>(parsed.pads_end[0]);
    pew_ = static_cast<int>(parsed.pads_end[1]);
    dh_ = static_cast<int>(parsed.dilations[0]);
    dw_ = static_cast<int>(parsed.dilations[1]);
    weights_ = as_rows(w, oc_);
    if (p.blobs.size() > 1 && p.get<bool>("bias_term", true)) epi_.bias = p.blobs[1].reshape(1, 1).clone();
  }

  bool getMemoryShapes(const std::vector<MatShape>& in, const int, std::vector<MatShape>& out,
                       std::vector<MatShape>&) const override {
    CV_Assert(in.size() == 1 && in[0].size() == 4);
    CV_Assert(in[0][1] == ic_);
    const int oh = out_h(in[0][2]), ow = out_w(in[0][3]);
    CV_Assert(oh > 0 && ow > 0);
    out.assign(1, MatShape{in[0][0], oc_, oh, ow});
    return false;
  }

  void forward(cv::InputArrayOfArrays in_arr, cv::OutputArrayOfArrays out_arr, cv::OutputArrayOfArrays) override {
    std::vector<Mat> in, out;
    in_arr.getMatVector(in);
    out_arr.getMatVector(out);
    const Mat& x = in[0];
    Mat& y = out[0];
    CV_Assert(x.type() == CV_32F && x.isContinuous() && y.isContinuous());
    const int n = x.size[0], h = x.size[2], w = x.size[3];
    const int oh = out_h(h), ow = out_w(w), plane = oh * ow, ckk = ic_ * kh_ * kw_;
    const float* xp = x.ptr<float>();
    float* yp = y.ptr<float>();
    const bool direct = kh_ == 1 && kw_ == 1 && sh_ == 1 && sw_ == 1 && ph_ + pw_ + peh_ + pew_ == 0;

    const size_t in_image = static_cast<size_t>(ic_) * h * w, out_image = static_cast<size_t>(oc_) * plane;
    const double image_flops = 2.0 * oc_ * plane * ckk;

    if (plane >= kPerImagePlane) {
      // Whole images per thread (each with its own patch buffer), or one image's product split when
      // there are fewer images than threads.
      const int image_parts = n > 1 ? split_parts(image_flops * n, n) : 1;
      if (col_.size() < static_cast<size_t>(image_parts)) col_.resize(static_cast<size_t>(image_parts));
      auto run_images = [&](int part, int lo, int hi) {
        std::vector<float>& col = col_[static_cast<size_t>(part)];
        if (!direct) col.resize(static_cast<size_t>(ckk) * plane);
        for (int i = lo; i < hi; ++i) {
          const float* xi = xp + static_cast<size_t>(i) * in_image;
          float* yi = yp + static_cast<size_t>(i) * out_image;
          if (!direct) im2col(xi, h, w, oh, ow, col.data(), plane, 0);
          epi_.bias_rows(yi, oc_, plane);
          const float* b = direct ? xi : col.data();
          if (image_parts > 1) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, oc_, plane, ckk, 1.f, weights_.ptr<float>(), ckk, b,
                        plane, 1.f, yi, plane);
          } else {
            sgemm(false, oc_, plane, ckk, weights_.ptr<float>(), ckk, b, plane, 1.f, yi, plane);
          }
          epi_.activate(yi, oc_, plane);
        }
      };
      if (image_parts == 1) {
        run_images(0, 0, n);
      } else {
        cv::parallel_for_(
            cv::Range(0, image_parts),
            [&](const cv::Range& r) {
              for (int p = r.start; p < r.end; ++p) run_images(p, p * n / image_parts, (p + 1) * n / image_parts);
            },
            image_parts);
      }
      return;
    }
    const size_t cols = static_cast<size_t>(n) * plane;
    if (col_.empty()) col_.resize(1);
    col_[0].resize(static_cast<size_t>(ckk) * cols);
    tmp_.resize(static_cast<size_t>(oc_) * cols);
    float* col = col_[0].data();
    const int copy_parts = split_parts(image_flops * n / 16, n);  // copies: a fraction of the product's work
    auto per_image = [&](const std::function<void(int)>& f) {
      if (copy_parts == 1) {
        for (int i = 0; i < n; ++i) f(i);
        return;
      }
      cv::parallel_for_(
          cv::Range(0, n),
          [&](const cv::Range& r) {
            for (int i = r.start; i < r.end; ++i) f(i);
          },
          copy_parts);
    };
    per_image([&](int i) {
      im2col(xp + static_cast<size_t>(i) * in_image, h, w, oh, ow, col, cols, static_cast<size_t>(i) * plane);
    });
    sgemm(false, oc_, static_cast<int>(cols), ckk, weights_.ptr<float>(), ckk, col, static_cast<int>(cols), 0.f,
          tmp_.data(), static_cast<int>(cols));
    per_image([&](int i) {
      epi_.scatter(tmp_.data() + static_cast<size_t>(i) * plane, cols, yp + static_cast<size_t>(i) * out_image, oc_,
                   plane);
    });
  }

  int64 getFLOPS(const std::vector<MatShape>& in, const std::vector<MatShape>& out) const override {
    (void)in;
    return 2 * static_cast<int64>(cv::dnn::total(out[0])) * ic_ * kh_ * kw_;
  }

 private:
  // Below this many output positions an image's product is too thin for BLAS to run well alone.
  static constexpr int kPerImagePlane = 196;

  int out_h(int h) const { return (h + ph_ + peh_ - dh_ * (kh_ - 1) - 1) / sh_ + 1; }
  int out_w(int w) const { return (w + pw_ + pew_ - dw_ * (kw_ - 1) - 1) / sw_ + 1; }

  // Writes one image's patches into rows (c, ky, kx) of `col`, columns [col0, col0 + oh*ow) of `stride`.
  void im2col(const float* x, int h, int w, int oh, int ow, float* col, size_t stride, size_t col0) const {
    for (int c = 0; c < ic_; ++c) {
      const float* xc = x + static_cast<size_t>(c) * h * w;
      for (int ky = 0; ky < kh_; ++ky) {
        for (int kx = 0; kx < kw_; ++kx) {
          float* row = col + (static_cast<size_t>(c * kh_ + ky) * kw_ + kx) * stride + col0;
          const int x0 = kx * dw_ - pw_;
          // Output columns whose input column x0 + ox*sw lies inside [0, w).
          const int lo = std::min(ow, x0 >= 0 ? 0 : (-x0 + sw_ - 1) / sw_);
          const int hi = std::max(lo, std::min(ow, x0 < w ? (w - 1 - x0) / sw_ + 1 : 0));
          for (int oy = 0; oy < oh; ++oy) {
            float* d = row + static_cast<size_t>(oy) * ow;
            const int iy = oy * sh_ - ph_ + ky * dh_;
            if (iy < 0 || iy >= h) {
              std::memset(d, 0, sizeof(float) * static_cast<size_t>(ow));
              continue;
            }
            const float* s = xc + static_cast<size_t>(iy) * w + x0;
            std::fill(d, d + lo, 0.f);
            if (sw_ == 1) {
              std::memcpy(d + lo, s + lo, sizeof(float) * static_cast<size_t>(hi - lo));
            } else {
              for (int ox = lo; ox < hi; ++ox) d[ox] = s[ox * sw_];
            }
            std::fill(d + hi, d + ow, 0.f);
          }
        }
      }
    }
  }

  int oc_, ic_, kh_, kw_, sh_, sw_, ph_, pw_, peh_, pew_, dh_, dw_;
  Mat weights_;  // oc x (ic*kh*kw)
  // Reused across calls (a net runs one forward pass at a time): patch buffers, one per parallel part,
  // and the batched product before it is scattered into the output.
  std::vector<std::vector<float>> col_;
  std::vector<float> tmp_;
};

// Fully-connected layer with constant weights: out = in * W^T + b over the dims from `axis` on.
class InnerProductLayer : public BlasLayer {
 public:
  explicit InnerProductLayer(const LayerParams& p) : BlasLayer(p) {
    const Mat& w = p.blobs[0];
    nout_ = w.size[0];
    nin_ = static_cast<int>(w.total() / static_cast<size_t>(nout_));
    weights_ = as_rows(w, nout_);
    axis_ = p.get<int>("axis", 1);
    if (p.blobs.size() > 1 && p.get<bool>("bias_term", true)) epi_.bias = p.blobs[1].reshape(1, 1).clone();
  }

  bool getMemoryShapes(const std::vector<MatShape>& in, const int, std::vector<MatShape>& out,
                       std::vector<MatShape>&) const override {
    CV_Assert(in.size() == 1);
    const int axis = cv::dnn::normalize_axis(axis_, static_cast<int>(in[0].size()));
    CV_Assert(cv::dnn::total(in[0], axis) == nin_);
    MatShape s(in[0].begin(), in[0].begin() + axis);
    s.push_back(nout_);
    out.assign(1, s);
    return false;
  }

  void forward(cv::InputArrayOfArrays in_arr, cv::OutputArrayOfArrays out_arr, cv::OutputArrayOfArrays) override {
    std::vector<Mat> in, out;
    in_arr.getMatVector(in);
    out_arr.getMatVector(out);
    CV_Assert(in[0].type() == CV_32F && in[0].isContinuous() && out[0].isContinuous());
    const int m = static_cast<int>(in[0].total() / static_cast<size_t>(nin_));
    float* y = out[0].ptr<float>();
    float beta = 0.f;
    if (!epi_.bias.empty()) {
      for (int i = 0; i < m; ++i)
        std::memcpy(y + static_cast<size_t>(i) * nout_, epi_.bias.ptr<float>(), sizeof(float) * nout_);
      beta = 1.f;
    }
    sgemm(true, m, nout_, nin_, in[0].ptr<float>(), nin_, weights_.ptr<float>(), nin_, beta, y, nout_);
    // Rows are (sample, unit); the unit is the channel of a fused per-channel activation.
    if (epi_.relu) {
      epi_.activate(y, 1, m * nout_);
    } else if (epi_.other) {
      for (int i = 0; i < m; ++i)
        epi_.other->forwardSlice(y + static_cast<size_t>(i) * nout_, y + static_cast<size_t>(i) * nout_, 1, 1, 0,
                                 nout_);
    }
  }

  int64 getFLOPS(const std::vector<MatShape>& in, const std::vector<MatShape>& out) const override {
    (void)in;
    return 2 * static_cast<int64>(cv::dnn::total(out[0])) * nin_;
  }

 private:
  int nout_, nin_, axis_;
  Mat weights_;  // nout x nin
};

// erf, element-wise (the ViT's GELU). OpenCV's Erf layer calls scalar erff per value, 3.4% of a
// live run's CPU; glibc's vector erff (libmvec, <= 4 ulp) does 8 values a call.
#if defined(__x86_64__)
extern "C" __m256 _ZGVdN8v_erff(__m256);  // NOLINT: glibc libmvec's AVX2 erff
extern "C" __m128 _ZGVbN4v_erff(__m128);  // NOLINT: its SSE variant, for any x86-64

__attribute__((target("avx2"))) void erf_avx2(const float* x, float* y, size_t n, size_t& done) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _ZGVdN8v_erff(_mm256_loadu_ps(x + i)));
  done = i;
}

void erf_span(const float* x, float* y, size_t n) {
  static const bool avx2 = __builtin_cpu_supports("avx2");
  size_t i = 0;
  if (avx2) {
    erf_avx2(x, y, n, i);
  } else {
    for (; i + 4 <= n; i += 4) _mm_storeu_ps(y + i, _ZGVbN4v_erff(_mm_loadu_ps(x + i)));
  }
  for (; i < n; ++i) y[i] = std::erf(x[i]);
}
#else
void erf_span(const float* x, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = std::erf(x[i]);
}
#endif

class ErfLayer : public Layer {
 public:
  explicit ErfLayer(const LayerParams& p) : Layer(p) {}
  bool supportBackend(int backend_id) override { return backend_id == cv::dnn::DNN_BACKEND_OPENCV; }
  bool getMemoryShapes(const std::vector<MatShape>& in, const int, std::vector<MatShape>& out,
                       std::vector<MatShape>&) const override {
    out = in;
    return true;  // may run in place
  }
  void forward(cv::InputArrayOfArrays in_arr, cv::OutputArrayOfArrays out_arr, cv::OutputArrayOfArrays) override {
    std::vector<Mat> in, out;
    in_arr.getMatVector(in);
    out_arr.getMatVector(out);
    for (size_t k = 0; k < in.size(); ++k) {
      CV_Assert(in[k].type() == CV_32F && in[k].isContinuous() && out[k].isContinuous() &&
                in[k].total() == out[k].total());
      const float* x = in[k].ptr<float>();
      float* y = out[k].ptr<float>();
      const size_t n = in[k].total();
      const int parts = split_parts(25.0 * static_cast<double>(n), static_cast<int>((n + 4095) / 4096));
      if (parts == 1) {
        erf_span(x, y, n);
        continue;
      }
      cv::parallel_for_(
          cv::Range(0, parts),
          [&](const cv::Range& r) {
            const size_t lo = n * static_cast<size_t>(r.start) / static_cast<size_t>(parts);
            const size_t hi = n * static_cast<size_t>(r.end) / static_cast<size_t>(parts);
            erf_span(x + lo, y + lo, hi - lo);
          },
          parts);
    }
  }
};

cv::Ptr<Layer> make_erf(LayerParams& p) {
  return cv::Ptr<Layer>(new ErfLayer(p));
}

constexpr int kMinBlasInputChannels = 8;

cv::Ptr<Layer> make_conv(LayerParams& p) {
  cv::Ptr<cv::dnn::BaseConvolutionLayer> parsed = cv::dnn::ConvolutionLayer::create(p);
  const bool ok = !p.blobs.empty() && p.blobs[0].dims == 4 && p.blobs[0].type() == CV_32F &&
                  parsed->kernel_size.size() == 2 && parsed->strides.size() == 2 && parsed->dilations.size() == 2 &&
                  parsed->pads_begin.size() == 2 && parsed->pads_end.size() == 2 && parsed->padMode.empty() &&
                  p.get<int>("group", 1) == 1 && p.blobs[0].size[2] == static_cast<int>(parsed->kernel_size[0]) &&
                  p.blobs[0].size[3] == static_cast<int>(parsed->kernel_size[1]);
  // With a handful of input channels (an RGB stem) the patch matrix is mostly copying and the product's
  // inner dimension is short: OpenCV's kernel is faster there (ResNet-18's 7x7 stem, one thread:
  // 1.3 vs 2.0 ms at batch 1, 10.7 vs 13.4 ms at batch 8).
  if (!ok || p.blobs[0].size[1] < kMinBlasInputChannels) return parsed;
  return cv::Ptr<Layer>(new ConvLayer(p, *parsed));
}

cv::Ptr<Layer> make_inner_product(LayerParams& p) {
  // Two-input products (no constant weights) stay with OpenCV. The importer has already laid constant
  // weights out as nout x nin whatever the Gemm's transB was.
  const bool ok =
      !p.blobs.empty() && p.blobs[0].dims == 2 && p.blobs[0].type() == CV_32F && p.get<int>("transA", 0) == 0;
  if (!ok) return cv::dnn::InnerProductLayer::create(p);
  return cv::Ptr<Layer>(new InnerProductLayer(p));
}

std::mutex& registry_mutex() {
  static std::mutex mu;
  return mu;
}

}  // namespace

bool optimized() {
  return library().openblas;
}

std::string library_name() {
  return library().name;
}

void set_threads(int n) {
  if (library().set_threads) library().set_threads(std::max(1, n));
}

cv::dnn::Net build_net(const std::function<cv::dnn::Net()>& build) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  cv::dnn::LayerFactory::registerLayer("Convolution", make_conv);
  cv::dnn::LayerFactory::registerLayer("InnerProduct", make_inner_product);
  cv::dnn::LayerFactory::registerLayer("Erf", make_erf);
  struct Unregister {
    ~Unregister() {
      cv::dnn::LayerFactory::unregisterLayer("Erf");
      cv::dnn::LayerFactory::unregisterLayer("InnerProduct");
      cv::dnn::LayerFactory::unregisterLayer("Convolution");
    }
  } unregister;  // also when build() throws
  cv::dnn::Net net = build();
  // Layers are created on first use; create them all while ours are registered.
  if (!net.empty()) {
    for (const auto& name : net.getLayerNames()) (void)net.getLayer(name);
  }
  return net;
}

int count_layers(cv::dnn::Net& net) {
  int n = 0;
  if (net.empty()) return 0;
  for (const auto& name : net.getLayerNames()) {
    cv::Ptr<Layer> l = net.getLayer(name);
    if (l.dynamicCast<ConvLayer>() || l.dynamicCast<InnerProductLayer>() || l.dynamicCast<ErfLayer>()) ++n;
  }
  return n;
}

}  // namespace dfm::blas
