// Depthwise convolution on the GPU: kiln's kernels (kernels/depthwise_conv.cu),
// cuDNN's grouped convolution, and the automatic race between them, each forced in
// turn, against the CPU reference, forward and both backwards, in f32, f16 and bf16,
// nchw and nhwc. Skips with a message where there is no GPU.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>

#include "engine/ops/conv.h"
#include "engine/ops/depthwise_race.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "engine/tensor/factory.h"
#include "test_util.h"

using namespace kiln;

namespace {

struct DepthwiseCase {
  const char* name;
  int64_t C, multiplier, kernel;
  int stride, padding, dilation;
};

struct Outputs {
  std::vector<double> y, grad_x, grad_w;
};

// conv2d and its gradients on `device` in `dtype` and `layout`, from the f32 CPU inputs.
Outputs run(const Tensor& x32, const Tensor& w32, const Tensor& weights32, const Conv2dParams& params,
            const Device& device, DType dtype, Layout layout) {
  const Tensor x = x32.to(dtype).to(device).to(layout).detach().set_requires_grad(true);
  const Tensor w = w32.to(dtype).to(device).detach().set_requires_grad(true);
  const Tensor y = conv2d(x, w, Tensor(), params);
  const Tensor weights = weights32.to(dtype).to(device).to(layout);
  sum(mul(y, weights).to(DType::f32)).backward();
  auto host = [](const Tensor& t) { return t.to(Device::cpu()).to(DType::f64).to_vector(); };
  return {host(y), host(x.grad()), host(w.grad())};
}

}  // namespace

TEST_CASE("depthwise conv on CUDA: kiln's kernel, cuDNN and the race all match the CPU" *
          doctest::test_suite("gpu")) {
  if (test::skip_without_gpu("depthwise conv CUDA parity (custom kernel, cuDNN, auto)")) return;
  struct Restore {
    DepthwiseConvPath saved = depthwise_conv_path();
    ~Restore() { set_depthwise_conv_path(saved); }
  } restore;
  const std::vector<DepthwiseCase> cases{
      {"3x3 same", 8, 1, 3, 1, 1, 1},
      {"3x3 stride 2", 12, 1, 3, 2, 1, 1},
      {"5x5 dilation 2 pad 2", 6, 1, 5, 1, 2, 2},
      {"multiplier 2, stride 2, no pad", 5, 2, 3, 2, 0, 1},
      {"many channels (a partial 32-channel tile)", 40, 1, 3, 1, 1, 1},
  };
  for (const DepthwiseCase& c : cases) {
    CAPTURE(c.name);
    Conv2dParams params;
    params.stride = {c.stride, c.stride};
    params.padding = {c.padding, c.padding};
    params.dilation = {c.dilation, c.dilation};
    params.groups = static_cast<int>(c.C);
    Rng rng(17);
    const Tensor x = uniform({3, c.C, 13, 11}, -1, 1, rng);
    const Tensor w = uniform({c.C * c.multiplier, 1, c.kernel, c.kernel}, -1, 1, rng);
    const Shape y_shape = conv2d(x, w, Tensor(), params).shape();
    const Tensor weights = uniform(y_shape, 0.5, 1.5, rng);
    for (DType dtype : {DType::f32, DType::f16, DType::bf16}) {
      CAPTURE(dtype_name(dtype));
      // The reference: the CPU in f32 from the inputs rounded to the dtype under test.
      const Tensor x_r = x.to(dtype).to(DType::f32), w_r = w.to(dtype).to(DType::f32);
      const Tensor weights_r = weights.to(dtype).to(DType::f32);
      const Outputs want = run(x_r, w_r, weights_r, params, Device::cpu(), DType::f32, Layout::nchw);
      // f32: FMA-order differences only. 16-bit: outputs and gradients are stored in
      // 16 bits (bf16 keeps 8 mantissa bits: a relative step of 2^-8).
      const double tolerance = dtype == DType::f32 ? 1e-5 : dtype == DType::f16 ? 5e-3 : 2e-2;
      for (DepthwiseConvPath path : {DepthwiseConvPath::custom, DepthwiseConvPath::library,
                                     DepthwiseConvPath::automatic}) {
        set_depthwise_conv_path(path);
        for (Layout layout : {Layout::nchw, Layout::nhwc}) {
          CAPTURE(depthwise_conv_path_name(path));
          CAPTURE(layout_name(layout));
          const Outputs got = run(x_r, w_r, weights_r, params, Device::cuda(0), dtype, layout);
          CHECK(test::relative_l2(got.y, want.y) < tolerance);
          CHECK(test::relative_l2(got.grad_x, want.grad_x) < tolerance);
          CHECK(test::relative_l2(got.grad_w, want.grad_w) < tolerance);
        }
      }
    }
  }
  // The automatic runs raced both implementations and kept one per direction and shape.
  const std::vector<std::string> choices = depthwise_race_choices();
  CHECK(!choices.empty());
  for (const std::string& line : choices) MESSAGE(line);
}

