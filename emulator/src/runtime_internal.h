// What the emulated cuBLAS and cuDNN (emulator/src/cublas.cpp, cudnn.cpp) need from
// the emulated CUDA runtime (emulator/src/runtime.cpp). Not part of the CUDA API:
// kiln's own code never includes this file.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <functional>
#include <string>

namespace kiln::emulator {

// Puts `work` on `stream` (nullptr: the legacy default stream) in stream order, as a
// library call's kernels would be. In the eager mode (the default) it runs before
// enqueue returns; in the deferred mode (KILN_EMULATE_STREAMS=deferred) it runs at
// the stream's next synchronisation point; while the stream is being captured it is
// recorded into the graph and runs at each cudaGraphLaunch. `what` names the work
// in error messages ("cudnnConvolutionForward"). The work returns cudaSuccess, or an
// error after calling set_error_detail(); that error becomes the runtime's sticky
// error, reported by the next synchronisation or cudaGetLastError as on a GPU.
// Returns cudaErrorInvalidResourceHandle for a stream that does not exist.
cudaError_t enqueue(cudaStream_t stream, const char* what, std::function<cudaError_t()> work);

// The message cudaGetErrorString returns for the most recent error of this kind.
void set_error_detail(cudaError_t error, const std::string& message);

// True when [pointer, pointer + bytes) lies inside one live cudaMalloc allocation:
// the libraries' argument checks use it to refuse host pointers.
bool is_device_range(const void* pointer, size_t bytes);

}  // namespace kiln::emulator
