// The per-device CUDA state (see context.h for the contract).
//
// One Context per GPU, created on first use by Context::get(index):
//   - a stream created with cudaStreamNonBlocking, so kiln's work never waits on
//     (or is serialised behind) the legacy default stream that other libraries use;
//   - cuBLAS, cuBLASLt and cuDNN handles bound to that stream, so library calls are
//     queued in order with kiln's own kernels;
//   - a caching allocator over cudaMalloc (engine/memory/caching_allocator.h);
//   - one growable workspace for cuDNN / cuBLAS scratch memory.
#include "engine/cuda/context.h"

#include <array>
#include <atomic>
#include <cstdio>
#include <functional>
#include <mutex>
#include <string>

#include "engine/cuda/cuda_check.h"

namespace kiln::cuda {

// ---- raw device memory: what the caching allocator calls when its cache is empty.
class Context::DeviceMemory final : public RawAllocator {
 public:
  DeviceMemory(int device_index, cudaStream_t stream) : device_index_(device_index), stream_(stream) {}

  void* raw_allocate(size_t bytes) override {
    // cudaMalloc allocates on the calling thread's current device, which may be
    // another GPU: make ours current first.
    CUDA_CHECK(cudaSetDevice(device_index_));
    void* ptr = nullptr;
    const cudaError_t status = cudaMalloc(&ptr, bytes);
    if (status == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // clear the error so the next launch check does not report it
      return nullptr;      // the caching allocator frees its cache and retries
    }
    CUDA_CHECK(status);
    return ptr;
  }

  void raw_free(void* ptr) override {
    // Called from the caching allocator's destructor too: report, never throw.
    CUDA_CHECK_NOTHROW(cudaSetDevice(device_index_));
    CUDA_CHECK_NOTHROW(cudaFree(ptr));
  }

  Device device() const override { return Device::cuda(device_index_); }

  // A host function on the context's stream: the caching allocator's ASan
  // bookkeeping, ordered with the kernels that use its blocks. Never throws (the
  // allocator calls it when a tensor is freed, in destructors too): with no memory for
  // the queued copy, the action runs now, as when the launch fails.
  void in_stream_order(std::function<void()> action) noexcept override {
    auto* queued = new (std::nothrow) std::function<void()>(std::move(action));
    if (queued == nullptr) {
      action();  // the allocation failed, so nothing was moved out of action
      return;
    }
    const cudaError_t status = cudaLaunchHostFunc(
        stream_,
        [](void* function) {
          auto* f = static_cast<std::function<void()>*>(function);
          (*f)();
          delete f;
        },
        queued);
    if (status != cudaSuccess) {  // a faulted device runs nothing more: now is as late as any
      (void)cudaGetLastError();
      (*queued)();
      delete queued;
    }
  }

 private:
  int device_index_;
  cudaStream_t stream_;
};

// ---- the registry of contexts, one slot per device ordinal.
namespace {

constexpr int kMaxDevices = 64;

int visible_device_count(std::string* why) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();  // "no driver" is sticky otherwise
    *why = cudaGetErrorString(status);
    return 0;
  }
  return count;
}

}  // namespace

Context& Context::get(int device_index) {
  // Contexts are never destroyed: tensors in static storage may free their memory
  // after main() returns, and by then the CUDA runtime may already be unloading.
  // The driver reclaims everything at process exit (PyTorch does the same).
  static std::array<std::atomic<Context*>, kMaxDevices> contexts{};
  static std::mutex creation_mutex;

  if (device_index >= 0 && device_index < kMaxDevices) {
    // Fast path, taken by every op after the first: no lock.
    if (Context* ctx = contexts[device_index].load(std::memory_order_acquire)) return *ctx;
  }
  std::lock_guard<std::mutex> lock(creation_mutex);
  std::string why;
  const int count = visible_device_count(&why);
  KILN_CHECK(device_index >= 0 && device_index < count && device_index < kMaxDevices, "CUDA device cuda:",
             device_index, " is not available: ", count, " GPU(s) visible",
             why.empty() ? std::string() : std::string(" (") + why + ")",
             count > 0 ? " (valid: cuda:0 .. cuda:" + std::to_string(count - 1) + ")" : std::string());
  Context* ctx = contexts[device_index].load(std::memory_order_acquire);
  if (!ctx) {  // another thread may have created it while we waited for the lock
    ctx = new Context(device_index);
    contexts[device_index].store(ctx, std::memory_order_release);
  }
  return *ctx;
}

