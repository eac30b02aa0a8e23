// The emulated cuDNN (emulator/src/cudnn_*.cpp, KILN_CUDA=EMULATE builds only).
//
// Part 1, the library on its own: forward, backward data and backward filter against
// naive loops written here, for every algorithm the heuristics call supported, over
// padding, stride, dilation, groups (depthwise too), both modes, NHWC, explicit strides,
// f32/f64/f16/bf16 and alpha/beta; the heuristics' answer; the documented statuses;
// non-determinism and TF32; the emulator's test knobs; and the speed of a cnn5-sized
// layer. Uses only the CUDA runtime API and cuDNN itself.
//
// Part 2, kiln's algorithm choice (engine/cuda/cudnn_conv.cpp) driven through the knobs:
// falling back past an algorithm that fails at execution or whose workspace cannot be
// allocated, setting the math type of the chosen result, and Context::set_deterministic;
// and an empty batch, which cuDNN refuses and kiln must not hand it.
#include <cuda_runtime.h>
#include <cudnn.h>
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#if defined(KILN_WITH_CUDA) && KILN_WITH_CUDA  // part 2 drives kiln itself
#include "engine/core/rng.h"
#include "engine/cuda/context.h"
#include "engine/ops/conv.h"
#include "engine/tensor/factory.h"
#include "test_util.h"
#endif

