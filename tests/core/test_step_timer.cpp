// StepTimer (engine/core/step_timer.h), the clock of `kiln bench train|infer`: one
// interval per start/stop pair, at least as long as the work it brackets; and the
// median the benchmarks report.
#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include "engine/core/check.h"
#include "engine/core/step_timer.h"
#include "engine/ops/elementwise.h"
#include "engine/tensor/factory.h"
#include "test_util.h"

using namespace kiln;

TEST_CASE("StepTimer on the cpu measures each step with the host clock") {
  StepTimer timer(Device::cpu());
  for (int ms : {2, 6}) {
    timer.start();
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    timer.stop();
  }
  const std::vector<double> elapsed = timer.elapsed_ms();
  REQUIRE(elapsed.size() == 2);
  CHECK(elapsed[0] >= 2.0);  // a sleep never ends early (it may end late on a busy machine:
  CHECK(elapsed[1] >= 6.0);  // no upper bound is checked)
}

TEST_CASE("median of step times: the middle value, the upper middle for an even count") {
  CHECK(median({5.0, 1.0, 3.0}) == 3.0);
  CHECK(median({4.0, 1.0, 3.0, 2.0}) == 3.0);  // as Python's statistics.median_high in torch_bench.py
  CHECK(median({7.0}) == 7.0);
  CHECK_THROWS_WITH_AS(median({}), doctest::Contains("no values"), Error);
}

TEST_CASE("StepTimer on a GPU measures device time with CUDA events" * doctest::test_suite("gpu")) {
  if (test::skip_without_gpu("StepTimer CUDA events")) return;
  const Device gpu = Device::cuda(0);
  Rng rng(0);
  const Tensor a = randn({2048, 2048}, rng, {DType::f32, gpu});
  StepTimer timer(gpu);
  timer.start();
  timer.stop();  // nothing queued: close to zero
  timer.start();
  Tensor sum = a;
  for (int i = 0; i < 20; ++i) sum = add(sum, a);  // 20 passes over 16 MiB: tens of microseconds at least
  timer.stop();
  const std::vector<double> elapsed = timer.elapsed_ms();
  REQUIRE(elapsed.size() == 2);
  CHECK(elapsed[0] >= 0.0);
  CHECK(elapsed[1] > elapsed[0]);
}