Context::Context(int device_index) : device_index_(device_index) {
  try {
    CUDA_CHECK(cudaSetDevice(device_index_));
    CUDA_CHECK(cudaGetDeviceProperties(&properties_, device_index_));
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));

    CUBLAS_CHECK(cublasCreate(&cublas_));
    CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
    // Plain FP32 GEMMs by default: TF32 would change results by ~1e-3 relative and
    // break CPU-vs-CUDA parity. A matmul that wants tensor cores asks explicitly.
    CUBLAS_CHECK(cublasSetMathMode(cublas_, CUBLAS_DEFAULT_MATH));
    CUBLAS_CHECK(cublasLtCreate(&cublas_lt_));

    CUDNN_CHECK(cudnnCreate(&cudnn_));
    CUDNN_CHECK(cudnnSetStream(cudnn_, stream_));

    raw_memory_ = std::make_unique<DeviceMemory>(device_index_, stream_);
    allocator_ = std::make_unique<CachingAllocator>(*raw_memory_);
  } catch (...) {
    release();  // a half-built context frees what it already made
    throw;
  }
}

// Reverse order of creation: the workspace goes back to the allocator, the
// allocator's cache to cudaFree, then the handles, and the stream they use last.
void Context::release() noexcept {
  if (stream_) CUDA_CHECK_NOTHROW(cudaSetDevice(device_index_));
  if (stream_) CUDA_CHECK_NOTHROW(cudaStreamSynchronize(stream_));  // nothing may still use the memory
  if (workspace_ && allocator_) allocator_->deallocate(workspace_, workspace_bytes_);
  if (allocator_)
    for (auto& [ptr, bytes] : retired_workspaces_) allocator_->deallocate(ptr, bytes);
  retired_workspaces_.clear();
  workspace_ = nullptr;
  workspace_bytes_ = 0;
  allocator_.reset();
  raw_memory_.reset();
  if (cudnn_) {
    const cudnnStatus_t status = cudnnDestroy(cudnn_);
    if (status != CUDNN_STATUS_SUCCESS) std::fprintf(stderr, "kiln: cudnnDestroy failed: %s\n", cudnnGetErrorString(status));
  }
  if (cublas_lt_) {
    const cublasStatus_t status = cublasLtDestroy(cublas_lt_);
    if (status != CUBLAS_STATUS_SUCCESS) std::fprintf(stderr, "kiln: cublasLtDestroy failed: %s\n", cublas_status_name(status));
  }
  if (cublas_) {
    const cublasStatus_t status = cublasDestroy(cublas_);
    if (status != CUBLAS_STATUS_SUCCESS) std::fprintf(stderr, "kiln: cublasDestroy failed: %s\n", cublas_status_name(status));
  }
  if (stream_) CUDA_CHECK_NOTHROW(cudaStreamDestroy(stream_));
  cudnn_ = nullptr;
  cublas_lt_ = nullptr;
  cublas_ = nullptr;
  stream_ = nullptr;
}

Context::~Context() { release(); }

void* Context::workspace(size_t bytes) {
  if (bytes <= workspace_bytes_) return workspace_;
  // Grow in whole MiB so a sequence of slightly larger requests (one per conv
  // shape) does not trade blocks back and forth. The old block can go straight
  // back to the cache: a kernel still reading it runs on this stream, before any
  // later user of the block.
  const size_t kMiB = size_t{1} << 20;
  const size_t grown = (bytes + kMiB - 1) / kMiB * kMiB;
  void* fresh = allocator_->allocate(grown);
  if (workspace_ && keep_retired_workspaces_)
    retired_workspaces_.emplace_back(workspace_, workspace_bytes_);
  else if (workspace_)
    allocator_->deallocate(workspace_, workspace_bytes_);
  workspace_ = fresh;
  workspace_bytes_ = grown;
  return workspace_;
}

void Context::synchronize() const {
  set_device(*this);
  CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void Context::set_tf32(bool allowed) {
  CUBLAS_CHECK(cublasSetMathMode(cublas_, allowed ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  tf32_ = allowed;
}

void set_device(const Context& ctx) { CUDA_CHECK(cudaSetDevice(ctx.device_index())); }

}  // namespace kiln::cuda