namespace {

// ---- number formats, independent of the emulator's conversions
double half_to_double(uint16_t h) {
  const int exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  const double sign = (h & 0x8000) ? -1.0 : 1.0;
  if (exponent == 0) return sign * std::ldexp(static_cast<double>(mantissa), -24);
  if (exponent == 31) return mantissa ? std::numeric_limits<double>::quiet_NaN() : sign * INFINITY;
  return sign * std::ldexp(static_cast<double>(mantissa + 1024), exponent - 25);
}
uint16_t exact_half(double f) {  // for multiples of 1/16 below 64 only
  if (f == 0) return 0;
  int e = 0;
  const double m = std::frexp(std::fabs(f), &e);
  const uint16_t bits = static_cast<uint16_t>(((e + 14) << 10) | (static_cast<int>(m * 2048) - 1024));
  REQUIRE(half_to_double(bits) == std::fabs(f));
  return static_cast<uint16_t>(bits | (f < 0 ? 0x8000 : 0));
}
double bf16_to_double(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint16_t exact_bf16(double d) {
  const float f = static_cast<float>(d);
  uint32_t u;
  std::memcpy(&u, &f, 4);
  REQUIRE((u & 0xffff) == 0);
  return static_cast<uint16_t>(u >> 16);
}

size_t type_bytes(cudnnDataType_t t) {
  return t == CUDNN_DATA_DOUBLE ? 8 : (t == CUDNN_DATA_HALF || t == CUDNN_DATA_BFLOAT16) ? 2 : 4;
}

// Host values (double) <-> the bytes of one data type.
std::vector<uint8_t> encode(const std::vector<double>& v, cudnnDataType_t t) {
  std::vector<uint8_t> bytes(v.size() * type_bytes(t));
  for (size_t i = 0; i < v.size(); ++i) {
    uint8_t* at = bytes.data() + i * type_bytes(t);
    if (t == CUDNN_DATA_FLOAT) {
      const float f = static_cast<float>(v[i]);
      std::memcpy(at, &f, 4);
    } else if (t == CUDNN_DATA_DOUBLE) {
      std::memcpy(at, &v[i], 8);
    } else {
      const uint16_t h = t == CUDNN_DATA_HALF ? exact_half(v[i]) : exact_bf16(v[i]);
      std::memcpy(at, &h, 2);
    }
  }
  return bytes;
}
std::vector<double> decode(const std::vector<uint8_t>& bytes, cudnnDataType_t t) {
  std::vector<double> v(bytes.size() / type_bytes(t));
  for (size_t i = 0; i < v.size(); ++i) {
    const uint8_t* at = bytes.data() + i * type_bytes(t);
    if (t == CUDNN_DATA_FLOAT) {
      float f;
      std::memcpy(&f, at, 4);
      v[i] = f;
    } else if (t == CUDNN_DATA_DOUBLE) {
      std::memcpy(&v[i], at, 8);
    } else {
      uint16_t h;
      std::memcpy(&h, at, 2);
      v[i] = t == CUDNN_DATA_HALF ? half_to_double(h) : bf16_to_double(h);
    }
  }
  return v;
}

// Multiples of 1/16 in [-2, 2): exact in every format, and their products' sums stay
// exact in f32 for these sizes, so f32 results can be compared closely.
std::vector<double> grid(size_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<double> v(count);
  for (double& x : v) x = static_cast<double>(static_cast<int>(rng() % 64) - 32) / 16.0;
  return v;
}

struct DeviceBuffer {
  void* pointer = nullptr;
  size_t bytes = 0;
  explicit DeviceBuffer(size_t n) : bytes(n) { REQUIRE(cudaMalloc(&pointer, n ? n : 1) == cudaSuccess); }
  ~DeviceBuffer() { cudaFree(pointer); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void upload(const std::vector<uint8_t>& host) {
    REQUIRE(host.size() <= bytes);
    REQUIRE(cudaMemcpy(pointer, host.data(), host.size(), cudaMemcpyHostToDevice) == cudaSuccess);
  }
  std::vector<uint8_t> download() const {
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    std::vector<uint8_t> host(bytes);
    REQUIRE(cudaMemcpy(host.data(), pointer, bytes, cudaMemcpyDeviceToHost) == cudaSuccess);
    return host;
  }
};

struct Handle {
  cudnnHandle_t h = nullptr;
  Handle() { REQUIRE(cudnnCreate(&h) == CUDNN_STATUS_SUCCESS); }
  ~Handle() { cudnnDestroy(h); }
};
struct TensorDesc {
  cudnnTensorDescriptor_t d = nullptr;
  TensorDesc() { REQUIRE(cudnnCreateTensorDescriptor(&d) == CUDNN_STATUS_SUCCESS); }
  ~TensorDesc() { cudnnDestroyTensorDescriptor(d); }
};
struct FilterDesc {
  cudnnFilterDescriptor_t d = nullptr;
  FilterDesc() { REQUIRE(cudnnCreateFilterDescriptor(&d) == CUDNN_STATUS_SUCCESS); }
  ~FilterDesc() { cudnnDestroyFilterDescriptor(d); }
};
struct ConvDesc {
  cudnnConvolutionDescriptor_t d = nullptr;
  ConvDesc() { REQUIRE(cudnnCreateConvolutionDescriptor(&d) == CUDNN_STATUS_SUCCESS); }
  ~ConvDesc() { cudnnDestroyConvolutionDescriptor(d); }
};

// Sets an environment variable for one scope.
struct ScopedEnv {
  std::string name;
  ScopedEnv(const char* n, const std::string& value) : name(n) { setenv(n, value.c_str(), 1); }
  ~ScopedEnv() { unsetenv(name.c_str()); }
};

struct ConvCase {
  const char* name;
  int N, C, H, W, K, R, S;
  int ph, pw, sh, sw, dh, dw, groups;
  cudnnTensorFormat_t format = CUDNN_TENSOR_NCHW;
  cudnnDataType_t type = CUDNN_DATA_FLOAT;
  cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  double alpha = 1, beta = 0;
  bool padded_strides = false;  // x and y described with cudnnSetTensor4dDescriptorEx, rows padded by 3
  int Ho() const { return (H + 2 * ph - dh * (R - 1) - 1) / sh + 1; }
  int Wo() const { return (W + 2 * pw - dw * (S - 1) - 1) / sw + 1; }
  int Cg() const { return C / groups; }
};

// Index of logical (n, c, h, w) in a tensor's memory, and its size in elements.
struct Layout4 {
  int n, c, h, w;
  int64_t ns, cs, hs, ws;
  int64_t at(int a, int b, int y, int x) const { return a * ns + b * cs + y * hs + x * ws; }
  int64_t extent() const { return (n - 1) * ns + (c - 1) * cs + (h - 1) * hs + (w - 1) * ws + 1; }
};
Layout4 layout_of(int n, int c, int h, int w, cudnnTensorFormat_t f, bool padded) {
  if (padded) {
    const int64_t row = w + 3;
    return {n, c, h, w, c * h * row, h * row, row, 1};
  }
  if (f == CUDNN_TENSOR_NHWC) return {n, c, h, w, int64_t{h} * w * c, 1, int64_t{w} * c, c};
  return {n, c, h, w, int64_t{c} * h * w, int64_t{h} * w, w, 1};
}

void set_tensor(const TensorDesc& d, const Layout4& l, cudnnDataType_t t) {
  REQUIRE(cudnnSetTensor4dDescriptorEx(d.d, t, l.n, l.c, l.h, l.w, static_cast<int>(l.ns), static_cast<int>(l.cs),
                                       static_cast<int>(l.hs), static_cast<int>(l.ws)) == CUDNN_STATUS_SUCCESS);
}

// Scatter logical NCHW values into a layout (positions outside the tensor keep `fill`).
std::vector<double> scatter(const std::vector<double>& logical, const Layout4& l, double fill) {
  std::vector<double> out(static_cast<size_t>(l.extent()), fill);
  size_t i = 0;
  for (int a = 0; a < l.n; ++a)
    for (int b = 0; b < l.c; ++b)
      for (int y = 0; y < l.h; ++y)
        for (int x = 0; x < l.w; ++x) out[static_cast<size_t>(l.at(a, b, y, x))] = logical[i++];
  return out;
}
std::vector<double> gather(const std::vector<double>& stored, const Layout4& l) {
  std::vector<double> out;
  for (int a = 0; a < l.n; ++a)
    for (int b = 0; b < l.c; ++b)
      for (int y = 0; y < l.h; ++y)
        for (int x = 0; x < l.w; ++x) out.push_back(stored[static_cast<size_t>(l.at(a, b, y, x))]);
  return out;
}

// ---- the naive reference, on logical NCHW / KCRS arrays in double
struct Reference {
  const ConvCase& c;
  double w_at(const std::vector<double>& w, int k, int ch, int r, int s) const {
    if (c.mode == CUDNN_CONVOLUTION) r = c.R - 1 - r, s = c.S - 1 - s;
    return w[((static_cast<size_t>(k) * c.Cg() + ch) * c.R + r) * c.S + s];
  }
  // Calls fn(n, k, oh, ow, channel, ci, r, s, ih, iw) for every tap inside the image.
  template <class Fn>
  void taps(Fn&& fn) const {
    const int Kg = c.K / c.groups;
    for (int n = 0; n < c.N; ++n)
      for (int k = 0; k < c.K; ++k)
        for (int oh = 0; oh < c.Ho(); ++oh)
          for (int ow = 0; ow < c.Wo(); ++ow)
            for (int ci = 0; ci < c.Cg(); ++ci)
              for (int r = 0; r < c.R; ++r)
                for (int s = 0; s < c.S; ++s) {
                  const int ih = oh * c.sh - c.ph + r * c.dh, iw = ow * c.sw - c.pw + s * c.dw;
                  if (ih < 0 || ih >= c.H || iw < 0 || iw >= c.W) continue;
                  fn(n, k, oh, ow, (k / Kg) * c.Cg() + ci, ci, r, s, ih, iw);
                }
  }
  size_t xi(int n, int ch, int h, int w) const { return ((static_cast<size_t>(n) * c.C + ch) * c.H + h) * c.W + w; }
  size_t yi(int n, int k, int h, int w) const {
    return ((static_cast<size_t>(n) * c.K + k) * c.Ho() + h) * c.Wo() + w;
  }
  std::vector<double> forward(const std::vector<double>& x, const std::vector<double>& w) const {
    std::vector<double> y(static_cast<size_t>(c.N) * c.K * c.Ho() * c.Wo(), 0.0);
    taps([&](int n, int k, int oh, int ow, int ch, int ci, int r, int s, int ih, int iw) {
      y[yi(n, k, oh, ow)] += w_at(w, k, ci, r, s) * x[xi(n, ch, ih, iw)];
    });
    return y;
  }
  std::vector<double> backward_data(const std::vector<double>& dy, const std::vector<double>& w) const {
    std::vector<double> dx(static_cast<size_t>(c.N) * c.C * c.H * c.W, 0.0);
    taps([&](int n, int k, int oh, int ow, int ch, int ci, int r, int s, int ih, int iw) {
      dx[xi(n, ch, ih, iw)] += w_at(w, k, ci, r, s) * dy[yi(n, k, oh, ow)];
    });
    return dx;
  }
  std::vector<double> backward_filter(const std::vector<double>& x, const std::vector<double>& dy) const {
    std::vector<double> dw(static_cast<size_t>(c.K) * c.Cg() * c.R * c.S, 0.0);
    taps([&](int n, int k, int oh, int ow, int ch, int ci, int r, int s, int ih, int iw) {
      int rr = r, ss = s;
      if (c.mode == CUDNN_CONVOLUTION) rr = c.R - 1 - r, ss = c.S - 1 - s;
      dw[((static_cast<size_t>(k) * c.Cg() + ci) * c.R + rr) * c.S + ss] += x[xi(n, ch, ih, iw)] * dy[yi(n, k, oh, ow)];
    });
    return dw;
  }
};

// Allowed error: the output's own rounding (f16/bf16 store once), f32 accumulation.
double tolerance(cudnnDataType_t t, double magnitude) {
  switch (t) {
    case CUDNN_DATA_DOUBLE: return 1e-12 * (1 + magnitude);
    case CUDNN_DATA_FLOAT: return 1e-5 * (1 + magnitude);
    case CUDNN_DATA_HALF: return magnitude / 1024 + 1e-4;
    default: return magnitude / 128 + 1e-3;  // bfloat16
  }
}

// The descriptors of one case, set up for all three directions.
struct CaseSetup {
  const ConvCase& c;
  TensorDesc x, y;
  FilterDesc w;
  ConvDesc conv;
  Layout4 xl, yl, wl;
  explicit CaseSetup(const ConvCase& cc)
      : c(cc),
        xl(layout_of(cc.N, cc.C, cc.H, cc.W, cc.format, cc.padded_strides)),
        yl(layout_of(cc.N, cc.K, cc.Ho(), cc.Wo(), cc.format, cc.padded_strides)),
        wl(layout_of(cc.K, cc.Cg(), cc.R, cc.S, cc.format, false)) {
    set_tensor(x, xl, c.type);
    set_tensor(y, yl, c.type);
    REQUIRE(cudnnSetFilter4dDescriptor(w.d, c.type, c.format, c.K, c.Cg(), c.R, c.S) == CUDNN_STATUS_SUCCESS);
    const cudnnDataType_t compute = c.type == CUDNN_DATA_DOUBLE ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
    REQUIRE(cudnnSetConvolution2dDescriptor(conv.d, c.ph, c.pw, c.sh, c.sw, c.dh, c.dw, c.mode, compute) ==
            CUDNN_STATUS_SUCCESS);
    REQUIRE(cudnnSetConvolutionGroupCount(conv.d, c.groups) == CUDNN_STATUS_SUCCESS);
    REQUIRE(cudnnSetConvolutionMathType(conv.d, CUDNN_FMA_MATH) == CUDNN_STATUS_SUCCESS);
    int n = 0, k = 0, ho = 0, wo = 0;
    REQUIRE(cudnnGetConvolution2dForwardOutputDim(conv.d, x.d, w.d, &n, &k, &ho, &wo) == CUDNN_STATUS_SUCCESS);
    REQUIRE(n == c.N);
    REQUIRE(k == c.K);
    REQUIRE(ho == c.Ho());
    REQUIRE(wo == c.Wo());
  }
};

// Scalars as cuDNN reads them: double for DOUBLE data, float otherwise.
struct Scalars {
  double a64, b64;
  float a32, b32;
  bool wide;
  Scalars(double alpha, double beta, cudnnDataType_t t)
      : a64(alpha), b64(beta), a32(static_cast<float>(alpha)), b32(static_cast<float>(beta)),
        wide(t == CUDNN_DATA_DOUBLE) {}
  const void* alpha() const { return wide ? static_cast<const void*>(&a64) : &a32; }
  const void* beta() const { return wide ? static_cast<const void*>(&b64) : &b32; }
};

void compare(const std::vector<double>& got, const std::vector<double>& want, cudnnDataType_t t) {
  REQUIRE(got.size() == want.size());
  double magnitude = 0;
  for (double v : want) magnitude = std::max(magnitude, std::fabs(v));
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::fabs(got[i] - want[i]) > tolerance(t, magnitude) || std::isnan(got[i])) {
      FAIL_CHECK("element " << i << ": got " << got[i] << ", want " << want[i]);
      return;
    }
  }
}

// Every algorithm the heuristics call supported, in all three directions, against
// the reference, with the case's alpha and beta (the old output: grid values, or NaN
// when beta is 0, which must never be read).
void check_case(const ConvCase& c) {
  CAPTURE(c.name);
  Handle handle;
  CaseSetup s(c);
  const Reference ref{c};
  const std::vector<double> x = grid(static_cast<size_t>(c.N) * c.C * c.H * c.W, 1);
  const std::vector<double> w = grid(static_cast<size_t>(c.K) * c.Cg() * c.R * c.S, 2);
  const std::vector<double> dy = grid(static_cast<size_t>(c.N) * c.K * c.Ho() * c.Wo(), 3);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double old_fill = c.beta == 0 ? nan : 0.0;
  auto old_values = [&](size_t count, uint32_t seed) {
    return c.beta == 0 ? std::vector<double>(count, nan) : grid(count, seed);
  };
  const Scalars scalars(c.alpha, c.beta, c.type);
  const size_t es = type_bytes(c.type);
  DeviceBuffer dx_in(s.xl.extent() * es), dw_in(s.wl.extent() * es), dy_in(s.yl.extent() * es);
  dx_in.upload(encode(scatter(x, s.xl, 0.0), c.type));
  dw_in.upload(encode(scatter(w, s.wl, 0.0), c.type));
  dy_in.upload(encode(scatter(dy, s.yl, 0.0), c.type));
  auto blend = [&](const std::vector<double>& result, const std::vector<double>& old) {
    std::vector<double> out(result.size());
    for (size_t i = 0; i < out.size(); ++i) out[i] = c.alpha * result[i] + (c.beta == 0 ? 0.0 : c.beta * old[i]);
    return out;
  };
  auto encode_old = [&](const std::vector<double>& old, const Layout4& l) {
    // NaN has no exact half/bf16 encoding helper: write NaN bytes directly.
    if (c.beta == 0) return std::vector<uint8_t>(static_cast<size_t>(l.extent()) * es, 0xFF);
    return encode(scatter(old, l, old_fill), c.type);
  };

  int tried = 0;
  {  // forward
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int returned = 0;
    REQUIRE(cudnnGetConvolutionForwardAlgorithm_v7(handle.h, s.x.d, s.w.d, s.conv.d, s.y.d,
                                                   CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &returned,
                                                   perf) == CUDNN_STATUS_SUCCESS);
    REQUIRE(returned == CUDNN_CONVOLUTION_FWD_ALGO_COUNT);
    const std::vector<double> want_raw = ref.forward(x, w);
    for (int i = 0; i < returned; ++i) {
      if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
      CAPTURE(perf[i].algo);
      const std::vector<double> old = old_values(want_raw.size(), 4);
      DeviceBuffer out(s.yl.extent() * es), workspace(perf[i].memory);
      out.upload(encode_old(old, s.yl));
      REQUIRE(cudnnConvolutionForward(handle.h, scalars.alpha(), s.x.d, dx_in.pointer, s.w.d, dw_in.pointer,
                                      s.conv.d, perf[i].algo, workspace.pointer, perf[i].memory, scalars.beta(), s.y.d,
                                      out.pointer) == CUDNN_STATUS_SUCCESS);
      compare(gather(decode(out.download(), c.type), s.yl), blend(want_raw, old), c.type);
      ++tried;
    }
  }
  {  // backward data
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int returned = 0;
    REQUIRE(cudnnGetConvolutionBackwardDataAlgorithm_v7(handle.h, s.w.d, s.y.d, s.conv.d, s.x.d,
                                                        CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &returned,
                                                        perf) == CUDNN_STATUS_SUCCESS);
    REQUIRE(returned == CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT);
    const std::vector<double> want_raw = ref.backward_data(dy, w);
    for (int i = 0; i < returned; ++i) {
      if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
      CAPTURE(perf[i].algo);
      const std::vector<double> old = old_values(want_raw.size(), 5);
      DeviceBuffer out(s.xl.extent() * es), workspace(perf[i].memory);
      out.upload(encode_old(old, s.xl));
      REQUIRE(cudnnConvolutionBackwardData(handle.h, scalars.alpha(), s.w.d, dw_in.pointer, s.y.d, dy_in.pointer,
                                           s.conv.d, perf[i].algo, workspace.pointer, perf[i].memory, scalars.beta(),
                                           s.x.d, out.pointer) == CUDNN_STATUS_SUCCESS);
      compare(gather(decode(out.download(), c.type), s.xl), blend(want_raw, old), c.type);
      ++tried;
    }
  }
  {  // backward filter
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    int returned = 0;
    REQUIRE(cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle.h, s.x.d, s.y.d, s.conv.d, s.w.d,
                                                          CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &returned,
                                                          perf) == CUDNN_STATUS_SUCCESS);
    REQUIRE(returned == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT);
    const std::vector<double> want_raw = ref.backward_filter(x, dy);
    for (int i = 0; i < returned; ++i) {
      if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
      CAPTURE(perf[i].algo);
      const std::vector<double> old = old_values(want_raw.size(), 6);
      DeviceBuffer out(s.wl.extent() * es), workspace(perf[i].memory);
      out.upload(encode_old(old, s.wl));
      REQUIRE(cudnnConvolutionBackwardFilter(handle.h, scalars.alpha(), s.x.d, dx_in.pointer, s.y.d, dy_in.pointer,
                                             s.conv.d, perf[i].algo, workspace.pointer, perf[i].memory,
                                             scalars.beta(), s.w.d, out.pointer) == CUDNN_STATUS_SUCCESS);
      compare(gather(decode(out.download(), c.type), s.wl), blend(want_raw, old), c.type);
      ++tried;
    }
  }
  CHECK(tried >= 3);
}

}  // namespace

