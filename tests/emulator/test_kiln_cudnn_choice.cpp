// kiln's cuDNN algorithm choice (engine/cuda/cudnn_conv.cpp) on the emulated cuDNN,
// driven through the emulator's knobs: falling back past an algorithm that fails at
// execution or whose workspace cannot be allocated, setting the math type of the
// chosen result, Context::set_deterministic, and an empty batch, which cuDNN refuses
// and kiln must not hand it. KILN_CUDA=EMULATE builds only (tests/emulator/); the
// library on its own is tested in test_emulated_cudnn.cpp.
#include <cuda_runtime.h>
#include <cudnn.h>
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/core/rng.h"
#include "engine/cuda/context.h"
#include "engine/ops/conv.h"
#include "engine/tensor/factory.h"
#include "test_util.h"

namespace {

// Sets an environment variable for one scope (the emulator reads its knobs at every call).
struct ScopedEnv {
  std::string name;
  ScopedEnv(const char* n, const std::string& value) : name(n) { setenv(n, value.c_str(), 1); }
  ~ScopedEnv() { unsetenv(name.c_str()); }
};

// Multiples of 1/16 in [-2, 2): exact in every format (as in test_emulated_cudnn.cpp).
std::vector<double> grid(size_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<double> v(count);
  for (double& x : v) x = static_cast<double>(static_cast<int>(rng() % 64) - 32) / 16.0;
  return v;
}

}  // namespace

namespace {

// KILN_EMULATE_CUDNN_LOG pointed at a fresh file for one scope; lines() reads it back.
struct CallLog {
  std::string path;
  std::unique_ptr<ScopedEnv> env;
  CallLog() {
    char name[] = "/tmp/kiln_cudnn_calls_XXXXXX";
    const int fd = mkstemp(name);
    REQUIRE(fd >= 0);
    close(fd);
    path = name;
    env = std::make_unique<ScopedEnv>("KILN_EMULATE_CUDNN_LOG", path);
  }
  ~CallLog() { std::remove(path.c_str()); }
  // The logged calls of one entry point ("cudnnConvolutionForward"), in order.
  std::vector<std::string> lines(const std::string& call) const {
    std::ifstream in(path);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);)
      if (line.rfind(call + " ", 0) == 0) out.push_back(line);
    return out;
  }
};

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

kiln::Tensor grid_tensor(const kiln::Shape& shape, uint32_t seed, kiln::DType dtype = kiln::DType::f32,
                         kiln::Layout layout = kiln::Layout::nchw) {
  return kiln::from_vector(grid(static_cast<size_t>(shape.numel()), seed), shape)
      .to(dtype)
      .to(kiln::Device::cuda(0))
      .to(layout);
}

std::vector<double> host_values(const kiln::Tensor& t) {
  return t.to(kiln::Device::cpu()).to(kiln::DType::f64).to(kiln::Layout::nchw).to_vector();
}

// The three directions of one convolution on the emulated GPU and on the CPU.
struct ConvRun {
  std::vector<double> y, grad_x, grad_w;
};
ConvRun run_conv(const kiln::Shape& x_shape, const kiln::Shape& w_shape, const kiln::Conv2dParams& params,
                 kiln::DType dtype, const kiln::Device& device) {
  using namespace kiln;
  const Conv2dGeometry g = conv2d_geometry("test", x_shape, w_shape, params);
  auto make = [&](const Shape& shape, uint32_t seed) {
    return from_vector(grid(static_cast<size_t>(shape.numel()), seed), shape).to(dtype).to(device);
  };
  const Tensor x = make(x_shape, 11), w = make(w_shape, 12), dy = make(Shape{g.N, g.K, g.Ho, g.Wo}, 13);
  ConvRun r;
  r.y = host_values(conv2d(x, w, Tensor(), params));
  r.grad_x = host_values(conv2d_backward_input(dy, w, x_shape, params));
  r.grad_w = host_values(conv2d_backward_weight(dy, x, w_shape, params));
  return r;
}

void check_against_cpu(const ConvRun& gpu, const ConvRun& cpu, double tolerance) {
  CHECK(kiln::test::relative_l2(gpu.y, cpu.y) < tolerance);
  CHECK(kiln::test::relative_l2(gpu.grad_x, cpu.grad_x) < tolerance);
  CHECK(kiln::test::relative_l2(gpu.grad_w, cpu.grad_w) < tolerance);
}

}  // namespace

