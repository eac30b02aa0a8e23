// Pooling ops: boundary checks, device dispatch, and each backward right below
// its forward. Geometry and math: engine/ops/pool.h and docs/ops/pool.md.
#include "engine/ops/pool.h"

#include <cstdlib>

#include "engine/autograd/tape.h"
#include "engine/core/env_setting.h"
#include "engine/ops/dispatch.h"
#include "engine/tensor/factory.h"

namespace kiln {

std::string Pool2dParams::to_string() const {
  return str("kernel=(", kernel[0], ",", kernel[1], "),stride=(", stride[0], ",", stride[1], "),padding=(",
             padding[0], ",", padding[1], ")", ceil_mode ? ",ceil_mode" : "");
}

ImageView image_view(const Tensor& t) {
  const std::vector<int64_t> strides = t.strides();
  ImageView v;
  v.N = t.size(0);
  v.C = t.size(1);
  v.H = t.size(2);
  v.W = t.size(3);
  v.stride_n = strides[0];
  v.stride_c = strides[1];
  v.stride_h = strides[2];
  v.stride_w = strides[3];
  v.channels_last = t.layout() == Layout::nhwc;
  return v;
}

int64_t pool_output_size(int64_t input, int kernel, int stride, int padding, bool ceil_mode, const char* op) {
  const int64_t span = input + 2 * padding - kernel;  // room for the window to slide
  int64_t out = (span >= 0 ? (ceil_mode ? (span + stride - 1) / stride : span / stride) : -1) + 1;
  // ceil_mode may add a window that starts in the right padding; PyTorch drops it,
  // so that every window starts inside the input or the left padding.
  if (ceil_mode && out > 0 && (out - 1) * stride >= input + padding) --out;
  KILN_CHECK(out >= 1, op, ": output size is ", out, " for input size ", input, " with kernel ", kernel, ", stride ",
             stride, ", padding ", padding, "; the padded input must be at least as large as the kernel");
  return out;
}

static PoolWindow window_of(const Pool2dParams& p) {
  return {p.kernel[0], p.kernel[1], p.stride[0], p.stride[1], p.padding[0], p.padding[1]};
}

// Shared checks of max_pool2d and avg_pool2d; returns the output shape.
static Shape check_pool2d(const char* op, const Tensor& x, const Pool2dParams& p) {
  check_defined(op, "x", x);
  check_dim(op, "x", x, 4, "(N, C, H, W)");
  check_dtype_supported(op, x);
  for (int d = 0; d < 2; ++d) {
    KILN_CHECK(p.kernel[d] > 0 && p.stride[d] > 0 && p.padding[d] >= 0, op,
               ": kernel and stride must be positive and padding non-negative, got ", p.to_string());
    // A window must hold at least one real element, or its max would be -inf.
    KILN_CHECK(2 * p.padding[d] <= p.kernel[d], op, ": padding must be at most half the kernel size, got ",
               p.to_string());
  }
  return Shape{x.size(0), x.size(1), pool_output_size(x.size(2), p.kernel[0], p.stride[0], p.padding[0], p.ceil_mode, op),
               pool_output_size(x.size(3), p.kernel[1], p.stride[1], p.padding[1], p.ceil_mode, op)};
}

// ---------------------------------------------------------------- CPU path
CpuPoolPath parse_cpu_pool_path(const std::string& text, const char* where) {
  if (text == "fast") return CpuPoolPath::fast;
  if (text == "reference") return CpuPoolPath::reference;
  KILN_FAIL(where, ": expected fast or reference, got '", text, "'");
}

static EnvSetting<CpuPoolPath>& cpu_pool_path_setting() {
  static EnvSetting<CpuPoolPath> setting("KILN_CPU_POOL", CpuPoolPath::fast, parse_cpu_pool_path);
  return setting;
}
CpuPoolPath cpu_pool_path() { return cpu_pool_path_setting().get(); }
void set_cpu_pool_path(CpuPoolPath path) { cpu_pool_path_setting().set(path); }

// A CPU pooling op runs cpu_fast:: when it is chosen, the data is f32 and every array
// it touches has dense pixels in one layout (all nchw or all nhwc).
static bool cpu_fast_pool(DType dtype, const std::vector<ImageView>& views) {
  if (cpu_pool_path() != CpuPoolPath::fast || dtype != DType::f32) return false;
  for (const ImageView& v : views)
    if (!cpu_fast::pool_applies(v) || v.channels_last != views.front().channels_last) return false;
  return true;
}

// grad_input in the input's layout. The CPU reference scatters into zeros; the fast
// path (`*fast` set) and the CUDA kernels write every element themselves.
// `views`: the other arrays the backward reads.
static Tensor new_grad_input(const Tensor& grad_output, const Shape& x_shape, Layout x_layout,
                             std::vector<ImageView> views, bool* fast) {
  TensorOptions options = options_of(grad_output);
  options.layout = x_layout;
  Tensor grad_input = empty(x_shape, options);
  views.push_back(image_view(grad_input));
  *fast = grad_output.device().is_cpu() && cpu_fast_pool(grad_output.dtype(), views);
  if (grad_output.device().is_cpu() && !*fast) fill_(grad_input, 0.0);
  return grad_input;
}

// ---------------------------------------------------------------- max_pool2d
Tensor max_pool2d(const Tensor& x, const Pool2dParams& params) {
  const char* op = "max_pool2d";
  const Shape out_shape = check_pool2d(op, x, params);
  const PoolWindow window = window_of(params);
  Tensor y = empty(out_shape, options_of(x));
  Tensor argmax = empty(out_shape, {DType::i64, x.device(), x.layout()});
  on_device(
      x.device(),
      [&] {
        if (cpu_fast_pool(x.dtype(), {image_view(x), image_view(y)}))
          return cpu_fast::max_pool2d_forward(x.data<float>(), image_view(x), y.data<float>(),
                                              argmax.data<int64_t>(), image_view(y), window);
        cpu_floating(x.dtype(), op, [&](auto tag) {
          using T = decltype(tag);
          cpu::max_pool2d_forward<T>(x.data<T>(), image_view(x), y.data<T>(), argmax.data<int64_t>(), image_view(y),
                                     window);
        });
      },
      [&] { KILN_CUDA_ONLY(cuda::max_pool2d_forward(x, y, argmax, window)); });
  if (needs_grad(x)) {
    const Shape x_shape = x.shape();
    const Layout x_layout = x.layout();
    record(y, op, {x}, [argmax, x_shape, x_layout, params](const Tensor& grad_output, const std::vector<bool>&) {
      return std::vector<Tensor>{max_pool2d_backward(grad_output, argmax, x_shape, x_layout, params)};
    });
  }
  return y;
}

Tensor max_pool2d_backward(const Tensor& grad_output, const Tensor& argmax, const Shape& x_shape, Layout x_layout,
                           const Pool2dParams& params) {
  const char* op = "max_pool2d_backward";
  KILN_CHECK(grad_output.shape() == argmax.shape(), op, ": grad_output must be ", argmax.shape(), ", got ",
             grad_output.shape());
  bool fast = false;
  Tensor grad_input =
      new_grad_input(grad_output, x_shape, x_layout, {image_view(grad_output), image_view(argmax)}, &fast);
  on_device(
      grad_output.device(),
      [&] {
        if (fast)
          return cpu_fast::max_pool2d_backward(grad_output.data<float>(), image_view(grad_output),
                                               argmax.data<int64_t>(), image_view(argmax), grad_input.data<float>(),
                                               image_view(grad_input));
        cpu_floating(grad_output.dtype(), op, [&](auto tag) {
          using T = decltype(tag);
          cpu::max_pool2d_backward<T>(grad_output.data<T>(), image_view(grad_output), argmax.data<int64_t>(),
                                      image_view(argmax), grad_input.data<T>(), image_view(grad_input));
        });
      },
      [&] { KILN_CUDA_ONLY(cuda::max_pool2d_backward(grad_output, argmax, grad_input, window_of(params))); });
  return grad_input;
}

// ---------------------------------------------------------------- avg_pool2d
Tensor avg_pool2d(const Tensor& x, const Pool2dParams& params, bool count_include_pad) {
  const char* op = "avg_pool2d";
  const Shape out_shape = check_pool2d(op, x, params);
  const PoolWindow window = window_of(params);
  Tensor y = empty(out_shape, options_of(x));
  on_device(
      x.device(),
      [&] {
        if (cpu_fast_pool(x.dtype(), {image_view(x), image_view(y)}))
          return cpu_fast::avg_pool2d_forward(x.data<float>(), image_view(x), y.data<float>(), image_view(y), &window,
                                              count_include_pad);
        cpu_floating(x.dtype(), op, [&](auto tag) {
          using T = decltype(tag);
          cpu::avg_pool2d_forward<T>(x.data<T>(), image_view(x), y.data<T>(), image_view(y), window,
                                     count_include_pad);
        });
      },
      [&] { KILN_CUDA_ONLY(cuda::avg_pool2d_forward(x, y, window, count_include_pad)); });
  if (needs_grad(x)) {
    const Shape x_shape = x.shape();
    const Layout x_layout = x.layout();
    record(y, op, {x},
           [x_shape, x_layout, params, count_include_pad](const Tensor& grad_output, const std::vector<bool>&) {
             return std::vector<Tensor>{
                 avg_pool2d_backward(grad_output, x_shape, x_layout, params, count_include_pad)};
           });
  }
  return y;
}

Tensor avg_pool2d_backward(const Tensor& grad_output, const Shape& x_shape, Layout x_layout,
                           const Pool2dParams& params, bool count_include_pad) {
  const char* op = "avg_pool2d_backward";
  check_dim(op, "grad_output", grad_output, 4, "(N, C, Ho, Wo)");
  bool fast = false;
  Tensor grad_input = new_grad_input(grad_output, x_shape, x_layout, {image_view(grad_output)}, &fast);
  const PoolWindow window = window_of(params);
  on_device(
      grad_output.device(),
      [&] {
        if (fast)
          return cpu_fast::avg_pool2d_backward(grad_output.data<float>(), image_view(grad_output),
                                               grad_input.data<float>(), image_view(grad_input), &window,
                                               count_include_pad);
        cpu_floating(grad_output.dtype(), op, [&](auto tag) {
          using T = decltype(tag);
          cpu::avg_pool2d_backward<T>(grad_output.data<T>(), image_view(grad_output), grad_input.data<T>(),
                                      image_view(grad_input), window, count_include_pad);
        });
      },
      [&] { KILN_CUDA_ONLY(cuda::avg_pool2d_backward(grad_output, grad_input, window, count_include_pad)); });
  return grad_input;
}

// ---------------------------------------------------------------- adaptive_avg_pool2d
// `op` names the public op in messages (adaptive_avg_pool2d or global_avg_pool2d).
static Tensor adaptive_avg_pool2d_impl(const char* op, const Tensor& x, int out_h, int out_w) {
  check_defined(op, "x", x);
  check_dim(op, "x", x, 4, "(N, C, H, W)");
  check_dtype_supported(op, x);
  KILN_CHECK(out_h >= 1 && out_w >= 1, op, ": output size must be positive, got (", out_h, ", ", out_w, ")");
  KILN_CHECK(x.size(2) >= 1 && x.size(3) >= 1, op, ": x must have a non-empty H x W, got shape ", x.shape());
  Tensor y = empty(Shape{x.size(0), x.size(1), out_h, out_w}, options_of(x));
  on_device(
      x.device(),
      [&] {
        if (cpu_fast_pool(x.dtype(), {image_view(x), image_view(y)}))
          return cpu_fast::avg_pool2d_forward(x.data<float>(), image_view(x), y.data<float>(), image_view(y), nullptr,
                                              false);
        cpu_floating(x.dtype(), op, [&](auto tag) {
          using T = decltype(tag);
          cpu::adaptive_avg_pool2d_forward<T>(x.data<T>(), image_view(x), y.data<T>(), image_view(y));
        });
      },
      [&] { KILN_CUDA_ONLY(cuda::adaptive_avg_pool2d_forward(x, y)); });
  if (needs_grad(x)) {
    const Shape x_shape = x.shape();
    const Layout x_layout = x.layout();
    record(y, op, {x}, [x_shape, x_layout](const Tensor& grad_output, const std::vector<bool>&) {
      return std::vector<Tensor>{adaptive_avg_pool2d_backward(grad_output, x_shape, x_layout)};
    });
  }
  return y;
}

Tensor adaptive_avg_pool2d(const Tensor& x, int out_h, int out_w) {
  return adaptive_avg_pool2d_impl("adaptive_avg_pool2d", x, out_h, out_w);
}

Tensor global_avg_pool2d(const Tensor& x) { return adaptive_avg_pool2d_impl("global_avg_pool2d", x, 1, 1); }

Tensor adaptive_avg_pool2d_backward(const Tensor& grad_output, const Shape& x_shape, Layout x_layout) {
  const char* op = "adaptive_avg_pool2d_backward";
  check_dim(op, "grad_output", grad_output, 4, "(N, C, Ho, Wo)");
  bool fast = false;
  Tensor grad_input = new_grad_input(grad_output, x_shape, x_layout, {image_view(grad_output)}, &fast);
  on_device(
      grad_output.device(),
      [&] {
        if (fast)
          return cpu_fast::avg_pool2d_backward(grad_output.data<float>(), image_view(grad_output),
                                               grad_input.data<float>(), image_view(grad_input), nullptr, false);
        cpu_floating(grad_output.dtype(), op, [&](auto tag) {
          using T = decltype(tag);
          cpu::adaptive_avg_pool2d_backward<T>(grad_output.data<T>(), image_view(grad_output), grad_input.data<T>(),
                                               image_view(grad_input));
        });
      },
      [&] { KILN_CUDA_ONLY(cuda::adaptive_avg_pool2d_backward(grad_output, grad_input)); });
  return grad_input;
}

}  // namespace kiln
