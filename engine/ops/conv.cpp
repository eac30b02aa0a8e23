// conv2d: the public op (checks, forward, tape node) with its three backward
// functions right below it. The math is in conv.h and docs/ops/conv.md.
#include "engine/ops/conv.h"

#include <cstdlib>
#include <functional>

#include "engine/autograd/autocast.h"
#include "engine/autograd/tape.h"
#include "engine/core/env_setting.h"
#include "engine/ops/depthwise_race.h"
#include "engine/ops/dispatch.h"
#include "engine/ops/onednn/onednn.h"
#include "engine/tensor/factory.h"

namespace kiln {

std::string Conv2dParams::to_string() const {
  return str("stride=(", stride[0], ", ", stride[1], "), padding=(", padding[0], ", ", padding[1], "), dilation=(",
             dilation[0], ", ", dilation[1], "), groups=", groups);
}

int64_t conv2d_output_size(int64_t in, int64_t kernel, int stride, int padding, int dilation) {
  // The last tap of the dilated kernel sits dilation*(kernel-1) after the first, so a
  // window spans dilation*(kernel-1)+1 pixels; count the stride steps that fit. The
  // numerator can be negative (input too small): floor it so the size comes out <= 0.
  const int64_t span = in + 2 * static_cast<int64_t>(padding) - static_cast<int64_t>(dilation) * (kernel - 1) - 1;
  return span < 0 ? 0 : span / stride + 1;
}

Conv2dGeometry conv2d_geometry(const char* op, const Shape& x_shape, const Shape& weight_shape,
                               const Conv2dParams& params) {
  KILN_CHECK(x_shape.dim() == 4, op, ": x must be 4-D (N, C, H, W), got shape ", x_shape);
  KILN_CHECK(weight_shape.dim() == 4, op, ": weight must be 4-D (K, C/groups, R, S), got shape ", weight_shape);
  for (int i = 0; i < 2; ++i) {
    KILN_CHECK(params.stride[i] >= 1 && params.dilation[i] >= 1 && params.padding[i] >= 0, op,
               ": stride and dilation must be >= 1 and padding >= 0, got ", params.to_string());
  }
  const int64_t groups = params.groups;
  KILN_CHECK(groups >= 1, op, ": groups must be >= 1, got ", groups);
  Conv2dGeometry g{};
  g.N = x_shape[0], g.C = x_shape[1], g.H = x_shape[2], g.W = x_shape[3];
  g.K = weight_shape[0], g.R = weight_shape[2], g.S = weight_shape[3];
  g.groups = groups;
  KILN_CHECK(g.C % groups == 0, op, ": input channels C = ", g.C, " must be divisible by groups = ", groups,
             " (x is ", x_shape, ")");
  KILN_CHECK(g.K % groups == 0, op, ": output channels K = ", g.K, " must be divisible by groups = ", groups,
             " (weight is ", weight_shape, ")");
  const Shape expected{g.K, g.C / groups, g.R, g.S};
  KILN_CHECK(weight_shape == expected, op, ": weight must be (K, C/groups, R, S) = ", expected, ", got ",
             weight_shape);
  g.stride_h = params.stride[0], g.stride_w = params.stride[1];
  g.pad_h = params.padding[0], g.pad_w = params.padding[1];
  g.dilation_h = params.dilation[0], g.dilation_w = params.dilation[1];
  g.Ho = conv2d_output_size(g.H, g.R, params.stride[0], params.padding[0], params.dilation[0]);
  g.Wo = conv2d_output_size(g.W, g.S, params.stride[1], params.padding[1], params.dilation[1]);
  KILN_CHECK(g.Ho > 0 && g.Wo > 0, op, ": the output would be empty: (Ho, Wo) = (", g.Ho, ", ", g.Wo,
             ") for x ", x_shape, ", kernel (R, S) = (", g.R, ", ", g.S, ") and ", params.to_string(),
             "; the input is smaller than the (dilated) kernel");
  return g;
}

// ---------------------------------------------------------------- depthwise path
DepthwiseConvPath parse_depthwise_conv_path(const std::string& text, const char* where) {
  if (text == "auto" || text == "automatic") return DepthwiseConvPath::automatic;
  if (text == "custom") return DepthwiseConvPath::custom;
  if (text == "cudnn" || text == "library" || text == "gemm") return DepthwiseConvPath::library;
  KILN_FAIL(where, ": expected auto, custom or cudnn (the library path: cuDNN on the GPU, im2col + GEMM on the ",
            "cpu), got '", text, "'");
}

const char* depthwise_conv_path_name(DepthwiseConvPath path) {
  switch (path) {
    case DepthwiseConvPath::automatic: return "auto";
    case DepthwiseConvPath::custom: return "custom";
    case DepthwiseConvPath::library: return "library";
  }
  return "?";
}

namespace {
EnvSetting<DepthwiseConvPath>& depthwise_conv_path_setting() {
  static EnvSetting<DepthwiseConvPath> setting("KILN_DEPTHWISE", DepthwiseConvPath::automatic,
                                               parse_depthwise_conv_path);
  return setting;
}

// The CPU runs the direct depthwise kernel unless the library path is forced: it
// beats per-group im2col + GEMM at every depthwise shape (docs/benchmarks.md).
bool cpu_direct_depthwise(const Conv2dGeometry& g) {
  return g.depthwise() && depthwise_conv_path() != DepthwiseConvPath::library;
}
}  // namespace

namespace {
thread_local int thread_depthwise_conv_path = -1;  // a DepthwiseConvPathGuard's path; -1: none
}  // namespace

DepthwiseConvPath depthwise_conv_path() {
  if (thread_depthwise_conv_path >= 0) return static_cast<DepthwiseConvPath>(thread_depthwise_conv_path);
  return depthwise_conv_path_setting().get();
}
void set_depthwise_conv_path(DepthwiseConvPath path) { depthwise_conv_path_setting().set(path); }

DepthwiseConvPathGuard::DepthwiseConvPathGuard(DepthwiseConvPath path) : previous_(thread_depthwise_conv_path) {
  thread_depthwise_conv_path = static_cast<int>(path);
}
DepthwiseConvPathGuard::~DepthwiseConvPathGuard() { thread_depthwise_conv_path = previous_; }

// ---------------------------------------------------------------- CPU conv path
CpuConvPath parse_cpu_conv_path(const std::string& text, const char* where) {
  if (text == "onednn") return CpuConvPath::onednn;
  if (text == "eigen") return CpuConvPath::eigen;
  KILN_FAIL(where, ": expected onednn (the fast path) or eigen (the reference), got '", text, "'");
}

const char* cpu_conv_path_name(CpuConvPath path) { return path == CpuConvPath::onednn ? "onednn" : "eigen"; }

namespace {
EnvSetting<CpuConvPath>& cpu_conv_path_setting() {
  static EnvSetting<CpuConvPath> setting("KILN_CPU_CONV", CpuConvPath::onednn, parse_cpu_conv_path);
  return setting;
}

// Whether a CPU convolution of `t`'s dtype runs on oneDNN: f32 only (the library has
// no f64 kernels), and a depthwise one pinned to kiln's direct kernel stays there.
bool cpu_onednn(const Tensor& t, const Conv2dGeometry& g) {
  return t.dtype() == DType::f32 && cpu_conv_path() == CpuConvPath::onednn &&
         !(g.depthwise() && depthwise_conv_path() == DepthwiseConvPath::custom);
}
}  // namespace

CpuConvPath cpu_conv_path() { return cpu_conv_path_setting().get(); }
void set_cpu_conv_path(CpuConvPath path) { cpu_conv_path_setting().set(path); }
std::string cpu_conv_description() {
  return cpu_conv_path() == CpuConvPath::onednn ? onednn::description() : "Eigen reference";
}

// The GPU's choice for a convolution: a depthwise one (groups = C) runs kiln's kernel
// (`custom`) or the library (`library`: cuDNN) by depthwise_conv_path(), racing them
// when it is automatic (engine/ops/depthwise_race.h); anything else runs the library.
// `direction` and `on` (a tensor of the problem: its device, dtype and layout) key the race.
[[maybe_unused]] static void cuda_conv(const char* direction, const Tensor& on, const Shape& x_shape,
                                       const Shape& weight_shape, const Conv2dParams& params,
                                       const std::function<void()>& custom, const std::function<void()>& library) {
  const Conv2dGeometry g = conv2d_geometry("conv2d", x_shape, weight_shape, params);
  if (!g.depthwise()) return library();
  switch (depthwise_conv_path()) {
    case DepthwiseConvPath::custom: return custom();
    case DepthwiseConvPath::library: return library();
    case DepthwiseConvPath::automatic: break;
  }
  KILN_CUDA_ONLY(cuda::race_depthwise_conv(direction, on, x_shape, weight_shape, params, custom, library));
}

// t itself when it is already in `layout`, otherwise a copy in that layout. Never
// recorded on the tape: callers use it on detached tensors or inside backward.
static Tensor in_layout(const Tensor& t, Layout layout) {
  if (t.layout() == layout || t.dim() != 4) return t;
  Tensor out = empty(t.shape(), {t.dtype(), t.device(), layout});
  copy_(out, t);
  return out;
}

// Where a CPU result is written: t itself when it is row-major, otherwise a fresh
// row-major buffer (uninitialized: the kernels overwrite it) that is copied back.
static Tensor row_major_output(const Tensor& t) {
  return t.layout() == Layout::nchw ? t : empty(t.shape(), {t.dtype(), t.device(), Layout::nchw});
}

// Checks shared by the backward functions, which users may also call directly.
static void check_backward_pair(const char* op, const Tensor& grad_output, const Tensor& other, const char* name) {
  check_defined(op, "grad_output", grad_output);
  check_defined(op, name, other);
  check_dim(op, "grad_output", grad_output, 4, "(N, K, Ho, Wo)");
  check_same_device(op, {grad_output, other});
  check_same_dtype(op, {grad_output, other});
  check_dtype_supported("conv2d", grad_output);
}

static void check_grad_output_shape(const char* op, const Tensor& grad_output, const Conv2dGeometry& g) {
  const Shape expected{g.N, g.K, g.Ho, g.Wo};
  KILN_CHECK(grad_output.shape() == expected, op, ": grad_output must be (N, K, Ho, Wo) = ", expected, ", got ",
             grad_output.shape());
}

// ---------------------------------------------------------------- forward
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& params) {
  if (autocast_applies({x, weight, bias}))  // mixed precision: engine/autograd/autocast.h
    return autocast_call({x, weight, bias},
                         [&](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], in[2], params); });
  const char* op = "conv2d";
  check_defined(op, "x", x);
  check_defined(op, "weight", weight);
  check_dim(op, "x", x, 4, "(N, C, H, W)");
  check_dim(op, "weight", weight, 4, "(K, C/groups, R, S)");
  check_same_device(op, {x, weight, bias});
  check_same_dtype(op, {x, weight, bias});
  check_dtype_supported(op, x);
  const Conv2dGeometry g = conv2d_geometry(op, x.shape(), weight.shape(), params);
  if (bias.defined())
    KILN_CHECK(bias.dim() == 1 && bias.shape()[0] == g.K, op, ": bias must be (K) = ", Shape{g.K}, ", got ",
               bias.shape());

  Tensor y = empty({g.N, g.K, g.Ho, g.Wo}, {x.dtype(), x.device(), x.layout()});
  on_device(
      x.device(),
      [&] {
        if (cpu_onednn(x, g)) {  // x and y in their own layouts, the weight row-major
          onednn::conv2d_forward(x, in_layout(weight, Layout::nchw), bias, y, g);
          return;
        }
        if (cpu_direct_depthwise(g)) {  // reads and writes x's layout as it is
          const Tensor weight_rm = in_layout(weight, Layout::nchw);
          cpu_floating(x.dtype(), op, [&](auto tag) {
            using T = decltype(tag);
            cpu::depthwise_conv2d_forward<T>(x.data<T>(), weight_rm.data<T>(),
                                             bias.defined() ? bias.data<T>() : nullptr, y.data<T>(), g,
                                             x.layout() == Layout::nhwc);
          });
          return;
        }
        // The reference works on row-major arrays: copy channels-last inputs in and
        // the result back out (cheap next to the convolution itself).
        const Tensor x_rm = in_layout(x, Layout::nchw), weight_rm = in_layout(weight, Layout::nchw);
        const Tensor y_rm = row_major_output(y);
        cpu_floating(x.dtype(), op, [&](auto tag) {
          using T = decltype(tag);
          cpu::conv2d_forward<T>(x_rm.data<T>(), weight_rm.data<T>(), bias.defined() ? bias.data<T>() : nullptr,
                                 y_rm.data<T>(), g);
        });
        if (!y_rm.same_storage(y)) copy_(y, y_rm);
      },
      [&] {
        KILN_CUDA_ONLY({
          // cuDNN wants the filter in the same format as the image (KCRS with NCHW, KRSC with NHWC).
          const Tensor weight_same = in_layout(weight, x.layout());
          cuda_conv(
              "conv2d forward", x, x.shape(), weight.shape(), params,
              [&] { cuda::depthwise_conv2d_forward(x, weight_same, y, params); },
              [&] { cuda::conv2d_forward(x, weight_same, y, params); });
          if (bias.defined()) cuda::channel_bias_forward(bias, y, g.N, g.K, g.Ho * g.Wo, x.layout() == Layout::nhwc);
        });
      });

  if (any_needs_grad({x, weight, bias})) {
    // grad_x needs only the weight and grad_weight only x: keep just what backward
    // will use, so a frozen layer does not hold on to its input activation.
    const Tensor x_saved = needs_grad(weight) ? x.detach() : Tensor();
    const Tensor weight_saved = needs_grad(x) ? weight.detach() : Tensor();
    const Shape x_shape = x.shape(), weight_shape = weight.shape();
    const Layout x_layout = x.layout(), weight_layout = weight.layout();
    record(y, op, {x, weight, bias},
           [=](const Tensor& grad_output, const std::vector<bool>& grad_input_mask) {
             Tensor grad_x, grad_weight, grad_bias;
             if (grad_input_mask[0])
               grad_x = in_layout(conv2d_backward_input(grad_output, weight_saved, x_shape, params), x_layout);
             if (grad_input_mask[1])
               grad_weight =
                   in_layout(conv2d_backward_weight(grad_output, x_saved, weight_shape, params), weight_layout);
             if (grad_input_mask[2]) grad_bias = conv2d_backward_bias(grad_output);
             return std::vector<Tensor>{grad_x, grad_weight, grad_bias};
           });
  }
  return y;
}