namespace {

// Sets an environment variable for one scope (the emulator reads its knobs at every call).
struct ScopedEnv {
  std::string name;
  ScopedEnv(const char* n, const std::string& value) : name(n) { setenv(n, value.c_str(), 1); }
  ~ScopedEnv() { unsetenv(name.c_str()); }
};

[[maybe_unused]] Conv2dParams same_3x3(int64_t C) {  // (unused in a CPU-only build)
  Conv2dParams params;
  params.padding = {1, 1};
  params.groups = static_cast<int>(C);
  return params;
}

}  // namespace

// cuDNN may refuse a problem its heuristics offered (CUDNN_STATUS_NOT_SUPPORTED at
// execution). The race must then choose kiln's kernel instead of failing the
// convolution. The emulated cuDNN refuses on request (KILN_EMULATE_CUDNN_REJECT,
// every algorithm of every direction); where the library does not refuse (a real
// GPU ignores the knob), there is nothing to test and the case says so. The logic
// itself is tested with injected paths on any machine: tests/ops/test_depthwise_race.cpp.
TEST_CASE("depthwise conv on CUDA: when cuDNN refuses a shape, the automatic race picks kiln's kernel" *
          doctest::test_suite("gpu")) {
  if (test::skip_without_gpu("depthwise race with a refusing cuDNN")) return;
#if KILN_WITH_CUDA  // (skip_without_gpu returned above otherwise; this keeps the CPU build linking)
  struct Restore {
    DepthwiseConvPath saved = depthwise_conv_path();
    ~Restore() { set_depthwise_conv_path(saved); }
  } restore;
  const ScopedEnv reject("KILN_EMULATE_CUDNN_REJECT",
                         "fwd:0,1,2,3,4,5,6,7;bwd_data:0,1,2,3,4,5;bwd_filter:0,1,2,3,4,5,6");
  // A shape no other test races, so its decisions are made here.
  const int64_t C = 7;
  const Conv2dParams params = same_3x3(C);
  Rng rng(23);
  const Tensor x = uniform({2, C, 9, 5}, -1, 1, rng), w = uniform({C, 1, 3, 3}, -1, 1, rng);
  const Tensor weights = uniform({2, C, 9, 5}, 0.5, 1.5, rng);
  const Device gpu = Device::cuda(0);
  {
    const DepthwiseConvPathGuard library(DepthwiseConvPath::library);
    bool refused = false;
    try {
      conv2d(x.to(gpu), w.to(gpu), Tensor(), params);
    } catch (const Error& e) {
      refused = true;
      MESSAGE("cuDNN refuses, as asked: " << std::string(e.what()));
    }
    if (!refused) {
      MESSAGE("SKIPPED: cuDNN runs this shape here (KILN_EMULATE_CUDNN_REJECT is a knob of the emulated GPU)");
      return;
    }
  }
  set_depthwise_conv_path(DepthwiseConvPath::automatic);
  const Outputs want = run(x, w, weights, params, Device::cpu(), DType::f32, Layout::nchw);
  const Outputs got = run(x, w, weights, params, gpu, DType::f32, Layout::nchw);  // must not throw
  CHECK(test::relative_l2(got.y, want.y) < 1e-5);
  CHECK(test::relative_l2(got.grad_x, want.grad_x) < 1e-5);
  CHECK(test::relative_l2(got.grad_w, want.grad_w) < 1e-5);
  const Tensor x_gpu = x.to(gpu);
  for (const char* direction : {"conv2d forward", "conv2d backward input", "conv2d backward weight"}) {
    CAPTURE(direction);
    const auto choice =
        depthwise_race_choice(cuda::depthwise_race_key(direction, x_gpu, x.shape(), w.shape(), params));
    REQUIRE(choice.has_value());
    CHECK(choice->custom);
    CHECK(choice->library_error.find("CUDNN_STATUS_NOT_SUPPORTED") != std::string::npos);
  }
  // The decision is cached: a second pass runs kiln's kernel straight away.
  const Outputs again = run(x, w, weights, params, gpu, DType::f32, Layout::nchw);
  CHECK(again.grad_w == got.grad_w);
#endif
}