// ==================================================================== part 1: the library

TEST_CASE("emulated cudnn: every supported algorithm matches the naive loops, f32 NCHW") {
  check_case({"3x3 pad 1", 2, 3, 7, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1});
  check_case({"1x1 pointwise", 2, 5, 4, 3, 6, 1, 1, 0, 0, 1, 1, 1, 1, 1});
  check_case({"stride 2, dilation 2, 3x2 kernel, uneven padding", 2, 3, 9, 8, 4, 3, 2, 2, 1, 2, 3, 2, 2, 1});
  check_case({"5x5 no padding (Winograd non-fused, FFT)", 1, 2, 9, 9, 3, 5, 5, 0, 0, 1, 1, 1, 1, 1});
  check_case({"1x1 stride 2 (downsample)", 3, 4, 7, 7, 5, 1, 1, 0, 0, 2, 2, 1, 1, 1});
}

TEST_CASE("emulated cudnn: groups, depthwise, convolution mode, alpha/beta and explicit strides") {
  ConvCase grouped{"groups 2", 2, 4, 6, 5, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2};
  check_case(grouped);
  check_case({"depthwise with multiplier 2, stride 2", 2, 4, 7, 7, 8, 3, 3, 1, 1, 2, 2, 1, 1, 4});
  ConvCase flipped{"CUDNN_CONVOLUTION (flipped taps), 3x2", 2, 3, 6, 7, 4, 3, 2, 1, 0, 1, 1, 1, 1, 1};
  flipped.mode = CUDNN_CONVOLUTION;
  check_case(flipped);
  ConvCase blended{"alpha 0.5, beta -1.5", 2, 3, 5, 5, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1};
  blended.alpha = 0.5, blended.beta = -1.5;
  check_case(blended);
  ConvCase strided{"rows padded by 3 (cudnnSetTensor4dDescriptorEx)", 2, 3, 5, 6, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1};
  strided.padded_strides = true;
  strided.beta = 1;
  check_case(strided);
}