TEST_CASE("kiln on the emulated GPU: an algorithm that answers NOT_SUPPORTED when run is passed over" *
          doctest::test_suite("gpu")) {
  using namespace kiln;
  if (test::skip_without_gpu("cuDNN algorithm fallback")) return;
  // The heuristics rank algorithm 1 first in every direction; the emulator now refuses it.
  ScopedEnv reject("KILN_EMULATE_CUDNN_REJECT", "fwd:1;bwd_data:1;bwd_filter:1");
  CallLog log;
  const Shape x_shape{3, 5, 11, 9}, w_shape{7, 5, 3, 3};  // a shape no other test uses: fresh choices
  Conv2dParams params;
  params.padding = {1, 1};
  const ConvRun gpu = run_conv(x_shape, w_shape, params, DType::f32, Device::cuda(0));
  check_against_cpu(gpu, run_conv(x_shape, w_shape, params, DType::f32, Device::cpu()), 1e-6);
  for (const char* call :
       {"cudnnConvolutionForward", "cudnnConvolutionBackwardData", "cudnnConvolutionBackwardFilter"}) {
    CAPTURE(call);
    const std::vector<std::string> lines = log.lines(call);
    REQUIRE(lines.size() == 2);
    CHECK(contains(lines[0], "algo=1 "));
    CHECK(contains(lines[0], "status=CUDNN_STATUS_NOT_SUPPORTED"));
    CHECK(contains(lines[1], "algo=0 "));
    CHECK(contains(lines[1], "status=CUDNN_STATUS_SUCCESS"));
  }
  // The working choice is cached: a second forward goes straight to algorithm 0.
  run_conv(x_shape, w_shape, params, DType::f32, Device::cuda(0));
  const std::vector<std::string> again = log.lines("cudnnConvolutionForward");
  REQUIRE(again.size() == 3);
  CHECK(contains(again[2], "algo=0 "));
}

TEST_CASE("kiln on the emulated GPU: a workspace the allocator cannot provide moves on to the next algorithm" *
          doctest::test_suite("gpu")) {
  using namespace kiln;
  if (test::skip_without_gpu("cuDNN workspace fallback")) return;
  // Algorithm 1 now needs a pebibyte of workspace: cudaMalloc fails, the caching
  // allocator empties its cache, retries and throws; kiln must try the next one.
  ScopedEnv huge("KILN_EMULATE_CUDNN_WORKSPACE", "fwd:1=1P;bwd_filter:1=1P");
  CallLog log;
  const Shape x_shape{2, 3, 10, 13}, w_shape{4, 3, 3, 3};
  Conv2dParams params;
  params.padding = {1, 1};
  params.stride = {2, 1};
  const ConvRun gpu = run_conv(x_shape, w_shape, params, DType::f32, Device::cuda(0));
  check_against_cpu(gpu, run_conv(x_shape, w_shape, params, DType::f32, Device::cpu()), 1e-6);
  for (const char* call : {"cudnnConvolutionForward", "cudnnConvolutionBackwardFilter"}) {
    CAPTURE(call);
    const std::vector<std::string> lines = log.lines(call);
    REQUIRE(lines.size() == 1);  // algorithm 1 never ran: its workspace was never there
    CHECK(contains(lines[0], "algo=0 "));
    CHECK(contains(lines[0], "status=CUDNN_STATUS_SUCCESS"));
  }
}

TEST_CASE("kiln on the emulated GPU: the fallback runs with the math type its heuristic result was ranked for" *
          doctest::test_suite("gpu")) {
  using namespace kiln;
  if (test::skip_without_gpu("cuDNN math type of the fallback")) return;
  // f16 asks for CUDNN_TENSOR_OP_MATH. The tensor-core algorithms (forward 1 and 7)
  // fail when run, so kiln falls back to one ranked for CUDNN_DEFAULT_MATH; under
  // STRICT_MATH the emulator refuses to run it with the descriptor still at TENSOR_OP.
  ScopedEnv reject("KILN_EMULATE_CUDNN_REJECT", "fwd:1,7");
  ScopedEnv strict("KILN_EMULATE_CUDNN_STRICT_MATH", "1");
  CallLog log;
  const Shape x_shape{2, 6, 9, 7}, w_shape{5, 6, 3, 3};
  Conv2dParams params;
  params.padding = {1, 1};
  const ConvRun gpu = run_conv(x_shape, w_shape, params, DType::f16, Device::cuda(0));
  check_against_cpu(gpu, run_conv(x_shape, w_shape, params, DType::f32, Device::cpu()), 2e-3);
  const std::vector<std::string> forward = log.lines("cudnnConvolutionForward");
  REQUIRE_FALSE(forward.empty());
  CHECK(contains(forward.front(), "algo=1 (IMPLICIT_PRECOMP_GEMM) math=CUDNN_TENSOR_OP_MATH"));
  CHECK(contains(forward.back(), "algo=0 (IMPLICIT_GEMM) math=CUDNN_DEFAULT_MATH"));
  CHECK(contains(forward.back(), "status=CUDNN_STATUS_SUCCESS"));
  // The backward directions found a tensor-core algorithm and ran it with TENSOR_OP_MATH.
  for (const char* call : {"cudnnConvolutionBackwardData", "cudnnConvolutionBackwardFilter"}) {
    const std::vector<std::string> lines = log.lines(call);
    REQUIRE(lines.size() == 1);
    CHECK(contains(lines[0], "math=CUDNN_TENSOR_OP_MATH"));
    CHECK(contains(lines[0], "status=CUDNN_STATUS_SUCCESS"));
  }
}

