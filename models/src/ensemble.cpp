// Model loading, backend selection, preprocessing and batched inference on OpenCV DNN.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <numeric>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>
#include <opencv2/core/ocl.hpp>
#include <opencv2/dnn.hpp>
#include <opencv2/imgproc.hpp>

#include "blas_layers.h"
#include "dfm/common/log.h"
#include "dfm/common/sha256.h"
#include "dfm/models/models.h"

namespace fs = std::filesystem;

namespace dfm {

Result<Backend> parse_backend(const std::string& name) {
  if (name == "auto") return Backend::kAuto;
  if (name == "cuda") return Backend::kCuda;
  if (name == "opencl") return Backend::kOpenCL;
  if (name == "cpu") return Backend::kCpu;
  return InvalidArgument("backend: unknown \"" + name + "\" (auto|cuda|opencl|cpu)");
}

const char* backend_name(Backend b) {
  switch (b) {
    case Backend::kAuto: return "auto";
    case Backend::kCuda: return "cuda";
    case Backend::kOpenCL: return "opencl";
    case Backend::kCpu: return "cpu";
  }
  return "?";
}

namespace {

bool has_backend(cv::dnn::Backend be, cv::dnn::Target target) {
  for (const auto& p : cv::dnn::getAvailableBackends()) {
    if (p.first == be && p.second == target) return true;
  }
  return false;
}

std::atomic<bool> g_fallback_warned{false};

void warn_fallback_once(const std::string& msg) {
  if (!g_fallback_warned.exchange(true)) get_logger("models")->warn("{}", msg);
}

void configure_net(cv::dnn::Net& net, Backend b) {
  switch (b) {
    case Backend::kCuda:
      net.setPreferableBackend(cv::dnn::DNN_BACKEND_CUDA);
      net.setPreferableTarget(cv::dnn::DNN_TARGET_CUDA);
      break;
    case Backend::kOpenCL:
      net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
      net.setPreferableTarget(cv::dnn::DNN_TARGET_OPENCL);
      break;
    default:
      net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
      net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
  }
}

Result<cv::dnn::Net> read_net(const LoadedModel& m, Backend b, bool blas_layers) {
  try {
    auto import = [&m] {
      return cv::dnn::readNetFromONNX(reinterpret_cast<const char*>(m.onnx_bytes.data()), m.onnx_bytes.size());
    };
    // The BLAS layers are CPU code; other backends keep OpenCV's layers, which they can offload.
    cv::dnn::Net net = blas_layers && b == Backend::kCpu && blas::optimized() ? blas::build_net(import) : import();
    if (net.empty()) return InvalidArgument(m.onnx_path + ": OpenCV DNN could not build a network");
    configure_net(net, b);
    return net;
  } catch (const cv::Exception& e) {
    return InvalidArgument(m.onnx_path + ": not an ONNX model OpenCV can import: " + e.err);
  }
}

// Runs one forward pass and returns P(fake) for each row.
Result<std::vector<float>> forward(cv::dnn::Net& net, const LoadedModel& m, const std::vector<cv::Mat>& crops) {
  cv::Mat blob = make_blob(crops, m.card);
  cv::Mat out;
  try {
    net.setInput(blob);
    out = net.forward();
  } catch (const cv::Exception& e) {
    return Internal(m.onnx_path + ": inference failed: " + e.err);
  }
  const int n = static_cast<int>(crops.size());
  const int classes = static_cast<int>(m.card.labels.size());
  if (out.total() != static_cast<size_t>(n) * static_cast<size_t>(classes)) {
    return InvalidArgument(m.onnx_path + ": model outputs " + std::to_string(out.total() / std::max(n, 1)) +
                           " values per crop but its card " + m.card.card_path + " lists " + std::to_string(classes) +
                           " labels");
  }
  out = out.reshape(1, n);
  std::vector<float> p(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    const float* row = out.ptr<float>(i);
    if (m.card.output_type == "logits") {
      p[static_cast<size_t>(i)] = softmax(row, classes)[static_cast<size_t>(m.card.fake_index)];
    } else {
      p[static_cast<size_t>(i)] = row[m.card.fake_index];
    }
  }
  return p;
}

Result<LoadedModel> load_one(const std::string& dir, const std::string& name) {
  const fs::path card_path = fs::path(dir) / (name + ".json");
  std::error_code ec;
  if (!fs::exists(card_path, ec)) return NotFound("model \"" + name + "\": no card " + card_path.string());
  DFM_ASSIGN_OR_RETURN(ModelCard card, load_model_card(card_path.string()));
  LoadedModel m;
  m.onnx_path = (fs::path(dir) / card.file).string();
  std::ifstream in(m.onnx_path, std::ios::binary);
  if (!in) return NotFound("model \"" + name + "\": cannot open " + m.onnx_path);
  m.onnx_bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (m.onnx_bytes.empty()) return InvalidArgument(m.onnx_path + ": file is empty");
  m.sha256 = sha256_hex(std::string(m.onnx_bytes.begin(), m.onnx_bytes.end()));
  m.card = std::move(card);
  return m;
}

}  // namespace

Backend resolve_backend(Backend requested) {
  const bool cuda = has_backend(cv::dnn::DNN_BACKEND_CUDA, cv::dnn::DNN_TARGET_CUDA);
  switch (requested) {
    case Backend::kCuda:
      if (cuda) return Backend::kCuda;
      warn_fallback_once("backend cuda requested but this OpenCV build has no CUDA DNN backend; using cpu");
      return Backend::kCpu;
    case Backend::kOpenCL:
      if (cv::ocl::haveOpenCL() && has_backend(cv::dnn::DNN_BACKEND_OPENCV, cv::dnn::DNN_TARGET_OPENCL)) {
        return Backend::kOpenCL;
      }
      warn_fallback_once("backend opencl requested but no OpenCL device is available; using cpu");
      return Backend::kCpu;
    case Backend::kAuto:
      if (cuda) return Backend::kCuda;
      warn_fallback_once("backend auto: this OpenCV build has no CUDA DNN backend; running models on cpu");
      return Backend::kCpu;
    case Backend::kCpu:
      return Backend::kCpu;
  }
  return Backend::kCpu;
}

std::vector<float> softmax(const float* logits, int n) {
  std::vector<float> p(static_cast<size_t>(n));
  float mx = *std::max_element(logits, logits + n);
  double sum = 0;
  for (int i = 0; i < n; ++i) {
    p[static_cast<size_t>(i)] = std::exp(logits[i] - mx);
    sum += p[static_cast<size_t>(i)];
  }
  for (auto& v : p) v = static_cast<float>(v / sum);
  return p;
}

float ensemble_mean(const std::vector<float>& per_model, const std::vector<double>& weights) {
  double s = 0;
  for (size_t i = 0; i < per_model.size() && i < weights.size(); ++i) s += weights[i] * per_model[i];
  return static_cast<float>(s);
}

cv::Mat make_blob(const std::vector<cv::Mat>& crops, const ModelCard& card) {
  const int n = static_cast<int>(crops.size());
  const int h = card.height, w = card.width;
  const int dims[4] = {n, 3, h, w};
  cv::Mat blob(4, dims, CV_32F);
  const bool rgb = card.color == "RGB";
  cv::Mat resized, f;
  for (int i = 0; i < n; ++i) {
    const cv::Mat& src = crops[static_cast<size_t>(i)];
    if (src.cols != w || src.rows != h) {
      cv::resize(src, resized, cv::Size(w, h), 0, 0, cv::INTER_AREA);
    } else {
      resized = src;
    }
    resized.convertTo(f, CV_32F);
    // Write each plane straight into the blob: channel c of the model is BGR index (rgb ? 2-c : c).
    for (int c = 0; c < 3; ++c) {
      const int src_c = rgb ? 2 - c : c;
      const float a = static_cast<float>(card.scale / card.std[static_cast<size_t>(c)]);
      const float b = static_cast<float>(-card.mean[static_cast<size_t>(c)] / card.std[static_cast<size_t>(c)]);
      float* dst = blob.ptr<float>(i, c);
      for (int y = 0; y < h; ++y) {
        const float* row = f.ptr<float>(y);
        for (int x = 0; x < w; ++x) dst[y * w + x] = row[x * 3 + src_c] * a + b;
      }
    }
  }
  return blob;
}

std::vector<std::string> ModelSet::names() const {
  std::vector<std::string> n;
  for (const auto& m : models_) n.push_back(m.card.name);
  return n;
}

Result<std::shared_ptr<const ModelSet>> ModelSet::load(const ModelSetOptions& o) {
  std::error_code ec;
  if (o.dir.empty()) return NotFound("no model directory given and no bundled models found (use --models DIR)");
  if (!fs::is_directory(o.dir, ec)) return NotFound("models directory " + o.dir + ": not a directory");
  if (o.batch < 1 || o.batch > 256) return InvalidArgument("models.batch: must be within 1..256");
  if (o.threads < 0 || o.threads > 256) return InvalidArgument("threads: must be within 0..256");
  std::vector<std::string> names = o.names;
  if (names.empty()) {
    // Every *.json whose "schema" says it is a model card; other JSON (metrics, notes) may sit beside them.
    // A .onnx file no valid card refers to is loaded by its stem anyway, so that a missing or broken card
    // is an error naming it instead of an ensemble silently running without that model.
    std::set<std::string> onnx_files, card_files;
    for (const auto& e : fs::directory_iterator(o.dir, ec)) {
      if (e.path().extension() == ".onnx") onnx_files.insert(e.path().filename().string());
      if (e.path().extension() != ".json") continue;
      std::ifstream in(e.path());
      const auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
      if (j.is_object() && j.value("schema", "") == "dfmon.model_card/1") {
        names.push_back(e.path().stem().string());
        if (j.contains("file") && j["file"].is_string()) card_files.insert(j["file"].get<std::string>());
      }
    }
    for (const auto& f : onnx_files) {
      if (!card_files.count(f)) names.push_back(fs::path(f).stem().string());
    }
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    if (names.empty()) return NotFound("models directory " + o.dir + ": no model cards (*.json)");
  }
  if (!o.weights.empty() && o.weights.size() != names.size()) {
    return InvalidArgument("models.weights: " + std::to_string(o.weights.size()) + " weights for " +
                           std::to_string(names.size()) + " models");
  }
  auto set = std::shared_ptr<ModelSet>(new ModelSet());
  set->backend_ = resolve_backend(o.backend);
  set->batch_ = o.batch;
  set->blas_layers_ = o.blas_layers;
  if (o.blas_layers && set->backend_ == Backend::kCpu && !blas::optimized()) {
    static std::atomic<bool> warned{false};
    if (!warned.exchange(true)) {
      get_logger("models")->warn(
          "the BLAS library is not OpenBLAS ({}); convolutions run ~1.5x slower on OpenCV's "
          "own kernels (install libopenblas0-pthread)",
          blas::library_name());
    }
  }
  double total = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    double wgt = o.weights.empty() ? 1.0 : o.weights[i];
    if (!(wgt >= 0) || !std::isfinite(wgt)) return InvalidArgument("models.weights: must be >= 0");
    total += wgt;
    set->weights_.push_back(wgt);
    DFM_ASSIGN_OR_RETURN(LoadedModel m, load_one(o.dir, names[i]));
    // Validate the file against its card now, so a broken model fails at start-up, not mid-stream.
    DFM_ASSIGN_OR_RETURN(cv::dnn::Net net, read_net(m, Backend::kCpu, o.blas_layers));
    std::vector<cv::Mat> probe{cv::Mat(m.card.height, m.card.width, CV_8UC3, cv::Scalar(128, 128, 128))};
    auto p = forward(net, m, probe);
    if (!p.ok()) return p.status();
    set->models_.push_back(std::move(m));
  }
  if (!(total > 0)) return InvalidArgument("models.weights: at least one weight must be > 0");
  for (auto& wgt : set->weights_) wgt /= total;
  const int cores = o.threads > 0 ? o.threads : std::max(1, cv::getNumberOfCPUs());
  const int models = static_cast<int>(set->models_.size());
  // Side by side only on the CPU: a GPU backend has its own queue, and one core has nothing to split.
  if (o.parallel && set->backend_ == Backend::kCpu && models > 1 && cores > 1) {
    set->plan_.lanes = std::min(models, cores);
    set->plan_.threads_per_lane = std::max(1, cores / set->plan_.lanes);
  } else {
    set->plan_.lanes = 1;
    set->plan_.threads_per_lane = cores;
  }
  return std::shared_ptr<const ModelSet>(set);
}