TEST_CASE("emulated cudnn: NHWC tensors and KRSC filters, f64, f16 and bf16") {
  ConvCase nhwc{"NHWC, groups 2, stride 2", 2, 4, 7, 6, 6, 3, 3, 1, 1, 2, 2, 1, 1, 2};
  nhwc.format = CUDNN_TENSOR_NHWC;
  check_case(nhwc);
  ConvCase f64{"f64 CUDNN_CONVOLUTION, alpha 2 beta 0.5", 2, 3, 6, 6, 4, 3, 3, 1, 1, 1, 1, 2, 1, 1};
  f64.type = CUDNN_DATA_DOUBLE;
  f64.mode = CUDNN_CONVOLUTION;
  f64.alpha = 2, f64.beta = 0.5;
  check_case(f64);
  ConvCase f16{"f16 NCHW", 2, 4, 6, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1};
  f16.type = CUDNN_DATA_HALF;
  check_case(f16);
  ConvCase f16_beta = f16;
  f16_beta.name = "f16 NHWC, beta 1";
  f16_beta.format = CUDNN_TENSOR_NHWC;
  f16_beta.beta = 1;
  check_case(f16_beta);
  ConvCase bf16{"bf16 NHWC depthwise", 2, 4, 6, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 4};
  bf16.type = CUDNN_DATA_BFLOAT16;
  bf16.format = CUDNN_TENSOR_NHWC;
  check_case(bf16);
}

