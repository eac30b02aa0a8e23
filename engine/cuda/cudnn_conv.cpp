// conv2d on the GPU through cuDNN's legacy convolution API (still shipped in cuDNN 9).
//
//   forward          y  = conv(x, w)              cudnnConvolutionForward
//   backward input   dx = conv_transpose(dy, w)   cudnnConvolutionBackwardData
//   backward weight  dw = corr(x, dy)             cudnnConvolutionBackwardFilter
//   (the bias is a separate per-channel add / sum: kernels/channel_bias.cu)
//
// Mode CUDNN_CROSS_CORRELATION (no kernel flip), as PyTorch and the CPU reference.
// Compute type f32 for f32, f16 and bf16 data. Math type: CUDNN_FMA_MATH for f32,
// which rules out TF32 (its 10-bit mantissa would break parity with the CPU at
// 1e-4), unless the context allows TF32 (Context::set_tf32, `--precision tf32`):
// then CUDNN_DEFAULT_MATH, which lets cuDNN use TF32 tensor cores; and
// CUDNN_TENSOR_OP_MATH for f16/bf16 (tensor cores, f32 accumulation).
// Layouts: x, w, y and their gradients share one layout; nhwc uses the NHWC tensor
// format and the KRSC filter format, which is what tensor cores run fastest.
//
// Algorithms: cuDNN ranks its algorithms for a problem with a heuristic
// (cudnnGet*Algorithm_v7, no benchmarking, so it is cheap and repeatable). The first
// time a (device, direction, shapes, dtype, layout, params, tf32, deterministic)
// appears we walk that ranking, those ranked for our math type first, and run the
// first candidate that works: one cuDNN calls supported, deterministic if the
// context asks for it (Context::set_deterministic), whose workspace the caching
// allocator can provide (ctx.workspace, one growing buffer; a failed allocation
// moves on to the next candidate), and that does not answer NOT_SUPPORTED when run
// (heuristics can be wrong about a problem). Before each call the descriptor's math
// type is set to the one the heuristic ranked that algorithm for, as PyTorch does:
// cuDNN picks the kernel from the algorithm and the math type together. The working
// choice is cached, so later calls run it directly, like
// torch.backends.cudnn.benchmark's cache.
//
// Depthwise convolutions (groups = C) also have kiln's own kernels
// (kernels/depthwise_conv.cu); which one runs is decided above this file, by conv2d's
// dispatch (engine/ops/conv.cpp, the race in engine/ops/depthwise_race.h). The
// functions here always call cuDNN.
#include <algorithm>
#include <cstdio>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/cuda/context.h"
#include "engine/cuda/cuda_check.h"
#include "engine/cuda/cudnn_util.h"
#include "engine/ops/conv.h"
#include "engine/tensor/factory.h"

namespace kiln::cuda {

namespace {

enum class Direction { forward, backward_data, backward_filter };
const char* direction_name(Direction d) {
  switch (d) {
    case Direction::forward: return "conv2d forward";
    case Direction::backward_data: return "conv2d backward input";
    case Direction::backward_filter: return "conv2d backward weight";
  }
  return "?";
}

cudnnMathType_t math_type_for(DType dtype, bool tf32) {
  if (is_half(dtype)) return CUDNN_TENSOR_OP_MATH;
  return dtype == DType::f32 && !tf32 ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH;
}

class ConvolutionDescriptor {
 public:
  ConvolutionDescriptor(const Conv2dParams& p, DType dtype, bool tf32) {
    // Accumulate in f32 for every 16-bit dtype ("pseudo-half" configuration).
    const cudnnDataType_t compute = dtype == DType::f64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
    CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&descriptor_));
    CUDNN_CHECK(cudnnSetConvolution2dDescriptor(descriptor_, p.padding[0], p.padding[1], p.stride[0], p.stride[1],
                                                p.dilation[0], p.dilation[1], CUDNN_CROSS_CORRELATION, compute));
    CUDNN_CHECK(cudnnSetConvolutionGroupCount(descriptor_, p.groups));
    CUDNN_CHECK(cudnnSetConvolutionMathType(descriptor_, math_type_for(dtype, tf32)));
  }
  ~ConvolutionDescriptor() {
    const cudnnStatus_t status = cudnnDestroyConvolutionDescriptor(descriptor_);
    if (status != CUDNN_STATUS_SUCCESS)
      std::fprintf(stderr, "kiln: cudnnDestroyConvolutionDescriptor failed: %s\n", cudnnGetErrorString(status));
  }
  ConvolutionDescriptor(const ConvolutionDescriptor&) = delete;
  ConvolutionDescriptor& operator=(const ConvolutionDescriptor&) = delete;
  cudnnConvolutionDescriptor_t get() const { return descriptor_; }

