// Helpers of tests/emulator/test_emulated_cudnn.cpp: descriptors and device buffers
// with RAII, the test cases' shapes, exact-in-every-format input grids and naive
// reference convolutions written from cuDNN's documented definitions. Included by
// that one file only (an anonymous namespace).
#pragma once
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
