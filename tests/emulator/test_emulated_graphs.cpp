// The emulated GPU's stream-capture rules (emulator/src/streams.cpp, runtime.cpp),
// which `--cuda-graph` relies on to prove on the CPU what matters on a GPU: a call
// that CUDA refuses during a capture is refused here too, and names itself in the
// error of cudaStreamEndCapture; a memcpy node re-reads its pinned host buffer at
// every replay; the capture modes restrict the threads CUDA restricts. Built only
// with KILN_CUDA=EMULATE (a real GPU needs no proof that it is a GPU).
#include <doctest/doctest.h>

#include <cuda_runtime.h>

#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "kernels/launch.cuh"

namespace {

__global__ void add_host_value_kernel(float* data, const float* value) { data[threadIdx.x] += *value; }

std::string last_error_text(cudaError_t error) { return cudaGetErrorString(error); }

}  // namespace

TEST_CASE("emulator: a captured copy from pinned memory re-reads the host buffer at every replay") {
  cudaStream_t stream = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) == cudaSuccess);
  float *data = nullptr, *value = nullptr, *pinned = nullptr;
  REQUIRE(cudaMalloc(reinterpret_cast<void**>(&data), 32 * sizeof(float)) == cudaSuccess);
  REQUIRE(cudaMalloc(reinterpret_cast<void**>(&value), sizeof(float)) == cudaSuccess);
  REQUIRE(cudaHostAlloc(reinterpret_cast<void**>(&pinned), sizeof(float), cudaHostAllocDefault) == cudaSuccess);
  REQUIRE(cudaMemset(data, 0, 32 * sizeof(float)) == cudaSuccess);
  REQUIRE(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal) == cudaSuccess);
  REQUIRE(cudaMemcpyAsync(value, pinned, sizeof(float), cudaMemcpyHostToDevice, stream) == cudaSuccess);
  KILN_LAUNCH(1, 32, 0, stream, add_host_value_kernel)(data, value);
  cudaGraph_t graph = nullptr;
  REQUIRE(cudaStreamEndCapture(stream, &graph) == cudaSuccess);
  cudaGraphExec_t exec = nullptr;
  REQUIRE(cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess);
  for (float v : {1.0f, 10.0f, 100.0f}) {  // the host writes the buffer between replays
    *pinned = v;
    REQUIRE(cudaGraphLaunch(exec, stream) == cudaSuccess);
    REQUIRE(cudaStreamSynchronize(stream) == cudaSuccess);
  }
  std::vector<float> host(32);
  REQUIRE(cudaMemcpy(host.data(), data, 32 * sizeof(float), cudaMemcpyDeviceToHost) == cudaSuccess);
  CHECK(host[0] == 111.0f);
  CHECK(host[31] == 111.0f);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaFreeHost(pinned);
  cudaFree(value);
  cudaFree(data);
  cudaStreamDestroy(stream);
}

TEST_CASE("emulator: calls CUDA refuses during a capture are refused, and cudaStreamEndCapture names the first") {
  cudaStream_t stream = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) == cudaSuccess);
  float* data = nullptr;
  REQUIRE(cudaMalloc(reinterpret_cast<void**>(&data), 64 * sizeof(float)) == cudaSuccess);
  std::vector<float> pageable(64, 1.0f);
  cudaEvent_t event = nullptr;
  REQUIRE(cudaEventCreate(&event) == cudaSuccess);
  REQUIRE(cudaEventRecord(event, stream) == cudaSuccess);

  struct Refused {
    const char* name;
    std::function<cudaError_t()> call;
  };
  const std::vector<Refused> refused = {
      {"cudaMemcpyAsync with pageable host memory",
       [&] { return cudaMemcpyAsync(data, pageable.data(), 64 * sizeof(float), cudaMemcpyHostToDevice, stream); }},
      {"cudaMemcpyAsync with pageable host memory",
       [&] { return cudaMemcpyAsync(pageable.data(), data, 64 * sizeof(float), cudaMemcpyDeviceToHost, stream); }},
      {"cudaMemcpy", [&] { return cudaMemcpy(pageable.data(), data, 64 * sizeof(float), cudaMemcpyDeviceToHost); }},
      {"cudaMemset", [&] { return cudaMemset(data, 0, 64 * sizeof(float)); }},
      {"cudaEventQuery", [&] { return cudaEventQuery(event); }},
      {"cudaEventSynchronize", [&] { return cudaEventSynchronize(event); }},
      {"cudaHostAlloc",
       [&] {
         void* p = nullptr;
         return cudaHostAlloc(&p, 64, cudaHostAllocDefault);
       }},
      {"cudaMalloc",
       [&] {
         void* p = nullptr;
         return cudaMalloc(&p, 64);
       }},
      {"cudaDeviceSynchronize", [&] { return cudaDeviceSynchronize(); }},
  };
  for (const Refused& r : refused) {
    CAPTURE(r.name);
    REQUIRE(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal) == cudaSuccess);
    CHECK(r.call() == cudaErrorStreamCaptureUnsupported);
    cudaGraph_t graph = nullptr;
    const cudaError_t ended = cudaStreamEndCapture(stream, &graph);
    CHECK(ended == cudaErrorStreamCaptureInvalidated);
    CHECK(graph == nullptr);
    CHECK(last_error_text(ended).find(r.name) != std::string::npos);
    cudaGetLastError();
  }
  // Outside a capture the same calls work.
  CHECK(cudaMemcpyAsync(data, pageable.data(), 64 * sizeof(float), cudaMemcpyHostToDevice, stream) == cudaSuccess);
  CHECK(cudaEventQuery(event) == cudaSuccess);
  cudaEventDestroy(event);
  cudaFree(data);
  cudaStreamDestroy(stream);
}

