// The emulated GPU's stream-capture rules (emulator/src/streams.cpp, runtime.cpp),
// which `--cuda-graph` relies on to prove on the CPU what matters on a GPU: a call
// that CUDA refuses during a capture is refused here too, and names itself in the
// error of cudaStreamEndCapture; a memcpy node re-reads its pinned host buffer at
// every replay; the capture modes restrict the threads CUDA restricts. Built only
// with KILN_CUDA=EMULATE (a real GPU needs no proof that it is a GPU).
#include <doctest/doctest.h>

#include <cuda_runtime.h>

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
