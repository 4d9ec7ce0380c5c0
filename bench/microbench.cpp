// Google Benchmark micro-benchmarks of the inference path (build with -DDFM_BUILD_BENCH=ON):
//   build/bin/dfm_microbench [--benchmark_filter=...]      models: $DFMON_MODELS or the bundled ones
// make_blob (preprocessing alone), each model and the ensemble at batch 1/4/8, and cv::gemm.
// `dfmon bench` reports the same crop numbers next to PyTorch; this binary is for quick A/B runs.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>

#include <opencv2/core.hpp>

#include "dfm/common/paths.h"
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
  cv::setNumThreads(set->thread_plan().total());  // one model alone gets every thread
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
  cv::setNumThreads(cv::getNumberOfCPUs());  // BM_Ensemble may have left the per-lane count
  cv::Mat a(n, n, CV_32F), b(n, n, CV_32F), c;
  cv::randu(a, -1, 1);
  cv::randu(b, -1, 1);
  for (auto _ : state) cv::gemm(a, b, 1.0, cv::noArray(), 0.0, c);
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * n * n * n, benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
}
BENCHMARK(BM_Sgemm)->Arg(512)->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
