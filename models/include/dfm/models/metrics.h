// Binary classification metrics for `dfmon evaluate` (positive class = fake).
#pragma once

#include <cstdint>
#include <vector>

namespace dfm {

struct BinaryMetrics {
  int64_t n = 0, tp = 0, fp = 0, tn = 0, fn = 0;
  double accuracy = 0, precision = 0, recall = 0, f1 = 0;
  double auc = 0;  // ROC AUC; NaN when only one class is present
};

// labels: 1 = fake, 0 = real. scores: P(fake). Predicted fake when score >= threshold.
// AUC is the Mann-Whitney statistic with ties counted as one half.
BinaryMetrics compute_metrics(const std::vector<int>& labels, const std::vector<double>& scores, double threshold = 0.5);

double roc_auc(const std::vector<int>& labels, const std::vector<double>& scores);

}  // namespace dfm
