// 2-D pooling over (N, C, H, W) in nchw or nhwc, as torch.nn.functional's
// max_pool2d, avg_pool2d and adaptive_avg_pool2d. Output layout = input layout.
//
// Window geometry (docs/ops/pool.md), per spatial dim with kernel k, stride s, padding p:
//   Ho = floor((H + 2p - k) / s) + 1               (ceil_mode: ceil instead of floor,
//        then Ho -= 1 if the last window would start at or past H + p, i.e. entirely
//        in the right padding: every window must start inside the input or left padding)
//   window of output oh: rows [oh*s - p, oh*s - p + k), clipped to the input.
// max_pool2d: y = max over the window (padding counts as -inf); the argmax (first
//   maximum on ties, row-major in the window; NaN wins) is saved as an i64 index
//   h*W + w in the input plane, and backward routes grad_output there.
// avg_pool2d: y = sum over the window / divisor, where the divisor is the window
//   clipped to [-p, H + p) (count_include_pad) or to the input [0, H) (otherwise).
// adaptive_avg_pool2d: window of oh is [floor(oh*H/Ho), ceil((oh+1)*H/Ho)), so
//   windows cover the input exactly and may overlap by one row; y = window mean.
// global_avg_pool2d: adaptive_avg_pool2d to (1, 1), i.e. the mean over H x W.
#pragma once
#include <array>
#include <cstdint>
#include <string>

#include "engine/tensor/tensor.h"

namespace kiln {

struct Pool2dParams {
  std::array<int, 2> kernel{2, 2};   // (R, S)
  std::array<int, 2> stride{2, 2};
  std::array<int, 2> padding{0, 0};  // on each side
  bool ceil_mode = false;
  std::string to_string() const;    // "kernel=(3,3),stride=(2,2),padding=(1,1),ceil_mode"

