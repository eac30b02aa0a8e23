// clip_grad_norm (engine/train/grad_clip.h) against torch.nn.utils.clip_grad_norm_'s
// formula written out in double: the returned norm, the clipped gradients (scaled
// by max_norm / (norm + 1e-6)) and the untouched ones when the norm is below max_norm.
#include <doctest/doctest.h>

#include <cmath>

#include "engine/tensor/factory.h"
#include "engine/train/grad_clip.h"
#include "test_util.h"

using namespace kiln;

namespace {

std::vector<Tensor> params_with_grads(const std::vector<std::vector<double>>& grads, DType dtype) {
  std::vector<Tensor> params;
  for (const auto& g : grads) {
    const int64_t n = static_cast<int64_t>(g.size());
    Tensor p = zeros({n}, {dtype}).set_requires_grad(true);
    p.set_grad(from_vector(g, {n}, {dtype}));
    params.push_back(p);
  }
  return params;
}

}  // namespace

TEST_CASE("clip_grad_norm: returns the global norm as a tensor and scales by max_norm / (norm + 1e-6)") {
  const std::vector<std::vector<double>> grads = {{3.0, -4.0}, {12.0}, {}, {0.5, 0.25, -2.0}};
  double squares = 0;
  for (const auto& g : grads)
    for (double x : g) squares += x * x;
  const double norm = std::sqrt(squares);
  for (DType dtype : {DType::f64, DType::f32}) {
    CAPTURE(dtype_name(dtype));
    const auto params = params_with_grads(grads, dtype);
    Tensor frozen = zeros({2}, {dtype}).set_requires_grad(true);  // no gradient: left out
    std::vector<Tensor> all = params;
    all.push_back(frozen);
    const Tensor total = train::clip_grad_norm(all, 5.0);
    CHECK(total.dim() == 0);
    CHECK(total.device().is_cpu());
    CHECK(total.item() == doctest::Approx(norm).epsilon(1e-12));
    const double coefficient = 5.0 / (norm + 1e-6);
    const double tolerance = dtype == DType::f64 ? 1e-15 : 1e-6;
    for (size_t j = 0; j < grads.size(); ++j)
      for (size_t k = 0; k < grads[j].size(); ++k)
        CHECK(params[j].grad().to_vector()[k] == doctest::Approx(grads[j][k] * coefficient).epsilon(tolerance));
    CHECK_FALSE(frozen.grad().defined());
  }
  // Below max_norm: the coefficient is clamped to 1, the gradients stay bit for bit.
  const auto params = params_with_grads(grads, DType::f32);
  CHECK(train::clip_grad_norm(params, 100.0).item() == doctest::Approx(norm).epsilon(1e-7));
  CHECK(params[0].grad().to_vector() == std::vector<double>{3.0, -4.0});
  CHECK(train::clip_grad_norm({zeros({2})}, 1.0).item() == 0);  // no gradient anywhere
  test::expect_error_containing([&] { train::clip_grad_norm(params, 0.0); }, {"max_norm", "> 0"});
}