void set_inference_threads(int n) {
  cv::setNumThreads(std::max(1, n));
  // BLAS on the calling thread: the BLAS layers split their products over OpenCV's pool, so there is
  // one pool of inference threads, not a second one spinning beside it.
  blas::set_threads(1);
}

void apply_thread_plan(const ThreadPlan& plan) {
  set_inference_threads(plan.threads_per_lane);
}

void set_blas_threads(int n) {
  blas::set_threads(n);
}

std::string blas_library() {
  return blas::library_name();
}

namespace {

// One runner-owned thread that runs posted tasks one at a time; joined on destruction.
class Lane {
 public:
  Lane() : thread_([this] { loop(); }) {}
  ~Lane() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  Lane(const Lane&) = delete;
  Lane& operator=(const Lane&) = delete;

  void post(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      task_ = std::move(task);
      pending_ = true;
    }
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return !pending_; });
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return stop_ || pending_; });
      if (!pending_) return;  // stop_ with nothing left to run
      std::function<void()> task = std::move(task_);
      lock.unlock();
      task();  // never throws: callers wrap their work
      lock.lock();
      pending_ = false;
      cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::function<void()> task_;
  bool pending_ = false;
  bool stop_ = false;
  std::thread thread_;  // last: starts once the members above exist
};

}  // namespace