// The backward weight's pass 1 grid (kernels/depthwise_conv.cu) is sized from the
// work: chunks of at least 16 pixels per summing thread (4096 pixels per 256-thread
// block in nchw, 128 per 8-lane block in nhwc), at most ~8192 blocks, the chunking a
// function of the shapes only (so the sums are deterministic). Then the sums
// themselves against the CPU, for one chunk, several and many, both layouts.
TEST_CASE("depthwise conv on CUDA: the backward weight grid follows the work and its sums match the CPU" *
          doctest::test_suite("gpu")) {
  if (test::skip_without_gpu("depthwise backward weight grid")) return;
#if KILN_WITH_CUDA  // (skip_without_gpu returned above otherwise; this keeps the CPU build linking)
  struct Plan {
    Shape x;
    int64_t multiplier;
    bool channels_last;
  };
  auto grid_of = [](const Plan& p) {
    const int64_t C = p.x[1];
    return cuda::depthwise_backward_weight_grid(p.x, {C * p.multiplier, 1, 3, 3}, same_3x3(C), p.channels_last);
  };
  auto check_plan = [](const cuda::DepthwiseWeightGrid& g) {
    CHECK(g.chunks >= 1);
    CHECK(g.chunks <= 65535);
    CHECK(g.chunks * g.pixels_per_chunk >= g.pixels);         // every pixel in a chunk
    CHECK((g.chunks - 1) * g.pixels_per_chunk < g.pixels);    // no empty chunk
    CHECK(g.blocks == g.chunks * g.blocks_per_chunk);
    CHECK(g.blocks <= std::max<int64_t>(8192, g.blocks_per_chunk));
    CHECK(g.block_threads == 256);
  };
  // A small input: one chunk, so the grid is the weight taps (nchw) or tiles x taps (nhwc).
  const cuda::DepthwiseWeightGrid tiny = grid_of({{2, 4, 6, 6}, 1, false});
  check_plan(tiny);
  CHECK(tiny.pixels == 72);
  CHECK(tiny.chunks == 1);
  CHECK(tiny.blocks == 4 * 9);
  const cuda::DepthwiseWeightGrid tiny_nhwc = grid_of({{2, 4, 6, 6}, 1, true});
  CHECK(tiny_nhwc.chunks == 1);
  CHECK(tiny_nhwc.blocks == 9);
  // The grid grows with N*Ho*Wo, by 4096-pixel (nchw) or 128-pixel (nhwc) chunks ...
  int64_t previous = 0;
  for (int64_t N : {1, 2, 4, 8, 16, 32}) {
    CAPTURE(N);
    const cuda::DepthwiseWeightGrid g = grid_of({{N, 8, 64, 64}, 1, false});
    check_plan(g);
    CHECK(g.chunks == (N * 64 * 64 + 4095) / 4096);
    CHECK(g.chunks > previous);
    previous = g.chunks;
    const cuda::DepthwiseWeightGrid g_nhwc = grid_of({{N, 8, 64, 64}, 1, true});
    check_plan(g_nhwc);
    // Capped at 8192 / 9 taps = 910 chunks from N = 32 on, then evened out: 131072
    // pixels in chunks of 145 are 904 chunks.
    CHECK(g_nhwc.chunks == (N < 32 ? N * 64 * 64 / 128 : 904));
  }
  // ... up to the cap, after which the chunks grow instead: MobileNetV2's first
  // depthwise layer at batch 256 (32 channels, 112 x 112) ...
  const cuda::DepthwiseWeightGrid big = grid_of({{256, 32, 112, 112}, 1, false});
  check_plan(big);
  CHECK(big.chunks == 8192 / (32 * 9));
  CHECK(big.pixels_per_chunk >= 256 * 112 * 112 / big.chunks);
  const cuda::DepthwiseWeightGrid big_nhwc = grid_of({{256, 32, 112, 112}, 1, true});
  check_plan(big_nhwc);
  CHECK(big_nhwc.blocks > 4000);
  // ... and with more taps than the cap, one chunk: the taps alone fill the GPU.
  const cuda::DepthwiseWeightGrid wide = grid_of({{1, 1280, 7, 7}, 1, false});
  check_plan(wide);
  CHECK(wide.chunks == 1);

  // The sums: kiln's kernel forced, against the CPU's f64 reference.
  struct Restore {
    DepthwiseConvPath saved = depthwise_conv_path();
    ~Restore() { set_depthwise_conv_path(saved); }
  } restore;
  set_depthwise_conv_path(DepthwiseConvPath::custom);
  const Device gpu = Device::cuda(0);
  const std::vector<Plan> shapes{
      {{2, 4, 6, 6}, 1, false},    // one chunk
      {{2, 6, 48, 48}, 1, false},  // 4608 pixels: two chunks in nchw, 36 in nhwc
      {{3, 5, 40, 28}, 2, false},  // multiplier 2, 3360 pixels, a last chunk shorter than the rest in nhwc
      {{1, 40, 17, 13}, 1, false}, // 40 channels: a partial 32-channel tile in nhwc
  };
  for (const Plan& p : shapes) {
    const int64_t C = p.x[1], K = C * p.multiplier;
    const Conv2dParams params = same_3x3(C);
    CAPTURE(p.x);
    Rng rng(31);
    const Tensor x = uniform(p.x, -1, 1, rng, {DType::f64});
    const Shape y_shape{p.x[0], K, p.x[2], p.x[3]};
    const Tensor dy = uniform(y_shape, -1, 1, rng, {DType::f64});
    for (Layout layout : {Layout::nchw, Layout::nhwc}) {
      for (DType dtype : {DType::f32, DType::bf16}) {
        const std::string layout_text = layout_name(layout), dtype_text = dtype_name(dtype);
        CAPTURE(layout_text);  // (std::strings: CAPTURE prints a char* as a pointer)
        CAPTURE(dtype_text);
        const cuda::DepthwiseWeightGrid g = grid_of({p.x, p.multiplier, layout == Layout::nhwc});
        INFO("grid: " << g.chunks << " chunks of " << g.pixels_per_chunk << " pixels, " << g.blocks << " blocks");
        // The reference from the same rounded inputs; the partial sums are f32 either way.
        const Tensor x_r = x.to(dtype), dy_r = dy.to(dtype);
        const std::vector<double> want_r =
            conv2d_backward_weight(dy_r.to(DType::f64), x_r.to(DType::f64), {K, 1, 3, 3}, params).to_vector();
        const Tensor x_gpu = x_r.to(gpu).to(layout), dy_gpu = dy_r.to(gpu).to(layout);
        const Tensor got_t = conv2d_backward_weight(dy_gpu, x_gpu, {K, 1, 3, 3}, params);
        const std::vector<double> got = got_t.to(Device::cpu()).to(DType::f64).to_vector();
        // f32: sums of up to 4608 products in f32 (chunk partials, then their sum).
        // bf16: the result is stored in bf16 (relative step 2^-8).
        const double tolerance = dtype == DType::f32 ? 1e-5 : 8e-3;
        CHECK(test::relative_l2(got, want_r) < tolerance);
        double largest = 1;
        for (double v : want_r) largest = std::max(largest, std::abs(v));
        CHECK(test::max_abs_diff(got, want_r) <= tolerance * largest);
        // Deterministic: the same bits again.
        const std::vector<double> again =
            conv2d_backward_weight(dy_gpu, x_gpu, {K, 1, 3, 3}, params).to(Device::cpu()).to(DType::f64).to_vector();
        CHECK(again == got);
      }
    }
  }
#endif
}