 private:
  cudnnConvolutionDescriptor_t descriptor_ = nullptr;
};

// Everything cuDNN needs to know about one convolution problem.
struct Problem {
  Problem(const Shape& x_shape, const Shape& w_shape, DType dtype, Layout layout, const Conv2dParams& params,
          bool tf32)
      : geometry(conv2d_geometry("conv2d (cuDNN)", x_shape, w_shape, params)),
        x(x_shape, dtype, layout, "conv2d"),
        y(Shape{geometry.N, geometry.K, geometry.Ho, geometry.Wo}, dtype, layout, "conv2d"),
        w(w_shape, dtype, layout, "conv2d"),
        conv(params, dtype, tf32),
        dtype(dtype),
        tf32(tf32) {
    // cuDNN computes the output size itself; both must agree or every index is off.
    int n = 0, k = 0, ho = 0, wo = 0;
    CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(conv.get(), x.get(), w.get(), &n, &k, &ho, &wo));
    KILN_CHECK(n == geometry.N && k == geometry.K && ho == geometry.Ho && wo == geometry.Wo,
               "conv2d: cuDNN computes the output (", n, ", ", k, ", ", ho, ", ", wo, ") but kiln computes (",
               geometry.N, ", ", geometry.K, ", ", geometry.Ho, ", ", geometry.Wo, ")");
  }
  Conv2dGeometry geometry;
  TensorDescriptor x, y;
  FilterDescriptor w;
  ConvolutionDescriptor conv;
  DType dtype;
  bool tf32;  // the context's setting when the problem was made
};

struct AlgoChoice {
  int algo = 0;  // a cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t value
  size_t workspace_bytes = 0;
  cudnnMathType_t math_type = CUDNN_DEFAULT_MATH;  // set on the descriptor before every call
};

// One heuristic result, whatever the direction.
struct Candidate {
  int algo;
  cudnnStatus_t status;
  cudnnDeterminism_t determinism;
  cudnnMathType_t math_type;
};

template <class Perf>
std::vector<Candidate> candidates_from(const std::vector<Perf>& ranked, int returned) {
  std::vector<Candidate> out;
  for (int i = 0; i < returned; ++i)
    out.push_back({static_cast<int>(ranked[i].algo), ranked[i].status, ranked[i].determinism, ranked[i].mathType});
  return out;
}

// NOT_SUPPORTED, or one of cuDNN 9's more specific NOT_SUPPORTED_* codes (3000-3999).
bool is_not_supported(cudnnStatus_t status) {
  return status == CUDNN_STATUS_NOT_SUPPORTED || (static_cast<int>(status) >= 3000 && static_cast<int>(status) < 4000);
}

// The math type a candidate runs with: the one the heuristic ranked it for, except
// that f32 without TF32 stays CUDNN_FMA_MATH whatever the ranking says (a DEFAULT or
// TENSOR_OP math type would let TF32 in and break parity with the CPU).
cudnnMathType_t math_type_to_run(cudnnMathType_t ranked_for, DType dtype, bool tf32) {
  return dtype == DType::f32 && !tf32 ? CUDNN_FMA_MATH : ranked_for;
}

