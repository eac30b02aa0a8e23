// The per-device CUDA state: one stream, the cuBLAS and cuDNN handles bound to it,
// a growable workspace for cuDNN/cuBLAS, and the device's caching allocator.
//
// There is no global "current device": an op looks up the Context of its input's
// device with context_for(tensor), and everything it launches goes to that
// context's stream, so work on one device runs in order without host syncs.
// Contexts are created on first use and live until the process exits.
#pragma once
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <memory>
#include <vector>

#include "engine/memory/caching_allocator.h"
#include "engine/tensor/tensor.h"

namespace kiln::cuda {

class Context {
 public:
  static Context& get(int device_index);  // throws naming the index when there is no such GPU

  int device_index() const { return device_index_; }
  cudaStream_t stream() const { return stream_; }
  cublasHandle_t cublas() const { return cublas_; }
  cublasLtHandle_t cublas_lt() const { return cublas_lt_; }
  cudnnHandle_t cudnn() const { return cudnn_; }
  CachingAllocator& allocator() { return *allocator_; }
  const cudaDeviceProp& properties() const { return properties_; }

  // Scratch memory of at least `bytes`, valid until the next workspace() call on
  // this context. Taken from the caching allocator, so it never leaves the cache.
  void* workspace(size_t bytes);
  // A captured CUDA graph replays the workspace address it was captured with, so
  // once one exists (engine/cuda/cuda_graph.h) a workspace that grows keeps its old
  // block instead of returning it to the cache, where others would overwrite it.
  void keep_retired_workspaces() { keep_retired_workspaces_ = true; }
  void synchronize() const;  // wait for everything queued on the stream

  // TF32 for f32 math (off by default): cuBLAS's math mode and compute type
  // (CUBLAS_COMPUTE_32F_FAST_TF32) and cuDNN's convolution math type
  // (CUDNN_DEFAULT_MATH instead of CUDNN_FMA_MATH) follow it. A per-device setting,
  // like torch.backends.cuda.matmul.allow_tf32; `--precision tf32` sets it.
  void set_tf32(bool allowed);
  bool tf32() const { return tf32_; }

  // Deterministic convolutions (off by default), like torch.backends.cudnn.deterministic:
  // cuDNN's algorithm choice (engine/cuda/cudnn_conv.cpp) skips every algorithm cuDNN
  // marks CUDNN_NON_DETERMINISTIC, those that add partial sums with atomics (backward
  // filter ALGO_0 and ALGO_3, backward data ALGO_0), so the same inputs give the same
  // bits on every run. The cost is speed: for many layers the fastest backward
  // algorithm is one of those, and the next deterministic one can be markedly slower,
  // how much depends on the layer and the GPU. kiln's own kernels never use atomics
  // and cuBLAS is deterministic on one stream, so this is the only switch needed.
  // It may change at any time: the cached choices are kept per setting.
  void set_deterministic(bool on) { deterministic_ = on; }
  bool deterministic() const { return deterministic_; }

  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

 private:
  explicit Context(int device_index);
  void release() noexcept;  // frees in reverse order of creation; used by the destructor
  class DeviceMemory;  // RawAllocator over cudaMalloc / cudaFree

  int device_index_;
  cudaDeviceProp properties_{};
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  cublasLtHandle_t cublas_lt_ = nullptr;
  cudnnHandle_t cudnn_ = nullptr;
  std::unique_ptr<DeviceMemory> raw_memory_;
  std::unique_ptr<CachingAllocator> allocator_;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  bool keep_retired_workspaces_ = false;
  std::vector<std::pair<void*, size_t>> retired_workspaces_;  // kept for captured graphs
  bool tf32_ = false;
  bool deterministic_ = false;
};

inline Context& context_for(const Tensor& t) { return Context::get(t.device().index); }

// Makes the context's device current for the calling thread (cudaSetDevice), so
// kernels launch on the right GPU. Ops call this before launching.
void set_device(const Context& ctx);

}  // namespace kiln::cuda