struct EnsembleRunner::Impl {
  // nets[lane][model]: every lane has its own Net of every model (a Net runs one pass at a time).
  std::vector<std::vector<cv::dnn::Net>> nets;
  std::vector<std::unique_ptr<Lane>> lanes;  // plan.lanes - 1; lane 0 is the calling thread
};

EnsembleRunner::EnsembleRunner(std::shared_ptr<const ModelSet> set) : set_(std::move(set)), impl_(new Impl) {}
EnsembleRunner::~EnsembleRunner() = default;

Result<std::unique_ptr<EnsembleRunner>> EnsembleRunner::create(std::shared_ptr<const ModelSet> set) {
  if (!set) return InvalidArgument("EnsembleRunner: no model set");
  std::unique_ptr<EnsembleRunner> r(new EnsembleRunner(set));
  const int lanes = std::max(1, set->thread_plan().lanes);
  r->impl_->nets.resize(static_cast<size_t>(lanes));
  for (auto& lane_nets : r->impl_->nets) {
    for (const auto& m : set->models()) {
      DFM_ASSIGN_OR_RETURN(cv::dnn::Net net, read_net(m, set->backend(), set->blas_layers()));
      lane_nets.push_back(std::move(net));
    }
  }
  for (int i = 1; i < lanes; ++i) r->impl_->lanes.push_back(std::make_unique<Lane>());
  // Warm-up: the first forward pass allocates and picks kernels; keep that out of measured latency.
  // One crop (the lanes split the models) and two per lane (the lanes split the crops: every Net runs).
  for (size_t n : {size_t{1}, 2 * static_cast<size_t>(lanes)}) {
    std::vector<cv::Mat> warm(n, cv::Mat(224, 224, CV_8UC3, cv::Scalar(0, 0, 0)));
    auto w = r->score(warm);
    if (!w.ok()) return w.status();
  }
  return r;
}