TEST_CASE("emulated cudnn: the v7 heuristics list every algorithm with status, workspace, determinism, math") {
  Handle handle;
  ConvCase c{"3x3", 2, 4, 8, 8, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1};
  CaseSetup s(c);
  int count = 0;
  REQUIRE(cudnnGetConvolutionForwardAlgorithmMaxCount(handle.h, &count) == CUDNN_STATUS_SUCCESS);
  CHECK(count == CUDNN_CONVOLUTION_FWD_ALGO_COUNT);
  cudnnConvolutionFwdAlgoPerf_t fwd[8];
  int returned = 0;
  REQUIRE(cudnnGetConvolutionForwardAlgorithm_v7(handle.h, s.x.d, s.w.d, s.conv.d, s.y.d, 8, &returned, fwd) ==
          CUDNN_STATUS_SUCCESS);
  REQUIRE(returned == 8);
  bool seen_unsupported = false;
  for (const auto& perf : fwd) {
    CAPTURE(perf.algo);
    if (perf.status != CUDNN_STATUS_SUCCESS) seen_unsupported = true;
    else CHECK_FALSE(seen_unsupported);  // supported ones come first
    CHECK(perf.mathType == CUDNN_FMA_MATH);  // what the descriptor asked for
    CHECK(perf.determinism == CUDNN_DETERMINISTIC);
    if (perf.algo == CUDNN_CONVOLUTION_FWD_ALGO_DIRECT) CHECK(perf.status == CUDNN_STATUS_NOT_SUPPORTED);
    if (perf.status == CUDNN_STATUS_SUCCESS) {
      size_t bytes = 1;
      REQUIRE(cudnnGetConvolutionForwardWorkspaceSize(handle.h, s.x.d, s.w.d, s.conv.d, s.y.d, perf.algo, &bytes) ==
              CUDNN_STATUS_SUCCESS);
      CHECK(bytes == perf.memory);
      if (perf.algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM) CHECK(bytes == 0);
      else CHECK(bytes > 0);
    }
  }
  CHECK(seen_unsupported);
  // Fewer requested: fewer returned.
  REQUIRE(cudnnGetConvolutionForwardAlgorithm_v7(handle.h, s.x.d, s.w.d, s.conv.d, s.y.d, 2, &returned, fwd) ==
          CUDNN_STATUS_SUCCESS);
  CHECK(returned == 2);

  cudnnConvolutionBwdFilterAlgoPerf_t filter[7];
  REQUIRE(cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle.h, s.x.d, s.y.d, s.conv.d, s.w.d, 7, &returned,
                                                        filter) == CUDNN_STATUS_SUCCESS);
  REQUIRE(returned == 7);
  for (const auto& perf : filter) {
    CAPTURE(perf.algo);
    const bool atomics =
        perf.algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 || perf.algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3;
    CHECK(perf.determinism == (atomics ? CUDNN_NON_DETERMINISTIC : CUDNN_DETERMINISTIC));
    if (perf.algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD) CHECK(perf.status == CUDNN_STATUS_NOT_SUPPORTED);
  }
  cudnnConvolutionBwdDataAlgoPerf_t data[6];
  REQUIRE(cudnnGetConvolutionBackwardDataAlgorithm_v7(handle.h, s.w.d, s.y.d, s.conv.d, s.x.d, 6, &returned, data) ==
          CUDNN_STATUS_SUCCESS);
  REQUIRE(returned == 6);
  for (const auto& perf : data)
    CHECK(perf.determinism ==
          (perf.algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_0 ? CUDNN_NON_DETERMINISTIC : CUDNN_DETERMINISTIC));

  // f16 with tensor-op math: tensor-core algorithms report TENSOR_OP_MATH, the others DEFAULT.
  TensorDesc hx, hy;
  FilterDesc hw;
  ConvDesc hconv;
  REQUIRE(cudnnSetTensor4dDescriptor(hx.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_HALF, 2, 4, 8, 8) == CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnSetTensor4dDescriptor(hy.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_HALF, 2, 4, 8, 8) == CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnSetFilter4dDescriptor(hw.d, CUDNN_DATA_HALF, CUDNN_TENSOR_NCHW, 4, 4, 3, 3) == CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnSetConvolution2dDescriptor(hconv.d, 1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT) ==
          CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnSetConvolutionMathType(hconv.d, CUDNN_TENSOR_OP_MATH) == CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnGetConvolutionForwardAlgorithm_v7(handle.h, hx.d, hw.d, hconv.d, hy.d, 8, &returned, fwd) ==
          CUDNN_STATUS_SUCCESS);
  for (int i = 0; i < returned; ++i) {
    CAPTURE(fwd[i].algo);
    const bool tensor_cores = fwd[i].algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM ||
                              fwd[i].algo == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
    CHECK(fwd[i].mathType == (tensor_cores ? CUDNN_TENSOR_OP_MATH : CUDNN_DEFAULT_MATH));
  }
}

