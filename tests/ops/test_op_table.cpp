// The data-driven harness: every row of the op table gets
//   1. a float64 finite-difference gradient check on the CPU,
//   2. a layout check: nhwc inputs give the same values as nchw inputs,
//   3. CPU-vs-CUDA parity, forward and backward, for every CUDA dtype of the row
//      (skipped with a message where there is no GPU),
//   4. a dtype check: an unsupported dtype is an error naming the op.
#include <doctest/doctest.h>

#include "engine/autograd/gradcheck.h"
#include "engine/autograd/tape.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/op_table.h"
#include "engine/ops/reduce.h"
#include "engine/tensor/factory.h"
#include "test_util.h"

using namespace kiln;

TEST_CASE("op table: every row passes a float64 finite-difference gradient check") {
  REQUIRE(!op_table().empty());
  for (const OpCase& row : op_table()) {
    CAPTURE(row.name);
    Rng rng(42);
    const std::vector<Tensor> inputs = row.make_inputs(rng, DType::f64);
    const GradcheckResult result = gradcheck(row.run, inputs, row.differentiable);
    INFO(row.name << ": worst " << result.worst_error << " at " << result.worst_at);
    CHECK(result.elements_checked > 0);
    CHECK(result.worst_error < row.gradcheck_tolerance);
  }
}

TEST_CASE("op table: channels-last inputs give the same values as row-major inputs") {
  for (const OpCase& row : op_table()) {
    CAPTURE(row.name);
    Rng rng(7);
    const std::vector<Tensor> inputs = row.make_inputs(rng, DType::f64);
    std::vector<Tensor> nhwc_inputs;
    bool any_4d = false;
    for (const Tensor& x : inputs) {
      any_4d |= x.dim() == 4;
      nhwc_inputs.push_back(x.dim() == 4 ? x.to(Layout::nhwc) : x);
    }
    if (!any_4d) continue;
    const Tensor want = row.run(inputs);
    const Tensor got = row.run(nhwc_inputs);
    REQUIRE(got.shape() == want.shape());
    CHECK(test::max_abs_diff(got.to_vector(), want.to_vector()) < 1e-12);
  }
}

TEST_CASE("op table: an unsupported dtype is an error that names the op") {
  for (const OpCase& row : op_table()) {
    CAPTURE(row.name);
    if (row.cpu_dtypes.contains(DType::f16)) continue;
    Rng rng(3);
    std::vector<Tensor> inputs = row.make_inputs(rng, DType::f32);
    for (size_t i = 0; i < inputs.size(); ++i)
      if (row.differentiable[i]) inputs[i] = inputs[i].to(DType::f16);
    test::expect_error_containing([&] { row.run(inputs); }, {row.op(), "f16"});
  }
}

// ---- CPU vs CUDA, forward and backward
namespace {

struct Result {
  std::vector<double> output;
  std::vector<std::vector<double>> grads;  // per differentiable input
};

Result run_with_grads(const OpCase& row, const std::vector<Tensor>& inputs_cpu, const Device& device, DType dtype) {
  std::vector<Tensor> inputs;
  for (size_t i = 0; i < inputs_cpu.size(); ++i) {
    Tensor x = inputs_cpu[i];
    if (row.differentiable[i]) x = x.to(dtype);
    x = x.to(device).detach();
    if (row.differentiable[i]) x.set_requires_grad(true);
    inputs.push_back(x);
  }
  Tensor out = row.run(inputs);
  Rng rng(99);
  const Tensor weights = uniform(out.shape(), 0.5, 1.5, rng, {out.dtype(), device});
  sum(mul(out, weights).to(DType::f32)).backward();
  Result r;
  r.output = out.to(Device::cpu()).to(DType::f64).to_vector();
  for (size_t i = 0; i < inputs.size(); ++i)
    if (row.differentiable[i]) r.grads.push_back(inputs[i].grad().to(Device::cpu()).to(DType::f64).to_vector());
  return r;
}

}  // namespace

TEST_CASE("op table: CPU and CUDA agree, forward and backward" * doctest::test_suite("gpu")) {
  if (test::skip_without_gpu("CPU-vs-CUDA parity of every op-table row")) return;
  for (const OpCase& row : op_table()) {
    for (DType dtype : {DType::f32, DType::f16, DType::bf16}) {
      if (!row.cuda_dtypes.contains(dtype)) continue;
      CAPTURE(row.name);
      CAPTURE(dtype_name(dtype));
      Rng rng(11);
      const std::vector<Tensor> inputs = row.make_inputs(rng, DType::f32);
      // The reference: the CPU in f32, from inputs rounded to the dtype under test.
      std::vector<Tensor> rounded;
      for (size_t i = 0; i < inputs.size(); ++i)
        rounded.push_back(row.differentiable[i] ? inputs[i].to(dtype).to(DType::f32) : inputs[i]);
      const Result want = run_with_grads(row, rounded, Device::cpu(), DType::f32);
      const Result got = run_with_grads(row, rounded, Device::cuda(0), dtype);
      const double tolerance = dtype == DType::f32 ? row.parity_tolerance_f32 : row.parity_tolerance_half;
      CHECK(test::relative_l2(got.output, want.output) < tolerance);
      REQUIRE(got.grads.size() == want.grads.size());
      for (size_t i = 0; i < got.grads.size(); ++i) {
        CAPTURE(i);
        CHECK(test::relative_l2(got.grads[i], want.grads[i]) < tolerance);
      }
    }
  }
}
