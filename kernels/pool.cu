// 2-D pooling on CUDA: max (with saved argmax), average, adaptive average
// (engine/ops/pool.h; window rules in docs/ops/pool.md).
//
// Math, for output (n, c, oh, ow) with window rows [oh*s - p, oh*s - p + k) and
// columns likewise, clipped to the input:
//   max:      y = max x over the window; argmax = h*W + w of the first maximum
//             (strict >, row-major scan; NaN wins); backward: dx[argmax] += dy
//   avg:      y = sum x / divisor; divisor = window clipped to [-p, H + p) when
//             count_include_pad, else to [0, H); backward: dx += dy / divisor
//   adaptive: window [floor(oh*H/Ho), ceil((oh+1)*H/Ho)); y = window mean
// Shapes: x, grad_input (N, C, H, W); y, grad_output, argmax (N, C, Ho, Wo); any
//   mix of nchw/nhwc (addresses come from ImageView strides). x, y, gradients in
//   f32/f16/bf16, computed in f32; argmax i64.
// Saved for backward (by the op): argmax for max pool; only shapes for the others.
// Kernels: forward, one thread per output, walking y in memory order so that
//   stores coalesce (in nhwc, neighbouring threads are neighbouring channels, so
//   loads coalesce too). Bytes per output: k*k*sizeof(T) read (mostly cache hits
//   for overlapping windows) + sizeof(T) written (+ 8 for argmax).
//   Backward gathers: one thread per input element sums dy over the windows that
//   contain it (at most ceil(k/s)^2 of them), as PyTorch's CUDA kernels do. No
//   atomics, so results are deterministic and f16/bf16 need no atomic adds, and
//   grad_input needs no zeroing. Bytes per input: sizeof(T) written + about
//   (k/s)^2 * (sizeof(T) [+ 8 for argmax]) read.
#include "engine/cuda/context.h"
#include "engine/cuda/cuda_check.h"
#include "engine/ops/pool.h"
#include "kernels/common.cuh"

