// The emulated CUDA runtime: devices, memory, streams, events, graphs and errors
// (the API of emulator/include/cuda_runtime.h), on the CPU.
//
// Streams. Each stream is a queue of work (kernel grids, copies, memsets, event
// records, library calls). KILN_EMULATE_STREAMS selects when the work runs:
//   eager (default)  at once, on the calling thread: simple, errors surface at the
//                    launch check right after the call;
//   deferred         only at a synchronisation point (cudaStreamSynchronize,
//                    cudaEventSynchronize, cudaDeviceSynchronize, a synchronous
//                    copy, cudaFree), like a GPU that is far behind the host. A host
//                    read of a pinned buffer before its copy was waited for then
//                    sees the buffer's old contents, and the test fails.
// The legacy default stream (stream 0) waits for, and is waited for by, every stream
// created without cudaStreamNonBlocking, as CUDA defines.
// While a stream is captured its work goes into a graph instead; a synchronisation,
// an allocation or a synchronous copy during a capture is an error, as on a GPU.
//
// Memory. Device memory is host memory from aligned_alloc, filled with 0xFF bytes
// (a NaN in f32, f16 and bf16) so a kernel that reads what nobody wrote produces NaN.
// Under AddressSanitizer an access past an allocation or after cudaFree is reported
// by ASan. KILN_EMULATE_MALLOC_FAIL_AFTER=N makes every cudaMalloc after the first N
// fail with cudaErrorMemoryAllocation, KILN_EMULATE_MEMORY=BYTES sets the device's
// size: both exercise kiln's out-of-memory paths.
//
// Errors. A launch with a bad configuration sets the (non-sticky) last error; an
// error found inside a kernel is sticky, as a kernel fault is on a GPU: every later
// synchronisation and cudaGetLastError report it, with the scheduler's message as
// cudaGetErrorString's text. cudaDeviceReset clears it (and only that: allocations
// survive, unlike on a GPU).
#include <cuda_runtime.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "emulator/src/block_scheduler.h"
#include "emulator/src/runtime_internal.h"
#include "emulator/src/runtime_state.h"

#if defined(__SANITIZE_ADDRESS__)
#define KILN_EMULATOR_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KILN_EMULATOR_ASAN 1
#endif
#endif
#ifdef KILN_EMULATOR_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace kiln::emulator {

constexpr size_t kAlignment = 256;  // cudaMalloc's guarantee
constexpr size_t kSharedMemoryPerBlock = 48 << 10;

Runtime& runtime() {
  static Runtime* instance = new Runtime;  // never destroyed: tensors may free memory after main returns
  return *instance;
}

thread_local int current_device = 0;

size_t environment_size(const char* name, size_t fallback) {
  const char* value = std::getenv(name);
  if (!value || !*value) return fallback;
  return static_cast<size_t>(std::strtoull(value, nullptr, 10));
}

int device_count() { return static_cast<int>(environment_size("KILN_EMULATE_DEVICES", 1)); }
size_t device_memory_bytes() { return environment_size("KILN_EMULATE_MEMORY", size_t{80} << 30); }
bool deferred_streams() {
  const char* value = std::getenv("KILN_EMULATE_STREAMS");
  return value && std::strcmp(value, "deferred") == 0;
}

cudaError_t fail(cudaError_t error, const std::string& message) {
  runtime().error_details[error] = message;
  runtime().last_error = error;
  return error;
}

CUstream_st* resolve(cudaStream_t stream) {
  Runtime& rt = runtime();
  if (!stream) return &rt.legacy_stream;
  return rt.streams.count(stream) ? stream : nullptr;
}

namespace {
bool capture_restricts_caller(const CUstream_st* s) {
  if (!s->capture) return false;
  if (s->capture_mode == cudaStreamCaptureModeGlobal) return true;
  return s->capture_mode == cudaStreamCaptureModeThreadLocal && s->capture_thread == std::this_thread::get_id();
}
}  // namespace

