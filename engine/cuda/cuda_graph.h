// A CUDA graph captured from the work a piece of host code queues on one device's
// stream, and replayed (engine/train/cuda_graph_step.h uses it for `--cuda-graph`).
//
// Capture runs the host code once with the stream in capture mode: every kernel
// launch, library call (cuBLAS, cuDNN) and asynchronous copy it queues is recorded
// into a graph, with its arguments, instead of running. Launching the instantiated
// graph then queues all of that work again with one call: the same kernels, the
// same arguments, the same addresses. Nothing on the host runs during a replay.
//
// The capture uses cudaStreamCaptureModeThreadLocal: the capturing thread may not
// make a call that could synchronise with the capture (cudaStreamSynchronize, a
// synchronous cudaMemcpy such as Tensor::to(cpu), cudaMalloc, an event query): it
// fails and invalidates the capture. Other threads (the loader's workers, which may
// allocate pinned buffers) are not restricted, as they would be in global mode.
// capture() turns any failure into a kiln::Error that names the call and says what
// usually causes it, and leaves the stream usable.
#pragma once
#include <cuda_runtime.h>

#include <functional>
#include <memory>

#include "engine/core/device.h"

namespace kiln::cuda {

class CapturedGraph {
 public:
  // Runs `record` with `device`'s stream being captured, then instantiates the graph.
  // Nothing `record` queues runs until launch(). Throws kiln::Error naming the call
  // that broke the capture (or `record`'s own error).
  static std::unique_ptr<CapturedGraph> capture(const Device& device, const std::function<void()>& record);
  ~CapturedGraph();
  CapturedGraph(const CapturedGraph&) = delete;
  CapturedGraph& operator=(const CapturedGraph&) = delete;

  // Queues the recorded work on the device's stream (asynchronous, like a launch).
  void launch();

 private:
  CapturedGraph(const Device& device, cudaGraphExec_t exec) : device_(device), exec_(exec) {}
  Device device_;
  cudaGraphExec_t exec_ = nullptr;
};

}  // namespace kiln::cuda
