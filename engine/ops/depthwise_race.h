// The automatic depthwise policy (depthwise_conv_path() == automatic, engine/ops/conv.h):
// on the first use of a (direction, shapes, dtype, layout, params) key, run kiln's
// depthwise kernel ("custom") and the library's grouped convolution ("library", cuDNN
// on a GPU) against each other, keep the faster, and cache the winner under the key,
// as torch.backends.cudnn.benchmark does. Later calls only look the winner up.
//
// A path that cannot run the problem is out of the race instead of failing the
// convolution: cuDNN may refuse a problem its own heuristics offered (a status
// error such as CUDNN_STATUS_NOT_SUPPORTED, thrown by CUDNN_CHECK as kiln::Error),
// or run out of workspace memory; kiln's kernel refuses shapes past its grid limits.
// Whichever path throws a kiln::Error during its warm-up run loses without timing,
// and the reason is kept for depthwise_race_choices(). Only when both fail does the
// convolution fail, with both reasons.
//
// The decision logic below knows nothing about devices: the paths and the timing
// are callables, so tests inject a failing or slow path on any machine
// (tests/ops/test_depthwise_race.cpp). The GPU wiring (the cache key with the
// device and its TF32 setting, CUDA-event timing) is cuda::race_depthwise_conv,
// engine/cuda/depthwise_race.cpp, called by conv2d's dispatch in engine/ops/conv.cpp.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "engine/ops/conv.h"

namespace kiln {

// One cached decision.
struct DepthwiseRaceResult {
  bool custom = false;               // the winner: kiln's kernel (true) or the library (false)
  double custom_ms = 0, library_ms = 0;  // best timed run of each; +inf for a path that failed
  std::string custom_error, library_error;  // why a path could not run the problem ("" if it could)
};

// Runs every callable of `runs` `repeats` times, interleaved (so clock changes hit
// all alike), and returns the best time of each in milliseconds.
using DepthwiseRaceTiming =
    std::function<std::vector<double>(const std::vector<std::function<void()>>& runs, int repeats)>;

constexpr int kDepthwiseRaceRepeats = 5;

// Computes the convolution (each path overwrites the whole output) by the cached
// winner for `key`, racing the paths first when the key is new (see above). The
// winner always runs last, so the first call's result has the same bits as later
// calls'. Thread-safe; two threads racing one new key both race, the first result
// is kept. Returns the decision used.
DepthwiseRaceResult run_depthwise_race(const std::string& key, const std::function<void()>& custom,
                                       const std::function<void()>& library, const DepthwiseRaceTiming& timing);

// Every decision so far, sorted, one line each:
//   "<key>: custom 0.123 ms, cudnn 0.456 ms -> custom"
//   "<key>: custom 0.123 ms, cudnn failed (<reason>) -> custom"
std::vector<std::string> depthwise_race_choices();
// The cached decision for `key`, or nothing if that key has not raced yet.
std::optional<DepthwiseRaceResult> depthwise_race_choice(const std::string& key);

namespace cuda {
// The GPU side (engine/cuda/depthwise_race.cpp): run_depthwise_race with the key
// "<direction> on cuda:N: x (..), weight (..), <dtype> <layout>, <params>[, tf32]" and
// CUDA-event timing on the context's stream of `on`'s device.
void race_depthwise_conv(const char* direction, const Tensor& on, const Shape& x_shape, const Shape& weight_shape,
                         const Conv2dParams& params, const std::function<void()>& custom,
                         const std::function<void()>& library);
// The key race_depthwise_conv uses for these arguments (tests look decisions up by it).
std::string depthwise_race_key(const char* direction, const Tensor& on, const Shape& x_shape,
                               const Shape& weight_shape, const Conv2dParams& params);
}  // namespace cuda

}  // namespace kiln
