// `kiln train --cuda-graph`: the training step captured once as a CUDA graph and
// replayed every step (what torch.compile's "reduce-overhead" mode does).
//
// A small-image step is hundreds of short kernels; launching them from the host
// costs more than running them. A graph replays all of a step's launches with one
// call. The step's host code (the autograd tape, the optimizer's loops) runs only
// while the graph is captured; a replay runs the recorded kernels on the addresses
// they were recorded with and never touches host-side autograd. So:
//
// - The inputs live in fixed device buffers, one set per input shape: run() copies
//   the batch (already on the device, augmented) into them and the graph reads them.
// - Everything the step writes must be at the same address every replay: the
//   parameters, their gradients, the optimizer and loss-scaler state, the running
//   totals (the trainer keeps one totals tensor for the whole run), and every
//   temporary. The temporaries come from a private pool of the caching allocator
//   (caching_allocator.h) that nothing else is served from, so between replays no
//   other tensor can land on (and be overwritten by) the graph's memory.
// - Nothing may change on the host per step: the LR comes from the device step
//   counter (Optimizer::set_lr_schedule), the loss scaler and the NaN check keep
//   their flags on the device, and the trainer refuses the options that need the
//   host every step (check_cuda_graph_setup).
// - Warm-up: the first `warmup_steps` steps of each shape run eagerly in the
//   shape's pool (they are real steps: they train). They settle the allocator (the
//   pool then holds every block the step needs, so the capture makes no cudaMalloc,
//   which would fail inside a capture), the cuDNN algorithm choices, the cuDNN/cuBLAS
//   workspace and the lazily created optimizer state. The next step of that shape is
//   captured and then launched, every later one is a replay.
// - A new shape (a progressive-resize switch, a short last batch) gets its own
//   buffers, pool, warm-up and graph: a small map keyed by the inputs' shapes and
//   dtypes, at most kMaxGraphs entries (the least recently used one goes first).
//
// See docs/cuda_graphs.md.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/nn/module.h"
#include "engine/optim/optimizer.h"
#include "engine/tensor/tensor.h"

namespace kiln::cuda {
class CapturedGraph;
}

namespace kiln::train {

struct TrainSetup;

class CudaGraphStep {
 public:
  static constexpr size_t kMaxGraphs = 8;
  // The device work of one step on inputs in fixed buffers; it must not read the
  // device on the host.
  using Step = std::function<void(const std::vector<Tensor>& fixed_inputs)>;

  CudaGraphStep(const Device& device, int warmup_steps);
  ~CudaGraphStep();
  CudaGraphStep(const CudaGraphStep&) = delete;
  CudaGraphStep& operator=(const CudaGraphStep&) = delete;

  // One step on `inputs` (tensors on the device). Returns true when it was a replay:
  // the step's host code did not run, so host-side counters the step would have
  // moved (Optimizer::count_replayed_step) are the caller's to move.
  bool run(const std::vector<Tensor>& inputs, const Step& step);

  int64_t eager_steps() const { return eager_steps_; }
  int64_t captures() const { return captures_; }
  int64_t replays() const { return replays_; }
  size_t graphs() const { return entries_.size(); }

 private:
  struct Entry {
    std::vector<Tensor> fixed_inputs;  // the buffers the graph reads
    int pool = 0;                      // the allocator's private pool of this shape
    int64_t warmups_done = 0;
    int64_t last_used = 0;
    std::shared_ptr<cuda::CapturedGraph> graph;  // shared_ptr: destructible where CUDA is not compiled in
  };
  void release(Entry& entry);

  Device device_;
  int warmup_steps_;
  std::map<std::string, Entry> entries_;  // key: the inputs' shapes and dtypes
  int64_t eager_steps_ = 0, captures_ = 0, replays_ = 0, calls_ = 0;
};

// Throws naming the option when `setup` asks for something a captured step cannot
// do (a host read or a host value per step), or the model or optimizer has such a
// part (dropout's per-call seed, a host-scheduled LR).
void check_cuda_graph_setup(const TrainSetup& setup, const nn::Module& model, const optim::Optimizer& optimizer);

}  // namespace kiln::train
