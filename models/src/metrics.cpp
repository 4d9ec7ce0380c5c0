// Confusion-matrix metrics and rank-based ROC AUC.
#include "dfm/models/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace dfm {

double roc_auc(const std::vector<int>& labels, const std::vector<double>& scores) {
  const size_t n = std::min(labels.size(), scores.size());
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  // Average ranks over ties, then U = sum of positive ranks - P(P+1)/2.
  double pos_rank_sum = 0;
  int64_t pos = 0, neg = 0;
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    while (j + 1 < n && scores[order[j + 1]] == scores[order[i]]) ++j;
    const double avg_rank = (static_cast<double>(i) + static_cast<double>(j)) / 2.0 + 1.0;
    for (size_t k = i; k <= j; ++k) {
      if (labels[order[k]] == 1) {
        pos_rank_sum += avg_rank;
        ++pos;
      } else {
        ++neg;
      }
    }
    i = j + 1;
  }
  if (pos == 0 || neg == 0) return std::numeric_limits<double>::quiet_NaN();
  const double u = pos_rank_sum - static_cast<double>(pos) * (static_cast<double>(pos) + 1.0) / 2.0;
  return u / (static_cast<double>(pos) * static_cast<double>(neg));
}

BinaryMetrics compute_metrics(const std::vector<int>& labels, const std::vector<double>& scores, double threshold) {
  BinaryMetrics m;
  const size_t n = std::min(labels.size(), scores.size());
  m.n = static_cast<int64_t>(n);
  for (size_t i = 0; i < n; ++i) {
    const bool pred = scores[i] >= threshold;
    const bool fake = labels[i] == 1;
    if (pred && fake) ++m.tp;
    else if (pred && !fake) ++m.fp;
    else if (!pred && fake) ++m.fn;
    else ++m.tn;
  }
  auto ratio = [](int64_t a, int64_t b) { return b > 0 ? static_cast<double>(a) / static_cast<double>(b) : 0.0; };
  m.accuracy = ratio(m.tp + m.tn, m.n);
  m.precision = ratio(m.tp, m.tp + m.fp);
  m.recall = ratio(m.tp, m.tp + m.fn);
  m.f1 = (m.precision + m.recall) > 0 ? 2 * m.precision * m.recall / (m.precision + m.recall) : 0.0;
  m.auc = roc_auc(labels, scores);
  return m;
}

}  // namespace dfm
