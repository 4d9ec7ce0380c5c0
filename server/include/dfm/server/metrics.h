// Prometheus-style metrics: counters, gauges and histograms with labels, rendered as text exposition 0.0.4.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace dfm::server {

// Label name -> value, e.g. {{"stream", "cam-1"}}. Sorted, so equal sets name the same series.
using Labels = std::map<std::string, std::string>;

// Monotonic integer count. Lock-free; hold the reference, it stays valid for the registry's lifetime.
class Counter {
 public:
  void inc(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

// A value that goes up and down (queue depth, connected clients).
class Gauge {
 public:
  void set(double v) { v_.store(v, std::memory_order_relaxed); }
  void add(double d);
  void inc() { add(1); }
  void dec() { add(-1); }
  double value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> v_{0};
};

// Fixed upper bounds; observe() is a bucket search plus two atomic adds.
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);  // sorted, de-duplicated; +Inf is implicit
  void observe(double v);

  struct Snapshot {
    std::vector<double> bounds;        // without +Inf
    std::vector<uint64_t> cumulative;  // one per bound, then +Inf last (== count)
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot snapshot() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_.size() + 1 (the +Inf bucket)
  std::atomic<double> sum_{0};
};

// Default latency buckets in seconds (1 ms .. 10 s).
std::vector<double> default_latency_buckets();

// Owns every metric; lookups take a mutex, updates on a held reference do not.
// Names must match [a-zA-Z_:][a-zA-Z0-9_:]* and start with "dfmon_". A bad name, bad label name or a
// name reused with another type is logged once and yields a detached metric (counted nowhere), so a
// metrics mistake never takes the monitor down.
class MetricsRegistry {
 public:
  MetricsRegistry();
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  Counter& counter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge& gauge(const std::string& name, const std::string& help, const Labels& labels = {});
  // `buckets` is used when the series is first created; later calls get the existing series.
  Histogram& histogram(const std::string& name, const std::string& help, const std::vector<double>& buckets,
                       const Labels& labels = {});
  // A gauge evaluated at render time (e.g. a queue's current depth). Replaces an existing callback of
  // the same series; the callback must stay valid until remove_callback() or the registry's destruction,
  // and must not call into the registry (it runs under the registry's lock).
  void gauge_callback(const std::string& name, const std::string& help, const Labels& labels,
                      std::function<double()> fn);
  void remove_callback(const std::string& name, const Labels& labels);

  // Text exposition format 0.0.4 (Content-Type: text/plain; version=0.0.4), families sorted by name.
  std::string render() const;

 private:
  struct Family;
  Family* family(const std::string& name, const std::string& help, int kind);

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Family>> families_;
  // Detached sinks for rejected registrations.
  Counter dummy_counter_;
  Gauge dummy_gauge_;
  std::unique_ptr<Histogram> dummy_histogram_;
};

// "text/plain; version=0.0.4; charset=utf-8"
extern const char* const kMetricsContentType;

}  // namespace dfm::server
