// Global option handling and model loading shared by the subcommands.
#include "app.h"

#include <cmath>
#include <cstdio>

#include <opencv2/core.hpp>

#include "dfm/common/log.h"
#include "dfm/common/paths.h"

namespace dfm::app {

Status apply_globals(const GlobalOptions& g) {
  DFM_RETURN_IF_ERROR(init_logging(g.log_level));
  if (g.threads < 0 || g.threads > 256) return InvalidArgument("--threads: must be within 0..256");
  if (g.threads > 0) set_inference_threads(g.threads);
  return Status::Ok();
}

Result<std::shared_ptr<const ModelSet>> load_models(const GlobalOptions& g, const ModelsRequest& r) {
  ModelSetOptions o;
  const std::string asked = !r.dir.empty() ? r.dir : g.models_dir;
  o.dir = asked.empty() ? find_default_model_dir() : asked;
  if (o.dir.empty()) {
    std::string where;
    for (const auto& d : default_model_dirs()) where += (where.empty() ? "" : ", ") + d;
    return NotFound("no bundled models found (looked in " + where + "); pass --models DIR");
  }
  if (r.backend) {
    o.backend = *r.backend;
  } else {
    DFM_ASSIGN_OR_RETURN(o.backend, parse_backend(g.backend));
  }
  o.names = r.names;
  if (o.names.empty() && asked.empty()) o.names = {"resnet18", "vit"};
  o.weights = r.weights;
  o.batch = r.batch;
  o.threads = g.threads > 0 ? g.threads : r.threads;  // --threads wins when given
  o.parallel = !g.sequential_models;
  o.blas_layers = !g.opencv_layers;
  auto set = ModelSet::load(o);
  if (set.ok()) {
    const ThreadPlan& plan = (*set)->thread_plan();
    apply_thread_plan(plan);
    get_logger("models")->debug("{} model(s) on {} lane(s) x {} thread(s)", (*set)->models().size(), plan.lanes,
                                plan.threads_per_lane);
  }
  return set;
}

int fail(const Status& st) {
  std::fprintf(stderr, "dfmon: %s\n", st.message().c_str());
  return kExitError;
}

double round6(double v) {
  if (!std::isfinite(v)) return v;
  return std::round(v * 1e6) / 1e6;
}

nlohmann::json per_model_json(const ModelSet& set, const std::vector<float>& per_model) {
  nlohmann::json j = nlohmann::json::object();
  for (size_t i = 0; i < set.models().size() && i < per_model.size(); ++i) {
    j[set.models()[i].card.name] = round6(per_model[i]);
  }
  return j;
}

}  // namespace dfm::app