  // The same kernel, stride and padding in both directions: square(3, 2, 1) is
  // ResNet's stem pool, nn.MaxPool2d(3, stride=2, padding=1).
  static Pool2dParams square(int kernel, int stride, int padding = 0, bool ceil_mode = false) {
    return Pool2dParams{{kernel, kernel}, {stride, stride}, {padding, padding}, ceil_mode};
  }
};

// x: (N, C, H, W) -> (N, C, Ho, Wo).
Tensor max_pool2d(const Tensor& x, const Pool2dParams& params);
Tensor avg_pool2d(const Tensor& x, const Pool2dParams& params, bool count_include_pad = true);
Tensor adaptive_avg_pool2d(const Tensor& x, int out_h, int out_w);
Tensor global_avg_pool2d(const Tensor& x);  // (N, C, H, W) -> (N, C, 1, 1)

// Output size along one dim (the formula above); throws naming `op` if it is < 1.
int64_t pool_output_size(int64_t input, int kernel, int stride, int padding, bool ceil_mode, const char* op);

// Backward functions: each returns a fresh grad_input (N, C, H, W) in `x_layout`
// (overwritten, not accumulated). grad_output: (N, C, Ho, Wo), any layout.
// argmax: (N, C, Ho, Wo) i64, from max_pool2d's forward.
Tensor max_pool2d_backward(const Tensor& grad_output, const Tensor& argmax, const Shape& x_shape, Layout x_layout,
                           const Pool2dParams& params);
Tensor avg_pool2d_backward(const Tensor& grad_output, const Shape& x_shape, Layout x_layout,
                           const Pool2dParams& params, bool count_include_pad);
Tensor adaptive_avg_pool2d_backward(const Tensor& grad_output, const Shape& x_shape, Layout x_layout);

// A 4-D tensor's sizes and element strides: element (n, c, h, w) is at
// n*stride_n + c*stride_c + h*stride_h + w*stride_w, whatever the layout.
struct ImageView {
  int64_t N = 0, C = 0, H = 0, W = 0;
  int64_t stride_n = 0, stride_c = 0, stride_h = 0, stride_w = 0;
  bool channels_last = false;  // memory order (n, h, w, c) instead of (n, c, h, w)
};
ImageView image_view(const Tensor& t);

// One pooling window per spatial dim, as plain ints for the kernels.
struct PoolWindow {
  int kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
};

namespace cpu {
template <class T>
void max_pool2d_forward(const T* x, const ImageView& xv, T* y, int64_t* argmax, const ImageView& yv,
                        const PoolWindow& window);
// grad_input must be zero on entry: windows may overlap, so gradients are summed (+=).
template <class T>
void max_pool2d_backward(const T* grad_output, const ImageView& gv, const int64_t* argmax, const ImageView& av,
                         T* grad_input, const ImageView& giv);
template <class T>
void avg_pool2d_forward(const T* x, const ImageView& xv, T* y, const ImageView& yv, const PoolWindow& window,
                        bool count_include_pad);
template <class T>  // grad_input zero on entry (+=)
void avg_pool2d_backward(const T* grad_output, const ImageView& gv, T* grad_input, const ImageView& giv,
                         const PoolWindow& window, bool count_include_pad);
template <class T>
void adaptive_avg_pool2d_forward(const T* x, const ImageView& xv, T* y, const ImageView& yv);
template <class T>  // grad_input zero on entry (+=)
void adaptive_avg_pool2d_backward(const T* grad_output, const ImageView& gv, T* grad_input, const ImageView& giv);
}  // namespace cpu
// The fast path (engine/ops/cpu_fast/pool_fast.cpp): f32, the same math and the same
// summation order as cpu::, for arrays whose pixels are dense (pool_applies: nchw with
// contiguous planes, or nhwc with contiguous pixels). The backward functions write
// every element of grad_input (no zeroing needed). `window` null: adaptive pooling.
namespace cpu_fast {
bool pool_applies(const ImageView& v);
void max_pool2d_forward(const float* x, const ImageView& xv, float* y, int64_t* argmax, const ImageView& yv,
                        const PoolWindow& window);
void max_pool2d_backward(const float* grad_output, const ImageView& gv, const int64_t* argmax, const ImageView& av,
                         float* grad_input, const ImageView& giv);
void avg_pool2d_forward(const float* x, const ImageView& xv, float* y, const ImageView& yv, const PoolWindow* window,
                        bool count_include_pad);
void avg_pool2d_backward(const float* grad_output, const ImageView& gv, float* grad_input, const ImageView& giv,
                         const PoolWindow* window, bool count_include_pad);
}  // namespace cpu_fast

// Which CPU implementation runs an f32 pooling op: `fast` (cpu_fast::, the default,
// where pool_applies holds for every array; f64 runs the reference) or `reference`
// (cpu::). The starting value comes from the environment variable KILN_CPU_POOL
// (fast | reference).
enum class CpuPoolPath { fast, reference };
CpuPoolPath cpu_pool_path();
void set_cpu_pool_path(CpuPoolPath path);
CpuPoolPath parse_cpu_pool_path(const std::string& text, const char* where);

namespace cuda {
// The CUDA backward kernels gather (one thread per input element, summing the
// windows that contain it), so grad_input need not be zeroed and no atomics are used.
void max_pool2d_forward(const Tensor& x, const Tensor& y, const Tensor& argmax, const PoolWindow& window);
void max_pool2d_backward(const Tensor& grad_output, const Tensor& argmax, const Tensor& grad_input,
                         const PoolWindow& window);
void avg_pool2d_forward(const Tensor& x, const Tensor& y, const PoolWindow& window, bool count_include_pad);
void avg_pool2d_backward(const Tensor& grad_output, const Tensor& grad_input, const PoolWindow& window,
                         bool count_include_pad);
void adaptive_avg_pool2d_forward(const Tensor& x, const Tensor& y);
void adaptive_avg_pool2d_backward(const Tensor& grad_output, const Tensor& grad_input);
}  // namespace cuda

}  // namespace kiln
