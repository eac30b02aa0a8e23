// The emulated cuDNN's convolutions: cudnnConvolutionForward, BackwardData and
// BackwardFilter (checks at call time, arithmetic in stream order through enqueue()),
// and the arithmetic itself. cudnn.h's header comment states the contract.
//
// One engine serves every algorithm. Per image n and group g, with P = Ho*Wo and
// col = im2col(x[n, g]) the (Cg*R*S, P) matrix of input taps:
//   forward          y[n, g]  (Kg, P)      = w[g] (Kg, CgRS) * col
//   backward data    dcol     (CgRS, P)    = w[g]^T * dy[n, g];   dx[n, g] = col2im(dcol)  (scatter-add)
//   backward filter  dw[g]    (Kg, CgRS)  += dy[n, g] * col^T                             (summed over n)
// (a 1x1 filter with stride 1 and no padding needs no im2col: col is x itself).
// Inputs are brought to dense NCHW / KCRS arrays in the accumulation type (float; double
// for DOUBLE data) unless they already are; CUDNN_CONVOLUTION mode flips the filter
// taps. Outputs are written straight into the caller's memory when their type and
// layout allow and beta is 0, otherwise blended (alpha * result + beta * old) and
// converted on the way out. The GEMMs are Eigen's (blocked, vectorised).
// Non-deterministic algorithms take their partial sums in a random order: backward
// filter ALGO_0/ALGO_3 visit the images in a shuffled order, backward data ALGO_0
// scatters the filter taps in a shuffled order.
#include <Eigen/Dense>
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "cudnn_internal.h"
#include "emulated_numerics.h"
#include "runtime_internal.h"

