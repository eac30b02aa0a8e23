// The host-side plan of multi-tensor launches (see multi_tensor.h).
#include "engine/optim/multi_tensor.h"

#include <algorithm>

#include "engine/core/check.h"

namespace kiln::optim {

int multi_tensor_max_tensors(int depth) {
  KILN_CHECK(depth >= 1 && depth <= 8, "multi_tensor_max_tensors: depth must be 1..8 pointers a tensor, got ", depth);
  // (depth + 1) 8-byte words a tensor (its pointers and its size) within 2 KiB;
  // never more than 110 (apex's cap for depth 1), a byte indexes the slots.
  return std::min(110, 2048 / (8 * (depth + 1)));
}

std::vector<MultiTensorLaunch> plan_multi_tensor_launches(const std::vector<int64_t>& sizes, int max_tensors,
                                                          int max_blocks, int64_t chunk) {
  KILN_CHECK(max_tensors >= 1 && max_blocks >= 1 && chunk >= 1, "plan_multi_tensor_launches: expected positive ",
             "limits, got max_tensors ", max_tensors, ", max_blocks ", max_blocks, ", chunk ", chunk);
  std::vector<MultiTensorLaunch> launches;
  MultiTensorLaunch current;
  auto flush = [&] {
    if (!current.blocks.empty()) launches.push_back(std::move(current));
    current = MultiTensorLaunch{};
  };
  for (size_t t = 0; t < sizes.size(); ++t) {
    KILN_CHECK(sizes[t] >= 0, "plan_multi_tensor_launches: tensor ", t, " has negative size ", sizes[t]);
    const int64_t chunks = (sizes[t] + chunk - 1) / chunk;
    for (int64_t c = 0; c < chunks; ++c) {
      // A new slot for this tensor when the launch does not hold it yet (its first
      // chunk, or the first chunk after a flush).
      if (current.tensors.empty() || current.tensors.back() != static_cast<int>(t)) {
        if (static_cast<int>(current.tensors.size()) == max_tensors) flush();
        current.tensors.push_back(static_cast<int>(t));
      }
      current.blocks.push_back({static_cast<int>(current.tensors.size()) - 1, static_cast<int>(c)});
      if (static_cast<int>(current.blocks.size()) == max_blocks) {
        const bool more_of_this_tensor = c + 1 < chunks;
        flush();
        if (more_of_this_tensor) current.tensors.push_back(static_cast<int>(t));
      }
    }
  }
  flush();
  return launches;
}

}  // namespace kiln::optim
