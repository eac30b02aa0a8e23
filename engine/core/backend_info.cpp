// The one file (beside engine/ops/dispatch.h) that knows whether CUDA was compiled in.
#include "engine/core/backend_info.h"

#include <unistd.h>

#include <fstream>
#include <thread>

#include "engine/core/check.h"
#include "engine/memory/allocator.h"
#include "engine/ops/dispatch.h"
#if KILN_WITH_CUDA
#include "engine/cuda/context.h"
#include "engine/cuda/cuda_check.h"
#endif

namespace kiln {

const char* const kVersion = "0.1.0";

bool built_with_cuda() { return KILN_WITH_CUDA != 0; }

int cuda_device_count() {
#if KILN_WITH_CUDA
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return count;
#else
  return 0;
#endif
}

std::string gpu_unavailable_reason() {
  if (!built_with_cuda()) return "kiln was built without CUDA (KILN_CUDA=OFF, or AUTO found no nvcc/cuDNN)";
#if KILN_WITH_CUDA
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();
    return std::string("no GPU visible: ") + cudaGetErrorString(status);
  }
  if (count == 0) return "no GPU visible: cudaGetDeviceCount returned 0";
#endif
  return "";
}

std::string runtime_summary() {
  std::string out = str("kiln ", kVersion, "\n");
#if KILN_WITH_CUDA
  out += str("CUDA: compiled in (toolkit ", CUDART_VERSION / 1000, ".", (CUDART_VERSION % 1000) / 10, ")\n");
  // The driver version explains the most common "no GPU" case: a driver older
  // than the toolkit kiln was built with (0 means no driver is installed).
  int driver_version = 0;
  if (cudaDriverGetVersion(&driver_version) != cudaSuccess) cudaGetLastError();
  out += driver_version == 0 ? std::string("CUDA driver: none found\n")
                             : str("CUDA driver: supports CUDA up to ", driver_version / 1000, ".",
                                   (driver_version % 1000) / 10, "\n");
  out += str("cuDNN: ", cudnnGetVersion() / 10000, ".", (cudnnGetVersion() % 10000) / 100, ".",
             cudnnGetVersion() % 100, " at run time\n");
  int cublas_version = 0;
  if (cublasGetProperty(MAJOR_VERSION, &cublas_version) == CUBLAS_STATUS_SUCCESS) {
    int minor = 0;
    cublasGetProperty(MINOR_VERSION, &minor);
    out += str("cuBLAS: ", cublas_version, ".", minor, " at run time\n");
  }
  const int count = cuda_device_count();
  if (count == 0) out += "no GPU: running on CPU (" + gpu_unavailable_reason() + ")\n";
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, i) == cudaSuccess)
      out += str("GPU ", i, ": ", p.name, ", ", p.totalGlobalMem / (1 << 20), " MiB, ", p.multiProcessorCount,
                 " SMs, compute capability ", p.major, ".", p.minor, "\n");
  }
#else
  out += "CUDA: not compiled in (KILN_CUDA=OFF)\nno GPU: running on CPU\n";
#endif
  return out;
}

DeviceDescription describe_device(const Device& device) {
  DeviceDescription d;
  if (device.is_cpu()) {
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line, model = "unknown model";
    while (std::getline(cpuinfo, line))
      if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos) {
        model = line.substr(line.find(':') + 2);
        break;
      }
    d.name = str("CPU: ", model, " (", std::thread::hardware_concurrency(), " threads)");
    const long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGE_SIZE);
    if (pages > 0 && page_size > 0) d.total_memory_bytes = static_cast<int64_t>(pages) * page_size;
    return d;
  }
#if KILN_WITH_CUDA
  cudaDeviceProp p{};
  CUDA_CHECK(cudaGetDeviceProperties(&p, device.index));
  d.name = p.name;
  d.total_memory_bytes = static_cast<int64_t>(p.totalGlobalMem);
  return d;
#else
  throw_built_without_cuda(__FILE__, __LINE__);
#endif
}

void synchronize(const Device& device) {
  if (device.is_cpu()) return;
#if KILN_WITH_CUDA
  cuda::Context::get(device.index).synchronize();
#else
  throw_built_without_cuda(__FILE__, __LINE__);
#endif
}

void set_tf32(const Device& device, bool allowed) {
  if (device.is_cpu()) return;
#if KILN_WITH_CUDA
  cuda::Context::get(device.index).set_tf32(allowed);
#else
  throw_built_without_cuda(__FILE__, __LINE__);
#endif
}

void set_deterministic(const Device& device, bool on) {
  if (device.is_cpu()) return;
#if KILN_WITH_CUDA
  cuda::Context::get(device.index).set_deterministic(on);
#else
  throw_built_without_cuda(__FILE__, __LINE__);
#endif
}

#if !KILN_WITH_CUDA
Allocator& pinned_host_allocator() { return cpu_allocator(); }  // engine/cuda/pinned_memory.cpp in CUDA builds
#endif

Allocator& allocator_for(const Device& device) {
  if (device.is_cpu()) return cpu_allocator();
#if KILN_WITH_CUDA
  return cuda::Context::get(device.index).allocator();
#else
  throw_built_without_cuda(__FILE__, __LINE__);
#endif
}

}  // namespace kiln
