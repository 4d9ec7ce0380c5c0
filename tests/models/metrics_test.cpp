// Confusion-matrix metrics and ROC AUC (Mann-Whitney, ties = 1/2) against hand-computed values.
#include "dfm/models/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace dfm {
namespace {

TEST(Metrics, HandComputedConfusionPrecisionRecallF1) {
  // threshold 0.5, predicted fake when score >= 0.5:
  //   1:0.9 tp  1:0.4 fn  0:0.6 fp  0:0.2 tn  1:0.5 tp (>= counts)  0:0.5 fp
  const std::vector<int> labels = {1, 1, 0, 0, 1, 0};
  const std::vector<double> scores = {0.9, 0.4, 0.6, 0.2, 0.5, 0.5};
  BinaryMetrics m = compute_metrics(labels, scores);
  EXPECT_EQ(m.n, 6);
  EXPECT_EQ(m.tp, 2);
  EXPECT_EQ(m.fp, 2);
  EXPECT_EQ(m.tn, 1);
  EXPECT_EQ(m.fn, 1);
  EXPECT_DOUBLE_EQ(m.accuracy, 3.0 / 6.0);
  EXPECT_DOUBLE_EQ(m.precision, 2.0 / 4.0);
  EXPECT_DOUBLE_EQ(m.recall, 2.0 / 3.0);
  EXPECT_NEAR(m.f1, 4.0 / 7.0, 1e-12);  // 2 * 1/2 * 2/3 / (1/2 + 2/3)
  // Pairs (pos, neg): 0.9 beats all 3; 0.4 beats 0.2; 0.5 beats 0.2 and ties 0.5 -> 5.5 / 9.
  EXPECT_NEAR(m.auc, 5.5 / 9.0, 1e-12);
}

TEST(Metrics, ThresholdChangesConfusionNotAuc) {
  const std::vector<int> labels = {1, 1, 0, 0, 1, 0};
  const std::vector<double> scores = {0.9, 0.4, 0.6, 0.2, 0.5, 0.5};
  BinaryMetrics m = compute_metrics(labels, scores, 0.7);
  EXPECT_EQ(m.tp, 1);
  EXPECT_EQ(m.fp, 0);
  EXPECT_EQ(m.tn, 3);
  EXPECT_EQ(m.fn, 2);
  EXPECT_DOUBLE_EQ(m.precision, 1.0);
  EXPECT_DOUBLE_EQ(m.recall, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.f1, 0.5);
  EXPECT_NEAR(m.auc, 5.5 / 9.0, 1e-12);
}

TEST(Metrics, NoPredictedPositivesGivesZeroPrecisionAndF1) {
  BinaryMetrics m = compute_metrics({1, 0, 1}, {0.1, 0.2, 0.3});
  EXPECT_EQ(m.tp + m.fp, 0);
  EXPECT_EQ(m.fn, 2);
  EXPECT_EQ(m.tn, 1);
  EXPECT_DOUBLE_EQ(m.precision, 0.0);
  EXPECT_DOUBLE_EQ(m.recall, 0.0);
  EXPECT_DOUBLE_EQ(m.f1, 0.0);
  EXPECT_DOUBLE_EQ(m.accuracy, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.auc, 0.5);  // 0.1 < 0.2 < 0.3: pos 0.1 beats none, pos 0.3 beats 0.2 -> 1/2
}

TEST(Metrics, EmptyInput) {
  BinaryMetrics m = compute_metrics({}, {});
  EXPECT_EQ(m.n, 0);
  EXPECT_EQ(m.tp + m.fp + m.tn + m.fn, 0);
  EXPECT_DOUBLE_EQ(m.accuracy, 0.0);
  EXPECT_TRUE(std::isnan(m.auc));
}

TEST(RocAuc, TiesCountHalf) {
  EXPECT_DOUBLE_EQ(roc_auc({0, 0, 1, 1}, {0.1, 0.4, 0.35, 0.8}), 0.75);
  EXPECT_DOUBLE_EQ(roc_auc({0, 1}, {0.5, 0.5}), 0.5);
  EXPECT_DOUBLE_EQ(roc_auc({0, 0, 1, 1}, {0.3, 0.3, 0.3, 0.3}), 0.5);
  // pos {0.4, 0.7}, neg {0.4, 0.2, 0.7}: 0.4 -> 0.5 + 1 + 0; 0.7 -> 1 + 1 + 0.5 => 4 / 6.
  EXPECT_NEAR(roc_auc({1, 0, 1, 0, 0}, {0.4, 0.4, 0.7, 0.2, 0.7}), 4.0 / 6.0, 1e-12);
}

TEST(RocAuc, PerfectAndInvertedRanking) {
  EXPECT_DOUBLE_EQ(roc_auc({0, 0, 1, 1, 1}, {0.1, 0.2, 0.3, 0.9, 0.95}), 1.0);
  EXPECT_DOUBLE_EQ(roc_auc({1, 1, 0, 0}, {0.1, 0.2, 0.3, 0.9}), 0.0);
  // Order of the input does not matter.
  EXPECT_DOUBLE_EQ(roc_auc({1, 0, 1, 0}, {0.8, 0.1, 0.35, 0.4}), 0.75);
}

TEST(RocAuc, NanWhenOnlyOneClass) {
  EXPECT_TRUE(std::isnan(roc_auc({1, 1, 1}, {0.1, 0.5, 0.9})));
  EXPECT_TRUE(std::isnan(roc_auc({0, 0}, {0.1, 0.5})));
  EXPECT_TRUE(std::isnan(roc_auc({}, {})));
  BinaryMetrics m = compute_metrics({0, 0, 0}, {0.2, 0.6, 0.9});
  EXPECT_TRUE(std::isnan(m.auc));
  EXPECT_EQ(m.fp, 2);
  EXPECT_EQ(m.tn, 1);
}

TEST(RocAuc, MatchesPairCountingOnRandomDataWithTies) {
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> level(0, 9);  // 10 distinct scores -> many ties
  std::bernoulli_distribution coin(0.4);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<int> labels;
    std::vector<double> scores;
    for (int i = 0; i < 60; ++i) {
      labels.push_back(coin(rng) ? 1 : 0);
      scores.push_back(level(rng) / 10.0);
    }
    double wins = 0;
    int pairs = 0;
    for (size_t i = 0; i < labels.size(); ++i) {
      for (size_t j = 0; j < labels.size(); ++j) {
        if (labels[i] == 1 && labels[j] == 0) {
          ++pairs;
          wins += scores[i] > scores[j] ? 1.0 : scores[i] == scores[j] ? 0.5 : 0.0;
        }
      }
    }
    if (pairs == 0) continue;
    EXPECT_NEAR(roc_auc(labels, scores), wins / pairs, 1e-12) << "trial " << trial;
  }
}

}  // namespace
}  // namespace dfm