std::mutex choice_mutex;
std::unordered_map<std::string, AlgoChoice>& choice_cache() {
  static std::unordered_map<std::string, AlgoChoice> cache;
  return cache;
}

// Runs one convolution with the algorithm cached for `key`, or, the first time,
// chooses one by running the heuristic's candidates in order (see the file comment).
// heuristics() -> std::vector<Candidate>; workspace_size(algo, size_t*) -> status;
// run(algo, workspace, bytes) -> status.
template <class Heuristics, class WorkspaceQuery, class Run>
void run_with_algorithm(Context& ctx, const Problem& p, const std::string& key, Heuristics&& heuristics,
                        WorkspaceQuery&& workspace_size, Run&& run) {
  {
    std::unique_lock<std::mutex> lock(choice_mutex);
    if (auto found = choice_cache().find(key); found != choice_cache().end()) {
      const AlgoChoice choice = found->second;
      lock.unlock();
      CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv.get(), choice.math_type));
      void* workspace = choice.workspace_bytes ? ctx.workspace(choice.workspace_bytes) : nullptr;
      CUDNN_CHECK(run(choice.algo, workspace, choice.workspace_bytes));
      return;
    }
  }
  const cudnnMathType_t wanted = math_type_for(p.dtype, p.tf32);
  const std::vector<Candidate> ranked = heuristics();
  std::vector<Candidate> ordered;  // ranked for our math type first, then the rest, each in rank order
  for (bool want_match : {true, false})
    for (const Candidate& c : ranked)
      if ((c.math_type == wanted) == want_match) ordered.push_back(c);

  std::vector<std::string> passed_over;  // why each candidate was not used, for the error
  for (const Candidate& c : ordered) {
    if (c.status != CUDNN_STATUS_SUCCESS) continue;  // the heuristic says it cannot run this problem
    if (ctx.deterministic() && c.determinism == CUDNN_NON_DETERMINISTIC) {
      passed_over.push_back(str("algorithm ", c.algo, " is non-deterministic"));
      continue;
    }
    size_t bytes = 0;
    if (const cudnnStatus_t status = workspace_size(c.algo, &bytes); status != CUDNN_STATUS_SUCCESS) {
      passed_over.push_back(str("algorithm ", c.algo, ": workspace query ", cudnnGetErrorString(status)));
      continue;
    }
    void* workspace = nullptr;
    if (bytes > 0) {
      try {
        workspace = ctx.workspace(bytes);
      } catch (const Error& e) {  // out of device memory even after emptying the cache
        passed_over.push_back(str("algorithm ", c.algo, ": no ", bytes, " bytes of workspace (", e.what(), ")"));
        continue;
      }
    }
    const cudnnMathType_t math_type = math_type_to_run(c.math_type, p.dtype, p.tf32);
    CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv.get(), math_type));
    const cudnnStatus_t status = run(c.algo, workspace, bytes);
    if (status == CUDNN_STATUS_SUCCESS) {
      std::lock_guard<std::mutex> lock(choice_mutex);
      choice_cache().emplace(key, AlgoChoice{c.algo, bytes, math_type});
      return;
    }
    if (!is_not_supported(status))
      KILN_FAIL("conv2d: cuDNN algorithm ", c.algo, " failed for ", key, ": ", cudnnGetErrorString(status));
    passed_over.push_back(str("algorithm ", c.algo, ": ", cudnnGetErrorString(status), " when run"));
  }
  std::string reasons;
  for (const std::string& r : passed_over) reasons += (reasons.empty() ? "" : "; ") + r;
  KILN_FAIL("conv2d: no cuDNN algorithm runs ", key, reasons.empty() ? std::string() : " (" + reasons + ")");
}

std::string cache_key(Direction direction, const Context& ctx, const Shape& x_shape, const Shape& w_shape,
                      DType dtype, Layout layout, const Conv2dParams& params) {
  return str(direction_name(direction), " on cuda:", ctx.device_index(), ": x ", x_shape, ", weight ", w_shape, ", ",
             dtype_name(dtype), " ", layout_name(layout), ", ", params.to_string(),
             dtype == DType::f32 && ctx.tf32() ? ", tf32" : "", ctx.deterministic() ? ", deterministic" : "");
}

