// Deepfake classifiers on OpenCV DNN: model cards, loading, per-thread runners and the ensemble.
//
// Ownership: a ModelSet (cards + ONNX bytes) is loaded once and shared read-only between threads; each
// worker thread creates its own EnsembleRunner, which owns one cv::dnn::Net per model (Net is not
// thread-safe).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <opencv2/core.hpp>

#include "dfm/common/status.h"

namespace dfm {

// The JSON card that ships next to each ONNX file ("dfmon.model_card/1"). Preprocessing is read from
// here, never from constants in code: x = (pixel * scale - mean[c]) / std[c], channels in `color` order.
struct ModelCard {
  std::string name;
  std::string architecture;
  std::string file;  // ONNX file name, relative to the card's directory
  int width = 224;
  int height = 224;
  std::string color = "RGB";  // RGB | BGR
  double scale = 1.0 / 255.0;
  std::vector<double> mean;  // one per channel
  std::vector<double> std;   // one per channel
  int max_batch = 0;         // 0 = any batch size; N = run at most N crops per forward pass
  std::string output_type = "logits";  // logits | probabilities
  std::vector<std::string> labels;     // output order
  int fake_index = 1;
  std::string card_path;  // where it was read from (for messages)
  std::string raw_json;   // the card as written, for reports
};

// Parses and validates a card; errors name the file and key ("resnet18.json: input.mean: needs 3 values").
Result<ModelCard> parse_model_card(const std::string& json_text, const std::string& source_name);
Result<ModelCard> load_model_card(const std::string& json_path);
// The card's measured quality, its free-form "metrics" object (e.g. synthetic_val.auc,
// real_deepfakes.video_auc), for reports; null when the card records none.
nlohmann::json model_card_metrics(const ModelCard& card);
// Those metrics in one line for people, e.g. "synthetic val AUC 0.83 · real deepfakes video AUC 0.50
// (46 videos)"; empty when they hold neither figure. The free-form layout is read only here.
std::string model_quality_summary(const nlohmann::json& card_metrics);

// The video AUC on real deepfakes that the cards record for a set of models used together: the
// ensemble's figure when every card records the same one (they were measured together), else the best
// single model's; NaN when no card measured it.
double recorded_real_deepfake_auc(const std::vector<nlohmann::json>& card_metrics);
// Below this recorded AUC the tools tell users, next to the verdicts, that a verdict is a lead only.
constexpr double kTrustedRealDeepfakeAuc = 0.75;
// That sentence for a recorded AUC; empty when the AUC is unknown or at least kTrustedRealDeepfakeAuc.
std::string model_quality_caution(double recorded_auc);

enum class Backend { kAuto, kCuda, kOpenCL, kCpu };
Result<Backend> parse_backend(const std::string& name);
const char* backend_name(Backend b);
// What the OpenCV build can do for a request: cuda/opencl fall back to cpu with one warning per process.
Backend resolve_backend(Backend requested);

// One model: card + ONNX bytes + sha256. Immutable after load.
struct LoadedModel {
  ModelCard card;
  std::string onnx_path;
  std::string sha256;
  std::vector<unsigned char> onnx_bytes;
};

struct ModelSetOptions {
  std::string dir;                  // directory with NAME.onnx + NAME.json
  std::vector<std::string> names;   // e.g. {"resnet18", "vit"}; empty = every card in dir
  std::vector<double> weights;      // ensemble weights, same length as names; empty = equal
  Backend backend = Backend::kAuto;
  int batch = 8;                    // crops per forward pass (clamped by each card's max_batch)
  int threads = 0;                  // inference threads in all; 0 = every core
  bool parallel = true;             // run the models side by side, splitting the threads (cpu backend)
  bool blas_layers = true;          // convolutions and fully-connected layers through OpenBLAS (cpu backend)
};

// How an EnsembleRunner spreads one score() call over `lanes` (the caller's thread plus lanes - 1
// runner-owned threads), each forward pass on `threads_per_lane` OpenCV threads: with at least two
// crops per lane each lane runs every model on its share of the crops; with fewer, the lanes split the
// models. Lanes beat both models in turn on two threads (measured 11-16% at batch 1-8 on 2 cores:
// small layers scale poorly across threads). OpenCV's thread count is process-wide, so the app applies
// it once with apply_thread_plan().
struct ThreadPlan {
  int lanes = 1;
  int threads_per_lane = 1;
  int total() const { return lanes * threads_per_lane; }  // every inference thread
};

// The models of an ensemble and how to weigh them. Loading also validates each file: the ONNX parses,
// runs on one input of the card's size, and has as many outputs as the card has labels.
class ModelSet {
 public:
  static Result<std::shared_ptr<const ModelSet>> load(const ModelSetOptions& options);
  const std::vector<LoadedModel>& models() const { return models_; }
  const std::vector<double>& weights() const { return weights_; }  // normalised to sum 1
  Backend backend() const { return backend_; }
  int batch() const { return batch_; }
  const ThreadPlan& thread_plan() const { return plan_; }
  bool blas_layers() const { return blas_layers_; }
  std::vector<std::string> names() const;

