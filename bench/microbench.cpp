// Google Benchmark micro-benchmarks of the inference path (build with -DDFM_BUILD_BENCH=ON):
//   build/bin/dfm_microbench [--benchmark_filter=...]      models: $DFMON_MODELS or the bundled ones
// make_blob (preprocessing alone), each model and the ensemble at batch 1/4/8, cv::gemm, and the face
// detector on a 720p frame (HOG detection, one landmark refit: the per-face cost of following a track).
// `dfmon bench` reports the same crop numbers next to PyTorch; this binary is for quick A/B runs.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "dfm/common/paths.h"
#include "dfm/detectors/face.h"
#include "dfm/models/models.h"

namespace {

// parallel: the product's default plan (models side by side, threads split); else one after another.
std::shared_ptr<const dfm::ModelSet> load_set(bool parallel) {
  dfm::ModelSetOptions o;
  o.dir = dfm::find_default_model_dir();
  if (const char* env = std::getenv("DFMON_MODELS"); env && *env) o.dir = env;
  o.backend = dfm::Backend::kCpu;
  o.parallel = parallel;
  auto r = dfm::ModelSet::load(o);
  return r.ok() ? *r : std::shared_ptr<const dfm::ModelSet>();
}

std::shared_ptr<const dfm::ModelSet> models(bool parallel = true) {
  static std::shared_ptr<const dfm::ModelSet> side_by_side = load_set(true);
  static std::shared_ptr<const dfm::ModelSet> sequential = load_set(false);
  return parallel ? side_by_side : sequential;
}


std::vector<cv::Mat> crops(int n) {
  std::vector<cv::Mat> v;
  cv::RNG rng(7);
  for (int i = 0; i < n; ++i) {
    cv::Mat m(224, 224, CV_8UC3);
    rng.fill(m, cv::RNG::UNIFORM, 0, 255);
    v.push_back(m);
  }
  return v;
}

void BM_MakeBlob(benchmark::State& state) {
  auto set = models();
  if (!set) return state.SkipWithError("no models (set DFMON_MODELS)");
  auto c = crops(static_cast<int>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(dfm::make_blob(c, set->models()[0].card));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_MakeBlob)->Arg(1)->Arg(8)->Unit(benchmark::kMillisecond);

void BM_Model(benchmark::State& state) {
  auto set = models();
  if (!set) return state.SkipWithError("no models (set DFMON_MODELS)");
  const size_t k = static_cast<size_t>(state.range(0));
  if (k >= set->models().size()) return state.SkipWithError("no such model index");
  auto runner = dfm::EnsembleRunner::create(set);
  if (!runner.ok()) return state.SkipWithError(runner.status().message().c_str());
  dfm::set_inference_threads(set->thread_plan().total());  // one model alone gets every thread
  auto c = crops(static_cast<int>(state.range(1)));
  state.SetLabel(set->models()[k].card.name);
  for (auto _ : state) benchmark::DoNotOptimize((*runner)->score_model(k, c));
  state.SetItemsProcessed(state.iterations() * state.range(1));
}
BENCHMARK(BM_Model)->ArgsProduct({{0, 1}, {1, 4, 8}})->Unit(benchmark::kMillisecond)->UseRealTime();

// Args: batch, side by side (1, the default) or sequential (0).
void BM_Ensemble(benchmark::State& state) {
  auto set = models(state.range(1) != 0);
  if (!set) return state.SkipWithError("no models (set DFMON_MODELS)");
  dfm::apply_thread_plan(set->thread_plan());
  auto runner = dfm::EnsembleRunner::create(set);
  if (!runner.ok()) return state.SkipWithError(runner.status().message().c_str());
  auto c = crops(static_cast<int>(state.range(0)));
  state.SetLabel(state.range(1) ? "side by side" : "sequential");
  for (auto _ : state) benchmark::DoNotOptimize((*runner)->score(c));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_Ensemble)->ArgsProduct({{1, 4, 8}, {1, 0}})->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Sgemm(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  dfm::set_inference_threads(cv::getNumberOfCPUs());  // BM_Ensemble may have left the per-lane count
  cv::Mat a(n, n, CV_32F), b(n, n, CV_32F), c;
  cv::randu(a, -1, 1);
  cv::randu(b, -1, 1);
  for (auto _ : state) cv::gemm(a, b, 1.0, cv::noArray(), 0.0, c);
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * n * n * n, benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
}
BENCHMARK(BM_Sgemm)->Arg(512)->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

// A 1280x720 frame with the sample photo's face in it, and the detector the product uses by default.
struct DetectorFixture {
  std::unique_ptr<dfm::FaceDetector> detector;
  cv::Mat frame;
  cv::Rect face;
  static const DetectorFixture& get() {
    static const DetectorFixture f = make();
    return f;
  }
  static DetectorFixture make() {
    DetectorFixture f;
    auto det = dfm::make_face_detector({});
    cv::Mat photo = cv::imread(std::string(DFM_SOURCE_DIR) + "/samples/images/obama2.jpg");
    if (!det.ok() || photo.empty()) return f;
    f.detector = std::move(det).value();
    f.frame = cv::Mat(720, 1280, CV_8UC3, cv::Scalar::all(40));
    const double s = 600.0 / photo.rows;
    cv::Mat scaled;
    cv::resize(photo, scaled, cv::Size(), s, s, cv::INTER_AREA);
    scaled.copyTo(f.frame(cv::Rect((1280 - scaled.cols) / 2, 60, scaled.cols, scaled.rows)));
    auto faces = f.detector->detect(f.frame);
    if (faces.ok() && !faces->empty()) f.face = (*faces)[0].box;
    return f;
  }
};

void BM_Detect720p(benchmark::State& state) {
  const auto& f = DetectorFixture::get();
  if (!f.detector || f.face.empty()) return state.SkipWithError("no detector, or no face in the test frame");
  for (auto _ : state) benchmark::DoNotOptimize(f.detector->detect(f.frame));
}
BENCHMARK(BM_Detect720p)->Unit(benchmark::kMillisecond);

void BM_Landmarks720p(benchmark::State& state) {
  const auto& f = DetectorFixture::get();
  if (!f.detector || f.face.empty()) return state.SkipWithError("no detector, or no face in the test frame");
  for (auto _ : state) benchmark::DoNotOptimize(f.detector->landmarks_for(f.frame, f.face));
}
BENCHMARK(BM_Landmarks720p)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