bool any_capture_active() {
  for (CUstream_st* s : runtime().streams)
    if (capture_restricts_caller(s)) return true;
  return false;
}

// A call that is not allowed while a stream captures (global capture mode):
// invalidates every capture, as CUDA does, and returns the error.
cudaError_t refuse_during_capture(const char* call) {
  for (CUstream_st* s : runtime().streams)
    if (capture_restricts_caller(s) && !s->capture_invalidated) {
      s->capture_invalidated = true;
      s->capture_invalidated_by = call;
    }
  return fail(cudaErrorStreamCaptureUnsupported,
              std::string(call) + " is not allowed while a stream is being captured into a graph");
}

void execute(Work& work) {
  Runtime& rt = runtime();
  if (rt.sticky_error != cudaSuccess) return;  // a faulted device runs nothing more
  const cudaError_t status = work.run();
  if (status != cudaSuccess) rt.sticky_error = status;
}


// Work on the legacy stream waits for the blocking streams' earlier work, and theirs for its.
void flush_implicit_predecessors(CUstream_st* stream, uint64_t before) {
  Runtime& rt = runtime();
  if (stream == &rt.legacy_stream) {
    for (CUstream_st* s : rt.streams)
      if (!(s->flags & cudaStreamNonBlocking)) flush(s, before);
  } else if (!(stream->flags & cudaStreamNonBlocking)) {
    flush(&rt.legacy_stream, before);
  }
}

void flush(CUstream_st* stream, uint64_t until) {
  while (!stream->queue.empty() && stream->queue.front().sequence <= until) {
    Work work = std::move(stream->queue.front());
    stream->queue.pop_front();
    flush_implicit_predecessors(stream, work.sequence - 1);
    execute(work);
  }
}

void flush_all() {
  Runtime& rt = runtime();
  flush(&rt.legacy_stream);
  for (CUstream_st* s : rt.streams) flush(s);
}

// Queues (or, eagerly, runs) work on a resolved stream; returns its sequence number.
uint64_t submit(CUstream_st* stream, const std::string& what, std::function<cudaError_t()> run) {
  Runtime& rt = runtime();
  Work work{rt.next_sequence++, what, std::move(run)};
  if (stream->capture) {
    stream->capture->nodes.push_back(std::move(work));
    return 0;
  }
  stream->queue.push_back(std::move(work));
  if (!deferred_streams()) flush(stream);
  return rt.next_sequence - 1;
}

cudaError_t synchronize_stream(CUstream_st* stream) {
  if (stream->capture) {
    if (!stream->capture_invalidated) stream->capture_invalidated_by = "cudaStreamSynchronize";
    stream->capture_invalidated = true;
    return fail(cudaErrorStreamCaptureUnsupported, "cudaStreamSynchronize on a stream that is being captured");
  }
  flush(stream);
  return runtime().sticky_error;
}

bool inside(const std::map<uintptr_t, size_t>& allocations, const void* pointer, size_t bytes) {
  const uintptr_t address = reinterpret_cast<uintptr_t>(pointer);
  auto it = allocations.upper_bound(address);
  if (it == allocations.begin()) return false;
  --it;
  return address >= it->first && address + bytes <= it->first + it->second;
}

bool is_device_address(const void* pointer) { return inside(runtime().device_allocations, pointer, 1); }
bool is_pinned(const void* pointer, size_t bytes) { return inside(runtime().pinned_allocations, pointer, bytes); }

const char* kind_name(cudaMemcpyKind kind) {
  switch (kind) {
    case cudaMemcpyHostToHost: return "cudaMemcpyHostToHost";
    case cudaMemcpyHostToDevice: return "cudaMemcpyHostToDevice";
    case cudaMemcpyDeviceToHost: return "cudaMemcpyDeviceToHost";
    case cudaMemcpyDeviceToDevice: return "cudaMemcpyDeviceToDevice";
    default: return "cudaMemcpyDefault";
  }
}

