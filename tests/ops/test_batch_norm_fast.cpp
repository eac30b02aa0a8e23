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
#include "fast_path_check.h"
#include "test_util.h"

using namespace kiln;

namespace {

constexpr double kRelL2 = 1e-5, kMaxAbs = 1e-5;

struct RestoreNormPath {
  CpuNormPath saved = cpu_norm_path();
  ~RestoreNormPath() { set_cpu_norm_path(saved); }
};

using Fn = test::TensorFn;

// The output, then per input its gradient or, for the running statistics, its value
// after the op.
void check_fast_matches_reference(const std::string& name, const Fn& f, const std::vector<Tensor>& inputs,
                                  const std::vector<bool>& differentiable) {
  RestoreNormPath restore;
  CAPTURE(name);
  set_cpu_norm_path(CpuNormPath::reference);
  const auto want = test::outputs_and_gradients(f, inputs, differentiable, /*with_updated_inputs=*/true);
  set_cpu_norm_path(CpuNormPath::fast);
  test::check_results_close(test::outputs_and_gradients(f, inputs, differentiable, /*with_updated_inputs=*/true), want,
                            kRelL2, kMaxAbs);
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
