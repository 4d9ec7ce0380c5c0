// Metric storage and Prometheus text rendering.
#include "dfm/server/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "dfm/common/log.h"

namespace dfm::server {

const char* const kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

void Gauge::add(double d) {
  double cur = v_.load(std::memory_order_relaxed);
  while (!v_.compare_exchange_weak(cur, cur + d, std::memory_order_relaxed)) {
  }
}

Histogram::Histogram(std::vector<double> upper_bounds) : bounds_(std::move(upper_bounds)) {
  bounds_.erase(std::remove_if(bounds_.begin(), bounds_.end(), [](double b) { return !std::isfinite(b); }),
                bounds_.end());
  std::sort(bounds_.begin(), bounds_.end());
  bounds_.erase(std::unique(bounds_.begin(), bounds_.end()), bounds_.end());
  buckets_.reset(new std::atomic<uint64_t>[bounds_.size() + 1]);
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0);
}

void Histogram::observe(double v) {
  // Per-bucket (non-cumulative) counts; render accumulates, so +Inf always equals _count.
  const size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  double cur = sum_.load(std::memory_order_relaxed);
  while (!sum_.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
  }
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.bounds = bounds_;
  uint64_t acc = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    acc += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(acc);
  }
  s.count = acc;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::vector<double> default_latency_buckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

namespace {

enum Kind { kCounter = 0, kGauge = 1, kHistogram = 2 };
const char* kind_name(int k) {
  return k == kCounter ? "counter" : k == kGauge ? "gauge" : "histogram";
}

bool valid_name(const std::string& n, bool metric) {
  if (n.empty()) return false;
  for (size_t i = 0; i < n.size(); ++i) {
    const char c = n[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (metric && c == ':');
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return !(!metric && n.rfind("__", 0) == 0);  // "__" label names are reserved
}

std::string escape(const std::string& s, bool quote) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else if (quote && c == '"')
      out += "\\\"";
    else
      out += c;
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  // Shortest round-trip is nicer to read; fall back to 17 digits only when needed.
  for (int prec = 1; prec < 17; ++prec) {
    char b2[64];
    std::snprintf(b2, sizeof b2, "%.*g", prec, v);
    if (std::strtod(b2, nullptr) == v) return b2;
  }
  return buf;
}

// `{a="x",le="0.5"}`; empty string when there are no labels.
std::string label_text(const Labels& labels, const char* extra_name = nullptr, const std::string& extra_value = "") {
  if (labels.empty() && !extra_name) return "";
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ',';
    first = false;
    out += k + "=\"" + escape(v, true) + "\"";
  }
  if (extra_name) {
    if (!first) out += ',';
    out += std::string(extra_name) + "=\"" + extra_value + "\"";
  }
  return out + "}";
}

}  // namespace

struct MetricsRegistry::Family {
  std::string help;
  int kind = kCounter;
  std::map<Labels, std::unique_ptr<Counter>> counters;
  std::map<Labels, std::unique_ptr<Gauge>> gauges;
  std::map<Labels, std::function<double()>> callbacks;
  std::map<Labels, std::unique_ptr<Histogram>> histograms;
};

MetricsRegistry::MetricsRegistry() : dummy_histogram_(std::make_unique<Histogram>(std::vector<double>{})) {}
MetricsRegistry::~MetricsRegistry() = default;

MetricsRegistry::Family* MetricsRegistry::family(const std::string& name, const std::string& help, int kind) {
  if (!valid_name(name, true) || name.rfind("dfmon_", 0) != 0) {
    get_logger("metrics")->error("metric name \"{}\" is invalid (want dfmon_[a-zA-Z0-9_:]*); not exported", name);
    return nullptr;
  }
  auto it = families_.find(name);
  if (it == families_.end()) {
    auto f = std::make_unique<Family>();
    f->help = help;
    f->kind = kind;
    it = families_.emplace(name, std::move(f)).first;
  } else if (it->second->kind != kind) {
    get_logger("metrics")->error("metric \"{}\" is a {}, not a {}; not exported", name, kind_name(it->second->kind),
                                 kind_name(kind));
    return nullptr;
  }
  return it->second.get();
}

namespace {
bool valid_labels(const std::string& metric, const Labels& labels, bool histogram) {
  for (const auto& [k, v] : labels) {
    if (!valid_name(k, false) || (histogram && k == "le")) {
      get_logger("metrics")->error("metric \"{}\": label name \"{}\" is invalid; not exported", metric, k);
      return false;
    }
  }
  return true;
}
}  // namespace

Counter& MetricsRegistry::counter(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!valid_labels(name, labels, false)) return dummy_counter_;
  Family* f = family(name, help, kCounter);
  if (!f) return dummy_counter_;
  auto& slot = f->counters[labels];
  if (!slot) slot = std::make_unique<Counter>();
  return *slot;
}

Gauge& MetricsRegistry::gauge(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!valid_labels(name, labels, false)) return dummy_gauge_;
  Family* f = family(name, help, kGauge);
  if (!f) return dummy_gauge_;
  auto& slot = f->gauges[labels];
  if (!slot) slot = std::make_unique<Gauge>();
  return *slot;
}

Histogram& MetricsRegistry::histogram(const std::string& name, const std::string& help,
                                      const std::vector<double>& buckets, const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!valid_labels(name, labels, true)) return *dummy_histogram_;
  Family* f = family(name, help, kHistogram);
  if (!f) return *dummy_histogram_;
  auto& slot = f->histograms[labels];
  if (!slot) slot = std::make_unique<Histogram>(buckets);
  return *slot;
}

void MetricsRegistry::gauge_callback(const std::string& name, const std::string& help, const Labels& labels,
                                     std::function<double()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!valid_labels(name, labels, false)) return;
  Family* f = family(name, help, kGauge);
  if (!f) return;
  f->callbacks[labels] = std::move(fn);
}

void MetricsRegistry::remove_callback(const std::string& name, const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = families_.find(name);
  if (it != families_.end()) it->second->callbacks.erase(labels);
}

std::string MetricsRegistry::render() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  out.reserve(families_.size() * 160);
  for (const auto& [name, f] : families_) {
    out += "# HELP " + name + " " + escape(f->help, false) + "\n";
    out += "# TYPE " + name + " " + kind_name(f->kind) + "\n";
    for (const auto& [labels, c] : f->counters)
      out += name + label_text(labels) + " " + std::to_string(c->value()) + "\n";
    // A callback and a plain gauge with the same labels would duplicate a series; the callback wins.
    for (const auto& [labels, g] : f->gauges) {
      if (!f->callbacks.count(labels)) out += name + label_text(labels) + " " + format_value(g->value()) + "\n";
    }
    for (const auto& [labels, fn] : f->callbacks) {
      double v = std::nan("");
      try {
        v = fn();
      } catch (...) {  // a broken callback must not break /metrics
      }
      out += name + label_text(labels) + " " + format_value(v) + "\n";
    }
    for (const auto& [labels, h] : f->histograms) {
      const Histogram::Snapshot s = h->snapshot();
      for (size_t i = 0; i < s.bounds.size(); ++i) {
        out += name + "_bucket" + label_text(labels, "le", format_value(s.bounds[i])) + " " +
               std::to_string(s.cumulative[i]) + "\n";
      }
      out += name + "_bucket" + label_text(labels, "le", "+Inf") + " " + std::to_string(s.count) + "\n";
      out += name + "_sum" + label_text(labels) + " " + format_value(s.sum) + "\n";
      out += name + "_count" + label_text(labels) + " " + std::to_string(s.count) + "\n";
    }
  }
  return out;
}

}  // namespace dfm::server