// Checks a copy's pointers against its kind; resolves cudaMemcpyDefault.
cudaError_t check_copy(const char* call, void* dst, const void* src, size_t bytes, cudaMemcpyKind& kind) {
  if (bytes == 0) return cudaSuccess;
  if (!dst || !src) return fail(cudaErrorInvalidValue, std::string(call) + ": null pointer");
  const bool dst_device = is_device_address(dst), src_device = is_device_address(src);
  if (kind == cudaMemcpyDefault)
    kind = src_device ? (dst_device ? cudaMemcpyDeviceToDevice : cudaMemcpyDeviceToHost)
                      : (dst_device ? cudaMemcpyHostToDevice : cudaMemcpyHostToHost);
  const bool want_dst_device = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool want_src_device = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault)
    return fail(cudaErrorInvalidMemcpyDirection, std::string(call) + ": invalid copy kind");
  if (want_dst_device != dst_device || want_src_device != src_device)
    return fail(cudaErrorInvalidValue, std::string(call) + " with " + kind_name(kind) + ": the destination is " +
                                           (dst_device ? "device" : "host") + " memory and the source " +
                                           (src_device ? "device" : "host") + " memory");
  if (dst_device && !inside(runtime().device_allocations, dst, bytes))
    return fail(cudaErrorInvalidValue, std::string(call) + ": " + std::to_string(bytes) +
                                           " bytes run past the end of the destination's device allocation");
  if (src_device && !inside(runtime().device_allocations, src, bytes))
    return fail(cudaErrorInvalidValue, std::string(call) + ": " + std::to_string(bytes) +
                                           " bytes run past the end of the source's device allocation");
  return cudaSuccess;
}

// ---- the internal interface of emulator/src/runtime_internal.h
cudaError_t enqueue(cudaStream_t stream, const char* what, std::function<cudaError_t()> work) {
  std::lock_guard<std::recursive_mutex> lock(runtime().mutex);
  CUstream_st* s = resolve(stream);
  if (!s) return fail(cudaErrorInvalidResourceHandle, std::string(what) + ": no such stream");
  submit(s, what, std::move(work));
  return cudaSuccess;
}

void set_error_detail(cudaError_t error, const std::string& message) {
  std::lock_guard<std::recursive_mutex> lock(runtime().mutex);
  runtime().error_details[error] = message;
}

bool is_device_range(const void* pointer, size_t bytes) {
  std::lock_guard<std::recursive_mutex> lock(runtime().mutex);
  return inside(runtime().device_allocations, pointer, bytes == 0 ? 1 : bytes);
}

// ---- kernel launch (kiln_emulator/device.h)
void launch(const LaunchSite& site, dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
            std::shared_ptr<void> state, void (*thread_body)(void* state)) {
  std::lock_guard<std::recursive_mutex> lock(runtime().mutex);
  const std::string name = std::string("kernel ") + site.kernel + " (launched at " + site.file + ":" +
                           std::to_string(site.line) + ")";
  const unsigned long long threads = static_cast<unsigned long long>(block.x) * block.y * block.z;
  std::string problem;
  if (threads == 0 || threads > 1024 || block.x > 1024 || block.y > 1024 || block.z > 64)
    problem = "a block of (" + std::to_string(block.x) + "," + std::to_string(block.y) + "," +
              std::to_string(block.z) + ") threads (at most 1024 in all, (1024, 1024, 64) per dimension)";
  else if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535)
    problem = "a grid of (" + std::to_string(grid.x) + "," + std::to_string(grid.y) + "," + std::to_string(grid.z) +
              ") blocks (each at least 1; at most (2^31-1, 65535, 65535))";
  else if (shared_bytes > kSharedMemoryPerBlock)
    problem = std::to_string(shared_bytes) + " bytes of dynamic shared memory (at most 49152)";
  if (!problem.empty()) {
    fail(cudaErrorInvalidConfiguration, name + ": invalid configuration: " + problem);
    return;
  }
  CUstream_st* s = resolve(stream);
  if (!s) {
    fail(cudaErrorInvalidResourceHandle, name + ": no such stream");
    return;
  }
  auto grid_launch = std::make_shared<GridLaunch>(GridLaunch{site, grid, block, std::move(state), thread_body});
  submit(s, site.kernel, [grid_launch]() {
    std::string error;
    const cudaError_t status = run_grid(*grid_launch, scheduler_options_from_environment(), error);
    if (status != cudaSuccess) runtime().error_details[status] = error;
    return status;
  });
}

}  // namespace kiln::emulator

