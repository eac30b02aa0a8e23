// Pooling's CPU fast path (engine/ops/cpu_fast/pool_fast.cpp) against the reference
// (engine/ops/cpu/pool_cpu.cpp): every pool row of the op table and the models'
// shapes, nchw and nhwc, forward and input gradient, plus max-pool ties and NaN.
//
// f32 only (the fast path's domain; f64 runs the reference, so the float64
// finite-difference checks of the op table test the reference).
//
// Tolerance: none. The fast path adds each output's taps in the reference's order
// and scatters backward in the reference's order, so the results are equal bit for
// bit (measured: max-abs 0 on every case, 1 and 2 threads). Ties are the one place
// where a different but valid rule would pass a tolerance test and still route a
// gradient elsewhere; here they are checked through the gradient, exactly.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "engine/ops/elementwise.h"
#include "engine/ops/op_table.h"
#include "engine/ops/pool.h"
#include "engine/ops/reduce.h"
#include "engine/tensor/factory.h"
#include "test_util.h"

using namespace kiln;

namespace {

struct RestorePoolPath {
  CpuPoolPath saved = cpu_pool_path();
  ~RestorePoolPath() { set_cpu_pool_path(saved); }
};

using Fn = std::function<Tensor(const Tensor&)>;

// The output, then the input gradient of sum(y * weights), as plain values (nchw order).
std::vector<std::vector<double>> run_with_grad(const Fn& f, const Tensor& x_in) {
  Tensor x = x_in.detach().to(DType::f64).to(DType::f32).to(x_in.layout());  // a fresh leaf
  x.set_requires_grad(true);
  const Tensor y = f(x);
  Rng rng(99);
  sum(mul(y, uniform(y.shape(), 0.5, 1.5, rng, {y.dtype()}))).backward();
  return {y.to(Layout::nchw).to_vector(), x.grad().to(Layout::nchw).to_vector()};
}

// Runs `f` on the reference and on the fast path, in nchw and in nhwc, and requires
// equal outputs and gradients.
void check_fast_equals_reference(const std::string& name, const Fn& f, const Tensor& x_nchw) {
  RestorePoolPath restore;
  for (Layout layout : {Layout::nchw, Layout::nhwc}) {
    CAPTURE(name);
    CAPTURE(layout == Layout::nhwc ? "nhwc" : "nchw");
    const Tensor x = x_nchw.to(layout);
    set_cpu_pool_path(CpuPoolPath::reference);
    const auto want = run_with_grad(f, x);
    set_cpu_pool_path(CpuPoolPath::fast);
    const auto got = run_with_grad(f, x);
    for (size_t i = 0; i < want.size(); ++i) {
      CAPTURE(i);  // 0: the output, 1: the input gradient
      REQUIRE(got[i].size() == want[i].size());
      int differing = 0;
      for (size_t k = 0; k < want[i].size(); ++k) {
        const bool both_nan = std::isnan(got[i][k]) && std::isnan(want[i][k]);
        if (!both_nan && got[i][k] != want[i][k]) ++differing;
      }
      const double max_abs = test::max_abs_diff(got[i], want[i]);
      INFO("max-abs difference " << max_abs);
      CHECK(differing == 0);
    }
  }
}

}  // namespace

TEST_CASE("pool fast path: every pool row of the op table equals the reference, nchw and nhwc") {
  int rows = 0;
  for (const OpCase& row : op_table()) {
    if (row.family != "pool") continue;
    ++rows;
    Rng rng(5);
    const std::vector<Tensor> inputs = row.make_inputs(rng, DType::f32);
    REQUIRE(inputs.size() == 1);
    check_fast_equals_reference(row.name, [&](const Tensor& x) { return row.run({x}); }, inputs[0]);
  }
  CHECK(rows >= 7);
}