TEST_CASE("emulated cudnn: descriptor and convolution calls return cuDNN's documented statuses") {
  Handle handle;
  TensorDesc t;
  CHECK(cudnnSetTensor4dDescriptor(t.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 0, 3, 4, 4) == CUDNN_STATUS_BAD_PARAM);
  CHECK(cudnnSetTensor4dDescriptor(t.d, static_cast<cudnnTensorFormat_t>(7), CUDNN_DATA_FLOAT, 1, 3, 4, 4) ==
        CUDNN_STATUS_BAD_PARAM);
  CHECK(cudnnSetTensor4dDescriptor(nullptr, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 3, 4, 4) == CUDNN_STATUS_BAD_PARAM);
  CHECK(cudnnSetTensor4dDescriptorEx(t.d, CUDNN_DATA_FLOAT, 1, 3, 4, 4, 48, 16, 4, -1) == CUDNN_STATUS_BAD_PARAM);
  CHECK(cudnnSetTensor4dDescriptor(t.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 65536, 256, 256, 256) ==
        CUDNN_STATUS_NOT_SUPPORTED);  // more than 2 Giga-elements
  FilterDesc f;
  CHECK(cudnnSetFilter4dDescriptor(f.d, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 4, -3, 3, 3) == CUDNN_STATUS_BAD_PARAM);
  ConvDesc conv;
  CHECK(cudnnSetConvolution2dDescriptor(conv.d, -1, 0, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT) ==
        CUDNN_STATUS_BAD_PARAM);
  CHECK(cudnnSetConvolution2dDescriptor(conv.d, 0, 0, 0, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT) ==
        CUDNN_STATUS_BAD_PARAM);
  CHECK(cudnnSetConvolutionGroupCount(conv.d, 0) == CUDNN_STATUS_BAD_PARAM);
  CHECK(cudnnSetConvolutionMathType(conv.d, static_cast<cudnnMathType_t>(9)) == CUDNN_STATUS_BAD_PARAM);

  // A valid problem, then one thing wrong at a time.
  ConvCase c{"3x3", 2, 4, 8, 8, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1};
  CaseSetup s(c);
  DeviceBuffer x(2 * 4 * 8 * 8 * 4), w(4 * 4 * 3 * 3 * 4), y(2 * 4 * 8 * 8 * 4), big(1 << 24);
  const float one = 1, zero = 0;
  auto forward = [&](cudnnTensorDescriptor_t xd, cudnnFilterDescriptor_t wd, cudnnConvolutionDescriptor_t cd,
                     cudnnTensorDescriptor_t yd, cudnnConvolutionFwdAlgo_t algo, size_t ws = 1 << 24) {
    return cudnnConvolutionForward(handle.h, &one, xd, x.pointer, wd, w.pointer, cd, algo, big.pointer, ws, &zero, yd,
                                   y.pointer);
  };
  const auto implicit = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
  CHECK(forward(s.x.d, s.w.d, s.conv.d, s.y.d, implicit) == CUDNN_STATUS_SUCCESS);
  CHECK(cudnnConvolutionForward(nullptr, &one, s.x.d, x.pointer, s.w.d, w.pointer, s.conv.d, implicit, nullptr, 0,
                                &zero, s.y.d, y.pointer) == CUDNN_STATUS_BAD_PARAM);
  CHECK(cudnnConvolutionForward(handle.h, nullptr, s.x.d, x.pointer, s.w.d, w.pointer, s.conv.d, implicit, nullptr, 0,
                                &zero, s.y.d, y.pointer) == CUDNN_STATUS_BAD_PARAM);
  CHECK(forward(s.x.d, s.w.d, s.conv.d, s.y.d, static_cast<cudnnConvolutionFwdAlgo_t>(8)) == CUDNN_STATUS_BAD_PARAM);
  TensorDesc unset;
  CHECK(forward(unset.d, s.w.d, s.conv.d, s.y.d, implicit) == CUDNN_STATUS_BAD_PARAM);
  {  // mismatched data types
    TensorDesc half_y;
    REQUIRE(cudnnSetTensor4dDescriptor(half_y.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_HALF, 2, 4, 8, 8) ==
            CUDNN_STATUS_SUCCESS);
    CHECK(forward(s.x.d, s.w.d, s.conv.d, half_y.d, implicit) == CUDNN_STATUS_BAD_PARAM);
  }
  {  // x has 5 channels, the filter 4
    TensorDesc x5;
    REQUIRE(cudnnSetTensor4dDescriptor(x5.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 2, 5, 8, 8) == CUDNN_STATUS_SUCCESS);
    CHECK(forward(x5.d, s.w.d, s.conv.d, s.y.d, implicit) == CUDNN_STATUS_BAD_PARAM);
  }
  {  // y of the wrong spatial size: NOT_SUPPORTED forward, BAD_PARAM backward
    TensorDesc y7;
    REQUIRE(cudnnSetTensor4dDescriptor(y7.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 2, 4, 7, 8) == CUDNN_STATUS_SUCCESS);
    CHECK(forward(s.x.d, s.w.d, s.conv.d, y7.d, implicit) == CUDNN_STATUS_NOT_SUPPORTED);
    CHECK(cudnnConvolutionBackwardData(handle.h, &one, s.w.d, w.pointer, y7.d, y.pointer, s.conv.d,
                                       CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, nullptr, 0, &zero, s.x.d,
                                       x.pointer) == CUDNN_STATUS_BAD_PARAM);
    // and y's channel count wrong is BAD_PARAM everywhere
    TensorDesc y3;
    REQUIRE(cudnnSetTensor4dDescriptor(y3.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 2, 3, 8, 8) == CUDNN_STATUS_SUCCESS);
    CHECK(forward(s.x.d, s.w.d, s.conv.d, y3.d, implicit) == CUDNN_STATUS_BAD_PARAM);
  }
  {  // groups: K = 4 is not a multiple of 3 (and C = 4 is not 3 * c)
    ConvDesc g3;
    REQUIRE(cudnnSetConvolution2dDescriptor(g3.d, 1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT) ==
            CUDNN_STATUS_SUCCESS);
    REQUIRE(cudnnSetConvolutionGroupCount(g3.d, 3) == CUDNN_STATUS_SUCCESS);
    CHECK(forward(s.x.d, s.w.d, g3.d, s.y.d, implicit) == CUDNN_STATUS_BAD_PARAM);
  }
  {  // a filter larger than the padded input
    FilterDesc w11;
    REQUIRE(cudnnSetFilter4dDescriptor(w11.d, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 4, 4, 11, 11) ==
            CUDNN_STATUS_SUCCESS);
    int n, k, h, wo;
    CHECK(cudnnGetConvolution2dForwardOutputDim(s.conv.d, s.x.d, w11.d, &n, &k, &h, &wo) == CUDNN_STATUS_BAD_PARAM);
    CHECK(forward(s.x.d, w11.d, s.conv.d, s.y.d, implicit) == CUDNN_STATUS_BAD_PARAM);
  }
  // Algorithms whose documented restrictions exclude the problem.
  {
    ConvDesc strided;
    REQUIRE(cudnnSetConvolution2dDescriptor(strided.d, 1, 1, 2, 2, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT) ==
            CUDNN_STATUS_SUCCESS);
    TensorDesc y4;
    REQUIRE(cudnnSetTensor4dDescriptor(y4.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 2, 4, 4, 4) == CUDNN_STATUS_SUCCESS);
    size_t bytes = 0;
    for (auto algo : {CUDNN_CONVOLUTION_FWD_ALGO_FFT, CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING,
                      CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD, CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED}) {
      CAPTURE(algo);
      CHECK(cudnnGetConvolutionForwardWorkspaceSize(handle.h, s.x.d, s.w.d, strided.d, y4.d, algo, &bytes) ==
            CUDNN_STATUS_NOT_SUPPORTED);
      CHECK(forward(s.x.d, s.w.d, strided.d, y4.d, algo) == CUDNN_STATUS_NOT_SUPPORTED);
    }
    CHECK(forward(s.x.d, s.w.d, strided.d, y4.d, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM) ==
          CUDNN_STATUS_SUCCESS);
  }
  CHECK(forward(s.x.d, s.w.d, s.conv.d, s.y.d, CUDNN_CONVOLUTION_FWD_ALGO_DIRECT) == CUDNN_STATUS_NOT_SUPPORTED);
  {  // a KRSC filter with NCHW tensors
    FilterDesc krsc;
    REQUIRE(cudnnSetFilter4dDescriptor(krsc.d, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, 4, 4, 3, 3) ==
            CUDNN_STATUS_SUCCESS);
    CHECK(forward(s.x.d, krsc.d, s.conv.d, s.y.d, implicit) == CUDNN_STATUS_NOT_SUPPORTED);
  }
  {  // configurations outside cuDNN's tables: f32 data with double compute, bf16 compute
    ConvDesc wide;
    REQUIRE(cudnnSetConvolution2dDescriptor(wide.d, 1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_DOUBLE) ==
            CUDNN_STATUS_SUCCESS);
    CHECK(forward(s.x.d, s.w.d, wide.d, s.y.d, implicit) == CUDNN_STATUS_NOT_SUPPORTED);
    TensorDesc bx, by;
    FilterDesc bw;
    ConvDesc bconv;
    REQUIRE(cudnnSetTensor4dDescriptor(bx.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_BFLOAT16, 2, 4, 8, 8) ==
            CUDNN_STATUS_SUCCESS);
    REQUIRE(cudnnSetTensor4dDescriptor(by.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_BFLOAT16, 2, 4, 8, 8) ==
            CUDNN_STATUS_SUCCESS);
    REQUIRE(cudnnSetFilter4dDescriptor(bw.d, CUDNN_DATA_BFLOAT16, CUDNN_TENSOR_NCHW, 4, 4, 3, 3) ==
            CUDNN_STATUS_SUCCESS);
    REQUIRE(cudnnSetConvolution2dDescriptor(bconv.d, 1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_BFLOAT16) ==
            CUDNN_STATUS_SUCCESS);
    CHECK(forward(bx.d, bw.d, bconv.d, by.d, implicit) == CUDNN_STATUS_NOT_SUPPORTED);
  }
  // Workspace: smaller than the query says, or NULL, is BAD_PARAM.
  size_t needed = 0;
  REQUIRE(cudnnGetConvolutionForwardWorkspaceSize(handle.h, s.x.d, s.w.d, s.conv.d, s.y.d,
                                                  CUDNN_CONVOLUTION_FWD_ALGO_GEMM, &needed) == CUDNN_STATUS_SUCCESS);
  REQUIRE(needed > 0);
  CHECK(forward(s.x.d, s.w.d, s.conv.d, s.y.d, CUDNN_CONVOLUTION_FWD_ALGO_GEMM, needed - 1) == CUDNN_STATUS_BAD_PARAM);
  CHECK(forward(s.x.d, s.w.d, s.conv.d, s.y.d, CUDNN_CONVOLUTION_FWD_ALGO_GEMM, needed) == CUDNN_STATUS_SUCCESS);
  CHECK(cudnnConvolutionForward(handle.h, &one, s.x.d, x.pointer, s.w.d, w.pointer, s.conv.d,
                                CUDNN_CONVOLUTION_FWD_ALGO_GEMM, nullptr, needed, &zero, s.y.d,
                                y.pointer) == CUDNN_STATUS_BAD_PARAM);
  char why[256] = {};
  cudnnGetLastErrorString(why, sizeof why);
  CHECK(std::string(why).find("workSpace") != std::string::npos);
  CHECK(cudaDeviceSynchronize() == cudaSuccess);  // none of the refused calls queued anything
}

