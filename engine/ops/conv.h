// 2-D convolution (cross-correlation, as in PyTorch and cuDNN), forward and backward.
//
//   x: (N, C, H, W)   weight: (K, C/G, R, S)   bias: (K)   y: (N, K, Ho, Wo), G = groups
//
//   y[n, k, i, j] = bias[k] + sum_{c in group(k), r, s}
//                   weight[k, c, r, s] * x[n, c, i*sh - ph + r*dh, j*sw - pw + s*dw]
//   (x is zero outside the image: that is the padding)
//
//   Ho = (H + 2*ph - dh*(R - 1) - 1) / sh + 1   (integer division), likewise Wo
//
// Backward (docs/ops/conv.md derives them):
//   grad_x      = "transposed convolution" of grad_y with the weight   (conv2d_backward_input)
//   grad_weight = correlation of x with grad_y, summed over the batch   (conv2d_backward_weight)
//   grad_bias   = grad_y summed over N, Ho, Wo                          (conv2d_backward_bias)
//
// Layouts: y follows x's layout (nchw or nhwc). The CPU reference computes in
// row-major and copies in and out; cuDNN computes in either layout directly.
// Saved for backward: x and weight (detached).
#pragma once
#include <array>
#include <string>
#include <vector>

#include "engine/tensor/tensor.h"

namespace kiln {

struct Conv2dParams {
  std::array<int, 2> stride{1, 1};    // (sh, sw)
  std::array<int, 2> padding{0, 0};   // (ph, pw): zeros added on each side
  std::array<int, 2> dilation{1, 1};  // (dh, dw): spacing between kernel taps
  int groups = 1;                     // G: channels split into G independent convolutions
  std::string to_string() const;      // "stride=(2, 2), padding=(1, 1), dilation=(1, 1), groups=1"
};

// Every size the kernels need, derived once from the shapes and the params.
struct Conv2dGeometry {
  int64_t N, C, H, W;  // input
  int64_t K, R, S;     // weight (K, C/G, R, S)
  int64_t Ho, Wo;      // output
  int64_t groups;
  int64_t stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;
  int64_t C_per_group() const { return C / groups; }
  int64_t K_per_group() const { return K / groups; }
  // Depthwise: groups = C > 1, every input channel filtered on its own by K/C filters.
  bool depthwise() const { return groups == C && C > 1; }
};

// One spatial output size: (in + 2*padding - dilation*(kernel - 1) - 1) / stride + 1.
int64_t conv2d_output_size(int64_t in, int64_t kernel, int stride, int padding, int dilation);
// Checks the shapes and params (messages name the op and both shapes) and derives the geometry.
Conv2dGeometry conv2d_geometry(const char* op, const Shape& x_shape, const Shape& weight_shape,
                               const Conv2dParams& params);

// y: (N, K, Ho, Wo) in x's layout. bias may be undefined (no bias).
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& params = {});
// Each backward *returns* a fresh gradient (the tape accumulates into leaves).
// grad_output: (N, K, Ho, Wo) -> grad_x: x_shape, in grad_output's layout.
Tensor conv2d_backward_input(const Tensor& grad_output, const Tensor& weight, const Shape& x_shape,
                             const Conv2dParams& params);
// grad_output: (N, K, Ho, Wo), x: (N, C, H, W) -> grad_weight: weight_shape, in x's layout.
Tensor conv2d_backward_weight(const Tensor& grad_output, const Tensor& x, const Shape& weight_shape,
                              const Conv2dParams& params);
// grad_output: (N, K, Ho, Wo) -> grad_bias: (K).
Tensor conv2d_backward_bias(const Tensor& grad_output);