// ---------------------------------------------------------------- backward
Tensor conv2d_backward_input(const Tensor& grad_output, const Tensor& weight, const Shape& x_shape,
                             const Conv2dParams& params) {
  const char* op = "conv2d_backward_input";
  check_backward_pair(op, grad_output, weight, "weight");
  const Conv2dGeometry g = conv2d_geometry(op, x_shape, weight.shape(), params);
  check_grad_output_shape(op, grad_output, g);
  Tensor grad_input = empty(x_shape, {grad_output.dtype(), grad_output.device(), grad_output.layout()});
  on_device(
      grad_output.device(),
      [&] {
        if (cpu_onednn(grad_output, g)) {  // grad_input is in grad_output's layout
          onednn::conv2d_backward_input(grad_output, in_layout(weight, Layout::nchw), grad_input, g);
          return;
        }
        if (cpu_direct_depthwise(g)) {  // grad_input is in grad_output's layout
          const Tensor weight_rm = in_layout(weight, Layout::nchw);
          cpu_floating(grad_output.dtype(), op, [&](auto tag) {
            using T = decltype(tag);
            cpu::depthwise_conv2d_backward_input<T>(grad_output.data<T>(), weight_rm.data<T>(), grad_input.data<T>(),
                                                    g, grad_output.layout() == Layout::nhwc);
          });
          return;
        }
        const Tensor grad_output_rm = in_layout(grad_output, Layout::nchw);
        const Tensor weight_rm = in_layout(weight, Layout::nchw), grad_input_rm = row_major_output(grad_input);
        cpu_floating(grad_output.dtype(), op, [&](auto tag) {
          using T = decltype(tag);
          cpu::conv2d_backward_input<T>(grad_output_rm.data<T>(), weight_rm.data<T>(), grad_input_rm.data<T>(), g);
        });
        if (!grad_input_rm.same_storage(grad_input)) copy_(grad_input, grad_input_rm);
      },
      [&] {
        KILN_CUDA_ONLY({
          const Tensor weight_same = in_layout(weight, grad_output.layout());
          cuda_conv(
              "conv2d backward input", grad_output, x_shape, weight.shape(), params,
              [&] { cuda::depthwise_conv2d_backward_input(grad_output, weight_same, grad_input, params); },
              [&] { cuda::conv2d_backward_input(grad_output, weight_same, grad_input, params); });
        });
      });
  return grad_input;
}