using kiln::emulator::fail;
using kiln::emulator::runtime;
using Lock = std::lock_guard<std::recursive_mutex>;

// ---- devices
cudaError_t cudaGetDeviceCount(int* count) {
  if (!count) return fail(cudaErrorInvalidValue, "cudaGetDeviceCount: null count");
  *count = kiln::emulator::device_count();
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  if (device < 0 || device >= kiln::emulator::device_count())
    return fail(cudaErrorInvalidDevice, "cudaSetDevice(" + std::to_string(device) + "): no such device");
  kiln::emulator::current_device = device;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  if (!device) return fail(cudaErrorInvalidValue, "cudaGetDevice: null device");
  *device = kiln::emulator::current_device;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (!prop) return fail(cudaErrorInvalidValue, "cudaGetDeviceProperties: null prop");
  if (device < 0 || device >= kiln::emulator::device_count())
    return fail(cudaErrorInvalidDevice, "cudaGetDeviceProperties(" + std::to_string(device) + "): no such device");
  *prop = cudaDeviceProp{};
  std::snprintf(prop->name, sizeof prop->name, "CUDA emulated on the CPU (for testing, not speed), sm_90-like");
  prop->totalGlobalMem = kiln::emulator::device_memory_bytes();
  prop->sharedMemPerBlock = kiln::emulator::kSharedMemoryPerBlock;
  prop->regsPerBlock = 65536;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  prop->maxThreadsDim[0] = 1024;
  prop->maxThreadsDim[1] = 1024;
  prop->maxThreadsDim[2] = 64;
  prop->maxGridSize[0] = 2147483647;
  prop->maxGridSize[1] = 65535;
  prop->maxGridSize[2] = 65535;
  prop->totalConstMem = 65536;
  prop->major = 9;
  prop->minor = 0;
  prop->multiProcessorCount = 132;
  prop->canMapHostMemory = 1;
  prop->concurrentKernels = 1;
  prop->unifiedAddressing = 1;
  prop->memoryBusWidth = 5120;
  prop->l2CacheSize = 50 << 20;
  prop->maxThreadsPerMultiProcessor = 2048;
  prop->sharedMemPerMultiprocessor = 228 << 10;
  prop->sharedMemPerBlockOptin = 227 << 10;
  prop->pciBusID = device;
  return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int* version) {
  if (!version) return fail(cudaErrorInvalidValue, "cudaDriverGetVersion: null version");
  *version = CUDART_VERSION;
  return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int* version) { return cudaDriverGetVersion(version); }

cudaError_t cudaDeviceSynchronize() {
  Lock lock(runtime().mutex);
  if (kiln::emulator::any_capture_active()) return kiln::emulator::refuse_during_capture("cudaDeviceSynchronize");
  kiln::emulator::flush_all();
  return runtime().sticky_error;
}

cudaError_t cudaDeviceReset() {
  Lock lock(runtime().mutex);
  kiln::emulator::flush_all();
  runtime().sticky_error = cudaSuccess;
  runtime().last_error = cudaSuccess;
  return cudaSuccess;
}

cudaError_t cudaGetLastError() {
  Lock lock(runtime().mutex);
  if (runtime().sticky_error != cudaSuccess) return runtime().sticky_error;
  const cudaError_t error = runtime().last_error;
  runtime().last_error = cudaSuccess;
  return error;
}

