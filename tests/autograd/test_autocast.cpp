// Autocast (engine/autograd/autocast.h) on the CPU, where it rounds operands and
// results to the low dtype and computes in f32: the scope itself, each autocast op
// against its explicit rounded formula, master weights and gradients staying f32,
// and a small conv net whose bf16 (and loss-scaled f16) training tracks f32 training.
#include <doctest/doctest.h>

#include <cmath>

#include "engine/autograd/autocast.h"
#include "engine/core/backend_info.h"
#include "engine/nn/layers.h"
#include "engine/ops/conv.h"
#include "engine/ops/linear.h"
#include "engine/ops/loss.h"
#include "engine/ops/reduce.h"
#include "engine/ops/shape_ops.h"
#include "engine/optim/loss_scaler.h"
#include "engine/optim/optimizer.h"
#include "engine/tensor/factory.h"
#include "test_util.h"

using namespace kiln;
using test::relative_l2;

namespace {

Tensor rounded(const Tensor& t, DType low) { return t.to(low).to(DType::f32); }

// conv 3->8 -> BN -> ReLU -> pool -> conv 8->16 -> BN -> ReLU -> pool -> linear 256->5
std::shared_ptr<nn::Sequential> small_net() {
  auto net = std::make_shared<nn::Sequential>();
  net->add(std::make_shared<nn::Conv2d>(3, 8, 3, 1, 1, 1, false));
  net->add(std::make_shared<nn::BatchNorm>(8));
  net->add(std::make_shared<nn::ActivationLayer>(Activation::relu));
  net->add(std::make_shared<nn::MaxPool2d>(Pool2dParams{}));
  net->add(std::make_shared<nn::Conv2d>(8, 16, 3, 1, 1, 1, false));
  net->add(std::make_shared<nn::BatchNorm>(16));
  net->add(std::make_shared<nn::ActivationLayer>(Activation::relu));
  net->add(std::make_shared<nn::MaxPool2d>(Pool2dParams{}));
  net->add(std::make_shared<nn::Flatten>());
  net->add(std::make_shared<nn::Linear>(16 * 4 * 4, 5));
  return net;
}

struct TrainRun {
  std::vector<double> losses;
  std::shared_ptr<nn::Sequential> net;
  int64_t skipped = 0;
};

// 30 SGD-momentum steps on one fixed batch, from the weights in `init`, with the
// forward under autocast to `low` (nullopt: plain f32), loss scaling when `scaler`.
TrainRun train(const std::map<std::string, Tensor>& init, std::optional<DType> low, optim::LossScaler* scaler,
               const Device& device = Device::cpu(), int steps = 30) {
  TrainRun run;
  run.net = small_net();
  run.net->load_state_dict(init);
  run.net->to(device);
  Rng rng(7);
  const Tensor x = randn({16, 3, 16, 16}, rng).to(device);
  std::vector<double> classes;
  for (int i = 0; i < 16; ++i) classes.push_back(i % 5);
  const Tensor labels = from_vector(classes, {16}, {DType::i64}).to(device);
  optim::SgdOptions options;
  options.lr = 0.05;
  options.momentum = 0.9;
  optim::SGD sgd(run.net->trainable_parameters(), options);
  for (int step = 0; step < steps; ++step) {
    sgd.zero_grad();
    Tensor loss;
    {
      AutocastGuard autocast(low);
      loss = cross_entropy(run.net->forward(x), labels);
    }
    run.losses.push_back(loss.to(Device::cpu()).item());
    if (scaler) {
      scaler->scale(loss).backward();
      scaler->step(sgd);
    } else {
      loss.backward();
      sgd.step();
    }
  }
  if (scaler) run.skipped = scaler->skipped_steps();
  return run;
}

// The largest |a_i - b_i| over the steps, relative to the first f32 loss (the loss
// falls to ~1e-3 on this one batch, where a relative difference would mean nothing).
double largest_loss_gap(const TrainRun& run, const TrainRun& f32) {
  double gap = 0;
  for (size_t i = 0; i < f32.losses.size(); ++i) gap = std::max(gap, std::abs(run.losses[i] - f32.losses[i]));
  return gap / f32.losses.front();
}

// Every parameter of the net, concatenated.
std::vector<double> all_parameters(const nn::Module& net) {
  std::vector<double> values;
  for (const auto& [name, p] : net.named_parameters()) {
    const std::vector<double> v = p.to(Device::cpu()).to_vector();
    values.insert(values.end(), v.begin(), v.end());
  }
  return values;
}

}  // namespace

