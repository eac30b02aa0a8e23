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
// (cudnnGet*Algorithm_v7, no benchmarking, so it is cheap and repeatable). We take
// the best one that accepts our math type and cache the choice per (device,
// direction, shapes, dtype, layout, params), so the lookup runs once per layer
// shape, like torch.backends.cudnn.benchmark's cache. Workspace comes from the
// context (ctx.workspace), which reuses one growing buffer.
//
// Depthwise convolutions (groups = C) have a second implementation, kiln's own
// kernels/depthwise_conv.cu. depthwise_conv_path() (engine/ops/conv.h, env
// KILN_DEPTHWISE) picks: custom, library (cuDNN), or automatic, which works like
// torch.backends.cudnn.benchmark: the first time a (direction, shapes, dtype,
// layout, params) appears, run both once to warm up (cuDNN picks its algorithm then),
// time each kRaceRepeats times with CUDA events on the context's stream, keep the one
// with the lower best time, and cache the winner under the same key as the
// algorithm cache. Later calls only look the winner up.
#include <algorithm>
#include <cstdio>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "engine/cuda/context.h"
#include "engine/cuda/cuda_check.h"
#include "engine/cuda/cudnn_util.h"
#include "engine/cuda/event_timer.h"
#include "engine/ops/conv.h"

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
};

// The heuristic's candidates come best first, each tagged with the math type it was
// ranked for. Take the best one ranked for our math type (the descriptor's: FMA for
// f32, tensor ops for f16/bf16) whose workspace query succeeds; only if there is none,
// the best supported one of any math type (the descriptor still fixes the math).
template <class Perf, class WorkspaceQuery>
AlgoChoice first_usable(const std::vector<Perf>& ranked, int returned, cudnnMathType_t wanted,
                        WorkspaceQuery&& workspace_size, const std::string& key) {
  for (bool require_math_type : {true, false}) {
    for (int i = 0; i < returned; ++i) {
      if (ranked[i].status != CUDNN_STATUS_SUCCESS) continue;
      if (require_math_type && ranked[i].mathType != wanted) continue;
      size_t bytes = 0;
      if (workspace_size(ranked[i].algo, &bytes) == CUDNN_STATUS_SUCCESS)
        return {static_cast<int>(ranked[i].algo), bytes};
    }
  }
  KILN_FAIL("conv2d: cuDNN offers no algorithm for ", key);
}

AlgoChoice choose_algorithm(Direction direction, cudnnHandle_t handle, const Problem& p, const std::string& key) {
  static std::mutex mutex;
  static std::unordered_map<std::string, AlgoChoice> cache;
  std::lock_guard<std::mutex> lock(mutex);
  if (auto found = cache.find(key); found != cache.end()) return found->second;

  AlgoChoice choice;
  const cudnnMathType_t wanted = math_type_for(p.dtype, p.tf32);
  int max_count = 0, returned = 0;
  switch (direction) {
    case Direction::forward: {
      CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(handle, &max_count));
      std::vector<cudnnConvolutionFwdAlgoPerf_t> ranked(static_cast<size_t>(max_count));
      CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(handle, p.x.get(), p.w.get(), p.conv.get(), p.y.get(),
                                                         max_count, &returned, ranked.data()));
      choice = first_usable(ranked, returned, wanted, [&](cudnnConvolutionFwdAlgo_t algo, size_t* bytes) {
        return cudnnGetConvolutionForwardWorkspaceSize(handle, p.x.get(), p.w.get(), p.conv.get(), p.y.get(), algo, bytes);
      }, key);
      break;
    }
    case Direction::backward_data: {
      CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(handle, &max_count));
      std::vector<cudnnConvolutionBwdDataAlgoPerf_t> ranked(static_cast<size_t>(max_count));
      CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(handle, p.w.get(), p.y.get(), p.conv.get(), p.x.get(),
                                                              max_count, &returned, ranked.data()));
      choice = first_usable(ranked, returned, wanted, [&](cudnnConvolutionBwdDataAlgo_t algo, size_t* bytes) {
        return cudnnGetConvolutionBackwardDataWorkspaceSize(handle, p.w.get(), p.y.get(), p.conv.get(), p.x.get(), algo,
                                                            bytes);
      }, key);
      break;
    }
    case Direction::backward_filter: {
      CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(handle, &max_count));
      std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> ranked(static_cast<size_t>(max_count));
      CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle, p.x.get(), p.y.get(), p.conv.get(), p.w.get(),
                                                                max_count, &returned, ranked.data()));
      choice = first_usable(ranked, returned, wanted, [&](cudnnConvolutionBwdFilterAlgo_t algo, size_t* bytes) {
        return cudnnGetConvolutionBackwardFilterWorkspaceSize(handle, p.x.get(), p.y.get(), p.conv.get(), p.w.get(),
                                                              algo, bytes);
      }, key);
      break;
    }
  }
  cache.emplace(key, choice);
  return choice;
}