cudaError_t cudaPeekAtLastError() {
  Lock lock(runtime().mutex);
  return runtime().sticky_error != cudaSuccess ? runtime().sticky_error : runtime().last_error;
}

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
#define KILN_EMULATOR_NAME(e) \
  case e: return #e;
    KILN_EMULATOR_NAME(cudaSuccess)
    KILN_EMULATOR_NAME(cudaErrorInvalidValue)
    KILN_EMULATOR_NAME(cudaErrorMemoryAllocation)
    KILN_EMULATOR_NAME(cudaErrorInitializationError)
    KILN_EMULATOR_NAME(cudaErrorInvalidConfiguration)
    KILN_EMULATOR_NAME(cudaErrorInvalidDevicePointer)
    KILN_EMULATOR_NAME(cudaErrorInvalidMemcpyDirection)
    KILN_EMULATOR_NAME(cudaErrorNoDevice)
    KILN_EMULATOR_NAME(cudaErrorInvalidDevice)
    KILN_EMULATOR_NAME(cudaErrorInvalidResourceHandle)
    KILN_EMULATOR_NAME(cudaErrorIllegalState)
    KILN_EMULATOR_NAME(cudaErrorNotReady)
    KILN_EMULATOR_NAME(cudaErrorIllegalAddress)
    KILN_EMULATOR_NAME(cudaErrorLaunchFailure)
    KILN_EMULATOR_NAME(cudaErrorNotSupported)
    KILN_EMULATOR_NAME(cudaErrorStreamCaptureUnsupported)
    KILN_EMULATOR_NAME(cudaErrorStreamCaptureInvalidated)
    KILN_EMULATOR_NAME(cudaErrorStreamCaptureUnmatched)
    KILN_EMULATOR_NAME(cudaErrorStreamCaptureImplicit)
#undef KILN_EMULATOR_NAME
    default: return "cudaErrorUnknown";
  }
}

const char* cudaGetErrorString(cudaError_t error) {
  Lock lock(runtime().mutex);
  auto it = runtime().error_details.find(error);
  if (it != runtime().error_details.end()) return it->second.c_str();
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorNotReady: return "device not ready";
    default: return cudaGetErrorName(error);
  }
}

// ---- memory
cudaError_t cudaMalloc(void** pointer, size_t bytes) {
  Lock lock(runtime().mutex);
  auto& rt = runtime();
  if (!pointer) return fail(cudaErrorInvalidValue, "cudaMalloc: null pointer");
  *pointer = nullptr;
  if (kiln::emulator::any_capture_active()) return kiln::emulator::refuse_during_capture("cudaMalloc");
  if (bytes == 0) return cudaSuccess;
  const char* fail_after = std::getenv("KILN_EMULATE_MALLOC_FAIL_AFTER");
  if (fail_after && *fail_after && rt.successful_mallocs >= std::strtoull(fail_after, nullptr, 10))
    return fail(cudaErrorMemoryAllocation, "out of memory (cudaMalloc of " + std::to_string(bytes) +
                                               " bytes failed on purpose: KILN_EMULATE_MALLOC_FAIL_AFTER=" +
                                               fail_after + ")");
  if (bytes > kiln::emulator::device_memory_bytes() - rt.device_bytes_in_use)
    return fail(cudaErrorMemoryAllocation, "out of memory (cudaMalloc of " + std::to_string(bytes) + " bytes with " +
                                               std::to_string(rt.device_bytes_in_use) + " of " +
                                               std::to_string(kiln::emulator::device_memory_bytes()) + " in use)");
  const size_t rounded = (bytes + kiln::emulator::kAlignment - 1) / kiln::emulator::kAlignment * kiln::emulator::kAlignment;
  void* memory = std::aligned_alloc(kiln::emulator::kAlignment, rounded);
  if (!memory) return fail(cudaErrorMemoryAllocation, "out of memory (the host has no " + std::to_string(bytes) + " bytes)");
  std::memset(memory, 0xFF, rounded);  // NaN in every float type: reads of unwritten memory show
#ifdef KILN_EMULATOR_ASAN
  ASAN_POISON_MEMORY_REGION(static_cast<char*>(memory) + bytes, rounded - bytes);
#endif
  rt.device_allocations[reinterpret_cast<uintptr_t>(memory)] = bytes;
  rt.device_bytes_in_use += bytes;
  ++rt.successful_mallocs;
  *pointer = memory;
  return cudaSuccess;
}