namespace {

Status check_crops(const std::vector<cv::Mat>& crops) {
  for (const auto& c : crops) {
    if (c.empty() || c.type() != CV_8UC3) return InvalidArgument("crops must be non-empty 8-bit BGR images");
  }
  return Status::Ok();
}

}  // namespace

Result<std::vector<float>> EnsembleRunner::score_model(size_t k, const std::vector<cv::Mat>& crops) {
  DFM_RETURN_IF_ERROR(check_crops(crops));
  return score_on(0, k, crops.begin(), crops.end());
}

Result<std::vector<float>> EnsembleRunner::score_on(size_t lane, size_t k, std::vector<cv::Mat>::const_iterator first,
                                                    std::vector<cv::Mat>::const_iterator last) {
  if (k >= set_->models().size()) return InvalidArgument("model index out of range");
  const LoadedModel& m = set_->models()[k];
  int chunk = set_->batch();
  if (m.card.max_batch > 0) chunk = std::min(chunk, m.card.max_batch);
  std::vector<float> out;
  out.reserve(static_cast<size_t>(last - first));
  for (auto it = first; it < last; it += std::min<long>(chunk, last - it)) {
    std::vector<cv::Mat> part(it, it + std::min<long>(chunk, last - it));
    DFM_ASSIGN_OR_RETURN(std::vector<float> p, forward(impl_->nets[lane][k], m, part));
    out.insert(out.end(), p.begin(), p.end());
  }
  return out;
}