TEST_CASE("emulator: a thread-local capture restricts only its own thread, a global one every thread") {
  cudaStream_t stream = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) == cudaSuccess);
  const auto malloc_on_another_thread = [] {
    cudaError_t result = cudaSuccess;
    std::thread other([&] {
      void* p = nullptr;
      result = cudaMalloc(&p, 256);
      if (result == cudaSuccess) cudaFree(p);
    });
    other.join();
    return result;
  };
  REQUIRE(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal) == cudaSuccess);
  CHECK(malloc_on_another_thread() == cudaSuccess);  // a loader thread may still allocate pinned buffers
  void* mine = nullptr;
  CHECK(cudaMalloc(&mine, 256) == cudaErrorStreamCaptureUnsupported);
  cudaGraph_t graph = nullptr;
  CHECK(cudaStreamEndCapture(stream, &graph) == cudaErrorStreamCaptureInvalidated);
  cudaGetLastError();

  REQUIRE(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal) == cudaSuccess);
  CHECK(malloc_on_another_thread() == cudaErrorStreamCaptureUnsupported);
  CHECK(cudaStreamEndCapture(stream, &graph) == cudaErrorStreamCaptureInvalidated);
  cudaGetLastError();

  REQUIRE(cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed) == cudaSuccess);
  CHECK(cudaMalloc(&mine, 256) == cudaSuccess);  // relaxed: allowed (and not part of the graph)
  REQUIRE(cudaStreamEndCapture(stream, &graph) == cudaSuccess);
  cudaGraphDestroy(graph);
  cudaFree(mine);
  cudaStreamDestroy(stream);
}

namespace {
void append_marker(void* markers) { static_cast<std::vector<int>*>(markers)->push_back(0); }
__global__ void mark_kernel(int* flag) { *flag = 1; }
struct DeferredStreams {  // KILN_EMULATE_STREAMS=deferred for a scope, whatever is thrown
  DeferredStreams() { setenv("KILN_EMULATE_STREAMS", "deferred", 1); }
  ~DeferredStreams() { unsetenv("KILN_EMULATE_STREAMS"); }
};
}  // namespace

TEST_CASE("emulator: a host function runs in its stream's order, deferred too, and at every replay of a graph") {
  // The caching allocator's ASan bookkeeping relies on it (engine/memory/caching_allocator.cpp).
  cudaStream_t stream = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) == cudaSuccess);
  std::vector<int> markers;
  CHECK(cudaLaunchHostFunc(stream, nullptr, &markers) == cudaErrorInvalidValue);
  CHECK(cudaGetLastError() == cudaErrorInvalidValue);  // read, so that it is not the next call's
  REQUIRE(cudaLaunchHostFunc(stream, append_marker, &markers) == cudaSuccess);
  CHECK(markers.size() == 1);  // eager: at once
  int* flag = nullptr;
  REQUIRE(cudaMalloc(reinterpret_cast<void**>(&flag), sizeof(int)) == cudaSuccess);
  {
    const DeferredStreams deferred;
    REQUIRE(cudaMemsetAsync(flag, 0, sizeof(int), stream) == cudaSuccess);
    KILN_LAUNCH(1, 1, 0, stream, mark_kernel)(flag);
    int seen_by_host_function = -1;
    struct Probe {
      int* device_flag;
      int* seen;
    } probe{flag, &seen_by_host_function};
    const auto read_flag = [](void* p) { *static_cast<Probe*>(p)->seen = *static_cast<Probe*>(p)->device_flag; };
    REQUIRE(cudaLaunchHostFunc(stream, read_flag, &probe) == cudaSuccess);
    CHECK(seen_by_host_function == -1);  // deferred: nothing ran yet
    REQUIRE(cudaStreamSynchronize(stream) == cudaSuccess);
    CHECK(seen_by_host_function == 1);  // after the kernel queued before it (emulated memory is host memory)
  }
  REQUIRE(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal) == cudaSuccess);
  REQUIRE(cudaLaunchHostFunc(stream, append_marker, &markers) == cudaSuccess);
  cudaGraph_t graph = nullptr;
  REQUIRE(cudaStreamEndCapture(stream, &graph) == cudaSuccess);
  CHECK(markers.size() == 1);  // recorded, not run
  cudaGraphExec_t exec = nullptr;
  REQUIRE(cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess);
  for (int replay = 0; replay < 2; ++replay) REQUIRE(cudaGraphLaunch(exec, stream) == cudaSuccess);
  REQUIRE(cudaStreamSynchronize(stream) == cudaSuccess);
  CHECK(markers.size() == 3);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaFree(flag);
  cudaStreamDestroy(stream);
}
