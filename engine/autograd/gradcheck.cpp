#include "engine/autograd/gradcheck.h"

#include <cmath>

#include "engine/autograd/tape.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "engine/tensor/factory.h"

namespace kiln {

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& run,
                          const std::vector<Tensor>& inputs_in, const std::vector<bool>& differentiable, double eps,
                          uint64_t seed) {
  KILN_CHECK(inputs_in.size() == differentiable.size(), "gradcheck: ", inputs_in.size(), " inputs but ",
             differentiable.size(), " differentiable flags");
  // Fresh f64 CPU leaves, so that the check never touches the caller's tensors.
  std::vector<Tensor> inputs;
  for (size_t i = 0; i < inputs_in.size(); ++i) {
    const Tensor& x = inputs_in[i];
    KILN_CHECK(x.device().is_cpu(), "gradcheck: inputs must be on the cpu");
    KILN_CHECK(!differentiable[i] || x.dtype() == DType::f64, "gradcheck: differentiable input ", i,
               " must be f64, got ", dtype_name(x.dtype()));
    Tensor leaf = x.detach().clone();
    if (differentiable[i]) leaf.set_requires_grad(true);
    inputs.push_back(leaf);
  }

  // L = sum(run(inputs) * w), w fixed.
  Tensor weights;
  auto loss = [&](const std::vector<Tensor>& in) {
    Tensor out = run(in);
    if (!weights.defined()) {
      Rng rng(seed);
      weights = uniform(out.shape(), 0.5, 1.5, rng, {DType::f64});
      if (out.layout() == Layout::nhwc) weights = weights.to(Layout::nhwc);
    }
    return sum(mul(out, weights));
  };

  Tensor l = loss(inputs);
  l.backward();

  GradcheckResult result;
  NoGradGuard no_grad;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!differentiable[i]) continue;
    Tensor analytic_grad = inputs[i].grad();
    KILN_CHECK(analytic_grad.defined(), "gradcheck: input ", i, " received no gradient from backward");
    const std::vector<double> analytic = analytic_grad.to_vector();
    // Perturb the row-major copy's elements one at a time.
    Tensor x = inputs[i].contiguous();
    double* data = x.data<double>();
    std::vector<Tensor> perturbed = inputs;
    perturbed[i] = x;
    for (int64_t j = 0; j < x.numel(); ++j) {
      const double original = data[j];
      data[j] = original + eps;
      const double plus = loss(perturbed).item();
      data[j] = original - eps;
      const double minus = loss(perturbed).item();
      data[j] = original;
      const double numeric = (plus - minus) / (2 * eps);
      const double error = std::abs(analytic[j] - numeric) / std::max(1.0, std::abs(numeric));
      ++result.elements_checked;
      if (error > result.worst_error || std::isnan(error)) {
        result.worst_error = std::isnan(error) ? INFINITY : error;
        result.worst_at = str("input ", i, " element ", j, ": analytic ", analytic[j], " numeric ", numeric);
      }
    }
  }
  return result;
}

}  // namespace kiln