TEST_CASE("autocast: the scope is per thread, nests and restores, and takes only f16 or bf16") {
  CHECK(!autocast_dtype());
  {
    AutocastGuard outer(DType::bf16);
    CHECK(autocast_dtype() == DType::bf16);
    {
      AutocastGuard inner(DType::f16);
      CHECK(autocast_dtype() == DType::f16);
      AutocastGuard off(std::nullopt);
      CHECK(!autocast_dtype());
    }
    CHECK(autocast_dtype() == DType::bf16);
  }
  CHECK(!autocast_dtype());
  CHECK_THROWS_WITH_AS(AutocastGuard(DType::f32), doctest::Contains("bf16 or f16, got f32"), Error);
}

TEST_CASE("autocast: conv2d on the cpu computes on bf16-rounded operands and rounds its result") {
  Rng rng(1);
  const Tensor x = randn({2, 3, 8, 8}, rng);
  const Tensor w = randn({4, 3, 3, 3}, rng).set_requires_grad(true);
  const Tensor b = randn({4}, rng).set_requires_grad(true);
  const Conv2dParams params{{1, 1}, {1, 1}, {1, 1}, 1};
  Tensor y;
  {
    AutocastGuard autocast(DType::bf16);
    y = conv2d(x, w, b, params);
  }
  CHECK(y.dtype() == DType::f32);
  const Tensor expected = rounded(conv2d(rounded(x, DType::bf16), rounded(w.detach(), DType::bf16),
                                         rounded(b.detach(), DType::bf16), params),
                                  DType::bf16);
  CHECK(y.to_vector() == expected.to_vector());
  const Tensor plain = conv2d(x, w.detach(), b.detach(), params);
  CHECK(relative_l2(y.to_vector(), plain.to_vector()) > 1e-4);  // rounding happened...
  CHECK(relative_l2(y.to_vector(), plain.to_vector()) < 1e-2);  // ...at bf16's precision (2^-9 relative)

  sum(y).backward();  // gradients land in the f32 master weights
  REQUIRE(w.grad().defined());
  CHECK(w.grad().dtype() == DType::f32);
  CHECK(b.grad().dtype() == DType::f32);
  CHECK(w.dtype() == DType::f32);
}

TEST_CASE("autocast: linear and matmul round to the scope's dtype, f64 is never converted") {
  Rng rng(2);
  const Tensor x = randn({4, 6}, rng), w = randn({3, 6}, rng), b = randn({3}, rng);
  Tensor y, m;
  {
    AutocastGuard autocast(DType::f16);
    y = linear(x, w, b);
    m = matmul(x, transpose(w, 0, 1));
  }
  const DType f16 = DType::f16;
  CHECK(y.to_vector() == rounded(linear(rounded(x, f16), rounded(w, f16), rounded(b, f16)), f16).to_vector());
  CHECK(m.to_vector() == rounded(matmul(rounded(x, f16), rounded(transpose(w, 0, 1), f16)), f16).to_vector());

  const Tensor x64 = x.to(DType::f64), w64 = w.to(DType::f64);
  Tensor y64;
  {
    AutocastGuard autocast(DType::bf16);
    y64 = linear(x64, w64, Tensor());
  }
  CHECK(y64.dtype() == DType::f64);
  CHECK(y64.to_vector() == linear(x64, w64, Tensor()).to_vector());
}

