// The automatic depthwise policy on a GPU (engine/ops/depthwise_race.h): the cache
// key and the timing. The key names everything that changes which path is faster:
// the direction, the device, both shapes, the dtype, the layout, the params, and for
// f32 whether TF32 is allowed (cuDNN then runs on tensor cores). The timing records
// CUDA events around each run on the context's stream, interleaved, and synchronises
// once at the end (EventTimer).
#include <algorithm>
#include <limits>

#include "engine/cuda/context.h"
#include "engine/cuda/event_timer.h"
#include "engine/ops/depthwise_race.h"

namespace kiln::cuda {

std::string depthwise_race_key(const char* direction, const Tensor& on, const Shape& x_shape,
                               const Shape& weight_shape, const Conv2dParams& params) {
  const Context& ctx = context_for(on);
  return str(direction, " on cuda:", ctx.device_index(), ": x ", x_shape, ", weight ", weight_shape, ", ",
             dtype_name(on.dtype()), " ", layout_name(on.layout()), ", ", params.to_string(),
             on.dtype() == DType::f32 && ctx.tf32() ? ", tf32" : "");
}

void race_depthwise_conv(const char* direction, const Tensor& on, const Shape& x_shape, const Shape& weight_shape,
                         const Conv2dParams& params, const std::function<void()>& custom,
                         const std::function<void()>& library) {
  Context& ctx = context_for(on);
  const DepthwiseRaceTiming timing = [&ctx](const std::vector<std::function<void()>>& runs, int repeats) {
    EventTimer timer(ctx);
    for (int round = 0; round < repeats; ++round)
      for (const std::function<void()>& run : runs) {
        timer.start();
        run();
        timer.stop();
      }
    const std::vector<double> ms = timer.elapsed_ms();
    std::vector<double> best(runs.size(), std::numeric_limits<double>::infinity());
    for (size_t i = 0; i < ms.size(); ++i) best[i % runs.size()] = std::min(best[i % runs.size()], ms[i]);
    return best;
  };
  run_depthwise_race(depthwise_race_key(direction, on, x_shape, weight_shape, params), custom, library, timing);
}

}  // namespace kiln::cuda