// Binds the handle to the context's stream and device before any cuDNN call.
cudnnHandle_t ready_handle(Context& ctx) {
  set_device(ctx);
  CUDNN_CHECK(cudnnSetStream(ctx.cudnn(), ctx.stream()));
  return ctx.cudnn();
}

void check_same_layout(const char* op, const Tensor& a, const Tensor& b) {
  KILN_CHECK(a.layout() == b.layout(), op, ": cuDNN path expects one layout, got ", a.describe(), " and ",
             b.describe());
}

void cudnn_forward(Context& ctx, const Tensor& x, const Tensor& weight, const Tensor& y, const Conv2dParams& params) {
  cudnnHandle_t handle = ready_handle(ctx);
  const Problem p(x.shape(), weight.shape(), x.dtype(), x.layout(), params, ctx.tf32());
  const ScalingFactors scale(1.0, 0.0, x.dtype());  // y = 1 * conv(x, w) + 0 * y: overwrite
  run_with_algorithm(
      ctx, p, cache_key(Direction::forward, ctx, x.shape(), weight.shape(), x.dtype(), x.layout(), params),
      [&] {
        int max_count = 0, returned = 0;
        CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(handle, &max_count));
        std::vector<cudnnConvolutionFwdAlgoPerf_t> ranked(static_cast<size_t>(max_count));
        CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(handle, p.x.get(), p.w.get(), p.conv.get(), p.y.get(),
                                                           max_count, &returned, ranked.data()));
        return candidates_from(ranked, returned);
      },
      [&](int algo, size_t* bytes) {
        return cudnnGetConvolutionForwardWorkspaceSize(handle, p.x.get(), p.w.get(), p.conv.get(), p.y.get(),
                                                       static_cast<cudnnConvolutionFwdAlgo_t>(algo), bytes);
      },
      [&](int algo, void* workspace, size_t bytes) {
        return cudnnConvolutionForward(handle, scale.alpha(), p.x.get(), x.raw_data(), p.w.get(), weight.raw_data(),
                                       p.conv.get(), static_cast<cudnnConvolutionFwdAlgo_t>(algo), workspace, bytes,
                                       scale.beta(), p.y.get(), y.raw_data());
      });
}

void cudnn_backward_input(Context& ctx, const Tensor& grad_output, const Tensor& weight, const Tensor& grad_input,
                          const Conv2dParams& params) {
  cudnnHandle_t handle = ready_handle(ctx);
  const Problem p(grad_input.shape(), weight.shape(), grad_output.dtype(), grad_output.layout(), params,
                  ctx.tf32());
  const ScalingFactors scale(1.0, 0.0, grad_output.dtype());  // overwrite: backward returns a fresh gradient
  run_with_algorithm(
      ctx, p,
      cache_key(Direction::backward_data, ctx, grad_input.shape(), weight.shape(), grad_output.dtype(),
                grad_output.layout(), params),
      [&] {
        int max_count = 0, returned = 0;
        CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(handle, &max_count));
        std::vector<cudnnConvolutionBwdDataAlgoPerf_t> ranked(static_cast<size_t>(max_count));
        CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(handle, p.w.get(), p.y.get(), p.conv.get(),
                                                                p.x.get(), max_count, &returned, ranked.data()));
        return candidates_from(ranked, returned);
      },
      [&](int algo, size_t* bytes) {
        return cudnnGetConvolutionBackwardDataWorkspaceSize(handle, p.w.get(), p.y.get(), p.conv.get(), p.x.get(),
                                                            static_cast<cudnnConvolutionBwdDataAlgo_t>(algo), bytes);
      },
      [&](int algo, void* workspace, size_t bytes) {
        return cudnnConvolutionBackwardData(handle, scale.alpha(), p.w.get(), weight.raw_data(), p.y.get(),
                                            grad_output.raw_data(), p.conv.get(),
                                            static_cast<cudnnConvolutionBwdDataAlgo_t>(algo), workspace, bytes,
                                            scale.beta(), p.x.get(), grad_input.raw_data());
      });
}