// Which implementation runs a depthwise convolution (groups = C, any channel
// multiplier K/C): docs/ops/conv.md#depthwise, docs/cuda.md#depthwise-convolution.
//   automatic  CPU: the direct kernel. CUDA: on first use of a (shape, dtype, layout,
//              direction), time kiln's kernel (kernels/depthwise_conv.cu) and cuDNN's
//              grouped convolution with CUDA events, and keep the faster (cached);
//              a path that fails on the problem (cuDNN refusing it) loses the race
//              (engine/ops/depthwise_race.h).
//   custom     always kiln's direct kernel (engine/ops/cpu/depthwise_conv_cpu.cpp, or
//              kernels/depthwise_conv.cu)
//   library    always the general grouped path: im2col + GEMM per group on the CPU,
//              cuDNN on the GPU (the reference the direct kernels are tested against)
// The starting value comes from the environment variable KILN_DEPTHWISE
// (auto | custom | cudnn; "library" and "gemm" also name the library path).
enum class DepthwiseConvPath { automatic, custom, library };
DepthwiseConvPath depthwise_conv_path();
void set_depthwise_conv_path(DepthwiseConvPath path);
// Overrides depthwise_conv_path() on the calling thread while it lives (nests; other
// threads keep the global setting). conv2d's CUDA dispatch runs each side of the
// race under one, so the backend below only ever sees a forced path.
class DepthwiseConvPathGuard {
 public:
  explicit DepthwiseConvPathGuard(DepthwiseConvPath path);
  ~DepthwiseConvPathGuard();
  DepthwiseConvPathGuard(const DepthwiseConvPathGuard&) = delete;
  DepthwiseConvPathGuard& operator=(const DepthwiseConvPathGuard&) = delete;

 private:
  int previous_;  // the thread's override before this guard; -1 for none
};
// "auto" | "custom" | "cudnn" | "library" | "gemm"; anything else is an error naming `where`.
DepthwiseConvPath parse_depthwise_conv_path(const std::string& text, const char* where);
const char* depthwise_conv_path_name(DepthwiseConvPath path);

// Which implementation runs a CPU f32 convolution (docs/cpu_fast_path.md):
//   onednn  oneDNN's JIT kernels (engine/ops/onednn/conv_onednn.cpp), the default:
//           measured 2-10x faster than the reference (docs/benchmarks.md)
//   eigen   the readable reference: im2col + Eigen GEMM (engine/ops/cpu/conv_cpu.cpp),
//           with the direct depthwise kernel for groups = C as KILN_DEPTHWISE says
// f64 always runs the reference (oneDNN computes in f32 only): the float64 gradient
// checks test the reference, and the oneDNN path is tested against the reference in
// f32 (tests/ops/test_conv_onednn.cpp). A depthwise convolution with
// KILN_DEPTHWISE=custom runs kiln's direct kernel on either path.
// The starting value comes from the environment variable KILN_CPU_CONV.
enum class CpuConvPath { onednn, eigen };
CpuConvPath cpu_conv_path();
void set_cpu_conv_path(CpuConvPath path);
// "onednn" | "eigen"; anything else is an error naming `where`.
CpuConvPath parse_cpu_conv_path(const std::string& text, const char* where);
const char* cpu_conv_path_name(CpuConvPath path);
// For run info and `kiln bench`: "oneDNN 2.6.3 (avx512_core_bf16)" or "Eigen reference".
std::string cpu_conv_description();

// CPU reference (engine/ops/cpu/conv_cpu.cpp): im2col + Eigen GEMM. Every array is
// row-major (nchw); outputs are overwritten, never accumulated into.
namespace cpu {
// x: (N, C, H, W), weight: (K, C/G, R, S), bias: (K) or nullptr -> y: (N, K, Ho, Wo)
template <class T>
void conv2d_forward(const T* x, const T* weight, const T* bias, T* y, const Conv2dGeometry& g);
// grad_output: (N, K, Ho, Wo), weight: (K, C/G, R, S) -> grad_input: (N, C, H, W)
template <class T>
void conv2d_backward_input(const T* grad_output, const T* weight, T* grad_input, const Conv2dGeometry& g);
// grad_output: (N, K, Ho, Wo), x: (N, C, H, W) -> grad_weight: (K, C/G, R, S)
template <class T>
void conv2d_backward_weight(const T* grad_output, const T* x, T* grad_weight, const Conv2dGeometry& g);
// grad_output: (N, K, P) with P = Ho*Wo -> grad_bias: (K)
template <class T> void conv2d_backward_bias(const T* grad_output, T* grad_bias, int64_t N, int64_t K, int64_t P);

// Direct depthwise kernels (engine/ops/cpu/depthwise_conv_cpu.cpp) for groups = C,
// K = M*C. x, y and their gradients are dense nchw, or nhwc when channels_last; the
// weight (K, 1, R, S) is the same bytes in either layout. Outputs are overwritten.
template <class T>
void depthwise_conv2d_forward(const T* x, const T* weight, const T* bias, T* y, const Conv2dGeometry& g,
                              bool channels_last);
template <class T>
void depthwise_conv2d_backward_input(const T* grad_output, const T* weight, T* grad_input, const Conv2dGeometry& g,
                                     bool channels_last);
template <class T>
void depthwise_conv2d_backward_weight(const T* grad_output, const T* x, T* grad_weight, const Conv2dGeometry& g,
                                      bool channels_last);
}  // namespace cpu

