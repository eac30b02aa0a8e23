// Batch norm's CPU fast path (engine/ops/cpu_fast/batch_norm_fast.cpp) against the
// reference (engine/ops/cpu/norm_cpu.cpp): every norm row of the op table, and
// MobileNetV2-sized planes, forward, running statistics and every input gradient.
//
// f32 only, nchw (the fast path's domain; f64 and nhwc run the reference, so the
// float64 finite-difference checks of the op table test the reference).
//
// Tolerances. Both compute the statistics in double; the fast path sums backward's
// dz and dz*(x - mean) per plane in float (then the planes in double) and writes the
// input gradient as one float multiply-add. A float sum of L terms is off by
// ~sqrt(L) * 2^-24 of its terms, and the input gradient subtracts the means of dz and
// dz*xhat from dz, a cancellation that can lift that ~10x where little is left:
// relative L2 < 1e-5 and max-abs < 1e-5 of the tensor's scale (measured, 2 threads:
// at most 2.3e-7 and 2.2e-7, the offset-20 case included). A wrong formula (a missed
// mean, a swapped activation) is off by O(1).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "engine/ops/activation.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/norm.h"
#include "engine/ops/op_table.h"
#include "engine/ops/reduce.h"
#include "engine/tensor/factory.h"
#include "test_util.h"

using namespace kiln;

namespace {

constexpr double kRelL2 = 1e-5, kMaxAbs = 1e-5;

struct RestoreNormPath {
  CpuNormPath saved = cpu_norm_path();
  ~RestoreNormPath() { set_cpu_norm_path(saved); }
};

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

// The output, then the gradient of every differentiable input, then every
// non-differentiable input's final value (running statistics the op updated).
std::vector<std::vector<double>> run_with_grads(const Fn& f, const std::vector<Tensor>& inputs_cpu,
                                                const std::vector<bool>& differentiable) {
  std::vector<Tensor> inputs;
  for (size_t i = 0; i < inputs_cpu.size(); ++i) {
    Tensor x = inputs_cpu[i].detach().to(DType::f64).to(inputs_cpu[i].dtype());  // a fresh copy: f may update it
    if (differentiable[i]) x.set_requires_grad(true);
    inputs.push_back(x);
  }
  const Tensor out = f(inputs);
  Rng rng(99);
  sum(mul(out, uniform(out.shape(), 0.5, 1.5, rng, {out.dtype()}))).backward();
  std::vector<std::vector<double>> results{out.to_vector()};
  for (size_t i = 0; i < inputs.size(); ++i)
    results.push_back(differentiable[i] ? inputs[i].grad().to_vector() : inputs[i].to_vector());
  return results;
}

void check_fast_matches_reference(const std::string& name, const Fn& f, const std::vector<Tensor>& inputs,
                                  const std::vector<bool>& differentiable) {
  RestoreNormPath restore;
  CAPTURE(name);
  set_cpu_norm_path(CpuNormPath::reference);
  const auto want = run_with_grads(f, inputs, differentiable);
  set_cpu_norm_path(CpuNormPath::fast);
  const auto got = run_with_grads(f, inputs, differentiable);
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    CAPTURE(i);  // 0: the output, then per input its gradient or its value after the op
    double largest = 1;
    for (double v : want[i]) largest = std::max(largest, std::abs(v));
    const double rel_l2 = test::relative_l2(got[i], want[i]), max_abs = test::max_abs_diff(got[i], want[i]);
    INFO("relative L2 " << rel_l2 << ", max-abs " << max_abs << " of scale " << largest);
    CHECK(rel_l2 < kRelL2);
    CHECK(max_abs <= kMaxAbs * largest);
  }
}

}  // namespace

TEST_CASE("batch norm fast path: every norm row of the op table matches the reference") {
  int rows = 0;
  for (const OpCase& row : op_table()) {
    if (row.family != "norm") continue;
    ++rows;
    Rng rng(5);
    check_fast_matches_reference(row.name, row.run, row.make_inputs(rng, DType::f32), row.differentiable);
  }
  CHECK(rows >= 4);
}

TEST_CASE("batch norm fast path: MobileNetV2-sized planes, relu6 fused, training and eval, off-centre inputs") {
  for (bool training : {true, false})
    for (Activation activation : {Activation::relu6, Activation::relu})
      for (double offset : {0.0, 20.0}) {  // 20: |mean| >> std, where a folded mean would cancel
        Rng rng(3);
        const Tensor x = add_scalar(uniform({2, 24, 24, 24}, -1, 1, rng), offset);
        const std::vector<Tensor> inputs{x, uniform({24}, 0.5, 1.5, rng), uniform({24}, -0.5, 0.5, rng),
                                         full({24}, offset), ones({24})};
        BatchNormOptions options;
        options.training = training;
        check_fast_matches_reference(
            str(training ? "training" : "eval", ", ", activation_name(activation), ", offset ", offset),
            [=](const std::vector<Tensor>& in) {
              return batch_norm_act(in[0], in[1], in[2], in[3], in[4], options, activation);
            },
            inputs, {true, true, true, false, false});
      }
}

TEST_CASE("batch norm fast path: KILN_CPU_NORM parses fast and reference and names itself otherwise") {
  CHECK(parse_cpu_norm_path("fast", "t") == CpuNormPath::fast);
  CHECK(parse_cpu_norm_path("reference", "t") == CpuNormPath::reference);
  test::expect_error_containing([] { parse_cpu_norm_path("quick", "environment variable KILN_CPU_NORM"); },
                                {"KILN_CPU_NORM", "fast", "reference", "quick"});
}
