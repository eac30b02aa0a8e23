// Finite-difference gradient checks (float64, CPU), as in Caffe's GradientChecker.
//
// For f = run(inputs) we check the scalar L = sum(f * w) with fixed random weights
// w (so every output element matters, with a different weight). For each element
// x_j of each differentiable input:
//     numeric_j  = (L(x_j + eps) - L(x_j - eps)) / (2 eps)     (central difference)
//     analytic_j = dL/dx_j from backward()
//     error_j    = |analytic_j - numeric_j| / max(1, |numeric_j|)
// and report the worst element. With f64 and eps = 1e-6 the central difference is
// good to ~1e-9, so a wrong backward shows up as errors of 1e-2 or more. Inputs must
// stay away from kinks (relu at 0, max-pool ties): the op table's input makers do.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "engine/tensor/tensor.h"

namespace kiln {

struct GradcheckResult {
  double worst_error = 0;  // max error_j over all checked elements
  std::string worst_at;    // "input 1 element 17: analytic 0.25 numeric 0.2501"
  int64_t elements_checked = 0;
};

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& run,
                          const std::vector<Tensor>& inputs, const std::vector<bool>& differentiable,
                          double eps = 1e-6, uint64_t seed = 1234);

}  // namespace kiln