namespace kiln::emulator::dnn {

namespace {

namespace numerics = kiln::emulator::numerics;

// ---------------------------------------------------------------- element access
struct F32 {
  static float load(const void* p, int64_t i) { return static_cast<const float*>(p)[i]; }
  static void store(void* p, int64_t i, double v) { static_cast<float*>(p)[i] = static_cast<float>(v); }
};
struct F64 {
  static double load(const void* p, int64_t i) { return static_cast<const double*>(p)[i]; }
  static void store(void* p, int64_t i, double v) { static_cast<double*>(p)[i] = v; }
};
struct F16 {
  static float load(const void* p, int64_t i) { return numerics::half_to_float(static_cast<const uint16_t*>(p)[i]); }
  static void store(void* p, int64_t i, double v) {
    static_cast<uint16_t*>(p)[i] = numerics::float_to_half(static_cast<float>(v));
  }
};
struct BF16 {
  static float load(const void* p, int64_t i) {
    return numerics::bfloat16_to_float(static_cast<const uint16_t*>(p)[i]);
  }
  static void store(void* p, int64_t i, double v) {
    static_cast<uint16_t*>(p)[i] = numerics::float_to_bfloat16(static_cast<float>(v));
  }
};

template <class Fn>
void visit_type(cudnnDataType_t type, Fn&& fn) {
  switch (type) {
    case CUDNN_DATA_FLOAT: fn(F32{}); break;
    case CUDNN_DATA_DOUBLE: fn(F64{}); break;
    case CUDNN_DATA_HALF: fn(F16{}); break;
    case CUDNN_DATA_BFLOAT16: fn(BF16{}); break;
    default: break;  // refused before any work is queued
  }
}

template <class Acc>
constexpr cudnnDataType_t acc_type() {
  return std::is_same_v<Acc, double> ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
}

// Bytes from the first to one past the last element a descriptor reaches.
size_t tensor_bytes(const cudnnTensorStruct& t, size_t element) {
  const int64_t last = int64_t{t.n - 1} * t.n_stride + int64_t{t.c - 1} * t.c_stride + int64_t{t.h - 1} * t.h_stride +
                       int64_t{t.w - 1} * t.w_stride;
  return static_cast<size_t>(last + 1) * element;
}

// A tensor as dense NCHW in Acc: the caller's memory when it already is (and needs no
// rounding), else a converted copy in `buffer`.
template <class Acc>
const Acc* load_tensor(const void* data, const cudnnTensorStruct& d, bool tf32, std::vector<Acc>& buffer) {
  if (d.type == acc_type<Acc>() && packed_nchw(d) && !tf32) return static_cast<const Acc*>(data);
  buffer.resize(static_cast<size_t>(d.n) * d.c * d.h * d.w);
  visit_type(d.type, [&](auto tag) {
    using T = decltype(tag);
    Acc* out = buffer.data();
    for (int n = 0; n < d.n; ++n)
      for (int c = 0; c < d.c; ++c)
        for (int h = 0; h < d.h; ++h) {
          const int64_t base = int64_t{n} * d.n_stride + int64_t{c} * d.c_stride + int64_t{h} * d.h_stride;
          for (int w = 0; w < d.w; ++w) {
            Acc v = static_cast<Acc>(T::load(data, base + int64_t{w} * d.w_stride));
            if constexpr (std::is_same_v<Acc, float>)
              if (tf32) v = numerics::round_to_tf32(v);
            *out++ = v;
          }
        }
  });
  return buffer.data();
}

// The filter as dense KCRS in Acc, in cross-correlation orientation (taps flipped
// for CUDNN_CONVOLUTION).
template <class Acc>
const Acc* load_filter(const void* data, const cudnnFilterStruct& f, bool flip, bool tf32, std::vector<Acc>& buffer) {
  if (f.type == acc_type<Acc>() && f.format == CUDNN_TENSOR_NCHW && !flip && !tf32)
    return static_cast<const Acc*>(data);
  buffer.resize(static_cast<size_t>(f.k) * f.c * f.r * f.s);
  const bool krsc = f.format == CUDNN_TENSOR_NHWC;
  visit_type(f.type, [&](auto tag) {
    using T = decltype(tag);
    for (int k = 0; k < f.k; ++k)
      for (int c = 0; c < f.c; ++c)
        for (int r = 0; r < f.r; ++r)
          for (int s = 0; s < f.s; ++s) {
            const int rr = flip ? f.r - 1 - r : r, ss = flip ? f.s - 1 - s : s;
            const int64_t from = krsc ? ((int64_t{k} * f.r + rr) * f.s + ss) * f.c + c
                                      : ((int64_t{k} * f.c + c) * f.r + rr) * f.s + ss;
            Acc v = static_cast<Acc>(T::load(data, from));
            if constexpr (std::is_same_v<Acc, float>)
              if (tf32) v = numerics::round_to_tf32(v);
            buffer[((static_cast<size_t>(k) * f.c + c) * f.r + r) * f.s + s] = v;
          }
  });
  return buffer.data();
}

// out = alpha * result + beta * out over a strided tensor; beta == 0 never reads out.
template <class Acc>
void store_tensor(const Acc* result, void* out, const cudnnTensorStruct& d, Acc alpha, Acc beta) {
  visit_type(d.type, [&](auto tag) {
    using T = decltype(tag);
    const Acc* in = result;
    for (int n = 0; n < d.n; ++n)
      for (int c = 0; c < d.c; ++c)
        for (int h = 0; h < d.h; ++h) {
          const int64_t base = int64_t{n} * d.n_stride + int64_t{c} * d.c_stride + int64_t{h} * d.h_stride;
          for (int w = 0; w < d.w; ++w) {
            const int64_t i = base + int64_t{w} * d.w_stride;
            Acc v = alpha * *in++;
            if (beta != Acc(0)) v += beta * static_cast<Acc>(T::load(out, i));
            T::store(out, i, v);
          }
        }
  });
}

template <class Acc>
void store_filter(const Acc* result, void* out, const cudnnFilterStruct& f, bool flip, Acc alpha, Acc beta) {
  const bool krsc = f.format == CUDNN_TENSOR_NHWC;
  visit_type(f.type, [&](auto tag) {
    using T = decltype(tag);
    for (int k = 0; k < f.k; ++k)
      for (int c = 0; c < f.c; ++c)
        for (int r = 0; r < f.r; ++r)
          for (int s = 0; s < f.s; ++s) {
            const int rr = flip ? f.r - 1 - r : r, ss = flip ? f.s - 1 - s : s;
            const int64_t to = krsc ? ((int64_t{k} * f.r + rr) * f.s + ss) * f.c + c
                                    : ((int64_t{k} * f.c + c) * f.r + rr) * f.s + ss;
            Acc v = alpha * result[((static_cast<size_t>(k) * f.c + c) * f.r + r) * f.s + s];
            if (beta != Acc(0)) v += beta * static_cast<Acc>(T::load(out, to));
            T::store(out, to, v);
          }
  });
}

// ---------------------------------------------------------------- im2col / col2im
struct Geometry {
  int Cg, H, W, R, S, Ho, Wo, ph, pw, sh, sw, dh, dw;
  // The output columns ow whose input column ow*sw - pw + s*dw lies inside [0, W).
  void columns(int s, int* lo, int* hi) const {
    const int offset = s * dw - pw;
    *lo = offset >= 0 ? 0 : (-offset + sw - 1) / sw;
    const int last = W - 1 - offset;  // ow*sw <= last
    *hi = last < 0 ? 0 : std::min(Wo, last / sw + 1);
    if (*hi < *lo) *hi = *lo;
  }
};

// col (Cg*R*S, Ho*Wo) from one image's group of channels x (Cg, H, W).
template <class Acc>
void im2col(const Acc* x, Acc* col, const Geometry& g) {
  const int64_t P = int64_t{g.Ho} * g.Wo;
  for (int c = 0; c < g.Cg; ++c)
    for (int r = 0; r < g.R; ++r)
      for (int s = 0; s < g.S; ++s) {
        Acc* dst = col + ((int64_t{c} * g.R + r) * g.S + s) * P;
        int lo, hi;
        g.columns(s, &lo, &hi);
        const int offset = s * g.dw - g.pw;
        for (int oh = 0; oh < g.Ho; ++oh, dst += g.Wo) {
          const int ih = oh * g.sh - g.ph + r * g.dh;
          if (ih < 0 || ih >= g.H) {
            std::fill(dst, dst + g.Wo, Acc(0));
            continue;
          }
          const Acc* src = x + (int64_t{c} * g.H + ih) * g.W + offset;
          std::fill(dst, dst + lo, Acc(0));
          if (g.sw == 1) std::copy(src + lo, src + hi, dst + lo);
          else
            for (int ow = lo; ow < hi; ++ow) dst[ow] = src[int64_t{ow} * g.sw];
          std::fill(dst + hi, dst + g.Wo, Acc(0));
        }
      }
}

// dx (Cg, H, W) += col2im(dcol), the filter taps visited in `taps` order.
template <class Acc>
void col2im_add(const Acc* dcol, Acc* dx, const Geometry& g, const std::vector<int>& taps) {
  const int64_t P = int64_t{g.Ho} * g.Wo;
  for (int c = 0; c < g.Cg; ++c)
    for (int tap : taps) {
      const int r = tap / g.S, s = tap % g.S;
      const Acc* src = dcol + ((int64_t{c} * g.R + r) * g.S + s) * P;
      int lo, hi;
      g.columns(s, &lo, &hi);
      const int offset = s * g.dw - g.pw;
      for (int oh = 0; oh < g.Ho; ++oh, src += g.Wo) {
        const int ih = oh * g.sh - g.ph + r * g.dh;
        if (ih < 0 || ih >= g.H) continue;
        Acc* dst = dx + (int64_t{c} * g.H + ih) * g.W + offset;
        for (int ow = lo; ow < hi; ++ow) dst[int64_t{ow} * g.sw] += src[ow];
      }
    }
}

std::mt19937_64& random_engine() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  return engine;
}

// ---------------------------------------------------------------- the three directions
template <class Acc>
using RowMatrix = Eigen::Matrix<Acc, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class Acc>
using ConstMap = Eigen::Map<const RowMatrix<Acc>>;
template <class Acc>
using Map = Eigen::Map<RowMatrix<Acc>>;

template <class Acc>
void run_typed(const Execution& e) {
  const Problem& p = e.problem;
  const Geometry g{p.Cg, p.H, p.W, p.R, p.S, p.Ho, p.Wo, p.conv.pad_h, p.conv.pad_w,
                   p.conv.stride_h, p.conv.stride_w, p.conv.dilation_h, p.conv.dilation_w};
  const bool pointwise = p.R == 1 && p.S == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0;
  const bool flip = p.conv.mode == CUDNN_CONVOLUTION;
  const Acc alpha = static_cast<Acc>(e.alpha), beta = static_cast<Acc>(e.beta);
  const int64_t P = int64_t{p.Ho} * p.Wo, HW = int64_t{p.H} * p.W, CRS = int64_t{p.Cg} * p.R * p.S;
  std::vector<Acc> col(pointwise ? 0 : static_cast<size_t>(CRS * P));
  std::vector<Acc> buffer_a, buffer_b, result_buffer;

  switch (p.direction) {
    case Direction::forward: {
      const Acc* x = load_tensor<Acc>(e.input_a, p.x, e.tf32, buffer_a);
      const Acc* w = load_filter<Acc>(e.input_b, p.w, flip, e.tf32, buffer_b);
      const bool direct = p.y.type == acc_type<Acc>() && packed_nchw(p.y) && beta == Acc(0);
      if (!direct) result_buffer.resize(static_cast<size_t>(p.N) * p.K * P);
      Acc* y = direct ? static_cast<Acc*>(e.output) : result_buffer.data();
      for (int n = 0; n < p.N; ++n)
        for (int grp = 0; grp < p.groups; ++grp) {
          const Acc* xin = x + (int64_t{n} * p.C + int64_t{grp} * p.Cg) * HW;
          if (!pointwise) im2col(xin, col.data(), g);
          const ConstMap<Acc> wg(w + int64_t{grp} * p.Kg * CRS, p.Kg, CRS);
          const ConstMap<Acc> cols(pointwise ? xin : col.data(), CRS, P);
          Map<Acc> out(y + (int64_t{n} * p.K + int64_t{grp} * p.Kg) * P, p.Kg, P);
          out.noalias() = wg * cols;
        }
      if (direct) {
        if (alpha != Acc(1)) Eigen::Map<Eigen::Matrix<Acc, Eigen::Dynamic, 1>>(y, int64_t{p.N} * p.K * P) *= alpha;
      } else {
        store_tensor<Acc>(y, e.output, p.y, alpha, beta);
      }
      return;
    }
    case Direction::backward_data: {
      const Acc* dy = load_tensor<Acc>(e.input_a, p.y, e.tf32, buffer_a);
      const Acc* w = load_filter<Acc>(e.input_b, p.w, flip, e.tf32, buffer_b);
      const bool direct = p.x.type == acc_type<Acc>() && packed_nchw(p.x) && beta == Acc(0);
      if (!direct) result_buffer.resize(static_cast<size_t>(p.N) * p.C * HW);
      Acc* dx = direct ? static_cast<Acc*>(e.output) : result_buffer.data();
      std::vector<int> taps(static_cast<size_t>(p.R) * p.S);
      std::iota(taps.begin(), taps.end(), 0);
      if (e.nondeterministic) std::shuffle(taps.begin(), taps.end(), random_engine());
      if (!pointwise) std::fill(dx, dx + int64_t{p.N} * p.C * HW, Acc(0));
      for (int n = 0; n < p.N; ++n)
        for (int grp = 0; grp < p.groups; ++grp) {
          const ConstMap<Acc> wg(w + int64_t{grp} * p.Kg * CRS, p.Kg, CRS);
          const ConstMap<Acc> dyg(dy + (int64_t{n} * p.K + int64_t{grp} * p.Kg) * P, p.Kg, P);
          Acc* dxg = dx + (int64_t{n} * p.C + int64_t{grp} * p.Cg) * HW;
          if (pointwise) {
            Map<Acc>(dxg, CRS, P).noalias() = wg.transpose() * dyg;
          } else {
            Map<Acc>(col.data(), CRS, P).noalias() = wg.transpose() * dyg;
            col2im_add(col.data(), dxg, g, taps);
          }
        }
      if (direct) {
        if (alpha != Acc(1)) Eigen::Map<Eigen::Matrix<Acc, Eigen::Dynamic, 1>>(dx, int64_t{p.N} * p.C * HW) *= alpha;
      } else {
        store_tensor<Acc>(dx, e.output, p.x, alpha, beta);
      }
      return;
    }
    case Direction::backward_filter: {
      const Acc* x = load_tensor<Acc>(e.input_a, p.x, e.tf32, buffer_a);
      const Acc* dy = load_tensor<Acc>(e.input_b, p.y, e.tf32, buffer_b);
      const bool direct = p.w.type == acc_type<Acc>() && p.w.format == CUDNN_TENSOR_NCHW && !flip && beta == Acc(0);
      if (!direct) result_buffer.resize(static_cast<size_t>(p.K) * CRS);
      Acc* dw = direct ? static_cast<Acc*>(e.output) : result_buffer.data();
      std::fill(dw, dw + int64_t{p.K} * CRS, Acc(0));
      std::vector<int> images(static_cast<size_t>(p.N));
      std::iota(images.begin(), images.end(), 0);
      if (e.nondeterministic) std::shuffle(images.begin(), images.end(), random_engine());
      for (int n : images)
        for (int grp = 0; grp < p.groups; ++grp) {
          const Acc* xin = x + (int64_t{n} * p.C + int64_t{grp} * p.Cg) * HW;
          if (!pointwise) im2col(xin, col.data(), g);
          const ConstMap<Acc> cols(pointwise ? xin : col.data(), CRS, P);
          const ConstMap<Acc> dyg(dy + (int64_t{n} * p.K + int64_t{grp} * p.Kg) * P, p.Kg, P);
          Map<Acc> dwg(dw + int64_t{grp} * p.Kg * CRS, p.Kg, CRS);
          dwg.noalias() += dyg * cols.transpose();
        }
      if (direct) {
        if (alpha != Acc(1)) Eigen::Map<Eigen::Matrix<Acc, Eigen::Dynamic, 1>>(dw, int64_t{p.K} * CRS) *= alpha;
      } else {
        store_filter<Acc>(dw, e.output, p.w, flip, alpha, beta);
      }
      return;
    }
  }
}

// ---------------------------------------------------------------- the API calls
const char* call_name(Direction d) {
  switch (d) {
    case Direction::forward: return "cudnnConvolutionForward";
    case Direction::backward_data: return "cudnnConvolutionBackwardData";
    case Direction::backward_filter: return "cudnnConvolutionBackwardFilter";
  }
  return "?";
}

struct Call {
  Direction direction;
  cudnnHandle_t handle;
  const void* alpha;
  const void* beta;
  const cudnnTensorStruct* x;
  const cudnnFilterStruct* w;
  const cudnnConvolutionStruct* conv;
  const cudnnTensorStruct* y;
  const void* input_a;  // forward x, backward data dy, backward filter x
  const void* input_b;  // forward w, backward data w, backward filter dy
  void* output;         // y, dx, dw
  int algo;
  void* workspace;
  size_t workspace_size;
};

cudnnStatus_t checked_call(const Call& c, std::string* log) {
  const Direction d = c.direction;
  Problem p;
  if (cudnnStatus_t s = make_problem(d, c.handle, c.x, c.w, c.conv, c.y, &p)) return s;
  if (!c.alpha || !c.beta || !c.input_a || !c.input_b || !c.output)
    return fail(CUDNN_STATUS_BAD_PARAM, "alpha, beta or a data pointer is NULL");
  if (c.algo < 0 || c.algo >= algorithm_count(d)) return fail(CUDNN_STATUS_BAD_PARAM, "algo is out of range");
  const cudnnMathType_t math = c.conv->math;
  *log += std::string(" algo=") + std::to_string(c.algo) + " (" + algorithm_name(d, c.algo) + ") math=" +
          math_type_name(math);
  std::string why;
  if (algorithm_support(d, c.algo, p, &why) != CUDNN_STATUS_SUCCESS) return fail(CUDNN_STATUS_NOT_SUPPORTED, why);
  if (knob_rejects(d, c.algo))
    return fail(CUDNN_STATUS_NOT_SUPPORTED, std::string(algorithm_name(d, c.algo)) +
                                                ": refused by KILN_EMULATE_CUDNN_REJECT (an emulator test knob)");
  if (knob_strict_math() && reported_math_type(d, c.algo, p, math) != math)
    return fail(CUDNN_STATUS_NOT_SUPPORTED,
                std::string(algorithm_name(d, c.algo)) + " runs with " +
                    math_type_name(reported_math_type(d, c.algo, p, math)) + ", not the descriptor's " +
                    math_type_name(math) + " (KILN_EMULATE_CUDNN_STRICT_MATH)");
  const size_t required = workspace_bytes(d, c.algo, p);
  *log += " workspace=" + std::to_string(required) + "/" + std::to_string(c.workspace_size);
  if (c.workspace_size < required)
    return fail(CUDNN_STATUS_BAD_PARAM, std::string(algorithm_name(d, c.algo)) + " needs " +
                                            std::to_string(required) + " bytes of workspace, got " +
                                            std::to_string(c.workspace_size));
  if (required > 0 && !c.workspace) return fail(CUDNN_STATUS_BAD_PARAM, "workSpace is NULL");

  Execution e;
  e.problem = p;
  e.algo = c.algo;
  e.tf32 = runs_tf32(d, c.algo, p, math);
  e.nondeterministic = algorithm_determinism(d, c.algo) == CUDNN_NON_DETERMINISTIC;
  const bool double_scalars = p.x.type == CUDNN_DATA_DOUBLE;
  e.alpha = double_scalars ? *static_cast<const double*>(c.alpha) : *static_cast<const float*>(c.alpha);
  e.beta = double_scalars ? *static_cast<const double*>(c.beta) : *static_cast<const float*>(c.beta);
  e.input_a = c.input_a;
  e.input_b = c.input_b;
  e.output = c.output;
  e.workspace = c.workspace;
  e.workspace_bytes = required;

  // What the kernels would touch must be device memory, or they fault.
  const size_t element = p.element_bytes();
  const size_t filter_bytes = static_cast<size_t>(p.K) * p.Cg * p.R * p.S * element;
  const size_t x_bytes = tensor_bytes(p.x, element), y_bytes = tensor_bytes(p.y, element);
  struct Range {
    const char* name;
    const void* pointer;
    size_t bytes;
  };
  const Range ranges[] = {
      {d == Direction::backward_data ? "dy" : "x", c.input_a, d == Direction::backward_data ? y_bytes : x_bytes},
      {d == Direction::backward_filter ? "dy" : "w", c.input_b,
       d == Direction::backward_filter ? y_bytes : filter_bytes},
      {d == Direction::forward ? "y" : d == Direction::backward_data ? "dx" : "dw", c.output,
       d == Direction::forward ? y_bytes : d == Direction::backward_data ? x_bytes : filter_bytes},
      {"workSpace", c.workspace, required},
  };
  for (const Range& range : ranges) {
    if (range.bytes == 0 || is_device_range(range.pointer, range.bytes)) continue;
    const std::string message = std::string(call_name(d)) + ": " + range.name + " (" + std::to_string(range.bytes) +
                                " bytes) is not device memory (not inside any cudaMalloc allocation): "
                                "an illegal address";
    const cudaError_t queued = enqueue(c.handle->stream, call_name(d), [message] {
      set_error_detail(cudaErrorIllegalAddress, message);
      return cudaErrorIllegalAddress;
    });
    return queued == cudaSuccess ? CUDNN_STATUS_SUCCESS
                                 : fail(CUDNN_STATUS_EXECUTION_FAILED, "the stream does not exist");
  }

  const cudaError_t queued = enqueue(c.handle->stream, call_name(d), [e] {
    if (e.workspace_bytes > 0) std::memset(e.workspace, 0xFF, std::min<size_t>(e.workspace_bytes, size_t{1} << 20));
    run_convolution(e);
    return cudaSuccess;
  });
  if (queued != cudaSuccess) return fail(CUDNN_STATUS_EXECUTION_FAILED, "the stream does not exist");
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t convolution_call(const Call& c) {
  std::string log = call_name(c.direction);
  const cudnnStatus_t status = checked_call(c, &log);
  knob_log(log + " status=" + cudnnGetErrorString(status));
  return status;
}

}  // namespace

void run_convolution(const Execution& e) {
  if (e.problem.x.type == CUDNN_DATA_DOUBLE) run_typed<double>(e);
  else run_typed<float>(e);
}

}  // namespace kiln::emulator::dnn

