// `kiln bench train|infer`: images per second of a whole model, the number the
// "faster than PyTorch" issue compares (benchmarks/torch_bench.py is the PyTorch
// twin, benchmarks/bench_compare.sh runs both and prints the ratio).
//
// One step of `train` is what a training loop does per batch: zero the gradients,
// forward, cross-entropy loss in f32, backward, SGD with momentum. One step of
// `infer` is a forward pass in eval mode without a graph. --precision bf16/f16 runs
// the forward under autocast (f32 master weights; f16 adds dynamic loss scaling,
// whose skipped steps are reported), tf32 allows TF32 tensor cores for f32 math. The input is a random
// batch already on the device (the data pipeline is not timed), in the chosen
// layout; the labels are random classes. After `warmup` untimed steps (cuDNN picks
// its algorithms, the caching allocator fills), each of `iterations` steps is timed
// on its own (StepTimer: CUDA events on a GPU) and the median step gives
// images/s = batch / median seconds. Peak memory is the device allocator's
// high-water mark over the steps (model, optimizer state and input included).
#pragma once
#include <cstdint>
#include <string>

#include "engine/core/device.h"
#include "engine/core/shape.h"

namespace kiln::tools {

struct ModelBenchConfig {
  std::string mode = "train";       // train | infer
  std::string model = "resnet18";   // a registry name or cnn5 (default Cnn5Config at `size` px)
  int64_t classes = 0;              // 0: 1000 for the zoo, 10 for cnn5
  int64_t batch = 256;
  int64_t size = 224;               // input height = width
  std::string precision = "f32";    // f32 | tf32 | bf16 | f16 (engine/train/precision.h)
  Device device = Device::cpu();
  Layout layout = Layout::nhwc;
  int warmup = 10;
  int iterations = 50;
  double lr = 0.01, momentum = 0.9;  // SGD; the values do not change the time
  uint64_t seed = 0;
  // train on a GPU: the step is captured as a CUDA graph during the warm-up (which
  // then needs at least 3 steps: 2 eager, 1 captured) and the timed steps are replays
  // (engine/train/cuda_graph_step.h); the LR comes from the optimizer's device schedule.
  bool cuda_graph = false;
};

struct ModelBenchResult {
  double median_ms = 0;          // of one step
  double images_per_second = 0;  // batch / median step
  double peak_memory_mb = 0;     // allocator high-water mark during the steps, MiB
  int64_t parameters = 0;
  int64_t classes = 0;
  int64_t skipped_steps = 0;     // f16 training: steps the loss scaler skipped (warm-up included)
  double loss_scale = 0;         // f16 training: the scale after the last step; 0 otherwise
};

ModelBenchResult run_model_bench(const ModelBenchConfig& config);

}  // namespace kiln::tools
