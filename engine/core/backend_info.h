// What this build and this machine offer: asked by `kiln --version`, by the tests
// (to skip GPU checks with a message) and by allocator_for().
#pragma once
#include <cstdint>
#include <string>

#include "engine/core/device.h"

namespace kiln {

bool built_with_cuda();
// GPUs visible at run time; 0 in a CPU-only build or when no driver/GPU is present.
int cuda_device_count();
// Multi-line summary: version, CUDA compiled in, cuDNN/cuBLAS versions, GPUs found.
std::string runtime_summary();
// Why GPU tests skip here ("kiln was built without CUDA" / "no GPU visible: ...").
std::string gpu_unavailable_reason();

// What a run report says about the machine a run used: the GPU's name and memory
// (cudaGetDeviceProperties), or the host CPU's model name (/proc/cpuinfo) with its
// hardware threads and the host's physical memory.
struct DeviceDescription {
  std::string name;                // "NVIDIA H100 80GB HBM3" / "CPU: AMD EPYC 7B13 (2 threads)"
  int64_t total_memory_bytes = 0;  // GPU memory, or the host's physical memory (0: unknown)
};
DeviceDescription describe_device(const Device& device);

// Waits until all work queued on `device` has finished (a no-op on the CPU).
// Benchmarks call it before reading a host clock.
void synchronize(const Device& device);

// Whether f32 convolutions and GEMMs on a GPU may use TF32 tensor cores (f32 range,
// 10-bit mantissa; engine/cuda/context.h). Off by default, so f32 results match the
// CPU's; `--precision tf32` turns it on. Ignored for the CPU.
void set_tf32(const Device& device, bool allowed);

// Whether convolutions on a GPU must use deterministic cuDNN algorithms (like
// torch.backends.cudnn.deterministic; engine/cuda/context.h says what it costs). Off
// by default; `--deterministic` turns it on. The CPU backend is always deterministic.
void set_deterministic(const Device& device, bool on);

extern const char* const kVersion;

}  // namespace kiln