 private:
  std::vector<LoadedModel> models_;
  std::vector<double> weights_;
  Backend backend_ = Backend::kCpu;
  int batch_ = 8;
  bool blas_layers_ = true;
  ThreadPlan plan_;
};

// Gives OpenCV's (process-wide) pool n threads and makes BLAS run on its caller's thread; the
// BLAS-backed layers split their products over OpenCV's pool.
void set_inference_threads(int n);
// set_inference_threads(plan.threads_per_lane).
void apply_thread_plan(const ThreadPlan& plan);
// The BLAS library's own thread count (OpenBLAS; for measuring raw sgemm speed).
void set_blas_threads(int n);
// Which BLAS library the process runs ("OpenBLAS ..." or "reference BLAS").
std::string blas_library();

// Scores of one face crop.
struct FaceScore {
  std::vector<float> per_model;  // P(fake) of each model, ModelSet order
  float ensemble = 0.f;          // weighted mean of per_model
};

// Converts aligned BGR crops into the NCHW float blob a card asks for (resize, colour order, scale,
// mean/std). Exposed for tests and benchmarks.
cv::Mat make_blob(const std::vector<cv::Mat>& crops_bgr, const ModelCard& card);

// Numerically stable softmax of one row of logits.
std::vector<float> softmax(const float* logits, int n);

// Weighted mean of per-model probabilities (weights sum to 1).
float ensemble_mean(const std::vector<float>& per_model, const std::vector<double>& weights);

// Per-thread inference: owns one cv::dnn::Net per model per lane, and the lane threads of the set's
// ThreadPlan (stopped and joined by the destructor). Not thread-safe; create one per worker.
class EnsembleRunner {
 public:
  static Result<std::unique_ptr<EnsembleRunner>> create(std::shared_ptr<const ModelSet> set);
  ~EnsembleRunner();
  // Scores aligned BGR crops (any count; batched internally); the models run side by side per the plan.
  Result<std::vector<FaceScore>> score(const std::vector<cv::Mat>& crops_bgr);
  // P(fake) of one model only (index into ModelSet::models()), on the calling thread.
  Result<std::vector<float>> score_model(size_t model_index, const std::vector<cv::Mat>& crops_bgr);
  const ModelSet& model_set() const { return *set_; }

 private:
  struct Impl;
  explicit EnsembleRunner(std::shared_ptr<const ModelSet> set);
  // Model k on crops [first, last) (already checked) with lane `lane`'s Net, in chunks of the batch size.
  Result<std::vector<float>> score_on(size_t lane, size_t k, std::vector<cv::Mat>::const_iterator first,
                                      std::vector<cv::Mat>::const_iterator last);
  std::shared_ptr<const ModelSet> set_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dfm