namespace kiln::cuda {

namespace {

__device__ __forceinline__ int64_t offset_of(const ImageView& v, int64_t n, int64_t c, int64_t h, int64_t w) {
  return n * v.stride_n + c * v.stride_c + h * v.stride_h + w * v.stride_w;
}

// (n, c, h, w) of the i-th element in the view's memory order.
__device__ __forceinline__ void decode(const ImageView& v, int64_t i, int64_t& n, int64_t& c, int64_t& h,
                                       int64_t& w) {
  if (v.channels_last) {  // (n, h, w, c)
    c = i % v.C;
    w = (i / v.C) % v.W;
    h = (i / (v.C * v.W)) % v.H;
    n = i / (v.C * v.W * v.H);
  } else {  // (n, c, h, w)
    w = i % v.W;
    h = (i / v.W) % v.H;
    c = (i / (v.W * v.H)) % v.C;
    n = i / (v.W * v.H * v.C);
  }
}

__device__ __forceinline__ int64_t numel(const ImageView& v) { return v.N * v.C * v.H * v.W; }

// One dim of a fixed window: [start, end) clipped to the input, and the length
// clipped only to the padded input (the count_include_pad divisor).
struct Span {
  int64_t start, end, padded_length;
};
__device__ __forceinline__ Span window_span(int64_t out_index, int kernel, int stride, int pad, int64_t size) {
  int64_t start = out_index * stride - pad;
  int64_t end = min(start + kernel, size + pad);
  const int64_t padded_length = end - start;
  start = max(start, int64_t{0});
  end = min(end, size);
  return {start, end, padded_length};
}

// The outputs whose windows contain input index `in` along one dim: [first, last).
__device__ __forceinline__ void covering_outputs(int64_t in, int kernel, int stride, int pad, int64_t out_size,
                                                 int64_t& first, int64_t& last) {
  first = in + pad < kernel ? 0 : (in + pad - kernel) / stride + 1;
  last = min((in + pad) / stride + 1, out_size);
}

__device__ __forceinline__ Span adaptive_span(int64_t out_index, int64_t out_size, int64_t size) {
  const int64_t start = (out_index * size) / out_size;
  const int64_t end = ((out_index + 1) * size + out_size - 1) / out_size;
  return {start, end, end - start};
}

template <class T>
__global__ void max_pool2d_forward_kernel(const T* __restrict__ x, ImageView xv, T* __restrict__ y,
                                          int64_t* __restrict__ argmax, ImageView yv, PoolWindow window) {
  KILN_GRID_STRIDE_LOOP(i, numel(yv)) {
    int64_t n, c, oh, ow;
    decode(yv, i, n, c, oh, ow);
    const Span rows = window_span(oh, window.kernel_h, window.stride_h, window.pad_h, xv.H);
    const Span cols = window_span(ow, window.kernel_w, window.stride_w, window.pad_w, xv.W);
    float best = -INFINITY;  // padding reads as -inf
    int64_t best_index = rows.start * xv.W + cols.start;
    for (int64_t h = rows.start; h < rows.end; ++h)
      for (int64_t w = cols.start; w < cols.end; ++w) {
        const float v = to_float(x[offset_of(xv, n, c, h, w)]);
        if (v > best || isnan(v)) {  // first maximum on ties; NaN propagates (PyTorch)
          best = v;
          best_index = h * xv.W + w;
        }
      }
    y[offset_of(yv, n, c, oh, ow)] = from_float<T>(best);
    argmax[offset_of(yv, n, c, oh, ow)] = best_index;
  }
}

// One thread per input element of grad_input (giv); gv and av view grad_output and argmax.
template <class T>
__global__ void max_pool2d_backward_kernel(const T* __restrict__ grad_output, ImageView gv,
                                           const int64_t* __restrict__ argmax, ImageView av,
                                           T* __restrict__ grad_input, ImageView giv, PoolWindow window) {
  KILN_GRID_STRIDE_LOOP(i, numel(giv)) {
    int64_t n, c, h, w;
    decode(giv, i, n, c, h, w);
    int64_t oh_first, oh_last, ow_first, ow_last;
    covering_outputs(h, window.kernel_h, window.stride_h, window.pad_h, gv.H, oh_first, oh_last);
    covering_outputs(w, window.kernel_w, window.stride_w, window.pad_w, gv.W, ow_first, ow_last);
    const int64_t index = h * giv.W + w;
    float sum = 0;
    for (int64_t oh = oh_first; oh < oh_last; ++oh)
      for (int64_t ow = ow_first; ow < ow_last; ++ow)
        if (argmax[offset_of(av, n, c, oh, ow)] == index) sum += to_float(grad_output[offset_of(gv, n, c, oh, ow)]);
    grad_input[offset_of(giv, n, c, h, w)] = from_float<T>(sum);
  }
}

__device__ __forceinline__ int64_t avg_divisor(const Span& rows, const Span& cols, bool count_include_pad) {
  return count_include_pad ? rows.padded_length * cols.padded_length
                           : (rows.end - rows.start) * (cols.end - cols.start);
}

template <class T>
__global__ void avg_pool2d_forward_kernel(const T* __restrict__ x, ImageView xv, T* __restrict__ y, ImageView yv,
                                          PoolWindow window, bool count_include_pad) {
  KILN_GRID_STRIDE_LOOP(i, numel(yv)) {
    int64_t n, c, oh, ow;
    decode(yv, i, n, c, oh, ow);
    const Span rows = window_span(oh, window.kernel_h, window.stride_h, window.pad_h, xv.H);
    const Span cols = window_span(ow, window.kernel_w, window.stride_w, window.pad_w, xv.W);
    float sum = 0;
    for (int64_t h = rows.start; h < rows.end; ++h)
      for (int64_t w = cols.start; w < cols.end; ++w) sum += to_float(x[offset_of(xv, n, c, h, w)]);
    y[offset_of(yv, n, c, oh, ow)] = from_float<T>(sum / static_cast<float>(avg_divisor(rows, cols, count_include_pad)));
  }
}

template <class T>
__global__ void avg_pool2d_backward_kernel(const T* __restrict__ grad_output, ImageView gv,
                                           T* __restrict__ grad_input, ImageView giv, PoolWindow window,
                                           bool count_include_pad) {
  KILN_GRID_STRIDE_LOOP(i, numel(giv)) {
    int64_t n, c, h, w;
    decode(giv, i, n, c, h, w);
    int64_t oh_first, oh_last, ow_first, ow_last;
    covering_outputs(h, window.kernel_h, window.stride_h, window.pad_h, gv.H, oh_first, oh_last);
    covering_outputs(w, window.kernel_w, window.stride_w, window.pad_w, gv.W, ow_first, ow_last);
    float sum = 0;
    for (int64_t oh = oh_first; oh < oh_last; ++oh)
      for (int64_t ow = ow_first; ow < ow_last; ++ow) {
        const Span rows = window_span(oh, window.kernel_h, window.stride_h, window.pad_h, giv.H);
        const Span cols = window_span(ow, window.kernel_w, window.stride_w, window.pad_w, giv.W);
        sum += to_float(grad_output[offset_of(gv, n, c, oh, ow)]) /
               static_cast<float>(avg_divisor(rows, cols, count_include_pad));
      }
    grad_input[offset_of(giv, n, c, h, w)] = from_float<T>(sum);
  }
}

template <class T>
__global__ void adaptive_avg_pool2d_forward_kernel(const T* __restrict__ x, ImageView xv, T* __restrict__ y,
                                                   ImageView yv) {
  KILN_GRID_STRIDE_LOOP(i, numel(yv)) {
    int64_t n, c, oh, ow;
    decode(yv, i, n, c, oh, ow);
    const Span rows = adaptive_span(oh, yv.H, xv.H);
    const Span cols = adaptive_span(ow, yv.W, xv.W);
    float sum = 0;
    for (int64_t h = rows.start; h < rows.end; ++h)
      for (int64_t w = cols.start; w < cols.end; ++w) sum += to_float(x[offset_of(xv, n, c, h, w)]);
    y[offset_of(yv, n, c, oh, ow)] = from_float<T>(sum / static_cast<float>(rows.padded_length * cols.padded_length));
  }
}

template <class T>
__global__ void adaptive_avg_pool2d_backward_kernel(const T* __restrict__ grad_output, ImageView gv,
                                                    T* __restrict__ grad_input, ImageView giv) {
  KILN_GRID_STRIDE_LOOP(i, numel(giv)) {
    int64_t n, c, h, w;
    decode(giv, i, n, c, h, w);
    // Candidate outputs [floor(h*Ho/H), ceil((h+1)*Ho/H)); membership is re-checked
    // below, so the range only has to be wide enough.
    const int64_t oh_first = (h * gv.H) / giv.H, oh_last = min(((h + 1) * gv.H + giv.H - 1) / giv.H, gv.H);
    const int64_t ow_first = (w * gv.W) / giv.W, ow_last = min(((w + 1) * gv.W + giv.W - 1) / giv.W, gv.W);
    float sum = 0;
    for (int64_t oh = oh_first; oh < oh_last; ++oh) {
      const Span rows = adaptive_span(oh, gv.H, giv.H);
      if (h < rows.start || h >= rows.end) continue;
      for (int64_t ow = ow_first; ow < ow_last; ++ow) {
        const Span cols = adaptive_span(ow, gv.W, giv.W);
        if (w < cols.start || w >= cols.end) continue;
        sum += to_float(grad_output[offset_of(gv, n, c, oh, ow)]) /
               static_cast<float>(rows.padded_length * cols.padded_length);
      }
    }
    grad_input[offset_of(giv, n, c, h, w)] = from_float<T>(sum);
  }
}

}  // namespace

void max_pool2d_forward(const Tensor& x, const Tensor& y, const Tensor& argmax, const PoolWindow& window) {
  Context& ctx = context_for(x);
  set_device(ctx);
  KILN_DISPATCH_CUDA_FLOAT(x.dtype(), "max_pool2d", {
    KILN_LAUNCH(grid_size(y.numel()), kThreads, 0, ctx.stream(), max_pool2d_forward_kernel<scalar_t>)(
        static_cast<const scalar_t*>(x.raw_data()), image_view(x), static_cast<scalar_t*>(y.raw_data()),
        argmax.data<int64_t>(), image_view(y), window);
  });
  KILN_CHECK_LAUNCH("max_pool2d_forward");
}

void max_pool2d_backward(const Tensor& grad_output, const Tensor& argmax, const Tensor& grad_input,
                         const PoolWindow& window) {
  Context& ctx = context_for(grad_output);
  set_device(ctx);
  KILN_DISPATCH_CUDA_FLOAT(grad_output.dtype(), "max_pool2d_backward", {
    KILN_LAUNCH(grid_size(grad_input.numel()), kThreads, 0, ctx.stream(), max_pool2d_backward_kernel<scalar_t>)(
        static_cast<const scalar_t*>(grad_output.raw_data()), image_view(grad_output), argmax.data<int64_t>(),
        image_view(argmax), static_cast<scalar_t*>(grad_input.raw_data()), image_view(grad_input), window);
  });
  KILN_CHECK_LAUNCH("max_pool2d_backward");
}

void avg_pool2d_forward(const Tensor& x, const Tensor& y, const PoolWindow& window, bool count_include_pad) {
  Context& ctx = context_for(x);
  set_device(ctx);
  KILN_DISPATCH_CUDA_FLOAT(x.dtype(), "avg_pool2d", {
    KILN_LAUNCH(grid_size(y.numel()), kThreads, 0, ctx.stream(), avg_pool2d_forward_kernel<scalar_t>)(
        static_cast<const scalar_t*>(x.raw_data()), image_view(x), static_cast<scalar_t*>(y.raw_data()),
        image_view(y), window, count_include_pad);
  });
  KILN_CHECK_LAUNCH("avg_pool2d_forward");
}

void avg_pool2d_backward(const Tensor& grad_output, const Tensor& grad_input, const PoolWindow& window,
                         bool count_include_pad) {
  Context& ctx = context_for(grad_output);
  set_device(ctx);
  KILN_DISPATCH_CUDA_FLOAT(grad_output.dtype(), "avg_pool2d_backward", {
    KILN_LAUNCH(grid_size(grad_input.numel()), kThreads, 0, ctx.stream(), avg_pool2d_backward_kernel<scalar_t>)(
        static_cast<const scalar_t*>(grad_output.raw_data()), image_view(grad_output),
        static_cast<scalar_t*>(grad_input.raw_data()), image_view(grad_input), window, count_include_pad);
  });
  KILN_CHECK_LAUNCH("avg_pool2d_backward");
}

void adaptive_avg_pool2d_forward(const Tensor& x, const Tensor& y) {
  Context& ctx = context_for(x);
  set_device(ctx);
  KILN_DISPATCH_CUDA_FLOAT(x.dtype(), "adaptive_avg_pool2d", {
    KILN_LAUNCH(grid_size(y.numel()), kThreads, 0, ctx.stream(), adaptive_avg_pool2d_forward_kernel<scalar_t>)(
        static_cast<const scalar_t*>(x.raw_data()), image_view(x), static_cast<scalar_t*>(y.raw_data()),
        image_view(y));
  });
  KILN_CHECK_LAUNCH("adaptive_avg_pool2d_forward");
}

void adaptive_avg_pool2d_backward(const Tensor& grad_output, const Tensor& grad_input) {
  Context& ctx = context_for(grad_output);
  set_device(ctx);
  KILN_DISPATCH_CUDA_FLOAT(grad_output.dtype(), "adaptive_avg_pool2d_backward", {
    KILN_LAUNCH(grid_size(grad_input.numel()), kThreads, 0, ctx.stream(), adaptive_avg_pool2d_backward_kernel<scalar_t>)(
        static_cast<const scalar_t*>(grad_output.raw_data()), image_view(grad_output),
        static_cast<scalar_t*>(grad_input.raw_data()), image_view(grad_input));
  });
  KILN_CHECK_LAUNCH("adaptive_avg_pool2d_backward");
}

}  // namespace kiln::cuda