TEST_CASE("autocast: cross_entropy takes 16-bit logits in f32") {
  Rng rng(3);
  const Tensor logits = randn({4, 5}, rng).to(DType::bf16);
  const Tensor labels = from_vector({0, 1, 2, 3}, {4}, {DType::i64});
  Tensor loss;
  {
    AutocastGuard autocast(DType::bf16);
    loss = cross_entropy(logits, labels);
  }
  CHECK(loss.dtype() == DType::f32);
  CHECK(loss.item() == cross_entropy(logits.to(DType::f32), labels).item());
}

TEST_CASE("autocast: bf16 training of a small conv net tracks f32 training, master weights stay f32") {
  const auto init = small_net()->state_dict();
  const TrainRun f32 = train(init, std::nullopt, nullptr);
  const TrainRun bf16 = train(init, DType::bf16, nullptr);
  CHECK(f32.losses.back() < 0.5 * f32.losses.front());  // it learns
  const double gap = largest_loss_gap(bf16, f32);
  const double weights = relative_l2(all_parameters(*bf16.net), all_parameters(*f32.net));
  MESSAGE("bf16 vs f32 over 30 steps: loss gap " << gap << " of the first loss, weights relative L2 " << weights);
  CHECK(gap > 1e-5);  // the bf16 run really rounded
  CHECK(gap < 0.01);       // measured 0.0017
  CHECK(weights < 0.06);   // measured 0.031: on one batch, tiny differences grow once the loss is ~1e-3
  for (const auto& [name, p] : bf16.net->named_parameters()) {
    CHECK_MESSAGE(p.dtype() == DType::f32, name);
    CHECK_MESSAGE(p.grad().dtype() == DType::f32, name);
  }
}

TEST_CASE("autocast: f16 training with dynamic loss scaling skips overflowing steps, then tracks f32") {
  const auto init = small_net()->state_dict();
  const TrainRun f32 = train(init, std::nullopt, nullptr);
  optim::LossScalerOptions options;
  options.initial_scale = 1024;  // fits: every step applies
  optim::LossScaler fitting(options);
  const TrainRun f16 = train(init, DType::f16, &fitting);
  CHECK(f16.skipped == 0);
  const double gap = largest_loss_gap(f16, f32);
  const double weights = relative_l2(all_parameters(*f16.net), all_parameters(*f32.net));
  MESSAGE("f16 (scale 1024) vs f32 over 30 steps: loss gap " << gap << " of the first loss, weights relative L2 "
                                                              << weights);
  CHECK(gap < 0.004);      // measured 0.0006: f16 keeps 11 mantissa bits, bf16 8
  CHECK(weights < 0.06);

  options.initial_scale = std::ldexp(1.0, 40);  // gradients * 2^40 overflow f16's 65504
  optim::LossScaler huge(options);
  const TrainRun backed_off = train(init, DType::f16, &huge);
  MESSAGE("f16 from scale 2^40: " << backed_off.skipped << " skipped steps, final scale " << huge.current_scale());
  CHECK(backed_off.skipped > 0);
  CHECK(huge.current_scale() == std::ldexp(1.0, 40 - static_cast<int>(backed_off.skipped)));
  CHECK(backed_off.losses.back() < 0.5 * backed_off.losses.front());  // once the scale fits, it learns
}