std::string cache_key(Direction direction, const Context& ctx, const Shape& x_shape, const Shape& w_shape,
                      DType dtype, Layout layout, const Conv2dParams& params) {
  return str(direction_name(direction), " on cuda:", ctx.device_index(), ": x ", x_shape, ", weight ", w_shape, ", ",
             dtype_name(dtype), " ", layout_name(layout), ", ", params.to_string(),
             dtype == DType::f32 && ctx.tf32() ? ", tf32" : "");
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
  const AlgoChoice choice = choose_algorithm(
      Direction::forward, handle, p,
      cache_key(Direction::forward, ctx, x.shape(), weight.shape(), x.dtype(), x.layout(), params));
  void* workspace = choice.workspace_bytes ? ctx.workspace(choice.workspace_bytes) : nullptr;
  const ScalingFactors scale(1.0, 0.0, x.dtype());  // y = 1 * conv(x, w) + 0 * y: overwrite
  CUDNN_CHECK(cudnnConvolutionForward(handle, scale.alpha(), p.x.get(), x.raw_data(), p.w.get(), weight.raw_data(),
                                      p.conv.get(), static_cast<cudnnConvolutionFwdAlgo_t>(choice.algo), workspace,
                                      choice.workspace_bytes, scale.beta(), p.y.get(), y.raw_data()));
}

void cudnn_backward_input(Context& ctx, const Tensor& grad_output, const Tensor& weight, const Tensor& grad_input,
                          const Conv2dParams& params) {
  cudnnHandle_t handle = ready_handle(ctx);
  const Problem p(grad_input.shape(), weight.shape(), grad_output.dtype(), grad_output.layout(), params,
                  ctx.tf32());
  const AlgoChoice choice = choose_algorithm(Direction::backward_data, handle, p,
                                             cache_key(Direction::backward_data, ctx, grad_input.shape(),
                                                       weight.shape(), grad_output.dtype(), grad_output.layout(), params));
  void* workspace = choice.workspace_bytes ? ctx.workspace(choice.workspace_bytes) : nullptr;
  const ScalingFactors scale(1.0, 0.0, grad_output.dtype());  // overwrite: backward returns a fresh gradient
  CUDNN_CHECK(cudnnConvolutionBackwardData(handle, scale.alpha(), p.w.get(), weight.raw_data(), p.y.get(),
                                           grad_output.raw_data(), p.conv.get(),
                                           static_cast<cudnnConvolutionBwdDataAlgo_t>(choice.algo), workspace,
                                           choice.workspace_bytes, scale.beta(), p.x.get(), grad_input.raw_data()));
}

void cudnn_backward_weight(Context& ctx, const Tensor& grad_output, const Tensor& x, const Tensor& grad_weight,
                           const Conv2dParams& params) {
  cudnnHandle_t handle = ready_handle(ctx);
  const Problem p(x.shape(), grad_weight.shape(), x.dtype(), x.layout(), params, ctx.tf32());
  const AlgoChoice choice = choose_algorithm(
      Direction::backward_filter, handle, p,
      cache_key(Direction::backward_filter, ctx, x.shape(), grad_weight.shape(), x.dtype(), x.layout(), params));
  void* workspace = choice.workspace_bytes ? ctx.workspace(choice.workspace_bytes) : nullptr;
  const ScalingFactors scale(1.0, 0.0, x.dtype());  // overwrite: backward returns a fresh gradient
  CUDNN_CHECK(cudnnConvolutionBackwardFilter(handle, scale.alpha(), p.x.get(), x.raw_data(), p.y.get(),
                                             grad_output.raw_data(), p.conv.get(),
                                             static_cast<cudnnConvolutionBwdFilterAlgo_t>(choice.algo), workspace,
                                             choice.workspace_bytes, scale.beta(), p.w.get(), grad_weight.raw_data()));
}

// ---------------------------------------------------------------- depthwise race
constexpr int kRaceRepeats = 5;

struct DepthwiseChoice {
  bool custom = false;
  double custom_ms = 0, cudnn_ms = 0;
};

std::mutex depthwise_mutex;
std::unordered_map<std::string, DepthwiseChoice>& depthwise_cache() {
  static std::unordered_map<std::string, DepthwiseChoice> cache;
  return cache;
}

