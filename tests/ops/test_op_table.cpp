// The data-driven harness: every row of the op table gets
//   1. a float64 finite-difference gradient check on the CPU,
//   2. a layout check: nhwc inputs give the same values as nchw inputs,
//   3. CPU-vs-CUDA parity, forward and backward, for every CUDA dtype of the row,
//      in nchw and (when an input is 4-D) in nhwc, by relative L2 and by max-abs
//      error (skipped with a message where there is no GPU),
//   4. a dtype check: an unsupported dtype is an error naming the op.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

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
  Layout output_layout = Layout::nchw;
};

// The row run on `device`: differentiable inputs in `dtype`, and every 4-D input in
// `layout` (so nhwc runs the channels-last kernels on both sides).
Result run_with_grads(const OpCase& row, const std::vector<Tensor>& inputs_cpu, const Device& device, DType dtype,
                      Layout layout) {
  std::vector<Tensor> inputs;
  for (size_t i = 0; i < inputs_cpu.size(); ++i) {
    Tensor x = inputs_cpu[i];
    if (row.differentiable[i]) x = x.to(dtype);
    if (x.dim() == 4) x = x.to(layout);
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
  r.output_layout = out.layout();
  for (size_t i = 0; i < inputs.size(); ++i)
    if (row.differentiable[i]) r.grads.push_back(inputs[i].grad().to(Device::cpu()).to(DType::f64).to_vector());
  return r;
}

// The layouts a row's parity runs in: nchw, and nhwc too when an input is 4-D.
std::vector<Layout> parity_layouts(const std::vector<Tensor>& inputs) {
  for (const Tensor& x : inputs)
    if (x.dim() == 4) return {Layout::nchw, Layout::nhwc};
  return {Layout::nchw};
}

double largest_magnitude(const std::vector<double>& values) {
  double largest = 0;
  for (double v : values) largest = std::max(largest, std::abs(v));
  return largest;
}

// One compared tensor (the output, or one input's gradient): both errors against the
// row's tolerances for the dtype. The max-abs bound is absolute for values up to 1
// and scales with the reference's largest magnitude above that (op_table.h).
void check_close(const std::vector<double>& got, const std::vector<double>& want, const ParityTolerance& tolerance,
                 const std::string& what, const std::string& row, DType dtype, Layout layout) {
  const double rel_l2 = test::relative_l2(got, want);
  const double max_abs = test::max_abs_diff(got, want);
  const double scale = std::max(1.0, largest_magnitude(want));
  CAPTURE(what);
  INFO("relative L2 " << rel_l2 << " (tolerance " << tolerance.rel_l2 << "), max-abs " << max_abs << " (tolerance "
                      << tolerance.max_abs << " x " << scale << ")");
  CHECK(rel_l2 < tolerance.rel_l2);
  CHECK(max_abs <= tolerance.max_abs * scale);
  // KILN_PARITY_REPORT=1 prints the measured errors of every comparison (what the
  // tolerances in op_table.h and the rows' files were chosen from).
  static const bool report = [] {
    const char* v = std::getenv("KILN_PARITY_REPORT");
    return v && *v && std::string(v) != "0";
  }();
  if (report)
    std::printf("parity %-58s %-5s %-4s %-8s rel_l2 %9.2e  max_abs %9.2e  |want| %8.3g  tol %.0e / %.0e\n",
                row.c_str(), dtype_name(dtype), layout_name(layout), what.c_str(), rel_l2, max_abs,
                largest_magnitude(want), tolerance.rel_l2, tolerance.max_abs);
}

}  // namespace

TEST_CASE("op table: CPU and CUDA agree, forward and backward, nchw and nhwc" * doctest::test_suite("gpu")) {
  if (test::skip_without_gpu("CPU-vs-CUDA parity of every op-table row")) return;
  int nhwc_runs = 0;
  for (const OpCase& row : op_table()) {
    for (DType dtype : {DType::f32, DType::f16, DType::bf16}) {
      if (!row.cuda_dtypes.contains(dtype)) continue;
      const std::string dtype_text = dtype_name(dtype);  // (a std::string: CAPTURE prints a char* as a pointer)
      CAPTURE(row.name);
      CAPTURE(dtype_text);
      Rng rng(11);
      const std::vector<Tensor> inputs = row.make_inputs(rng, DType::f32);
      // The reference: the CPU in f32, from inputs rounded to the dtype under test.
      std::vector<Tensor> rounded;
      for (size_t i = 0; i < inputs.size(); ++i)
        rounded.push_back(row.differentiable[i] ? inputs[i].to(dtype).to(DType::f32) : inputs[i]);
      const ParityTolerance tolerance = row.parity_tolerance(dtype);
      for (Layout layout : parity_layouts(inputs)) {
        const std::string layout_text = layout_name(layout);
        CAPTURE(layout_text);
        const Result want = run_with_grads(row, rounded, Device::cpu(), DType::f32, layout);
        const Result got = run_with_grads(row, rounded, Device::cuda(0), dtype, layout);
        nhwc_runs += layout == Layout::nhwc;
        CHECK(got.output_layout == want.output_layout);  // both backends keep the same layout
        check_close(got.output, want.output, tolerance, "output", row.name, dtype, layout);
        REQUIRE(got.grads.size() == want.grads.size());
        for (size_t i = 0; i < got.grads.size(); ++i)
          check_close(got.grads[i], want.grads[i], tolerance, "grad " + std::to_string(i), row.name, dtype, layout);
      }
    }
  }
  CHECK(nhwc_runs > 0);
}