TEST_CASE("autocast: on a GPU conv2d and linear compute in bf16 and gradients reach the f32 weights" *
          doctest::test_suite("gpu")) {
  if (test::skip_without_gpu("autocast on the GPU")) return;
  const Device gpu = Device::cuda(0);
  Rng rng(4);
  const Tensor x = randn({2, 3, 8, 8}, rng), w = randn({4, 3, 3, 3}, rng);
  const Tensor a = randn({4, 6}, rng), lw = randn({3, 6}, rng);
  Tensor w_gpu = w.to(gpu).set_requires_grad(true);
  const Conv2dParams params{{1, 1}, {1, 1}, {1, 1}, 1};
  Tensor y_gpu, y_cpu, l_gpu, l_cpu;
  {
    AutocastGuard autocast(DType::bf16);
    y_gpu = conv2d(x.to(gpu), w_gpu, Tensor(), params);
    y_cpu = conv2d(x, w, Tensor(), params);
    l_gpu = linear(a.to(gpu), lw.to(gpu), Tensor());
    l_cpu = linear(a, lw, Tensor());
  }
  CHECK(y_gpu.dtype() == DType::bf16);
  CHECK(l_gpu.dtype() == DType::bf16);
  CHECK(relative_l2(y_gpu.to(Device::cpu()).to(DType::f32).to_vector(), y_cpu.to_vector()) < 2e-2);
  CHECK(relative_l2(l_gpu.to(Device::cpu()).to(DType::f32).to_vector(), l_cpu.to_vector()) < 2e-2);
  sum(y_gpu.to(DType::f32)).backward();
  REQUIRE(w_gpu.grad().defined());
  CHECK(w_gpu.grad().dtype() == DType::f32);
  CHECK(w_gpu.dtype() == DType::f32);
}

TEST_CASE("autocast: bf16 training on a GPU tracks the cpu's bf16 emulation" * doctest::test_suite("gpu")) {
  if (test::skip_without_gpu("autocast training on the GPU")) return;
  const auto init = small_net()->state_dict();
  const TrainRun cpu = train(init, DType::bf16, nullptr, Device::cpu(), 10);
  const TrainRun gpu = train(init, DType::bf16, nullptr, Device::cuda(0), 10);
  const double gap = largest_loss_gap(gpu, cpu);
  MESSAGE("bf16 GPU vs bf16 cpu emulation over 10 steps: loss gap " << gap << " of the first loss");
  CHECK(gap < 0.02);
  for (const auto& [name, p] : gpu.net->named_parameters()) CHECK_MESSAGE(p.dtype() == DType::f32, name);
}

TEST_CASE("tf32: f32 GEMMs and convolutions on a GPU use TF32 only when the context allows it" *
          doctest::test_suite("gpu")) {
  if (test::skip_without_gpu("TF32 math mode")) return;
  const Device gpu = Device::cuda(0);
  Rng rng(5);
  const Tensor a = randn({256, 512}, rng), b = randn({512, 256}, rng);
  const Tensor x = randn({4, 64, 16, 16}, rng), w = randn({64, 64, 3, 3}, rng);
  const Conv2dParams params{{1, 1}, {1, 1}, {1, 1}, 1};
  const std::vector<double> mm = matmul(a, b).to_vector(), conv = conv2d(x, w, Tensor(), params).to_vector();
  auto on_gpu = [&](bool tf32) {
    set_tf32(gpu, tf32);
    const std::vector<double> m = matmul(a.to(gpu), b.to(gpu)).to(Device::cpu()).to_vector();
    const std::vector<double> c = conv2d(x.to(gpu), w.to(gpu), Tensor(), params).to(Device::cpu()).to_vector();
    return std::make_pair(relative_l2(m, mm), relative_l2(c, conv));
  };
  const auto [mm_exact, conv_exact] = on_gpu(false);
  const auto [mm_tf32, conv_tf32] = on_gpu(true);
  set_tf32(gpu, false);
  MESSAGE("relative L2 vs the cpu: f32 matmul " << mm_exact << ", conv " << conv_exact << "; TF32 matmul " << mm_tf32
                                               << ", conv " << conv_tf32);
  CHECK(mm_exact < 1e-5);
  CHECK(conv_exact < 1e-5);
  CHECK(mm_tf32 > 1e-5);    // TF32 keeps 10 mantissa bits of each input: ~1e-4 relative
  CHECK(mm_tf32 < 5e-3);
  CHECK(conv_tf32 < 5e-3);
}