TEST_CASE("kiln on the emulated GPU: Context::set_deterministic skips non-deterministic algorithms" *
          doctest::test_suite("gpu")) {
  using namespace kiln;
  if (test::skip_without_gpu("deterministic cuDNN algorithms")) return;
  cuda::Context& ctx = cuda::Context::get(0);
  CHECK_FALSE(ctx.deterministic());  // off by default
  struct Restore {
    cuda::Context& ctx;
    ~Restore() { ctx.set_deterministic(false); }
  } restore{ctx};
  // The heuristics now rank the atomics-based algorithms first, as real ones often do.
  ScopedEnv rank("KILN_EMULATE_CUDNN_RANK", "bwd_filter:0,3;bwd_data:0");
  CallLog log;
  const Shape x_shape{16, 4, 9, 10}, w_shape{6, 4, 3, 3};
  Conv2dParams params;
  params.padding = {1, 1};
  const Tensor x = grid_tensor(x_shape, 21), w = grid_tensor(w_shape, 22);
  // Values that are not exact sums in f32, so the order of the additions shows.
  Rng rng(5);
  const Tensor dy = randn({16, 6, 9, 10}, rng).to(Device::cuda(0));

  const std::vector<double> free_run = host_values(conv2d_backward_weight(dy, x, w_shape, params));
  conv2d_backward_input(dy, w, x_shape, params);
  CHECK(contains(log.lines("cudnnConvolutionBackwardFilter").back(), "algo=0 (ALGO_0)"));
  CHECK(contains(log.lines("cudnnConvolutionBackwardData").back(), "algo=0 (ALGO_0)"));

  ctx.set_deterministic(true);  // the same shapes: the cache must not hand back ALGO_0
  const std::vector<double> first = host_values(conv2d_backward_weight(dy, x, w_shape, params));
  const std::vector<double> second = host_values(conv2d_backward_weight(dy, x, w_shape, params));
  conv2d_backward_input(dy, w, x_shape, params);
  CHECK(first == second);  // bit for bit
  CHECK(test::relative_l2(first, free_run) < 1e-6);
  const std::vector<std::string> filter = log.lines("cudnnConvolutionBackwardFilter");
  const std::vector<std::string> data = log.lines("cudnnConvolutionBackwardData");
  CHECK(contains(filter.back(), "algo=1 (ALGO_1)"));
  CHECK(contains(filter[filter.size() - 2], "algo=1 (ALGO_1)"));
  CHECK(contains(data.back(), "algo=1 (ALGO_1)"));
  for (const std::string& line : filter) CHECK_FALSE(contains(line, "algo=3"));
}

TEST_CASE("kiln on the emulated GPU: an empty batch convolves to an empty output and a zero weight gradient" *
          doctest::test_suite("gpu")) {
  using namespace kiln;
  if (test::skip_without_gpu("conv2d with an empty batch")) return;
  for (Layout layout : {Layout::nchw, Layout::nhwc})
    for (int groups : {1, 3}) {  // groups 3 = C: the depthwise path
      CAPTURE(layout_name(layout));
      CAPTURE(groups);
      Conv2dParams params;
      params.padding = {1, 1};
      params.groups = groups;
      const Shape x_shape{0, 3, 8, 8}, w_shape{6, 3 / groups, 3, 3};
      const TensorOptions on_gpu{DType::f32, Device::cuda(0), layout};
      const Tensor x = zeros(x_shape, on_gpu), w = ones(w_shape, on_gpu), dy = zeros({0, 6, 8, 8}, on_gpu);
      CHECK(conv2d(x, w, Tensor(), params).shape() == Shape{0, 6, 8, 8});
      CHECK(conv2d_backward_input(dy, w, x_shape, params).shape() == x_shape);
      const Tensor grad_w = conv2d_backward_weight(dy, x, w_shape, params);
      CHECK(host_values(grad_w) == std::vector<double>(static_cast<size_t>(w_shape.numel()), 0.0));
      // The CPU agrees.
      const TensorOptions on_cpu{DType::f32, Device::cpu(), layout};
      CHECK(conv2d_backward_weight(zeros({0, 6, 8, 8}, on_cpu), zeros(x_shape, on_cpu), w_shape, params)
                .to(Layout::nchw)
                .to_vector() == std::vector<double>(static_cast<size_t>(w_shape.numel()), 0.0));
    }
}
