// Pearson's correlation (engine/metrics/correlation.h).
#include "engine/metrics/correlation.h"

#include <cmath>

#include "engine/core/check.h"

namespace kiln::metrics {

double pearson_correlation(const std::vector<double>& x, const std::vector<double>& y) {
  KILN_CHECK(x.size() == y.size(), "pearson_correlation: x has ", x.size(), " values, y has ", y.size());
  const size_t n = x.size();
  if (n < 2) return NAN;
  double x_mean = 0, y_mean = 0;
  for (size_t i = 0; i < n; ++i) {
    x_mean += x[i];
    y_mean += y[i];
  }
  x_mean /= static_cast<double>(n);
  y_mean /= static_cast<double>(n);
  // Centred sums (two passes): accuracies like 0.871, 0.874 keep their digits.
  double xy = 0, xx = 0, yy = 0;
  for (size_t i = 0; i < n; ++i) {
    const double dx = x[i] - x_mean, dy = y[i] - y_mean;
    xy += dx * dy;
    xx += dx * dx;
    yy += dy * dy;
  }
  if (xx <= 0 || yy <= 0) return NAN;
  const double r = xy / std::sqrt(xx * yy);
  return r > 1 ? 1 : (r < -1 ? -1 : r);  // rounding can step just outside [-1, 1]
}

}  // namespace kiln::metrics