TEST_CASE("emulated cudnn: versions and NVIDIA's status names") {
  CHECK(cudnnGetVersion() == 91900);
  int major = 0;
  REQUIRE(cudnnGetProperty(MAJOR_VERSION, &major) == CUDNN_STATUS_SUCCESS);
  CHECK(major == 9);
  CHECK(std::string(cudnnGetErrorString(CUDNN_STATUS_SUCCESS)) == "CUDNN_STATUS_SUCCESS");
  CHECK(std::string(cudnnGetErrorString(CUDNN_STATUS_BAD_PARAM)) == "CUDNN_STATUS_BAD_PARAM");
  CHECK(std::string(cudnnGetErrorString(CUDNN_STATUS_NOT_SUPPORTED)) == "CUDNN_STATUS_NOT_SUPPORTED");
  CHECK(std::string(cudnnGetErrorString(CUDNN_STATUS_EXECUTION_FAILED)) == "CUDNN_STATUS_EXECUTION_FAILED");
  CHECK(CUDNN_STATUS_CATEGORY(CUDNN_STATUS_NOT_SUPPORTED_LAYOUT) == CUDNN_STATUS_NOT_SUPPORTED);
}

TEST_CASE("emulated cudnn: non-deterministic algorithms differ run to run, deterministic ones never do") {
  Handle handle;
  ConvCase c{"wide batch", 32, 8, 12, 12, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1};
  CaseSetup s(c);
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> x(static_cast<size_t>(c.N) * c.C * c.H * c.W), dy(static_cast<size_t>(c.N) * c.K * 144);
  for (float& v : x) v = u(rng);
  for (float& v : dy) v = u(rng);
  DeviceBuffer dx(x.size() * 4), ddy(dy.size() * 4), dw(static_cast<size_t>(c.K) * c.C * 9 * 4), ws(1 << 20);
  REQUIRE(cudaMemcpy(dx.pointer, x.data(), dx.bytes, cudaMemcpyHostToDevice) == cudaSuccess);
  REQUIRE(cudaMemcpy(ddy.pointer, dy.data(), ddy.bytes, cudaMemcpyHostToDevice) == cudaSuccess);
  const float one = 1, zero = 0;
  auto distinct_results = [&](cudnnConvolutionBwdFilterAlgo_t algo) {
    std::set<std::vector<uint8_t>> seen;
    for (int run = 0; run < 12; ++run) {
      REQUIRE(cudnnConvolutionBackwardFilter(handle.h, &one, s.x.d, dx.pointer, s.y.d, ddy.pointer, s.conv.d, algo,
                                             ws.pointer, ws.bytes, &zero, s.w.d, dw.pointer) == CUDNN_STATUS_SUCCESS);
      seen.insert(dw.download());
    }
    return seen.size();
  };
  CHECK(distinct_results(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1) == 1);
  CHECK(distinct_results(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0) > 1);
}

TEST_CASE("emulated cudnn: f32 runs in TF32 on tensor-core algorithms unless FMA math or NVIDIA_TF32_OVERRIDE=0") {
  Handle handle;
  ConvCase c{"tf32", 2, 16, 8, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1};
  CaseSetup s(c);
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> x(static_cast<size_t>(c.N) * c.C * 64), w(static_cast<size_t>(c.K) * c.C * 9);
  for (float& v : x) v = u(rng);
  for (float& v : w) v = u(rng);
  DeviceBuffer dx(x.size() * 4), dw(w.size() * 4), dy(static_cast<size_t>(c.N) * c.K * 64 * 4), ws(1 << 20);
  REQUIRE(cudaMemcpy(dx.pointer, x.data(), dx.bytes, cudaMemcpyHostToDevice) == cudaSuccess);
  REQUIRE(cudaMemcpy(dw.pointer, w.data(), dw.bytes, cudaMemcpyHostToDevice) == cudaSuccess);
  const float one = 1, zero = 0;
  auto run = [&](cudnnMathType_t math, cudnnConvolutionFwdAlgo_t algo) {
    REQUIRE(cudnnSetConvolutionMathType(s.conv.d, math) == CUDNN_STATUS_SUCCESS);
    REQUIRE(cudnnConvolutionForward(handle.h, &one, s.x.d, dx.pointer, s.w.d, dw.pointer, s.conv.d, algo, ws.pointer,
                                    ws.bytes, &zero, s.y.d, dy.pointer) == CUDNN_STATUS_SUCCESS);
    return dy.download();
  };
  const auto precomp = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;
  const std::vector<uint8_t> fma = run(CUDNN_FMA_MATH, precomp);
  CHECK(run(CUDNN_DEFAULT_MATH, precomp) != fma);
  CHECK(run(CUDNN_DEFAULT_MATH, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM) == fma);  // no tensor cores there
  ScopedEnv off("NVIDIA_TF32_OVERRIDE", "0");
  CHECK(run(CUDNN_DEFAULT_MATH, precomp) == fma);
}

