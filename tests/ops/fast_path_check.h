// What the CPU fast-path tests share (test_conv_onednn, test_gemm_onednn,
// test_batch_norm_fast): run an op once on the readable reference and once on the
// fast path, with the same inputs and the same upstream gradient, and compare the
// output and every gradient with a relative-L2 bound and a max-abs bound scaled by
// the tensor's largest value. Each test file states why its bounds are what they are.
#pragma once
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <optional>
#include <vector>

#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "engine/tensor/factory.h"
#include "test_util.h"

namespace kiln::test {

using TensorFn = std::function<Tensor(const std::vector<Tensor>&)>;

// The output, then for each input its gradient of sum(out * w) (w fixed, in
// [0.5, 1.5]) when it is differentiable, or, with `with_updated_inputs`, its value
// after the op (the running statistics a batch norm updated). Each input is a fresh
// copy, in `layout` when given (4-d inputs only), so the op cannot change the caller's.
inline std::vector<std::vector<double>> outputs_and_gradients(const TensorFn& f, const std::vector<Tensor>& inputs_in,
                                                              const std::vector<bool>& differentiable,
                                                              bool with_updated_inputs = false,
                                                              std::optional<Layout> layout = std::nullopt) {
  std::vector<Tensor> inputs;
  for (size_t i = 0; i < inputs_in.size(); ++i) {
    Tensor x = inputs_in[i].detach().to(DType::f64).to(inputs_in[i].dtype());  // a fresh leaf
    if (layout && x.dim() == 4) x = x.to(*layout);
    if (differentiable[i]) x.set_requires_grad(true);
    inputs.push_back(x);
  }
  const Tensor out = f(inputs);
  Rng rng(99);
  sum(mul(out, uniform(out.shape(), 0.5, 1.5, rng, {out.dtype()}))).backward();
  std::vector<std::vector<double>> results{out.to_vector()};
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (differentiable[i]) results.push_back(inputs[i].grad().to_vector());
    else if (with_updated_inputs) results.push_back(inputs[i].to_vector());
  }
  return results;
}

// got[i] against want[i] for every i: relative L2 < rel_l2, and max-abs at most
// max_abs times the larger of 1 and the largest |want[i]|.
inline void check_results_close(const std::vector<std::vector<double>>& got, const std::vector<std::vector<double>>& want,
                                double rel_l2, double max_abs) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    CAPTURE(i);  // 0: the output, then the inputs' gradients (or updated values) in order
    REQUIRE(got[i].size() == want[i].size());
    double largest = 1;
    for (double v : want[i]) largest = std::max(largest, std::abs(v));
    const double measured_rel_l2 = relative_l2(got[i], want[i]), measured_max_abs = max_abs_diff(got[i], want[i]);
    INFO("relative L2 " << measured_rel_l2 << ", max-abs " << measured_max_abs << " of scale " << largest);
    CHECK(measured_rel_l2 < rel_l2);
    CHECK(measured_max_abs <= max_abs * largest);
  }
}

}  // namespace kiln::test
