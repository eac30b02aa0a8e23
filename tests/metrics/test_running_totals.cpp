// The trainer's device-resident running totals (engine/metrics/running_totals.h):
// summed loss and correct count against a direct host recomputation, the argmax rule
// for ties, and CPU-vs-CUDA parity.
#include <doctest/doctest.h>

#include <algorithm>

#include "engine/metrics/running_totals.h"
#include "engine/tensor/factory.h"
#include "test_util.h"

using namespace kiln;

namespace {

// Random logits (N, K), labels in [0, K), and the correct count by std::max_element.
struct Batch {
  Tensor logits, labels;
  int64_t correct = 0;
};

Batch random_batch(int64_t N, int64_t K, uint64_t seed) {
  Rng rng(seed);
  Batch b;
  b.logits = randn({N, K}, rng);
  b.labels = empty({N}, {DType::i64});
  for (int64_t i = 0; i < N; ++i) {
    const float* row = b.logits.data<float>() + i * K;
    const int64_t argmax = std::max_element(row, row + K) - row;
    // About half right: the label is the argmax for even rows, a random class otherwise.
    const int64_t label = i % 2 == 0 ? argmax : static_cast<int64_t>(rng.next_u64() % static_cast<uint64_t>(K));
    b.labels.data<int64_t>()[i] = label;
    b.correct += label == argmax;
  }
  return b;
}

}  // namespace

TEST_CASE("running totals: add loss * N and the correct count, batch after batch") {
  const Tensor totals = zeros({2}, {DType::f64});
  double want_loss = 0;
  int64_t want_correct = 0;
  for (int step = 0; step < 3; ++step) {
    const Batch b = random_batch(7 + step, 5, 100 + static_cast<uint64_t>(step));
    const float loss = 0.25f + 0.1f * static_cast<float>(step);
    metrics::accumulate_loss_and_correct(totals, scalar(loss), b.logits, b.labels);
    want_loss += static_cast<double>(loss) * static_cast<double>(7 + step);
    want_correct += b.correct;
  }
  CHECK(totals.data<double>()[0] == want_loss);  // the same double arithmetic: exact
  CHECK(totals.data<double>()[1] == static_cast<double>(want_correct));
  CHECK(want_correct > 0);
}

TEST_CASE("running totals: the first of equal maxima is the prediction, and a label out of range is never correct") {
  const Tensor logits = from_vector({1, 3, 3, /**/ 2, 2, 2, /**/ 0, 1, 0, /**/ 5, 0, 0}, {4, 3});
  const Tensor labels = from_vector({1, 0, 7, -1}, {4}, {DType::i64});
  const Tensor totals = zeros({2}, {DType::f64});
  metrics::accumulate_loss_and_correct(totals, scalar(1.0), logits, labels);
  CHECK(totals.data<double>()[0] == 4.0);  // loss 1 * 4 rows
  CHECK(totals.data<double>()[1] == 2.0);  // rows 0 and 1; rows 2 and 3 have labels out of range
}

TEST_CASE("running totals: names a wrong dtype or device") {
  const Batch b = random_batch(4, 3, 1);
  test::expect_error_containing(
      [&] { metrics::accumulate_loss_and_correct(zeros({2}), scalar(1.0), b.logits, b.labels); },
      {"accumulate_loss_and_correct", "totals must be f64 (2)"});
  test::expect_error_containing(
      [&] { metrics::accumulate_loss_and_correct(zeros({2}, {DType::f64}), scalar(1.0), b.logits, b.labels.to(DType::f32)); },
      {"labels must be i64 (4)"});
}

TEST_CASE("running totals: CUDA agrees with the CPU" * doctest::test_suite("gpu")) {
  if (test::skip_without_gpu("running totals on CUDA")) return;
  const Device gpu = Device::cuda(0);
  const Tensor cpu_totals = zeros({2}, {DType::f64});
  const Tensor gpu_totals = zeros({2}, {DType::f64, gpu});
  // Several blocks' worth of rows, ties included (rounded logits), and 1000 classes.
  for (const auto& [N, K] : std::vector<std::pair<int64_t, int64_t>>{{3, 10}, {300, 7}, {64, 1000}}) {
    Batch b = random_batch(N, K, static_cast<uint64_t>(N * K));
    for (int64_t i = 0; i < N * K; i += 3) b.logits.data<float>()[i] = 0.f;
    const Tensor loss = scalar(0.5 + static_cast<double>(K) / 1000.0);
    metrics::accumulate_loss_and_correct(cpu_totals, loss, b.logits, b.labels);
    metrics::accumulate_loss_and_correct(gpu_totals, loss.to(gpu), b.logits.to(gpu), b.labels.to(gpu));
  }
  const std::vector<double> want = cpu_totals.to_vector(), got = gpu_totals.to(Device::cpu()).to_vector();
  CHECK(got[0] == want[0]);
  CHECK(got[1] == want[1]);
}