TEST_CASE("pool fast path: the models' pooling shapes equal the reference") {
  Rng rng(11);
  // Large enough that the loops run on the OpenMP team (> 16384 values).
  const Tensor cnn5 = uniform({4, 16, 32, 32}, -1, 1, rng);     // cnn5 / VGG: 2x2, stride 2
  const Tensor stem = uniform({2, 16, 48, 47}, -1, 1, rng);     // ResNet stem: 3x3, stride 2, padding 1 (odd W)
  const Tensor head = uniform({4, 1280, 3, 3}, -1, 1, rng);     // MobileNetV2 / ResNet head: global mean
  const Tensor vgg_head = uniform({2, 512, 3, 3}, -1, 1, rng);  // VGG's adaptive 3x3 -> 7x7
  check_fast_equals_reference(
      "cnn5 max 2x2", [](const Tensor& x) { return max_pool2d(x, Pool2dParams::square(2, 2, 0)); }, cnn5);
  check_fast_equals_reference(
      "stem max 3x3/2 pad 1", [](const Tensor& x) { return max_pool2d(x, Pool2dParams::square(3, 2, 1)); }, stem);
  check_fast_equals_reference(
      "max 3x3/2 pad 1 ceil", [](const Tensor& x) { return max_pool2d(x, Pool2dParams::square(3, 2, 1, true)); }, stem);
  check_fast_equals_reference(
      "max 3x3/1 pad 1 (overlapping)", [](const Tensor& x) { return max_pool2d(x, Pool2dParams::square(3, 1, 1)); },
      cnn5);
  check_fast_equals_reference(
      "avg 3x3/2 pad 1", [](const Tensor& x) { return avg_pool2d(x, Pool2dParams::square(3, 2, 1), true); }, stem);
  check_fast_equals_reference(
      "avg 3x3/2 pad 1 exclude pad ceil",
      [](const Tensor& x) { return avg_pool2d(x, Pool2dParams::square(3, 2, 1, true), false); }, stem);
  check_fast_equals_reference(
      "global mean", [](const Tensor& x) { return global_avg_pool2d(x); }, head);
  check_fast_equals_reference(
      "adaptive 3x3 -> 7x7", [](const Tensor& x) { return adaptive_avg_pool2d(x, 7, 7); }, vgg_head);
  check_fast_equals_reference(
      "adaptive 48x47 -> 5x3", [](const Tensor& x) { return adaptive_avg_pool2d(x, 5, 3); }, stem);
}

TEST_CASE("pool fast path: max-pool ties route the gradient to the first maximum, NaN wins, as the reference") {
  // Values from {0, 1, 2}: most windows hold the maximum more than once.
  std::vector<double> small_integers(2 * 8 * 20 * 21);
  for (size_t i = 0; i < small_integers.size(); ++i) small_integers[i] = static_cast<double>((i * 7919 + i / 5) % 3);
  const Tensor ties = from_vector(small_integers, {2, 8, 20, 21});
  check_fast_equals_reference(
      "ties 2x2", [](const Tensor& x) { return max_pool2d(x, Pool2dParams::square(2, 2, 0)); }, ties);
  check_fast_equals_reference(
      "ties 3x3/2 pad 1", [](const Tensor& x) { return max_pool2d(x, Pool2dParams::square(3, 2, 1)); }, ties);
  check_fast_equals_reference(
      "constant", [](const Tensor& x) { return max_pool2d(x, Pool2dParams::square(3, 2, 1)); }, zeros({2, 4, 9, 9}));

  // The rule itself, on one window: [[1, 2], [2, 0]] -> the gradient goes to (0, 1),
  // the first 2 in row-major order; with a NaN at (1, 1) the NaN takes it.
  RestorePoolPath restore;
  set_cpu_pool_path(CpuPoolPath::fast);
  for (Layout layout : {Layout::nchw, Layout::nhwc}) {
    Tensor x = from_vector({1, 2, 2, 0}, {1, 1, 2, 2}).to(layout);
    x.set_requires_grad(true);
    sum(max_pool2d(x, Pool2dParams::square(2, 2, 0))).backward();
    CHECK(x.grad().to(Layout::nchw).to_vector() == std::vector<double>{0, 1, 0, 0});
    const double nan = std::numeric_limits<double>::quiet_NaN();
    Tensor with_nan = from_vector({1, 2, 2, nan}, {1, 1, 2, 2}).to(layout);
    with_nan.set_requires_grad(true);
    const Tensor y = max_pool2d(with_nan, Pool2dParams::square(2, 2, 0));
    CHECK(std::isnan(y.to_vector()[0]));
    sum(y).backward();
    CHECK(with_nan.grad().to(Layout::nchw).to_vector() == std::vector<double>{0, 0, 0, 1});
  }
}

TEST_CASE("pool fast path: KILN_CPU_POOL parses fast and reference and names itself otherwise") {
  CHECK(parse_cpu_pool_path("fast", "t") == CpuPoolPath::fast);
  CHECK(parse_cpu_pool_path("reference", "t") == CpuPoolPath::reference);
  test::expect_error_containing([] { parse_cpu_pool_path("onednn", "environment variable KILN_CPU_POOL"); },
                                {"KILN_CPU_POOL", "fast", "reference", "onednn"});
}
