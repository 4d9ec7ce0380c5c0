// Unit tests of the bench helpers that turn /metrics scrapes into numbers.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "dfm/bench/bench.h"

namespace dfm::bench {
namespace {

const char* kText =
    "# HELP dfmon_faces_scored_total Faces scored\n"
    "# TYPE dfmon_faces_scored_total counter\n"
    "dfmon_faces_scored_total{stream=\"cam0\"} 10\n"
    "dfmon_faces_scored_total{stream=\"cam1\"} 32\n"
    "dfmon_odd{stream=\"a\\\"b\",x=\"y\"} 1.5e3\n"
    "dfmon_plain 7\n"
    "lat_bucket{le=\"0.1\"} 10\n"
    "lat_bucket{le=\"0.25\"} 60\n"
    "lat_bucket{le=\"0.5\"} 90\n"
    "lat_bucket{le=\"+Inf\"} 100\n"
    "lat_sum 21.5\n"
    "lat_count 100\n";

TEST(PrometheusTest, ParsesNamesLabelsAndValues) {
  auto s = parse_prometheus(kText);
  EXPECT_DOUBLE_EQ(prom_value(s, "dfmon_faces_scored_total"), 42);
  EXPECT_DOUBLE_EQ(prom_value(s, "dfmon_faces_scored_total", {{"stream", "cam1"}}), 32);
  EXPECT_DOUBLE_EQ(prom_value(s, "dfmon_faces_scored_total", {{"stream", "nope"}}), 0);
  EXPECT_DOUBLE_EQ(prom_value(s, "dfmon_odd", {{"stream", "a\"b"}, {"x", "y"}}), 1500);
  EXPECT_DOUBLE_EQ(prom_value(s, "dfmon_plain"), 7);
}

TEST(PrometheusTest, HistogramQuantilesInterpolateInsideBuckets) {
  Histogram h = prom_histogram(parse_prometheus(kText), "lat");
  ASSERT_EQ(h.bounds.size(), 4u);
  EXPECT_TRUE(std::isinf(h.bounds.back()));
  EXPECT_DOUBLE_EQ(h.count, 100);
  EXPECT_DOUBLE_EQ(h.sum, 21.5);
  EXPECT_NEAR(histogram_quantile(h, 0.05), 0.05, 1e-12);   // 5 of the 10 below 0.1
  EXPECT_NEAR(histogram_quantile(h, 0.5), 0.22, 1e-12);    // 40 of 50 into (0.1, 0.25]
  EXPECT_NEAR(histogram_quantile(h, 0.9), 0.5, 1e-12);
  EXPECT_NEAR(histogram_quantile(h, 0.99), 0.5, 1e-12);    // in +Inf: the largest finite bound
  Histogram earlier = h;
  for (auto& c : earlier.cumulative) c /= 2;
  earlier.sum /= 2;
  earlier.count /= 2;
  Histogram d = histogram_delta(h, earlier);
  EXPECT_DOUBLE_EQ(d.cumulative[1], 30);
  EXPECT_DOUBLE_EQ(d.count, 50);
  EXPECT_TRUE(std::isnan(histogram_quantile(Histogram{}, 0.5)));
}

TEST(SvgTest, DrawsSeriesAndSkipsMissingPoints) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::string svg = svg_line_chart("t <1>", "x", "y", {{"a", {1, 4, 8}, {3, nan, 1}, false}, {"b", {1, 4, 8}, {2, 2, 2}, true}},
                                   {{"limit", 0.5}});
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("t &lt;1&gt;"), std::string::npos);
  EXPECT_NE(svg.find("stroke-dasharray=\"6,4\""), std::string::npos);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
}

TEST(TimingTest, RunsAtLeastMinReps) {
  int calls = 0;
  Timing t = time_calls([&] { ++calls; }, 0.0, 5, 2);
  EXPECT_EQ(t.reps, 5);
  EXPECT_EQ(calls, 7);
  EXPECT_LE(t.min_ms, t.median_ms);
}

}  // namespace
}  // namespace dfm::bench