Result<std::vector<FaceScore>> EnsembleRunner::score(const std::vector<cv::Mat>& crops) {
  const size_t n_models = set_->models().size();
  const size_t n_lanes = impl_->lanes.size() + 1;
  DFM_RETURN_IF_ERROR(check_crops(crops));
  const size_t n = crops.size();
  // With at least two crops per lane each lane runs every model on its share of the crops, so the
  // lanes finish together; with fewer, lane j runs models j, j + lanes, ... on all of them (ResNet-18
  // costs ~1.6x the ViT per face, so splitting by model leaves one lane idle part of the time).
  const bool by_crops = n_lanes > 1 && n >= 2 * n_lanes;
  // per[lane][model]: P(fake) of the lane's crops (by_crops) or of all crops (by model).
  std::vector<std::vector<Result<std::vector<float>>>> per(
      n_lanes, std::vector<Result<std::vector<float>>>(n_models, Result<std::vector<float>>(Internal("not run"))));
  auto share = [&](size_t lane) { return std::make_pair(n * lane / n_lanes, n * (lane + 1) / n_lanes); };
  auto run_lane = [&](size_t lane) {
    for (size_t k = by_crops ? 0 : lane; k < n_models; k += by_crops ? 1 : n_lanes) {
      try {
        const auto [lo, hi] = by_crops ? share(lane) : std::make_pair(size_t{0}, n);
        per[lane][k] = score_on(lane, k, crops.begin() + static_cast<long>(lo), crops.begin() + static_cast<long>(hi));
      } catch (const std::exception& e) {  // nothing may escape a lane (or leave score() with lanes running)
        per[lane][k] = Internal(set_->models()[k].onnx_path + ": inference failed: " + e.what());
      } catch (...) {
        per[lane][k] = Internal(set_->models()[k].onnx_path + ": inference failed");
      }
    }
  };
  for (size_t j = 1; j < n_lanes; ++j) impl_->lanes[j - 1]->post([&run_lane, j] { run_lane(j); });
  run_lane(0);
  for (auto& lane : impl_->lanes) lane->wait();
  std::vector<FaceScore> scores(n);
  for (size_t k = 0; k < n_models; ++k) {
    for (size_t lane = 0; lane < n_lanes; ++lane) {
      if (!by_crops && k % n_lanes != lane) continue;
      if (!per[lane][k].ok()) return per[lane][k].status();
      const std::vector<float>& p = per[lane][k].value();
      const size_t lo = by_crops ? share(lane).first : 0;
      for (size_t i = 0; i < p.size(); ++i) scores[lo + i].per_model.push_back(p[i]);
    }
  }
  for (auto& s : scores) s.ensemble = ensemble_mean(s.per_model, set_->weights());
  return scores;
}

}  // namespace dfm
