// Planning multi-tensor launches (apex's multi_tensor_apply, torch's _foreach_):
// one kernel launch updates many tensors, instead of one launch per tensor.
//
// Every tensor of a list is cut into chunks of kMultiTensorChunk elements; each
// CUDA block handles one chunk of one tensor. A launch carries, by value in its
// kernel arguments (at most 4 KiB, so no device table and no host-to-device copy):
//   - the addresses of up to max_tensors tensors, `depth` addresses each
//     (param, grad, state...), and their sizes;
//   - for each of up to kMultiTensorMaxBlocks blocks: which tensor and which chunk.
// A launch is full when either table is; the rest goes to the next launch, and a
// tensor whose chunks do not all fit continues there (it then appears in both).
// Empty tensors get no block. This file is the host-side plan, plain C++ so that it
// is testable without a GPU and so that docs/optim.md can count the launches of a
// model; kernels/multi_tensor.cuh turns a plan into launches.
#pragma once
#include <cstdint>
#include <vector>

namespace kiln::optim {

constexpr int64_t kMultiTensorChunk = 65536;  // elements per block (torch's and apex's value)
constexpr int kMultiTensorMaxBlocks = 320;    // blocks per launch (likewise)

// How many tensors one launch can address when each has `depth` pointers: the
// pointer table and the sizes share ~2 KiB of the 4 KiB of kernel arguments with
// the block table (5 bytes a block) and the functor's scalars.
int multi_tensor_max_tensors(int depth);

struct MultiTensorBlock {
  int slot;   // the tensor's position in this launch's table
  int chunk;  // which kMultiTensorChunk-element piece of it
};

struct MultiTensorLaunch {
  std::vector<int> tensors;              // slot -> index in the caller's list
  std::vector<MultiTensorBlock> blocks;  // one CUDA block each
};

// The launches that cover every element of tensors of the given sizes.
std::vector<MultiTensorLaunch> plan_multi_tensor_launches(const std::vector<int64_t>& sizes, int max_tensors,
                                                          int max_blocks = kMultiTensorMaxBlocks,
                                                          int64_t chunk = kMultiTensorChunk);

}  // namespace kiln::optim
