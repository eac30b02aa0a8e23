// The --schedule spec parser (engine/optim/lr_schedule.cpp) on arbitrary text; a
// schedule it accepts is evaluated over its run and far past it, and must never
// give a NaN factor (an inf one is legal: gamma=1e300 asks for it).
#include <cmath>
#include <string>

#include "engine/core/error.h"
#include "engine/optim/lr_schedule.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (int64_t total : {0, 1000}) {
    try {
      kiln::optim::LrScheduleContext context;
      context.total_steps = total;
      const auto schedule = kiln::optim::make_lr_schedule(text, context);
      for (int64_t step : {int64_t{0}, int64_t{1}, int64_t{2}, int64_t{17}, int64_t{500}, int64_t{999}, int64_t{1000},
                           int64_t{1} << 20, int64_t{1} << 40})
        if (std::isnan(schedule->lr_factor(step))) __builtin_trap();
      (void)schedule->describe();
    } catch (const kiln::Error&) {
    }
  }
  return 0;
}
