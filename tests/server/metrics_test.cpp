// MetricsRegistry: values, thread safety and the Prometheus text format, checked by parsing it back.
#include "dfm/server/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

namespace dfm::server {
namespace {

struct Sample {
  std::string name;
  Labels labels;
  double value = 0;
};

struct Parsed {
  std::map<std::string, std::string> help, type;
  std::vector<Sample> samples;
  std::vector<std::string> errors;
};

// Unescapes a label value; returns false on a bad escape.
bool parse_labels(const std::string& text, Labels* out) {
  size_t i = 0;
  while (i < text.size()) {
    const size_t eq = text.find('=', i);
    if (eq == std::string::npos || eq + 1 >= text.size() || text[eq + 1] != '"') return false;
    const std::string name = text.substr(i, eq - i);
    if (!std::regex_match(name, std::regex("[a-zA-Z_][a-zA-Z0-9_]*"))) return false;
    std::string value;
    size_t j = eq + 2;
    for (; j < text.size() && text[j] != '"'; ++j) {
      if (text[j] == '\\') {
        if (++j >= text.size()) return false;
        if (text[j] == 'n')
          value += '\n';
        else if (text[j] == '\\' || text[j] == '"')
          value += text[j];
        else
          return false;
      } else {
        value += text[j];
      }
    }
    if (j >= text.size()) return false;
    (*out)[name] = value;
    i = j + 1;
    if (i < text.size()) {
      if (text[i] != ',') return false;
      ++i;
    }
  }
  return true;
}

// A small exposition-format parser: every line is a HELP/TYPE comment or `name{labels} value`.
Parsed parse(const std::string& text) {
  Parsed p;
  std::istringstream in(text);
  std::string line;
  const std::regex sample_re(R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$)");
  const std::regex help_re(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$)");
  const std::regex type_re(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$)");
  while (std::getline(in, line)) {
    std::smatch m;
    if (line.rfind("#", 0) == 0) {
      if (std::regex_match(line, m, help_re))
        p.help[m[1]] = m[2];
      else if (std::regex_match(line, m, type_re))
        p.type[m[1]] = m[2];
      else
        p.errors.push_back("bad comment: " + line);
      continue;
    }
    if (!std::regex_match(line, m, sample_re)) {
      p.errors.push_back("bad sample: " + line);
      continue;
    }
    Sample s;
    s.name = m[1];
    if (m[2].matched && !parse_labels(m[3], &s.labels)) p.errors.push_back("bad labels: " + line);
    const std::string v = m[4];
    char* end = nullptr;
    s.value = v == "+Inf" ? INFINITY : v == "-Inf" ? -INFINITY : std::strtod(v.c_str(), &end);
    if (end && *end) p.errors.push_back("bad value: " + line);
    p.samples.push_back(s);
  }
  return p;
}

const Sample* find(const Parsed& p, const std::string& name, const Labels& labels) {
  for (const auto& s : p.samples) {
    if (s.name == name && s.labels == labels) return &s;
  }
  return nullptr;
}

TEST(Metrics, RendersCountersGaugesAndHistogramsInTextFormat) {
  MetricsRegistry r;
  r.counter("dfmon_frames_decoded_total", "Frames decoded", {{"stream", "cam-1"}}).inc(3);
  r.counter("dfmon_frames_decoded_total", "Frames decoded", {{"stream", "cam-2"}}).inc();
  r.gauge("dfmon_queue_depth", "Queue depth", {{"stream", "cam-1"}}).set(2.5);
  auto& h = r.histogram("dfmon_inference_latency_seconds", "Inference latency", {0.01, 0.1, 1}, {{"stream", "cam-1"}});
  for (double v : {0.005, 0.05, 0.05, 0.5, 5.0}) h.observe(v);
  int calls = 0;
  r.gauge_callback("dfmon_ws_queued", "Callback gauge", {}, [&] { return double(++calls); });

  const std::string text = r.render();
  const Parsed p = parse(text);
  EXPECT_TRUE(p.errors.empty()) << p.errors.front() << "\n" << text;
  EXPECT_EQ(p.type.at("dfmon_frames_decoded_total"), "counter");
  EXPECT_EQ(p.type.at("dfmon_queue_depth"), "gauge");
  EXPECT_EQ(p.type.at("dfmon_inference_latency_seconds"), "histogram");
  EXPECT_EQ(p.help.at("dfmon_frames_decoded_total"), "Frames decoded");
  EXPECT_EQ(find(p, "dfmon_frames_decoded_total", {{"stream", "cam-1"}})->value, 3);
  EXPECT_EQ(find(p, "dfmon_frames_decoded_total", {{"stream", "cam-2"}})->value, 1);
  EXPECT_EQ(find(p, "dfmon_queue_depth", {{"stream", "cam-1"}})->value, 2.5);
  EXPECT_EQ(find(p, "dfmon_ws_queued", {})->value, 1);

  // Buckets are cumulative, ordered by le, and the +Inf bucket equals _count.
  std::vector<std::pair<double, double>> buckets;
  for (const auto& s : p.samples) {
    if (s.name != "dfmon_inference_latency_seconds_bucket") continue;
    const std::string le = s.labels.at("le");
    buckets.emplace_back(le == "+Inf" ? INFINITY : std::stod(le), s.value);
    EXPECT_EQ(s.labels.at("stream"), "cam-1");
  }
  ASSERT_EQ(buckets.size(), 4u);
  for (size_t i = 1; i < buckets.size(); ++i) {
    EXPECT_LT(buckets[i - 1].first, buckets[i].first);
    EXPECT_LE(buckets[i - 1].second, buckets[i].second);
  }
  EXPECT_EQ(buckets[0].second, 1);
  EXPECT_EQ(buckets[1].second, 3);
  EXPECT_EQ(buckets[2].second, 4);
  EXPECT_TRUE(std::isinf(buckets.back().first));
  const double count = find(p, "dfmon_inference_latency_seconds_count", {{"stream", "cam-1"}})->value;
  EXPECT_EQ(buckets.back().second, count);
  EXPECT_EQ(count, 5);
  EXPECT_NEAR(find(p, "dfmon_inference_latency_seconds_sum", {{"stream", "cam-1"}})->value, 5.605, 1e-9);
}

TEST(Metrics, EscapesLabelValuesAndHelp) {
  MetricsRegistry r;
  const std::string nasty = "a\"b\\c\nd";
  r.counter("dfmon_x_total", "help with \\ and\nnewline", {{"stream", nasty}}).inc();
  const Parsed p = parse(r.render());
  ASSERT_TRUE(p.errors.empty()) << p.errors.front();
  ASSERT_NE(find(p, "dfmon_x_total", {{"stream", nasty}}), nullptr);
  EXPECT_EQ(p.help.at("dfmon_x_total"), "help with \\\\ and\\nnewline");
}

TEST(Metrics, BadNamesAndTypeClashesAreDetachedNotFatal) {
  MetricsRegistry r;
  r.counter("frames_total", "no prefix").inc();              // must start with dfmon_
  r.counter("dfmon_bad-name", "dash").inc();                 // invalid character
  r.counter("dfmon_ok_total", "ok", {{"0bad", "x"}}).inc();  // invalid label name
  r.counter("dfmon_clash", "a counter").inc(7);
  r.gauge("dfmon_clash", "now a gauge").set(1);                // type clash: detached
  r.histogram("dfmon_h", "h", {1}, {{"le", "x"}}).observe(1);  // `le` is reserved on histograms
  const std::string text = r.render();
  EXPECT_EQ(text.find("frames_total"), std::string::npos);
  EXPECT_EQ(text.find("bad-name"), std::string::npos);
  EXPECT_EQ(text.find("0bad"), std::string::npos);
  EXPECT_NE(text.find("dfmon_clash 7\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("# TYPE dfmon_h"), std::string::npos);
  EXPECT_TRUE(parse(text).errors.empty());
}

TEST(Metrics, ConcurrentUpdatesAreExact) {
  MetricsRegistry r;
  auto& c = r.counter("dfmon_events_total", "events");
  auto& g = r.gauge("dfmon_level", "level");
  auto& h = r.histogram("dfmon_lat_seconds", "lat", default_latency_buckets());
  constexpr int kThreads = 4, kN = 50000;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < kN; ++i) {
        c.inc();
        g.inc();
        h.observe(0.002);
        // Lookups of an existing series from many threads return the same object.
        if (i % 1000 == 0) {
          EXPECT_EQ(&r.counter("dfmon_events_total", "events"), &c);
        }
      }
    });
  }
  std::thread renderer([&] {
    for (int i = 0; i < 50; ++i) EXPECT_TRUE(parse(r.render()).errors.empty());
  });
  for (auto& t : ts) t.join();
  renderer.join();
  EXPECT_EQ(c.value(), uint64_t(kThreads) * kN);
  EXPECT_EQ(g.value(), double(kThreads) * kN);
  const auto s = h.snapshot();
  EXPECT_EQ(s.count, uint64_t(kThreads) * kN);
  EXPECT_NEAR(s.sum, 0.002 * kThreads * kN, 1e-6);
}

}  // namespace
}  // namespace dfm::server