Tensor conv2d_backward_weight(const Tensor& grad_output, const Tensor& x, const Shape& weight_shape,
                              const Conv2dParams& params) {
  const char* op = "conv2d_backward_weight";
  check_backward_pair(op, grad_output, x, "x");
  const Conv2dGeometry g = conv2d_geometry(op, x.shape(), weight_shape, params);
  check_grad_output_shape(op, grad_output, g);
  Tensor grad_weight = empty(weight_shape, {x.dtype(), x.device(), x.layout()});
  on_device(
      x.device(),
      [&] {
        const Tensor grad_weight_rm = row_major_output(grad_weight);
        if (cpu_onednn(x, g)) {  // x and grad_output in their own layouts
          onednn::conv2d_backward_weight(grad_output, x, grad_weight_rm, g);
          if (!grad_weight_rm.same_storage(grad_weight)) copy_(grad_weight, grad_weight_rm);
          return;
        }
        if (cpu_direct_depthwise(g)) {  // x and grad_output in x's layout
          const Tensor grad_output_same = in_layout(grad_output, x.layout());
          cpu_floating(x.dtype(), op, [&](auto tag) {
            using T = decltype(tag);
            cpu::depthwise_conv2d_backward_weight<T>(grad_output_same.data<T>(), x.data<T>(),
                                                     grad_weight_rm.data<T>(), g, x.layout() == Layout::nhwc);
          });
          if (!grad_weight_rm.same_storage(grad_weight)) copy_(grad_weight, grad_weight_rm);
          return;
        }
        const Tensor grad_output_rm = in_layout(grad_output, Layout::nchw), x_rm = in_layout(x, Layout::nchw);
        cpu_floating(x.dtype(), op, [&](auto tag) {
          using T = decltype(tag);
          cpu::conv2d_backward_weight<T>(grad_output_rm.data<T>(), x_rm.data<T>(), grad_weight_rm.data<T>(), g);
        });
        if (!grad_weight_rm.same_storage(grad_weight)) copy_(grad_weight, grad_weight_rm);
      },
      [&] {
        KILN_CUDA_ONLY({
          const Tensor grad_output_same = in_layout(grad_output, x.layout());
          cuda_conv(
              "conv2d backward weight", x, x.shape(), weight_shape, params,
              [&] { cuda::depthwise_conv2d_backward_weight(grad_output_same, x, grad_weight, params); },
              [&] { cuda::conv2d_backward_weight(grad_output_same, x, grad_weight, params); });
        });
      });
  return grad_weight;
}

Tensor conv2d_backward_bias(const Tensor& grad_output) {
  const char* op = "conv2d_backward_bias";
  check_defined(op, "grad_output", grad_output);
  check_dim(op, "grad_output", grad_output, 4, "(N, K, Ho, Wo)");
  check_dtype_supported("conv2d", grad_output);
  const int64_t N = grad_output.size(0), K = grad_output.size(1), P = grad_output.size(2) * grad_output.size(3);
  Tensor grad_bias = empty({K}, {grad_output.dtype(), grad_output.device(), Layout::nchw});
  on_device(
      grad_output.device(),
      [&] {
        const Tensor grad_output_rm = in_layout(grad_output, Layout::nchw);
        cpu_floating(grad_output.dtype(), op, [&](auto tag) {
          using T = decltype(tag);
          cpu::conv2d_backward_bias<T>(grad_output_rm.data<T>(), grad_bias.data<T>(), N, K, P);
        });
      },
      [&] {
        KILN_CUDA_ONLY(
            cuda::channel_bias_backward(grad_output, grad_bias, N, K, P, grad_output.layout() == Layout::nhwc));
      });
  return grad_bias;
}

}  // namespace kiln
