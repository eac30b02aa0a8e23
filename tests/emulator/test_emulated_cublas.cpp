// The emulated cuBLAS (emulator/src/cublas.cpp, KILN_CUDA=EMULATE builds only) against
// naive column-major loops written here: every transpose combination with padded
// leading dimensions and batch strides, alpha/beta blending, beta == 0 over NaN, k == 0,
// f16/bf16/f64 data, TF32 rounding, device-pointer scalars, and the statuses cuBLAS
// documents for bad arguments; these use only the CUDA runtime API and cuBLAS itself.
// Last, kiln's own GEMM (engine/cuda/cublas_gemm.cpp) on an edge the CPU handles.
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#if defined(KILN_WITH_CUDA) && KILN_WITH_CUDA
#include "engine/ops/linear.h"
#include "engine/tensor/factory.h"
#include "test_util.h"
#endif

namespace {

// ---- number formats, written independently of the emulator's conversions
float half_to_float(uint16_t h) {
  const int exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  const float sign = (h & 0x8000) ? -1.0f : 1.0f;
  if (exponent == 0) return sign * std::ldexp(static_cast<float>(mantissa), -24);
  if (exponent == 31) return mantissa ? std::numeric_limits<float>::quiet_NaN() : sign * INFINITY;
  return sign * std::ldexp(static_cast<float>(mantissa + 1024), exponent - 25);
}
// Only for values a half holds exactly (the tests' inputs are multiples of 1/16 below 64).
uint16_t exact_half(float f) {
  if (f == 0) return std::signbit(f) ? 0x8000 : 0;
  int e = 0;
  const float m = std::frexp(std::fabs(f), &e);  // |f| = m * 2^e, m in [0.5, 1)
  const uint16_t bits = static_cast<uint16_t>(((e + 14) << 10) | (static_cast<int>(m * 2048) - 1024));
  REQUIRE(half_to_float(bits) == std::fabs(f));
  return static_cast<uint16_t>(bits | (f < 0 ? 0x8000 : 0));
}
float bf16_to_float(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint16_t exact_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  REQUIRE((u & 0xffff) == 0);
  return static_cast<uint16_t>(u >> 16);
}
float tf32(float f) {  // nearest even at 10 mantissa bits
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u = (u + 0xfff + ((u >> 13) & 1)) & ~0x1fffu;
  std::memcpy(&f, &u, 4);
  return f;
}

// Multiples of 1/16 in [-4, 4): exact in every format, so inputs need no rounding.
std::vector<float> grid_values(size_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<float> v(count);
  for (float& x : v) x = static_cast<float>(static_cast<int>(rng() % 128) - 64) / 16.0f;
  return v;
}
std::vector<float> random_values(size_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(count);
  for (float& x : v) x = u(rng);
  return v;
}

struct DeviceBuffer {
  void* pointer = nullptr;
  size_t bytes = 0;
  explicit DeviceBuffer(size_t n) : bytes(n) { REQUIRE(cudaMalloc(&pointer, n) == cudaSuccess); }
  ~DeviceBuffer() { cudaFree(pointer); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  template <class T>
  void upload(const std::vector<T>& host) {
    REQUIRE(host.size() * sizeof(T) <= bytes);
    REQUIRE(cudaMemcpy(pointer, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice) == cudaSuccess);
  }
  template <class T>
  std::vector<T> download(size_t count) const {
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    std::vector<T> host(count);
    REQUIRE(cudaMemcpy(host.data(), pointer, count * sizeof(T), cudaMemcpyDeviceToHost) == cudaSuccess);
    return host;
  }
};

struct Handle {
  cublasHandle_t h = nullptr;
  Handle() { REQUIRE(cublasCreate(&h) == CUBLAS_STATUS_SUCCESS); }
  ~Handle() { cublasDestroy(h); }
};

// The shape of one strided-batched GEMM; every matrix column-major.
struct Gemm {
  bool ta = false, tb = false;
  int m = 5, n = 4, k = 3, batch = 1;
  int lda = 0, ldb = 0, ldc = 0;  // 0: the minimum
  long long sa = 0, sb = 0, sc = 0;
  void fill_defaults() {
    const int a_rows = ta ? k : m, b_rows = tb ? n : k;
    if (!lda) lda = a_rows;
    if (!ldb) ldb = b_rows;
    if (!ldc) ldc = m;
    if (!sa) sa = static_cast<long long>(lda) * (ta ? m : k);
    if (!sb) sb = static_cast<long long>(ldb) * (tb ? k : n);
    if (!sc) sc = static_cast<long long>(ldc) * n;
  }
  size_t a_size() const { return static_cast<size_t>(sa * (batch - 1) + static_cast<long long>(lda) * (ta ? m : k)); }
  size_t b_size() const { return static_cast<size_t>(sb * (batch - 1) + static_cast<long long>(ldb) * (tb ? k : n)); }
  size_t c_size() const { return static_cast<size_t>(sc * (batch - 1) + static_cast<long long>(ldc) * n); }
};

// C = alpha * op(A) op(B) + beta * C, in double, element by element.
std::vector<double> reference(const Gemm& g, const std::vector<double>& A, const std::vector<double>& B,
                              const std::vector<double>& C, double alpha, double beta) {
  std::vector<double> out = C;
  for (int b = 0; b < g.batch; ++b)
    for (int j = 0; j < g.n; ++j)
      for (int i = 0; i < g.m; ++i) {
        double sum = 0;
        for (int p = 0; p < g.k; ++p) {
          const double a = g.ta ? A[b * g.sa + i * static_cast<long long>(g.lda) + p]
                                : A[b * g.sa + p * static_cast<long long>(g.lda) + i];
          const double bb = g.tb ? B[b * g.sb + p * static_cast<long long>(g.ldb) + j]
                                 : B[b * g.sb + j * static_cast<long long>(g.ldb) + p];
          sum += a * bb;
        }
        double& c = out[b * g.sc + j * static_cast<long long>(g.ldc) + i];
        c = alpha * sum + (beta == 0 ? 0.0 : beta * c);
      }
  return out;
}

template <class T>
std::vector<double> widen(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}

// Runs `fn` in a child process and returns its exit code: for checks that leave the
// emulated device with a sticky error, as an illegal address does on a GPU.
template <class Fn>
int in_child_process(Fn&& fn) {
  fflush(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    alarm(60);  // a child that hangs is killed, and the test fails instead of hanging
    _exit(fn());
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

}  // namespace

TEST_CASE("emulated cublas: f32 strided batched GEMM matches the naive loops for every transpose") {
  Handle handle;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      Gemm g;
      g.ta = ta, g.tb = tb;
      g.m = 7, g.n = 5, g.k = 6, g.batch = 3;
      g.lda = (ta ? g.k : g.m) + 2;  // padded leading dimensions
      g.ldb = (tb ? g.n : g.k) + 1;
      g.ldc = g.m + 3;
      g.fill_defaults();
      g.sa += 5, g.sb += 2, g.sc += 4;  // and gaps between the batch entries
      CAPTURE(ta);
      CAPTURE(tb);
      const std::vector<float> A = random_values(g.a_size(), 1), B = random_values(g.b_size(), 2),
                               C = random_values(g.c_size(), 3);
      DeviceBuffer dA(A.size() * 4), dB(B.size() * 4), dC(C.size() * 4);
      dA.upload(A), dB.upload(B), dC.upload(C);
      const float alpha = 0.75f, beta = -0.5f;
      REQUIRE(cublasGemmStridedBatchedEx(handle.h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                         g.m, g.n, g.k, &alpha, dA.pointer, CUDA_R_32F, g.lda, g.sa, dB.pointer,
                                         CUDA_R_32F, g.ldb, g.sb, &beta, dC.pointer, CUDA_R_32F, g.ldc, g.sc, g.batch,
                                         CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS);
      const std::vector<float> got = dC.download<float>(C.size());
      const std::vector<double> want = reference(g, widen(A), widen(B), widen(C), alpha, beta);
      for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-5));
    }
}

TEST_CASE("emulated cublas: beta 0 never reads C, k 0 scales C, CUBLAS_OP_C is the transpose") {
  Handle handle;
  Gemm g;
  g.m = 4, g.n = 3, g.k = 5, g.batch = 2;
  g.fill_defaults();
  const std::vector<float> A = random_values(g.a_size(), 4), B = random_values(g.b_size(), 5);
  std::vector<float> nan_c(g.c_size(), std::numeric_limits<float>::quiet_NaN());
  DeviceBuffer dA(A.size() * 4), dB(B.size() * 4), dC(nan_c.size() * 4);
  dA.upload(A), dB.upload(B), dC.upload(nan_c);
  const float one = 1.0f, zero = 0.0f;
  REQUIRE(cublasGemmStridedBatchedEx(handle.h, CUBLAS_OP_N, CUBLAS_OP_N, g.m, g.n, g.k, &one, dA.pointer, CUDA_R_32F,
                                     g.lda, g.sa, dB.pointer, CUDA_R_32F, g.ldb, g.sb, &zero, dC.pointer, CUDA_R_32F,
                                     g.ldc, g.sc, g.batch, CUBLAS_COMPUTE_32F,
                                     CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS);
  std::vector<float> got = dC.download<float>(nan_c.size());
  const std::vector<double> want = reference(g, widen(A), widen(B), std::vector<double>(got.size(), 0.0), 1, 0);
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-5));