// Runs a convolution whose depthwise form has two implementations: `custom` (kiln's
// kernel) or `library` (cuDNN), as depthwise_conv_path() says. Anything that is not
// depthwise goes to cuDNN.
template <class Custom, class Library>
void run_depthwise_or_cudnn(Direction direction, Context& ctx, const Shape& x_shape, const Shape& w_shape,
                            DType dtype, Layout layout, const Conv2dParams& params, Custom&& custom,
                            Library&& library) {
  const bool depthwise = x_shape.dim() == 4 && params.groups > 1 && x_shape[1] == params.groups;
  if (!depthwise) return library();
  switch (depthwise_conv_path()) {
    case DepthwiseConvPath::custom: return custom();
    case DepthwiseConvPath::library: return library();
    case DepthwiseConvPath::automatic: break;
  }
  const std::string key = cache_key(direction, ctx, x_shape, w_shape, dtype, layout, params);
  {
    std::lock_guard<std::mutex> lock(depthwise_mutex);
    if (auto found = depthwise_cache().find(key); found != depthwise_cache().end())
      return found->second.custom ? custom() : library();
  }
  custom();  // warm-up: first launches, cuDNN's algorithm choice and workspace growth
  library();
  EventTimer timer(ctx);
  for (int i = 0; i < kRaceRepeats; ++i) {  // interleaved, so clock changes hit both alike
    timer.start();
    custom();
    timer.stop();
    timer.start();
    library();
    timer.stop();
  }
  const std::vector<double> ms = timer.elapsed_ms();
  DepthwiseChoice choice;
  choice.custom_ms = choice.cudnn_ms = 1e300;
  for (int i = 0; i < kRaceRepeats; ++i) {
    choice.custom_ms = std::min(choice.custom_ms, ms[2 * i]);
    choice.cudnn_ms = std::min(choice.cudnn_ms, ms[2 * i + 1]);
  }
  choice.custom = choice.custom_ms < choice.cudnn_ms;
  {
    std::lock_guard<std::mutex> lock(depthwise_mutex);
    depthwise_cache().emplace(key, choice);
  }
  // The result in the output is already right (every run overwrites it); running the
  // winner last keeps the first call's bits the same as the later calls'.
  return choice.custom ? custom() : library();
}

}  // namespace

std::vector<std::string> depthwise_choices() {
  std::lock_guard<std::mutex> lock(depthwise_mutex);
  std::vector<std::string> lines;
  for (const auto& [key, choice] : depthwise_cache())
    lines.push_back(str(key, ": custom ", choice.custom_ms, " ms, cudnn ", choice.cudnn_ms, " ms -> ",
                        choice.custom ? "custom" : "cudnn"));
  std::sort(lines.begin(), lines.end());
  return lines;
}

void conv2d_forward(const Tensor& x, const Tensor& weight, const Tensor& y, const Conv2dParams& params) {
  check_same_layout("conv2d", x, weight);
  check_same_layout("conv2d", x, y);
  Context& ctx = context_for(x);
  run_depthwise_or_cudnn(
      Direction::forward, ctx, x.shape(), weight.shape(), x.dtype(), x.layout(), params,
      [&] { depthwise_conv2d_forward(x, weight, y, params); }, [&] { cudnn_forward(ctx, x, weight, y, params); });
}

void conv2d_backward_input(const Tensor& grad_output, const Tensor& weight, const Tensor& grad_input,
                           const Conv2dParams& params) {
  check_same_layout("conv2d_backward_input", grad_output, weight);
  check_same_layout("conv2d_backward_input", grad_output, grad_input);
  Context& ctx = context_for(grad_output);
  run_depthwise_or_cudnn(
      Direction::backward_data, ctx, grad_input.shape(), weight.shape(), grad_output.dtype(), grad_output.layout(),
      params, [&] { depthwise_conv2d_backward_input(grad_output, weight, grad_input, params); },
      [&] { cudnn_backward_input(ctx, grad_output, weight, grad_input, params); });
}

void conv2d_backward_weight(const Tensor& grad_output, const Tensor& x, const Tensor& grad_weight,
                            const Conv2dParams& params) {
  check_same_layout("conv2d_backward_weight", grad_output, x);
  check_same_layout("conv2d_backward_weight", x, grad_weight);
  Context& ctx = context_for(x);
  run_depthwise_or_cudnn(
      Direction::backward_filter, ctx, x.shape(), grad_weight.shape(), x.dtype(), x.layout(), params,
      [&] { depthwise_conv2d_backward_weight(grad_output, x, grad_weight, params); },
      [&] { cudnn_backward_weight(ctx, grad_output, x, grad_weight, params); });
}

}  // namespace kiln::cuda