// oneDNN (engine/ops/onednn/conv_onednn.cpp): f32 CPU tensors, x / y and their
// gradients dense nchw or nhwc (each its own), the weight and grad_weight row-major
// (K, C/G, R, S). Outputs are overwritten. Errors name the op and the shapes.
namespace onednn {
void conv2d_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& y,
                    const Conv2dGeometry& g);
void conv2d_backward_input(const Tensor& grad_output, const Tensor& weight, const Tensor& grad_input,
                           const Conv2dGeometry& g);
void conv2d_backward_weight(const Tensor& grad_output, const Tensor& x, const Tensor& grad_weight,
                            const Conv2dGeometry& g);
// How many primitives the three above have created: one per (direction, geometry,
// layouts, bias), made on first use and kept (tests check that a repeat makes none).
size_t conv_primitives_created();
}  // namespace onednn

// CUDA (engine/cuda/cudnn_conv.cpp, kernels/channel_bias.cu). Tensors already on one
// device with one dtype; x, weight, y and their gradients share one layout.
namespace cuda {
void conv2d_forward(const Tensor& x, const Tensor& weight, const Tensor& y, const Conv2dParams& params);
void conv2d_backward_input(const Tensor& grad_output, const Tensor& weight, const Tensor& grad_input,
                           const Conv2dParams& params);
void conv2d_backward_weight(const Tensor& grad_output, const Tensor& x, const Tensor& grad_weight,
                            const Conv2dParams& params);
// The three above always call cuDNN. conv2d chooses between them and kiln's
// depthwise kernels below (kernels/depthwise_conv.cu, same contract) by
// depthwise_conv_path(), racing them per shape in automatic mode
// (engine/ops/depthwise_race.h).
void depthwise_conv2d_forward(const Tensor& x, const Tensor& weight, const Tensor& y, const Conv2dParams& params);
void depthwise_conv2d_backward_input(const Tensor& grad_output, const Tensor& weight, const Tensor& grad_input,
                                     const Conv2dParams& params);
void depthwise_conv2d_backward_weight(const Tensor& grad_output, const Tensor& x, const Tensor& grad_weight,
                                      const Conv2dParams& params);
// The grid of the backward weight's pass 1 (partial sums over chunks of the N*Ho*Wo
// output pixels; pass 2 adds the chunks in order), a function of the shapes only, so
// the result is deterministic. For tests and benchmarks.
struct DepthwiseWeightGrid {
  int64_t pixels = 0;            // N*Ho*Wo
  int64_t chunks = 0;            // pixel chunks (grid.y); 0 for an empty batch
  int64_t pixels_per_chunk = 1;  // every chunk but the last has exactly this many
  int64_t blocks_per_chunk = 0;  // K*R*S in nchw; ceil(K/32)*R*S channel tiles x taps in nhwc
  int64_t blocks = 0;            // chunks * blocks_per_chunk
  int64_t block_threads = 0;     // 256
};
DepthwiseWeightGrid depthwise_backward_weight_grid(const Shape& x_shape, const Shape& weight_shape,
                                                  const Conv2dParams& params, bool channels_last);
// A per-channel bias over a tensor read as (N, K, P) when channels_last is false
// (nchw, or a (N, K) matrix with P = 1), or as (N, P, K) when it is true (nhwc).
// y += bias[k]:
void channel_bias_forward(const Tensor& bias, const Tensor& y, int64_t N, int64_t K, int64_t P, bool channels_last);
// grad_bias[k] = sum over n, p of grad_output (accumulated in f32, stored in grad_bias's dtype):
void channel_bias_backward(const Tensor& grad_output, const Tensor& grad_bias, int64_t N, int64_t K, int64_t P,
                           bool channels_last);
}  // namespace cuda

}  // namespace kiln