  // The same with half data and a half C full of NaN (the converting store path).
  std::vector<uint16_t> A16(A.size()), B16(B.size()), C16(g.c_size(), 0x7e00);
  const std::vector<float> Ag = grid_values(A.size(), 6), Bg = grid_values(B.size(), 7);
  for (size_t i = 0; i < A.size(); ++i) A16[i] = exact_half(Ag[i]);
  for (size_t i = 0; i < B.size(); ++i) B16[i] = exact_half(Bg[i]);
  DeviceBuffer hA(A16.size() * 2), hB(B16.size() * 2), hC(C16.size() * 2);
  hA.upload(A16), hB.upload(B16), hC.upload(C16);
  REQUIRE(cublasGemmStridedBatchedEx(handle.h, CUBLAS_OP_N, CUBLAS_OP_N, g.m, g.n, g.k, &one, hA.pointer, CUDA_R_16F,
                                     g.lda, g.sa, hB.pointer, CUDA_R_16F, g.ldb, g.sb, &zero, hC.pointer, CUDA_R_16F,
                                     g.ldc, g.sc, g.batch, CUBLAS_COMPUTE_32F,
                                     CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS);
  for (uint16_t bits : hC.download<uint16_t>(C16.size())) CHECK_FALSE(std::isnan(half_to_float(bits)));

  // k == 0: C = beta * C, and with beta == 0 the NaN is replaced by zero.
  const std::vector<float> C = random_values(g.c_size(), 8);
  dC.upload(C);
  const float half_beta = 0.5f;
  REQUIRE(cublasGemmStridedBatchedEx(handle.h, CUBLAS_OP_N, CUBLAS_OP_N, g.m, g.n, 0, &one, dA.pointer, CUDA_R_32F,
                                     g.m, g.sa, dB.pointer, CUDA_R_32F, 1, g.sb, &half_beta, dC.pointer, CUDA_R_32F,
                                     g.ldc, g.sc, g.batch, CUBLAS_COMPUTE_32F,
                                     CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS);
  got = dC.download<float>(C.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == 0.5f * C[i]);
  dC.upload(nan_c);
  REQUIRE(cublasGemmStridedBatchedEx(handle.h, CUBLAS_OP_N, CUBLAS_OP_N, g.m, g.n, 0, &one, dA.pointer, CUDA_R_32F,
                                     g.m, g.sa, dB.pointer, CUDA_R_32F, 1, g.sb, &zero, dC.pointer, CUDA_R_32F, g.ldc,
                                     g.sc, g.batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS);
  for (float v : dC.download<float>(C.size())) CHECK(v == 0.0f);

  // CUBLAS_OP_C on real data is CUBLAS_OP_T.
  Gemm t;
  t.ta = true, t.m = 3, t.n = 2, t.k = 4;
  t.fill_defaults();
  const std::vector<float> At = random_values(t.a_size(), 9), Bt = random_values(t.b_size(), 10);
  DeviceBuffer tA(At.size() * 4), tB(Bt.size() * 4), tC(t.c_size() * 4);
  tA.upload(At), tB.upload(Bt);
  REQUIRE(cublasGemmEx(handle.h, CUBLAS_OP_C, CUBLAS_OP_N, t.m, t.n, t.k, &one, tA.pointer, CUDA_R_32F, t.lda,
                       tB.pointer, CUDA_R_32F, t.ldb, &zero, tC.pointer, CUDA_R_32F, t.ldc, CUBLAS_COMPUTE_32F,
                       CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS);
  const std::vector<double> want_t = reference(t, widen(At), widen(Bt), std::vector<double>(t.c_size(), 0.0), 1, 0);
  const std::vector<float> got_t = tC.download<float>(t.c_size());
  for (size_t i = 0; i < got_t.size(); ++i) CHECK(got_t[i] == doctest::Approx(want_t[i]).epsilon(1e-5));
}

TEST_CASE("emulated cublas: f16, bf16 and f64 data accumulate in f32 / f64 and round once") {
  Handle handle;
  Gemm g;
  g.ta = true, g.m = 6, g.n = 5, g.k = 40, g.batch = 2;
  g.fill_defaults();
  const std::vector<float> A = grid_values(g.a_size(), 11), B = grid_values(g.b_size(), 12),
                           C = grid_values(g.c_size(), 13);
  const float alpha = 0.5f, beta = 2.0f;
  const std::vector<double> want = reference(g, widen(A), widen(B), widen(C), alpha, beta);
  double scale = 0;
  for (double v : want) scale = std::max(scale, std::fabs(v));

  SUBCASE("f16 in, f16 out") {
    std::vector<uint16_t> A16, B16, C16;
    for (float v : A) A16.push_back(exact_half(v));
    for (float v : B) B16.push_back(exact_half(v));
    for (float v : C) C16.push_back(exact_half(v));
    DeviceBuffer dA(A16.size() * 2), dB(B16.size() * 2), dC(C16.size() * 2);
    dA.upload(A16), dB.upload(B16), dC.upload(C16);
    REQUIRE(cublasGemmStridedBatchedEx(handle.h, CUBLAS_OP_T, CUBLAS_OP_N, g.m, g.n, g.k, &alpha, dA.pointer,
                                       CUDA_R_16F, g.lda, g.sa, dB.pointer, CUDA_R_16F, g.ldb, g.sb, &beta, dC.pointer,
                                       CUDA_R_16F, g.ldc, g.sc, g.batch, CUBLAS_COMPUTE_32F,
                                       CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS);
    const std::vector<uint16_t> got = dC.download<uint16_t>(C16.size());
    for (size_t i = 0; i < got.size(); ++i)  // one rounding to 11 significant bits
      CHECK(std::fabs(half_to_float(got[i]) - want[i]) <= std::fabs(want[i]) * (1.0 / 2048) + 1e-6);
  }
  SUBCASE("f16 in, f32 out") {
    std::vector<uint16_t> A16, B16;
    for (float v : A) A16.push_back(exact_half(v));
    for (float v : B) B16.push_back(exact_half(v));
    DeviceBuffer dA(A16.size() * 2), dB(B16.size() * 2), dC(C.size() * 4);
    dA.upload(A16), dB.upload(B16), dC.upload(C);
    REQUIRE(cublasGemmStridedBatchedEx(handle.h, CUBLAS_OP_T, CUBLAS_OP_N, g.m, g.n, g.k, &alpha, dA.pointer,
                                       CUDA_R_16F, g.lda, g.sa, dB.pointer, CUDA_R_16F, g.ldb, g.sb, &beta, dC.pointer,
                                       CUDA_R_32F, g.ldc, g.sc, g.batch, CUBLAS_COMPUTE_32F,
                                       CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS);
    const std::vector<float> got = dC.download<float>(C.size());
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-6));
  }
  SUBCASE("bf16 in, bf16 out") {
    std::vector<uint16_t> A16, B16, C16;
    for (float v : A) A16.push_back(exact_bf16(v));
    for (float v : B) B16.push_back(exact_bf16(v));
    for (float v : C) C16.push_back(exact_bf16(v));
    DeviceBuffer dA(A16.size() * 2), dB(B16.size() * 2), dC(C16.size() * 2);
    dA.upload(A16), dB.upload(B16), dC.upload(C16);
    REQUIRE(cublasGemmStridedBatchedEx(handle.h, CUBLAS_OP_T, CUBLAS_OP_N, g.m, g.n, g.k, &alpha, dA.pointer,
                                       CUDA_R_16BF, g.lda, g.sa, dB.pointer, CUDA_R_16BF, g.ldb, g.sb, &beta,
                                       dC.pointer, CUDA_R_16BF, g.ldc, g.sc, g.batch, CUBLAS_COMPUTE_32F,
                                       CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS);
    const std::vector<uint16_t> got = dC.download<uint16_t>(C16.size());
    for (size_t i = 0; i < got.size(); ++i)  // one rounding to 8 significant bits
      CHECK(std::fabs(bf16_to_float(got[i]) - want[i]) <= std::fabs(want[i]) * (1.0 / 256) + 1e-6);
  }
  SUBCASE("f64 with CUBLAS_COMPUTE_64F and double scalars") {
    const std::vector<double> A64 = widen(random_values(g.a_size(), 14)), B64 = widen(random_values(g.b_size(), 15)),
                              C64 = widen(random_values(g.c_size(), 16));
    DeviceBuffer dA(A64.size() * 8), dB(B64.size() * 8), dC(C64.size() * 8);
    dA.upload(A64), dB.upload(B64), dC.upload(C64);
    const double alpha64 = 1.0 / 3, beta64 = -0.25;
    REQUIRE(cublasGemmStridedBatchedEx(handle.h, CUBLAS_OP_T, CUBLAS_OP_N, g.m, g.n, g.k, &alpha64, dA.pointer,
                                       CUDA_R_64F, g.lda, g.sa, dB.pointer, CUDA_R_64F, g.ldb, g.sb, &beta64,
                                       dC.pointer, CUDA_R_64F, g.ldc, g.sc, g.batch, CUBLAS_COMPUTE_64F,
                                       CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS);
    const std::vector<double> got = dC.download<double>(C64.size());
    const std::vector<double> want64 = reference(g, A64, B64, C64, alpha64, beta64);
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want64[i]).epsilon(1e-13));
  }
}

TEST_CASE("emulated cublas: TF32 compute rounds the inputs to a 10-bit mantissa, pedantic does not") {
  Handle handle;
  Gemm g;
  g.m = 8, g.n = 8, g.k = 64;
  g.fill_defaults();
  const std::vector<float> A = random_values(g.a_size(), 21), B = random_values(g.b_size(), 22);
  std::vector<float> At(A.size()), Bt(B.size());
  for (size_t i = 0; i < A.size(); ++i) At[i] = tf32(A[i]);
  for (size_t i = 0; i < B.size(); ++i) Bt[i] = tf32(B[i]);
  const std::vector<double> zeros(g.c_size(), 0.0);
  const std::vector<double> exact = reference(g, widen(A), widen(B), zeros, 1, 0);
  const std::vector<double> rounded = reference(g, widen(At), widen(Bt), zeros, 1, 0);
  DeviceBuffer dA(A.size() * 4), dB(B.size() * 4), dC(g.c_size() * 4);
  dA.upload(A), dB.upload(B);
  const float one = 1.0f, zero = 0.0f;
  auto run = [&](cublasComputeType_t compute) {
    REQUIRE(cublasGemmStridedBatchedEx(handle.h, CUBLAS_OP_N, CUBLAS_OP_N, g.m, g.n, g.k, &one, dA.pointer,
                                       CUDA_R_32F, g.lda, g.sa, dB.pointer, CUDA_R_32F, g.ldb, g.sb, &zero, dC.pointer,
                                       CUDA_R_32F, g.ldc, g.sc, 1, compute,
                                       CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS);
    return widen(dC.download<float>(g.c_size()));
  };
  auto worst = [](const std::vector<double>& got, const std::vector<double>& want) {
    double w = 0;
    for (size_t i = 0; i < got.size(); ++i) w = std::max(w, std::fabs(got[i] - want[i]));
    return w;
  };
  const std::vector<double> fast = run(CUBLAS_COMPUTE_32F_FAST_TF32);
  CHECK(worst(fast, rounded) < 1e-5);
  CHECK(worst(fast, exact) > 1e-4);  // the rounding is visible
  CHECK(worst(run(CUBLAS_COMPUTE_32F), exact) < 1e-5);
  // The handle's TF32 math mode lets CUBLAS_COMPUTE_32F use TF32; _PEDANTIC never does.
  REQUIRE(cublasSetMathMode(handle.h, CUBLAS_TF32_TENSOR_OP_MATH) == CUBLAS_STATUS_SUCCESS);
  CHECK(worst(run(CUBLAS_COMPUTE_32F), rounded) < 1e-5);
  CHECK(worst(run(CUBLAS_COMPUTE_32F_PEDANTIC), exact) < 1e-5);
  cublasMath_t mode;
  REQUIRE(cublasGetMathMode(handle.h, &mode) == CUBLAS_STATUS_SUCCESS);
  CHECK(mode == CUBLAS_TF32_TENSOR_OP_MATH);
}

TEST_CASE("emulated cublas: scalars in device memory with CUBLAS_POINTER_MODE_DEVICE") {
  Handle handle;
  Gemm g;
  g.fill_defaults();
  const std::vector<float> A = random_values(g.a_size(), 31), B = random_values(g.b_size(), 32),
                           C = random_values(g.c_size(), 33);
  DeviceBuffer dA(A.size() * 4), dB(B.size() * 4), dC(C.size() * 4), scalars(8);
  dA.upload(A), dB.upload(B), dC.upload(C), scalars.upload(std::vector<float>{2.0f, 0.5f});
  REQUIRE(cublasSetPointerMode(handle.h, CUBLAS_POINTER_MODE_DEVICE) == CUBLAS_STATUS_SUCCESS);
  const float* s = static_cast<const float*>(scalars.pointer);
  REQUIRE(cublasGemmStridedBatchedEx(handle.h, CUBLAS_OP_N, CUBLAS_OP_N, g.m, g.n, g.k, s, dA.pointer, CUDA_R_32F,
                                     g.lda, g.sa, dB.pointer, CUDA_R_32F, g.ldb, g.sb, s + 1, dC.pointer, CUDA_R_32F,
                                     g.ldc, g.sc, 1, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS);
  const std::vector<float> got = dC.download<float>(C.size());
  const std::vector<double> want = reference(g, widen(A), widen(B), widen(C), 2.0, 0.5);
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-5));
}

TEST_CASE("emulated cublas: argument checks return cuBLAS's documented statuses") {
  Handle handle;
  DeviceBuffer a(4096), b(4096), c(4096);
  const float one = 1.0f;
  const double one64 = 1.0;
  auto gemm = [&](cublasHandle_t h, cublasOperation_t ta, int m, int n, int k, int lda, int ldb, int ldc, int batch,
                  cudaDataType at, cudaDataType bt, cudaDataType ct, cublasComputeType_t compute,
                  const void* alpha = nullptr) {
    const void* scalar = alpha ? alpha : &one;
    return cublasGemmStridedBatchedEx(h, ta, CUBLAS_OP_N, m, n, k, scalar, a.pointer, at, lda, 16, b.pointer, bt, ldb,
                                      16, scalar, c.pointer, ct, ldc, 16, batch, compute, CUBLAS_GEMM_DEFAULT);
  };
  const cudaDataType F = CUDA_R_32F;
  CHECK(gemm(handle.h, CUBLAS_OP_N, 4, 4, 4, 4, 4, 4, 1, F, F, F, CUBLAS_COMPUTE_32F) == CUBLAS_STATUS_SUCCESS);
  CHECK(gemm(nullptr, CUBLAS_OP_N, 4, 4, 4, 4, 4, 4, 1, F, F, F, CUBLAS_COMPUTE_32F) == CUBLAS_STATUS_NOT_INITIALIZED);
  CHECK(gemm(handle.h, CUBLAS_OP_N, -1, 4, 4, 4, 4, 4, 1, F, F, F, CUBLAS_COMPUTE_32F) == CUBLAS_STATUS_INVALID_VALUE);
  CHECK(gemm(handle.h, CUBLAS_OP_N, 4, 4, -2, 4, 4, 4, 1, F, F, F, CUBLAS_COMPUTE_32F) == CUBLAS_STATUS_INVALID_VALUE);
  CHECK(gemm(handle.h, CUBLAS_OP_N, 4, 4, 4, 4, 4, 4, -1, F, F, F, CUBLAS_COMPUTE_32F) == CUBLAS_STATUS_INVALID_VALUE);
  CHECK(gemm(handle.h, CUBLAS_OP_N, 4, 4, 4, 3, 4, 4, 1, F, F, F, CUBLAS_COMPUTE_32F) ==
        CUBLAS_STATUS_INVALID_VALUE);  // lda < m
  CHECK(gemm(handle.h, CUBLAS_OP_T, 4, 4, 2, 3, 4, 4, 1, F, F, F, CUBLAS_COMPUTE_32F) ==
        CUBLAS_STATUS_SUCCESS);  // transposed: lda >= k is enough
  CHECK(gemm(handle.h, CUBLAS_OP_T, 4, 4, 3, 2, 4, 4, 1, F, F, F, CUBLAS_COMPUTE_32F) ==
        CUBLAS_STATUS_INVALID_VALUE);  // lda < k
  CHECK(gemm(handle.h, CUBLAS_OP_N, 4, 4, 4, 4, 3, 4, 1, F, F, F, CUBLAS_COMPUTE_32F) == CUBLAS_STATUS_INVALID_VALUE);
  CHECK(gemm(handle.h, CUBLAS_OP_N, 4, 4, 4, 4, 4, 3, 1, F, F, F, CUBLAS_COMPUTE_32F) == CUBLAS_STATUS_INVALID_VALUE);
  CHECK(gemm(handle.h, CUBLAS_OP_N, 0, 4, 4, 1, 4, 1, 1, F, F, F, CUBLAS_COMPUTE_32F) ==
        CUBLAS_STATUS_SUCCESS);  // m == 0: nothing to do, ld >= max(1, 0)
  CHECK(gemm(handle.h, CUBLAS_OP_N, 0, 4, 4, 0, 4, 0, 1, F, F, F, CUBLAS_COMPUTE_32F) == CUBLAS_STATUS_INVALID_VALUE);
  CHECK(gemm(handle.h, CUBLAS_OP_CONJG, 4, 4, 4, 4, 4, 4, 1, F, F, F, CUBLAS_COMPUTE_32F) ==
        CUBLAS_STATUS_INVALID_VALUE);
  CHECK(cublasGemmStridedBatchedEx(handle.h, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, nullptr, a.pointer, F, 4, 16,
                                   b.pointer, F, 4, 16, &one, c.pointer, F, 4, 16, 1, CUBLAS_COMPUTE_32F,
                                   CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_INVALID_VALUE);
  // Type combinations outside cuBLAS's table.
  CHECK(gemm(handle.h, CUBLAS_OP_N, 4, 4, 4, 4, 4, 4, 1, F, F, F, CUBLAS_COMPUTE_64F, &one64) ==
        CUBLAS_STATUS_NOT_SUPPORTED);
  CHECK(gemm(handle.h, CUBLAS_OP_N, 4, 4, 4, 4, 4, 4, 1, CUDA_R_16F, F, F, CUBLAS_COMPUTE_32F) ==
        CUBLAS_STATUS_NOT_SUPPORTED);
  CHECK(gemm(handle.h, CUBLAS_OP_N, 4, 4, 4, 4, 4, 4, 1, CUDA_R_16F, CUDA_R_16F, CUDA_R_16F,
             CUBLAS_COMPUTE_32F_FAST_TF32) == CUBLAS_STATUS_NOT_SUPPORTED);
  CHECK(gemm(handle.h, CUBLAS_OP_N, 4, 4, 4, 4, 4, 4, 1, CUDA_R_64F, CUDA_R_64F, CUDA_R_32F, CUBLAS_COMPUTE_64F,
             &one64) == CUBLAS_STATUS_NOT_SUPPORTED);
  CHECK(gemm(handle.h, CUBLAS_OP_N, 4, 4, 4, 4, 4, 4, 1, CUDA_R_8I, CUDA_R_8I, CUDA_R_32I, CUBLAS_COMPUTE_32I) ==
        CUBLAS_STATUS_NOT_SUPPORTED);
  CHECK(gemm(handle.h, CUBLAS_OP_N, 4, 4, 4, 4, 4, 4, 1, F, F, F, static_cast<cublasComputeType_t>(12345)) ==
        CUBLAS_STATUS_INVALID_VALUE);
  // A destroyed handle is not initialised any more.
  cublasHandle_t gone = nullptr;
  REQUIRE(cublasCreate(&gone) == CUBLAS_STATUS_SUCCESS);
  REQUIRE(cublasDestroy(gone) == CUBLAS_STATUS_SUCCESS);
  CHECK(cublasSetStream(gone, nullptr) == CUBLAS_STATUS_NOT_INITIALIZED);
  CHECK(cublasSetMathMode(handle.h, static_cast<cublasMath_t>(7)) == CUBLAS_STATUS_INVALID_VALUE);
  CHECK(cudaDeviceSynchronize() == cudaSuccess);
}

TEST_CASE("emulated cublas: a host pointer is an illegal address reported at the next synchronisation") {
  // In a child process: on a GPU an illegal address leaves the context unusable.
  const int code = in_child_process([] {
    cublasHandle_t h = nullptr;
    if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS) return 1;
    std::vector<float> host_a(16, 1.0f);
    void* b = nullptr;
    void* c = nullptr;
    if (cudaMalloc(&b, 64) != cudaSuccess || cudaMalloc(&c, 64) != cudaSuccess) return 2;
    const float one = 1.0f, zero = 0.0f;
    const cublasStatus_t status =
        cublasGemmStridedBatchedEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, host_a.data(), CUDA_R_32F, 4, 16, b,
                                   CUDA_R_32F, 4, 16, &zero, c, CUDA_R_32F, 4, 16, 1, CUBLAS_COMPUTE_32F,
                                   CUBLAS_GEMM_DEFAULT);
    if (status != CUBLAS_STATUS_SUCCESS) return 3;  // the launch itself succeeds
    const cudaError_t error = cudaDeviceSynchronize();
    if (error != cudaErrorIllegalAddress) return 4;
    if (std::string(cudaGetErrorString(error)).find("matrix A") == std::string::npos) return 5;
    return 0;
  });
  CHECK(code == 0);
}

TEST_CASE("emulated cublas: versions and status names are NVIDIA's") {
  int major = 0, minor = -1;
  REQUIRE(cublasGetProperty(MAJOR_VERSION, &major) == CUBLAS_STATUS_SUCCESS);
  REQUIRE(cublasGetProperty(MINOR_VERSION, &minor) == CUBLAS_STATUS_SUCCESS);
  CHECK(major == 13);
  CHECK(minor >= 0);
  CHECK(std::string(cublasGetStatusName(CUBLAS_STATUS_INVALID_VALUE)) == "CUBLAS_STATUS_INVALID_VALUE");
  CHECK(std::string(cublasGetStatusName(CUBLAS_STATUS_NOT_SUPPORTED)) == "CUBLAS_STATUS_NOT_SUPPORTED");
  CHECK(cublasLtGetVersion() == CUBLAS_VERSION);
  cublasLtHandle_t lt = nullptr;
  REQUIRE(cublasLtCreate(&lt) == CUBLAS_STATUS_SUCCESS);
  CHECK(cublasLtDestroy(lt) == CUBLAS_STATUS_SUCCESS);
  CHECK(cublasLtDestroy(lt) == CUBLAS_STATUS_NOT_INITIALIZED);
}

#if defined(KILN_WITH_CUDA) && KILN_WITH_CUDA
TEST_CASE("kiln on the emulated GPU: matmul over an empty K gives zeros, as on the CPU" * doctest::test_suite("gpu")) {
  using namespace kiln;
  if (test::skip_without_gpu("matmul with K = 0")) return;
  // cuBLAS refuses a leading dimension of 0 (CUBLAS_STATUS_INVALID_VALUE), which is
  // what a row length of K = 0 gives; kiln passes at least 1.
  const Device gpu = Device::cuda(0);
  for (DType dtype : {DType::f32, DType::f16, DType::bf16}) {
    CAPTURE(dtype_name(dtype));
    const Tensor c = matmul(zeros({3, 0}, {dtype, gpu}), zeros({0, 4}, {dtype, gpu}));
    CHECK(c.shape() == Shape{3, 4});
    CHECK(c.to(Device::cpu()).to(DType::f64).to_vector() == std::vector<double>(12, 0.0));
    const Tensor batched = matmul(zeros({2, 3, 0}, {dtype, gpu}), zeros({2, 0, 5}, {dtype, gpu}));
    CHECK(batched.to(Device::cpu()).to(DType::f64).to_vector() == std::vector<double>(30, 0.0));
    // The backward of the first: grad_b = a^T grad_c (K = 3), grad_a = grad_c b^T (an empty result).
    const Tensor grad_c = ones({3, 4}, {dtype, gpu});
    CHECK(matmul_backward_b(grad_c, zeros({3, 0}, {dtype, gpu})).shape() == Shape{0, 4});
    CHECK(matmul_backward_a(grad_c, zeros({0, 4}, {dtype, gpu})).shape() == Shape{3, 0});
  }
}
#endif  // KILN_WITH_CUDA
