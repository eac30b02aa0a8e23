// clip_grad_norm on CUDA (kernels/optim_grad_clip.cu) against the CPU reference
// (engine/train/grad_clip.cpp): the returned norm has the CPU's dtype (f64) and shape
// (0-d) and the same value, and the clipped gradients are the same, with and without
// clipping, over gradients that span several 65536-element chunks; f32 and bf16
// gradients. Skips with a message where there is no GPU.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/tensor/factory.h"
#include "engine/train/grad_clip.h"
#include "test_util.h"

using namespace kiln;

namespace {

// Parameters whose gradients hold `values` (one vector per parameter) on `device` in `dtype`.
std::vector<Tensor> params_with_grads(const std::vector<std::vector<double>>& values, const Device& device,
                                      DType dtype) {
  std::vector<Tensor> params;
  for (const std::vector<double>& v : values) {
    const Shape shape{static_cast<int64_t>(v.size())};
    Tensor p = zeros(shape, {DType::f32, device, Layout::nchw});
    p.set_requires_grad(true);
    p.set_grad(from_vector(v, shape, {DType::f32}).to(dtype).to(device));
    params.push_back(p);
  }
  return params;
}

std::vector<double> all_grads(const std::vector<Tensor>& params) {
  std::vector<double> out;
  for (const Tensor& p : params) {
    const std::vector<double> g = p.grad().to(Device::cpu()).to(DType::f64).to_vector();
    out.insert(out.end(), g.begin(), g.end());
  }
  return out;
}

}  // namespace

TEST_CASE("clip_grad_norm on CUDA: the norm is f64 like the CPU's, and norm and clipped gradients match" *
          doctest::test_suite("gpu")) {
  if (test::skip_without_gpu("clip_grad_norm CPU vs CUDA")) return;
  // 70000 + 3 + 65536 + 300: partial chunks, a tiny tensor and an exact chunk.
  Rng rng(5);
  std::vector<std::vector<double>> values;
  for (int64_t n : {70000, 3, 65536, 300}) values.push_back(uniform({n}, -1, 1, rng, {DType::f64}).to_vector());
  for (DType dtype : {DType::f32, DType::bf16}) {
    for (double max_norm : {1e6, 2.0}) {  // no clipping, then clipping by ~100x
      CAPTURE(dtype_name(dtype));
      CAPTURE(max_norm);
      // The reference: the CPU in f32 on the gradients rounded to the dtype under test.
      std::vector<std::vector<double>> rounded;
      for (const auto& v : values)
        rounded.push_back(from_vector(v, {static_cast<int64_t>(v.size())}, {DType::f64}).to(dtype).to_vector());
      const std::vector<Tensor> cpu = params_with_grads(rounded, Device::cpu(), DType::f32);
      const std::vector<Tensor> gpu = params_with_grads(rounded, Device::cuda(0), dtype);
      const Tensor cpu_norm = train::clip_grad_norm(cpu, max_norm);
      const Tensor gpu_norm = train::clip_grad_norm(gpu, max_norm);
      CHECK(cpu_norm.dtype() == DType::f64);
      CHECK(gpu_norm.dtype() == cpu_norm.dtype());
      CHECK(gpu_norm.shape() == cpu_norm.shape());
      CHECK(gpu_norm.device() == Device::cuda(0));  // not read back: no sync inside clipping
      const double want = cpu_norm.item(), got = gpu_norm.to(Device::cpu()).item();
      // Per-chunk sums of squares in f32 (<= 65536 terms each), their total in f64.
      CHECK(std::abs(got - want) <= 1e-6 * want);
      const std::vector<double> cpu_grads = all_grads(cpu), gpu_grads = all_grads(gpu);
      if (max_norm > want) {
        std::vector<double> unclipped;
        for (const auto& v : rounded) unclipped.insert(unclipped.end(), v.begin(), v.end());
        CHECK(gpu_grads == unclipped);  // not clipped: untouched, bit for bit
        CHECK(cpu_grads == unclipped);
      } else {
        // f32: the coefficient is applied in f32 on the GPU, in f64 on the CPU (1 ulp).
        // bf16: the clipped gradient is stored in bf16 again (relative step 2^-8).
        const double tolerance = dtype == DType::f32 ? 1e-6 : 4e-3;
        CHECK(test::relative_l2(gpu_grads, cpu_grads) < tolerance);
        double largest = 0;
        for (double g : cpu_grads) largest = std::max(largest, std::abs(g));
        CHECK(test::max_abs_diff(gpu_grads, cpu_grads) <= tolerance * largest);
      }
    }
  }
}
