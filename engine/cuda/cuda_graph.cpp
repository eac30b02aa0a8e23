// Capturing and replaying CUDA graphs: see cuda_graph.h.
#include "engine/cuda/cuda_graph.h"

#include <string>

#include "engine/cuda/context.h"
#include "engine/cuda/cuda_check.h"

namespace kiln::cuda {

std::unique_ptr<CapturedGraph> CapturedGraph::capture(const Device& device, const std::function<void()>& record) {
  Context& context = Context::get(device.index);
  set_device(context);
  // From now on a growing workspace keeps its old block: the graph may use it.
  context.keep_retired_workspaces();
  CUDA_CHECK(cudaStreamBeginCapture(context.stream(), cudaStreamCaptureModeThreadLocal));
  std::string failure;
  try {
    record();
  } catch (const std::exception& e) {
    failure = e.what();
  }
  // End the capture whatever happened, so that the stream works again.
  cudaGraph_t graph = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(context.stream(), &graph);
  if (!failure.empty() || ended != cudaSuccess || graph == nullptr) {
    if (graph) CUDA_CHECK_NOTHROW(cudaGraphDestroy(graph));  // reported; the capture's failure is the error
    const std::string ended_message = ended == cudaSuccess ? std::string() : cudaGetErrorString(ended);
    (void)cudaGetLastError();  // capture errors are not sticky: clear the last error
    KILN_FAIL("CUDA graph capture on ", device.to_string(), " failed: ",
              failure.empty() ? ended_message : failure,
              failure.empty() || ended_message.empty() ? "" : " (then: " + ended_message + ")",
              ". A captured step must not read the device on the host (loss.item(), Tensor::to(cpu), a "
              "NaN check), synchronise, or allocate memory its warm-up step did not; move such reads "
              "outside the step or make them device-side");
  }
  cudaGraphExec_t exec = nullptr;
  const cudaError_t instantiated = cudaGraphInstantiate(&exec, graph, 0);
  const cudaError_t destroyed = cudaGraphDestroy(graph);  // the executable does not need the graph
  CUDA_CHECK(instantiated);
  std::unique_ptr<CapturedGraph> captured(new CapturedGraph(device, exec));  // frees exec if the next check throws
  CUDA_CHECK(destroyed);
  return captured;
}

CapturedGraph::~CapturedGraph() {
  // A graph still queued keeps running: CUDA frees the executable once it is done.
  if (exec_) CUDA_CHECK_NOTHROW(cudaGraphExecDestroy(exec_));
}

void CapturedGraph::launch() {
  Context& context = Context::get(device_.index);
  set_device(context);
  CUDA_CHECK(cudaGraphLaunch(exec_, context.stream()));
}

}  // namespace kiln::cuda