TEST_CASE("emulated cudnn: the test knobs reject, re-rank, resize workspaces, check math types and log") {
  Handle handle;
  ConvCase c{"knobs", 1, 2, 6, 6, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1};
  CaseSetup s(c);
  DeviceBuffer x(1 * 2 * 36 * 4), w(2 * 2 * 9 * 4), y(1 * 2 * 36 * 4), ws(1 << 20);
  const float one = 1, zero = 0;
  auto forward = [&](cudnnConvolutionFwdAlgo_t algo) {
    return cudnnConvolutionForward(handle.h, &one, s.x.d, x.pointer, s.w.d, w.pointer, s.conv.d, algo, ws.pointer,
                                   ws.bytes, &zero, s.y.d, y.pointer);
  };
  const auto precomp = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;
  cudnnConvolutionFwdAlgoPerf_t perf[8];
  int returned = 0;
  {
    ScopedEnv reject("KILN_EMULATE_CUDNN_REJECT", "bwd_data:1;fwd:1,6");
    CHECK(forward(precomp) == CUDNN_STATUS_NOT_SUPPORTED);
    CHECK(forward(CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD) == CUDNN_STATUS_NOT_SUPPORTED);
    CHECK(forward(CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM) == CUDNN_STATUS_SUCCESS);
    // ... while the heuristics still call them supported, as real ones can be wrong.
    REQUIRE(cudnnGetConvolutionForwardAlgorithm_v7(handle.h, s.x.d, s.w.d, s.conv.d, s.y.d, 8, &returned, perf) ==
            CUDNN_STATUS_SUCCESS);
    CHECK(perf[0].algo == precomp);
    CHECK(perf[0].status == CUDNN_STATUS_SUCCESS);
  }
  CHECK(forward(precomp) == CUDNN_STATUS_SUCCESS);
  {
    ScopedEnv rank("KILN_EMULATE_CUDNN_RANK", "fwd:2,0");
    REQUIRE(cudnnGetConvolutionForwardAlgorithm_v7(handle.h, s.x.d, s.w.d, s.conv.d, s.y.d, 8, &returned, perf) ==
            CUDNN_STATUS_SUCCESS);
    CHECK(perf[0].algo == CUDNN_CONVOLUTION_FWD_ALGO_GEMM);
    CHECK(perf[1].algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM);
    CHECK(perf[2].algo == precomp);
  }
  {
    ScopedEnv huge("KILN_EMULATE_CUDNN_WORKSPACE", "fwd:1=1P");
    size_t bytes = 0;
    REQUIRE(cudnnGetConvolutionForwardWorkspaceSize(handle.h, s.x.d, s.w.d, s.conv.d, s.y.d, precomp, &bytes) ==
            CUDNN_STATUS_SUCCESS);
    CHECK(bytes == size_t{1} << 50);
    CHECK(forward(precomp) == CUDNN_STATUS_BAD_PARAM);  // the 1 MiB given is too small now
  }
  {
    ScopedEnv strict("KILN_EMULATE_CUDNN_STRICT_MATH", "1");
    REQUIRE(cudnnSetConvolutionMathType(s.conv.d, CUDNN_TENSOR_OP_MATH) == CUDNN_STATUS_SUCCESS);
    // f32 with TENSOR_OP_MATH: PRECOMP reports TENSOR_OP_MATH (runs), IMPLICIT_GEMM DEFAULT_MATH (refused).
    CHECK(forward(precomp) == CUDNN_STATUS_SUCCESS);
    CHECK(forward(CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM) == CUDNN_STATUS_NOT_SUPPORTED);
    REQUIRE(cudnnSetConvolutionMathType(s.conv.d, CUDNN_DEFAULT_MATH) == CUDNN_STATUS_SUCCESS);
    CHECK(forward(CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM) == CUDNN_STATUS_SUCCESS);
    REQUIRE(cudnnSetConvolutionMathType(s.conv.d, CUDNN_FMA_MATH) == CUDNN_STATUS_SUCCESS);
  }
  {
    char path[] = "/tmp/kiln_cudnn_log_XXXXXX";
    const int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    {
      ScopedEnv log("KILN_EMULATE_CUDNN_LOG", path);
      CHECK(forward(precomp) == CUDNN_STATUS_SUCCESS);
      CHECK(forward(CUDNN_CONVOLUTION_FWD_ALGO_DIRECT) == CUDNN_STATUS_NOT_SUPPORTED);
    }
    std::ifstream in(path);
    std::string first, second;
    std::getline(in, first);
    std::getline(in, second);
    std::remove(path);
    CHECK(first.find("cudnnConvolutionForward algo=1 (IMPLICIT_PRECOMP_GEMM) math=CUDNN_FMA_MATH") == 0);
    CHECK(first.find("status=CUDNN_STATUS_SUCCESS") != std::string::npos);
    CHECK(second.find("algo=3 (DIRECT)") != std::string::npos);
    CHECK(second.find("status=CUDNN_STATUS_NOT_SUPPORTED") != std::string::npos);
  }
  CHECK(cudaDeviceSynchronize() == cudaSuccess);
}

TEST_CASE("emulated cudnn: a host pointer is an illegal address reported at the next synchronisation") {
  fflush(nullptr);
  const pid_t pid = fork();  // a child process: an illegal address leaves the device unusable
  if (pid == 0) {
    alarm(60);
    cudnnHandle_t h = nullptr;
    cudnnTensorDescriptor_t x = nullptr, y = nullptr;
    cudnnFilterDescriptor_t w = nullptr;
    cudnnConvolutionDescriptor_t conv = nullptr;
    if (cudnnCreate(&h) || cudnnCreateTensorDescriptor(&x) || cudnnCreateTensorDescriptor(&y) ||
        cudnnCreateFilterDescriptor(&w) || cudnnCreateConvolutionDescriptor(&conv))
      _exit(1);
    cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 1, 4, 4);
    cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 1, 4, 4);
    cudnnSetFilter4dDescriptor(w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 1, 1, 3, 3);
    cudnnSetConvolution2dDescriptor(conv, 1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT);
    std::vector<float> host_x(16, 1.0f);
    void* dw = nullptr;
    void* dy = nullptr;
    if (cudaMalloc(&dw, 36) != cudaSuccess || cudaMalloc(&dy, 64) != cudaSuccess) _exit(2);
    const float one = 1, zero = 0;
    if (cudnnConvolutionForward(h, &one, x, host_x.data(), w, dw, conv, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
                                nullptr, 0, &zero, y, dy) != CUDNN_STATUS_SUCCESS)
      _exit(3);
    const cudaError_t error = cudaDeviceSynchronize();
    if (error != cudaErrorIllegalAddress) _exit(4);
    if (std::string(cudaGetErrorString(error)).find("cudnnConvolutionForward: x") == std::string::npos) _exit(5);
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

// ==================================================================== part 2: kiln's algorithm choice
#if defined(KILN_WITH_CUDA) && KILN_WITH_CUDA

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
#endif  // KILN_WITH_CUDA
