// Which max pooling is fastest on the CPU: kiln's reference loop, kiln's fast path
// (engine/ops/cpu_fast/pool_fast.cpp) or oneDNN's pooling primitives, at the models'
// shapes, forward + backward (a training step's pair), f32, OpenMP threads as set by
// OMP_NUM_THREADS. Built and run by benchmarks/cpu_pool_paths.sh against a kiln build.
//
// oneDNN is timed two ways: on kiln's plain nchw arrays (what kiln would hand it), and
// on its blocked nChw16c layout without the reorders in and out (its best case, which
// kiln only gets if the tensors stay blocked between layers). Its max-pool backward
// reads its own workspace (u8 window offsets), not kiln's i64 argmax.
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <vector>

#include "engine/core/cpu_threads.h"
#include "engine/ops/pool.h"
#include "engine/tensor/factory.h"

using namespace kiln;

namespace {

// Median milliseconds of `repeats` calls after two warm-up calls.
double median_ms(const std::function<void()>& body, int repeats = 15) {
  body();
  body();
  std::vector<double> ms;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    body();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

double kiln_step(CpuPoolPath path, const Tensor& x, const Tensor& grad_output, const Pool2dParams& p) {
  set_cpu_pool_path(path);
  return median_ms([&] {
    Tensor leaf = x.detach();
    leaf.set_requires_grad(true);
    max_pool2d(leaf, p).backward(grad_output);  // forward (with the argmax) and backward
  });
}

double onednn_step(dnnl::memory::format_tag tag, int64_t N, int64_t C, int64_t H, int64_t W, const Pool2dParams& p,
                   int64_t Ho, int64_t Wo) {
  using dnnl::memory;
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const memory::desc src({N, C, H, W}, memory::data_type::f32, tag), dst({N, C, Ho, Wo}, memory::data_type::f32, tag);
  const memory::dims kernel{p.kernel[0], p.kernel[1]}, strides{p.stride[0], p.stride[1]},
      pad_l{p.padding[0], p.padding[1]},
      pad_r{(Ho - 1) * p.stride[0] + p.kernel[0] - H - p.padding[0],
            (Wo - 1) * p.stride[1] + p.kernel[1] - W - p.padding[1]};
  const dnnl::pooling_forward::primitive_desc fwd(
      dnnl::pooling_forward::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::pooling_max, src, dst, strides,
                                  kernel, pad_l, pad_r),
      engine);
  const dnnl::pooling_backward::primitive_desc bwd(
      dnnl::pooling_backward::desc(dnnl::algorithm::pooling_max, src, dst, strides, kernel, pad_l, pad_r), engine, fwd);
  memory x(src, engine), y(dst, engine), ws(fwd.workspace_desc(), engine), dy(dst, engine), dx(src, engine);
  std::fill_n(static_cast<float*>(x.get_data_handle()), N * C * H * W, 1.0f);
  std::fill_n(static_cast<float*>(dy.get_data_handle()), N * C * Ho * Wo, 1.0f);
  dnnl::pooling_forward forward(fwd);
  dnnl::pooling_backward backward(bwd);
  return median_ms([&] {
    forward.execute(stream, {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}, {DNNL_ARG_WORKSPACE, ws}});
    backward.execute(stream, {{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_DIFF_SRC, dx}, {DNNL_ARG_WORKSPACE, ws}});
    stream.wait();
  });
}

}  // namespace

int main() {
  struct Case {
    const char* name;
    int64_t N, C, H, W;
    Pool2dParams params;
  };
  Pool2dParams two_by_two, stem;
  stem.kernel = {3, 3};
  stem.padding = {1, 1};
  const std::vector<Case> cases{{"cnn5 64px, first pool", 64, 32, 64, 64, two_by_two},
                                {"cnn5 96px, first pool", 64, 32, 96, 96, two_by_two},
                                {"ResNet-18 96px stem pool", 64, 64, 48, 48, stem}};
  std::printf("max pool forward + backward, f32, median ms (OMP threads %d)\n", cpu_threads());
  std::printf("%-28s %12s %12s %14s %18s\n", "case", "kiln ref", "kiln fast", "oneDNN nchw", "oneDNN nChw16c*");
  for (const Case& c : cases) {
    Rng rng(1);
    const Tensor x = uniform({c.N, c.C, c.H, c.W}, -1, 1, rng);
    const Pool2dParams& p = c.params;
    const int64_t Ho = pool_output_size(c.H, p.kernel[0], p.stride[0], p.padding[0], false, "bench"),
                  Wo = pool_output_size(c.W, p.kernel[1], p.stride[1], p.padding[1], false, "bench");
    const Tensor grad_output = uniform({c.N, c.C, Ho, Wo}, -1, 1, rng);
    const double reference = kiln_step(CpuPoolPath::reference, x, grad_output, c.params);
    const double fast = kiln_step(CpuPoolPath::fast, x, grad_output, c.params);
    const double plain = onednn_step(dnnl::memory::format_tag::nchw, c.N, c.C, c.H, c.W, c.params, Ho, Wo);
    const double blocked = onednn_step(dnnl::memory::format_tag::nChw16c, c.N, c.C, c.H, c.W, c.params, Ho, Wo);
    std::printf("%-28s %12.2f %12.2f %14.2f %18.2f\n", c.name, reference, fast, plain, blocked);
  }
  std::printf("* without the reorders from and to kiln's nchw arrays\n");
}
