// The device side of kiln's emulated GPU: CUDA's language extensions, built-in
// variables and warp intrinsics for kernels compiled by the host compiler.
//
// - __global__, __device__, __host__ are empty: a kernel is a plain function that
//   the emulator calls once per CUDA thread, each thread a fiber of its own.
// - __shared__ is `static thread_local`: blocks run one after another on one host
//   thread, so the variable has one instance per block at a time.
// - threadIdx, blockIdx, blockDim, gridDim read the running fiber's coordinates.
// - __syncthreads() and the warp intrinsics (__shfl_*_sync, __syncwarp,
//   __ballot_sync, __all_sync, __any_sync) are rendezvous points of the block
//   scheduler (emulator/src/block_scheduler.cpp): a fiber stops there until every
//   thread it waits for has arrived, and the scheduler checks that they arrived at
//   the same place with consistent masks (the source line is recorded for errors).
// - KILN_LAUNCH(grid, block, shared_bytes, stream, kernel)(args...) (kernels/launch.cuh
//   uses <<<...>>> under nvcc) copies the arguments, as CUDA copies them into the
//   kernel's parameter space, and queues the grid on the stream.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
#define __shared__ static thread_local
// __restrict__ is understood by g++ and clang as it is.

namespace kiln::emulator {

// The built-in variables of the running CUDA thread, set by the scheduler before it
// switches to the thread's fiber.
struct Builtins {
  uint3 thread_index;
  uint3 block_index;
  dim3 block_dim;
  dim3 grid_dim;
};
extern thread_local Builtins builtins;

inline const uint3& thread_index() { return builtins.thread_index; }
inline const uint3& block_index() { return builtins.block_index; }
inline const dim3& block_dim() { return builtins.block_dim; }
inline const dim3& grid_dim() { return builtins.grid_dim; }

// Where a synchronisation call is written, for error messages.
struct SourceSite {
  const char* file;
  int line;
};

// __syncthreads(): waits until every thread of the block is at this barrier.
void sync_threads(SourceSite site);

// The warp-level operations, computed as PTX defines them once every lane named by
// the mask has arrived.
enum class WarpOp { shfl_idx, shfl_up, shfl_down, shfl_xor, ballot, all, any, syncwarp };

// One lane's part of a warp operation: its mask, its value's bits, the operand
// (source lane, delta or lane mask) and the width. Returns the bits it receives.
uint64_t warp_exchange(WarpOp op, const char* name, SourceSite site, unsigned mask, uint64_t bits, int operand,
                       int width);

template <WarpOp kOp, class T>
T shuffle(const char* name, SourceSite site, unsigned mask, T value, int operand, int width = 32) {
  static_assert(std::is_trivially_copyable<T>::value && sizeof(T) <= 8, "a shuffle moves at most 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  bits = warp_exchange(kOp, name, site, mask, bits, operand, width);
  T result;
  std::memcpy(&result, &bits, sizeof(T));
  return result;
}

// __syncwarp(mask = all lanes): a functor, so that the mask can be left out.
struct SyncWarp {
  SourceSite site;
  void operator()(unsigned mask = 0xffffffffu) const {
    warp_exchange(WarpOp::syncwarp, "__syncwarp", site, mask, 0, 0, 32);
  }
};

// ---- kernel launch
struct LaunchSite {
  const char* kernel;  // the kernel expression as written: "sum_kernel<scalar_t>"
  const char* file;
  int line;
};

// Checks the configuration against the device's limits (a bad one is reported by
// the next cudaGetLastError, as on a GPU) and queues the grid on `stream`: every
// thread of every block calls thread_body(state).
void launch(const LaunchSite& site, dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
            std::shared_ptr<void> state, void (*thread_body)(void* state));

template <class... Params>
class KernelLaunch {
 public:
  KernelLaunch(LaunchSite site, void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes,
               cudaStream_t stream)
      : site_(site), kernel_(kernel), grid_(grid), block_(block), shared_bytes_(shared_bytes), stream_(stream) {}

  template <class... Args>
  void operator()(Args&&... args) const {
    static_assert(sizeof...(Args) == sizeof...(Params), "wrong number of kernel arguments");
    // The arguments are converted to the parameter types and copied once, at the
    // launch: the host may change its variables afterwards, as with CUDA.
    using Arguments = std::tuple<std::decay_t<Params>...>;
    using Frame = std::pair<void (*)(Params...), Arguments>;
    auto frame = std::make_shared<Frame>(kernel_, Arguments(std::forward<Args>(args)...));
    launch(site_, grid_, block_, shared_bytes_, stream_, frame, [](void* state) {
      Frame& f = *static_cast<Frame*>(state);
      std::apply(f.first, f.second);  // each thread gets its own copy of the parameters
    });
  }

 private:
  LaunchSite site_;
  void (*kernel_)(Params...);
  dim3 grid_, block_;
  size_t shared_bytes_;
  cudaStream_t stream_;
};

template <class... Params>
KernelLaunch<Params...> make_launch(LaunchSite site, void (*kernel)(Params...), dim3 grid, dim3 block,
                                    size_t shared_bytes, cudaStream_t stream) {
  return KernelLaunch<Params...>(site, kernel, grid, block, shared_bytes, stream);
}

}  // namespace kiln::emulator

#define threadIdx (::kiln::emulator::thread_index())
#define blockIdx (::kiln::emulator::block_index())
#define blockDim (::kiln::emulator::block_dim())
#define gridDim (::kiln::emulator::grid_dim())
constexpr int warpSize = 32;

#define KILN_EMULATOR_SITE ::kiln::emulator::SourceSite{__FILE__, __LINE__}
#define __syncthreads() ::kiln::emulator::sync_threads(KILN_EMULATOR_SITE)
#define __syncwarp(...) ::kiln::emulator::SyncWarp{KILN_EMULATOR_SITE}(__VA_ARGS__)
#define __shfl_sync(...) \
  ::kiln::emulator::shuffle<::kiln::emulator::WarpOp::shfl_idx>("__shfl_sync", KILN_EMULATOR_SITE, __VA_ARGS__)
#define __shfl_up_sync(...) \
  ::kiln::emulator::shuffle<::kiln::emulator::WarpOp::shfl_up>("__shfl_up_sync", KILN_EMULATOR_SITE, __VA_ARGS__)
#define __shfl_down_sync(...) \
  ::kiln::emulator::shuffle<::kiln::emulator::WarpOp::shfl_down>("__shfl_down_sync", KILN_EMULATOR_SITE, __VA_ARGS__)
#define __shfl_xor_sync(...) \
  ::kiln::emulator::shuffle<::kiln::emulator::WarpOp::shfl_xor>("__shfl_xor_sync", KILN_EMULATOR_SITE, __VA_ARGS__)
#define __ballot_sync(mask, predicate)                                                                           \
  static_cast<unsigned>(::kiln::emulator::warp_exchange(::kiln::emulator::WarpOp::ballot, "__ballot_sync",     \
                                                        KILN_EMULATOR_SITE, (mask), (predicate) ? 1u : 0u, 0, 32))
#define __all_sync(mask, predicate)                                                                    \
  static_cast<int>(::kiln::emulator::warp_exchange(::kiln::emulator::WarpOp::all, "__all_sync",       \
                                                   KILN_EMULATOR_SITE, (mask), (predicate) ? 1u : 0u, 0, 32))
#define __any_sync(mask, predicate)                                                                    \
  static_cast<int>(::kiln::emulator::warp_exchange(::kiln::emulator::WarpOp::any, "__any_sync",       \
                                                   KILN_EMULATOR_SITE, (mask), (predicate) ? 1u : 0u, 0, 32))

#define KILN_LAUNCH(grid, block, shared_bytes, stream, ...)                                                  \
  ::kiln::emulator::make_launch(::kiln::emulator::LaunchSite{#__VA_ARGS__, __FILE__, __LINE__}, __VA_ARGS__, \
                                (grid), (block), (shared_bytes), (stream))

// ---- CUDA's global min/max overloads (one template here: the common type of the
// two arguments, as the usual arithmetic conversions give it) and the <cmath>
// classification functions that device code calls unqualified.
template <class A, class B>
inline std::common_type_t<A, B> min(A a, B b) {
  return b < a ? b : a;
}
template <class A, class B>
inline std::common_type_t<A, B> max(A a, B b) {
  return a < b ? b : a;
}
using std::isfinite;
using std::isinf;
using std::isnan;

// ---- math intrinsics. The fast approximations of the GPU (__expf, __logf,
// __fdividef) are computed exactly here: docs/cuda.md lists this among what the
// emulator cannot see. The _rn operations round once, as written (g++ does not
// contract a * b + c into an FMA on x86-64 without -mfma).
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : (x == x ? x : 0.0f)); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline unsigned int __float_as_uint(float x) {
  unsigned int bits;
  std::memcpy(&bits, &x, sizeof bits);
  return bits;
}
inline float __uint_as_float(unsigned int bits) {
  float x;
  std::memcpy(&x, &bits, sizeof x);
  return x;
}
inline int __float_as_int(float x) { return static_cast<int>(__float_as_uint(x)); }
inline float __int_as_float(int bits) { return __uint_as_float(static_cast<unsigned int>(bits)); }
