// The oneDNN GEMM (engine/ops/onednn/gemm_onednn.cpp, dnnl_sgemm) under matmul and
// linear against the Eigen reference (cpu::gemm): every linear-family row of the op
// table, the models' fully connected shapes, every transpose combination and the
// empty cases, forward and every input gradient.
//
// f32 only: f64 always runs the reference, so the float64 finite-difference checks of
// the op table (test_op_table.cpp) test the reference, which this file ties the fast
// path to.
//
// Tolerances. Both compute in f32 with the same inputs; only the order of the
// additions differs (blocked, vectorised, split over threads). A sum of K products of
// order-1 values is off by about sqrt(K) * 2^-24 of its terms' size, at worst
// K * 2^-24; the longest sums here have K = 2048 (the cnn5-like layer's input), so
// relative L2 < 2e-5 and max-abs < 1e-4 of the tensor's scale (measured, 2 threads:
// at most 5.8e-7 and 1.0e-6). A wrong transpose or leading dimension moves values by
// O(1).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "engine/ops/elementwise.h"
#include "engine/ops/linear.h"
#include "engine/ops/op_table.h"
#include "engine/ops/reduce.h"
#include "engine/tensor/factory.h"
#include "fast_path_check.h"
#include "test_util.h"

using namespace kiln;

namespace {

constexpr double kRelL2 = 2e-5, kMaxAbs = 1e-4;

struct RestoreGemmPath {
  CpuGemmPath saved = cpu_gemm_path();
  ~RestoreGemmPath() { set_cpu_gemm_path(saved); }
};

using Fn = test::TensorFn;

void check_onednn_matches_eigen(const std::string& name, const Fn& f, const std::vector<Tensor>& inputs,
                                const std::vector<bool>& differentiable) {
  RestoreGemmPath restore;
  CAPTURE(name);
  set_cpu_gemm_path(CpuGemmPath::eigen);
  const auto want = test::outputs_and_gradients(f, inputs, differentiable);
  set_cpu_gemm_path(CpuGemmPath::onednn);
  test::check_results_close(test::outputs_and_gradients(f, inputs, differentiable), want, kRelL2, kMaxAbs);
}

}  // namespace

TEST_CASE("oneDNN gemm: every linear row of the op table matches the Eigen reference") {
  int rows = 0;
  for (const OpCase& row : op_table()) {
    if (row.family != "linear") continue;
    ++rows;
    Rng rng(5);
    check_onednn_matches_eigen(row.name, row.run, row.make_inputs(rng, DType::f32), row.differentiable);
  }
  CHECK(rows >= 4);
}

TEST_CASE("oneDNN gemm: the models' fully connected shapes and every transpose match the reference") {
  Rng rng(13);
  const Fn linear_fn = [](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); };
  // cnn5's dense layer at batch 64 (256 channels x 2 x 2 = 1024 features -> 256), then a
  // longer one (2048 -> 100), and a ResNet-style head (512 -> 1000, batch 3: M < the block size).
  for (auto [batch, in, out] : {std::array<int64_t, 3>{64, 1024, 256}, {16, 2048, 100}, {3, 512, 1000}})
    check_onednn_matches_eigen(str("linear ", batch, "x", in, " -> ", out), linear_fn,
                               {uniform({batch, in}, -1, 1, rng), uniform({out, in}, -0.1, 0.1, rng),
                                uniform({out}, -1, 1, rng)},
                               {true, true, true});
  // matmul's forward is (N, N); its backward runs (N, T) and (T, N): all four spellings run.
  const Fn matmul_fn = [](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); };
  check_onednn_matches_eigen("matmul 37x53 . 53x29", matmul_fn,
                             {uniform({37, 53}, -1, 1, rng), uniform({53, 29}, -1, 1, rng)}, {true, true});
  check_onednn_matches_eigen("matmul batched 3x(5x70 . 70x9)", matmul_fn,
                             {uniform({3, 5, 70}, -1, 1, rng), uniform({3, 70, 9}, -1, 1, rng)}, {true, true});
  RestoreGemmPath restore;
  set_cpu_gemm_path(CpuGemmPath::onednn);
  const std::vector<double> a{1, 2, 3, 4, 5, 6}, b{1, 0, -1, 2, 1, 0};  // (2, 3) . (3, 2), by hand
  CHECK(matmul(from_vector(a, {2, 3}), from_vector(b, {3, 2})).to_vector() == std::vector<double>{2, 4, 5, 10});
  // K = 0: an empty sum is 0 (BLAS would reject the leading dimension).
  CHECK(matmul(zeros({2, 0}), zeros({0, 3})).to_vector() == std::vector<double>(6, 0.0));
  CHECK(matmul(zeros({0, 4}), zeros({4, 3})).numel() == 0);
}

TEST_CASE("oneDNN gemm: KILN_CPU_GEMM parses onednn and eigen and names itself otherwise") {
  CHECK(parse_cpu_gemm_path("onednn", "t") == CpuGemmPath::onednn);
  CHECK(parse_cpu_gemm_path("eigen", "t") == CpuGemmPath::eigen);
  test::expect_error_containing([] { parse_cpu_gemm_path("blas", "environment variable KILN_CPU_GEMM"); },
                                {"KILN_CPU_GEMM", "onednn", "eigen", "blas"});
}