void cudnn_backward_weight(Context& ctx, const Tensor& grad_output, const Tensor& x, const Tensor& grad_weight,
                           const Conv2dParams& params) {
  cudnnHandle_t handle = ready_handle(ctx);
  const Problem p(x.shape(), grad_weight.shape(), x.dtype(), x.layout(), params, ctx.tf32());
  const ScalingFactors scale(1.0, 0.0, x.dtype());  // overwrite: backward returns a fresh gradient
  run_with_algorithm(
      ctx, p,
      cache_key(Direction::backward_filter, ctx, x.shape(), grad_weight.shape(), x.dtype(), x.layout(), params),
      [&] {
        int max_count = 0, returned = 0;
        CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(handle, &max_count));
        std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> ranked(static_cast<size_t>(max_count));
        CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle, p.x.get(), p.y.get(), p.conv.get(),
                                                                  p.w.get(), max_count, &returned, ranked.data()));
        return candidates_from(ranked, returned);
      },
      [&](int algo, size_t* bytes) {
        return cudnnGetConvolutionBackwardFilterWorkspaceSize(handle, p.x.get(), p.y.get(), p.conv.get(), p.w.get(),
                                                              static_cast<cudnnConvolutionBwdFilterAlgo_t>(algo),
                                                              bytes);
      },
      [&](int algo, void* workspace, size_t bytes) {
        return cudnnConvolutionBackwardFilter(handle, scale.alpha(), p.x.get(), x.raw_data(), p.y.get(),
                                              grad_output.raw_data(), p.conv.get(),
                                              static_cast<cudnnConvolutionBwdFilterAlgo_t>(algo), workspace, bytes,
                                              scale.beta(), p.w.get(), grad_weight.raw_data());
      });
}

// cuDNN refuses empty tensors (CUDNN_STATUS_BAD_PARAM from the descriptor for a zero
// batch), so empty problems stop here: an empty output needs nothing, and an output
// that sums over nothing (an empty batch for the weight gradient) is zero.
bool handled_empty(const Tensor& out, const Tensor& a, const Tensor& b) {
  if (out.numel() == 0) return true;
  if (a.numel() != 0 && b.numel() != 0) return false;
  fill_(out, 0.0);
  return true;
}

}  // namespace

void conv2d_forward(const Tensor& x, const Tensor& weight, const Tensor& y, const Conv2dParams& params) {
  check_same_layout("conv2d", x, weight);
  check_same_layout("conv2d", x, y);
  if (handled_empty(y, x, weight)) return;
  Context& ctx = context_for(x);
  cudnn_forward(ctx, x, weight, y, params);
}

void conv2d_backward_input(const Tensor& grad_output, const Tensor& weight, const Tensor& grad_input,
                           const Conv2dParams& params) {
  check_same_layout("conv2d_backward_input", grad_output, weight);
  check_same_layout("conv2d_backward_input", grad_output, grad_input);
  if (handled_empty(grad_input, grad_output, weight)) return;
  Context& ctx = context_for(grad_output);
  cudnn_backward_input(ctx, grad_output, weight, grad_input, params);
}

void conv2d_backward_weight(const Tensor& grad_output, const Tensor& x, const Tensor& grad_weight,
                            const Conv2dParams& params) {
  check_same_layout("conv2d_backward_weight", grad_output, x);
  check_same_layout("conv2d_backward_weight", x, grad_weight);
  if (handled_empty(grad_weight, grad_output, x)) return;
  Context& ctx = context_for(x);
  cudnn_backward_weight(ctx, grad_output, x, grad_weight, params);
}

}  // namespace kiln::cuda
