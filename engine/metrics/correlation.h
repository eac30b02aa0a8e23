// Pearson's correlation coefficient, as numpy.corrcoef(x, y)[0, 1] computes it:
//     r = sum_i (x_i - xbar)(y_i - ybar) / sqrt(sum_i (x_i - xbar)^2 * sum_i (y_i - ybar)^2)
// in [-1, 1]: +1 when y grows linearly with x, -1 when it falls, 0 without a linear
// trend. Undefined (NaN, as numpy gives with a warning) when x or y is constant or
// there are fewer than two pairs. The sweep report correlates each parameter with
// the metric (docs/sweep_report.md).
#pragma once
#include <vector>

namespace kiln::metrics {

// Throws when the lengths differ; NaN when undefined (see above).
double pearson_correlation(const std::vector<double>& x, const std::vector<double>& y);

}  // namespace kiln::metrics