using kiln::emulator::dnn::Call;
using kiln::emulator::dnn::Direction;

extern "C" {

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t handle, const void* alpha, const cudnnTensorDescriptor_t xDesc,
                                      const void* x, const cudnnFilterDescriptor_t wDesc, const void* w,
                                      const cudnnConvolutionDescriptor_t convDesc, cudnnConvolutionFwdAlgo_t algo,
                                      void* workSpace, size_t workSpaceSizeInBytes, const void* beta,
                                      const cudnnTensorDescriptor_t yDesc, void* y) {
  return kiln::emulator::dnn::convolution_call(Call{Direction::forward, handle, alpha, beta, xDesc, wDesc, convDesc,
                                                    yDesc, x, w, y, algo, workSpace, workSpaceSizeInBytes});
}

cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t handle, const void* alpha, const cudnnFilterDescriptor_t wDesc,
                                           const void* w, const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                           const cudnnConvolutionDescriptor_t convDesc,
                                           cudnnConvolutionBwdDataAlgo_t algo, void* workSpace,
                                           size_t workSpaceSizeInBytes, const void* beta,
                                           const cudnnTensorDescriptor_t dxDesc, void* dx) {
  return kiln::emulator::dnn::convolution_call(Call{Direction::backward_data, handle, alpha, beta, dxDesc, wDesc,
                                                    convDesc, dyDesc, dy, w, dx, algo, workSpace,
                                                    workSpaceSizeInBytes});
}

cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t handle, const void* alpha,
                                             const cudnnTensorDescriptor_t xDesc, const void* x,
                                             const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                             const cudnnConvolutionDescriptor_t convDesc,
                                             cudnnConvolutionBwdFilterAlgo_t algo, void* workSpace,
                                             size_t workSpaceSizeInBytes, const void* beta,
                                             const cudnnFilterDescriptor_t dwDesc, void* dw) {
  return kiln::emulator::dnn::convolution_call(Call{Direction::backward_filter, handle, alpha, beta, xDesc, dwDesc,
                                                    convDesc, dyDesc, x, dy, dw, algo, workSpace,
                                                    workSpaceSizeInBytes});
}

}  // extern "C"