cudaError_t cudaFree(void* pointer) {
  Lock lock(runtime().mutex);
  auto& rt = runtime();
  if (!pointer) return cudaSuccess;
  if (kiln::emulator::any_capture_active()) return kiln::emulator::refuse_during_capture("cudaFree");
  kiln::emulator::flush_all();  // cudaFree synchronises the device
  auto it = rt.device_allocations.find(reinterpret_cast<uintptr_t>(pointer));
  if (it == rt.device_allocations.end())
    return fail(cudaErrorInvalidValue, "cudaFree: the pointer was not returned by cudaMalloc (or was freed already)");
  rt.device_bytes_in_use -= it->second;
  rt.device_allocations.erase(it);
  std::free(pointer);
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  Lock lock(runtime().mutex);
  if (!free_bytes || !total_bytes) return fail(cudaErrorInvalidValue, "cudaMemGetInfo: null pointer");
  *total_bytes = kiln::emulator::device_memory_bytes();
  *free_bytes = *total_bytes - runtime().device_bytes_in_use;
  return cudaSuccess;
}

cudaError_t cudaHostAlloc(void** pointer, size_t bytes, unsigned int flags) {
  Lock lock(runtime().mutex);
  if (!pointer) return fail(cudaErrorInvalidValue, "cudaHostAlloc: null pointer");
  if (kiln::emulator::any_capture_active()) return kiln::emulator::refuse_during_capture("cudaHostAlloc");
  *pointer = nullptr;
  if (bytes == 0) return cudaSuccess;
  const size_t rounded = (bytes + 4095) / 4096 * 4096;  // page-locked memory comes in pages
  void* memory = std::aligned_alloc(4096, rounded);
  if (!memory) return fail(cudaErrorMemoryAllocation, "out of memory (cudaHostAlloc of " + std::to_string(bytes) + " bytes)");
  std::memset(memory, 0xFF, rounded);
  runtime().pinned_allocations[reinterpret_cast<uintptr_t>(memory)] = bytes;
  *pointer = memory;
  (void)flags;
  return cudaSuccess;
}

cudaError_t cudaMallocHost(void** pointer, size_t bytes) { return cudaHostAlloc(pointer, bytes, cudaHostAllocDefault); }

cudaError_t cudaFreeHost(void* pointer) {
  Lock lock(runtime().mutex);
  if (!pointer) return cudaSuccess;
  if (kiln::emulator::any_capture_active()) return kiln::emulator::refuse_during_capture("cudaFreeHost");
  kiln::emulator::flush_all();  // like cudaFree, it waits for the device
  auto it = runtime().pinned_allocations.find(reinterpret_cast<uintptr_t>(pointer));
  if (it == runtime().pinned_allocations.end())
    return fail(cudaErrorInvalidValue, "cudaFreeHost: the pointer was not returned by cudaHostAlloc");
  runtime().pinned_allocations.erase(it);
  std::free(pointer);
  return cudaSuccess;
}

cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* attributes, const void* pointer) {
  Lock lock(runtime().mutex);
  if (!attributes) return fail(cudaErrorInvalidValue, "cudaPointerGetAttributes: null attributes");
  *attributes = cudaPointerAttributes{cudaMemoryTypeUnregistered, -1, nullptr, nullptr};
  if (kiln::emulator::is_device_address(pointer)) {
    *attributes = cudaPointerAttributes{cudaMemoryTypeDevice, 0, const_cast<void*>(pointer), nullptr};
  } else if (kiln::emulator::is_pinned(pointer, 1)) {
    *attributes = cudaPointerAttributes{cudaMemoryTypeHost, 0, const_cast<void*>(pointer), const_cast<void*>(pointer)};
  }
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
  Lock lock(runtime().mutex);
  if (const cudaError_t bad = kiln::emulator::check_copy("cudaMemcpyAsync", dst, src, bytes, kind)) return bad;
  CUstream_st* s = kiln::emulator::resolve(stream);
  if (!s) return fail(cudaErrorInvalidResourceHandle, "cudaMemcpyAsync: no such stream");
  if (bytes == 0) return cudaSuccess;
  // A graph's memcpy node copies between fixed addresses at every replay; CUDA
  // refuses pageable host memory there (it cannot be read asynchronously).
  if (s->capture && ((kind == cudaMemcpyHostToDevice && !kiln::emulator::is_pinned(src, bytes)) ||
                     (kind == cudaMemcpyDeviceToHost && !kiln::emulator::is_pinned(dst, bytes)))) {
    if (!s->capture_invalidated) s->capture_invalidated_by = "cudaMemcpyAsync with pageable host memory";
    s->capture_invalidated = true;
    return fail(cudaErrorStreamCaptureUnsupported,
                "cudaMemcpyAsync: a copy from or to pageable host memory cannot be captured into a graph "
                "(use pinned memory: cudaHostAlloc)");
  }
  // Pageable host memory: the source is staged at the call (the host may reuse it
  // at once); a copy into pageable memory completes before the call returns.
  if (kind == cudaMemcpyHostToDevice && !kiln::emulator::is_pinned(src, bytes)) {
    auto staged = std::make_shared<std::vector<char>>(static_cast<const char*>(src), static_cast<const char*>(src) + bytes);
    kiln::emulator::submit(s, "cudaMemcpyAsync", [dst, staged]() {
      std::memcpy(dst, staged->data(), staged->size());
      return cudaSuccess;
    });
    return cudaSuccess;
  }
  const uint64_t sequence = kiln::emulator::submit(s, "cudaMemcpyAsync", [dst, src, bytes]() {
    std::memcpy(dst, src, bytes);
    return cudaSuccess;
  });
  if (kind == cudaMemcpyDeviceToHost && !kiln::emulator::is_pinned(dst, bytes) && !s->capture)
    kiln::emulator::flush(s, sequence);
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  Lock lock(runtime().mutex);
  if (kiln::emulator::any_capture_active()) return kiln::emulator::refuse_during_capture("cudaMemcpy");
  if (const cudaError_t bad = cudaMemcpyAsync(dst, src, bytes, kind, nullptr)) return bad;
  return kiln::emulator::synchronize_stream(&runtime().legacy_stream);
}

cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream) {
  Lock lock(runtime().mutex);
  if (bytes == 0) return cudaSuccess;
  if (!kiln::emulator::is_device_range(dst, bytes))
    return fail(cudaErrorInvalidValue, "cudaMemsetAsync: " + std::to_string(bytes) +
                                           " bytes at an address that is not inside one device allocation");
  CUstream_st* s = kiln::emulator::resolve(stream);
  if (!s) return fail(cudaErrorInvalidResourceHandle, "cudaMemsetAsync: no such stream");
  kiln::emulator::submit(s, "cudaMemsetAsync", [dst, value, bytes]() {
    std::memset(dst, value, bytes);
    return cudaSuccess;
  });
  return cudaSuccess;
}

cudaError_t cudaMemset(void* dst, int value, size_t bytes) {
  Lock lock(runtime().mutex);
  if (kiln::emulator::any_capture_active()) return kiln::emulator::refuse_during_capture("cudaMemset");
  if (const cudaError_t bad = cudaMemsetAsync(dst, value, bytes, nullptr)) return bad;
  return kiln::emulator::synchronize_stream(&runtime().legacy_stream);
}

// ---- streams and events: emulator/src/streams.cpp
