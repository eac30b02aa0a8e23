// multi_tensor_apply: one kernel launch per plan entry (engine/optim/multi_tensor.h)
// instead of one per tensor. The plan's tables travel by value in the kernel's
// arguments (TensorListMetadata, < 4 KiB), so a launch needs no device buffer and
// no copy. Each block looks up its tensor and chunk and calls the functor:
//
//   struct Scale {  // x *= s for every tensor of a list (depth 1)
//     float s;
//     __device__ void operator()(void* const* addresses, int64_t begin, int64_t end,
//                                const MultiTensorBlockInfo&) const {
//       float* x = static_cast<float*>(addresses[0]);
//       for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) x[i] *= s;
//     }
//   };
//   multi_tensor_apply<1>({xs}, sizes, Scale{2.0f}, stream, "scale");
//
// addresses[d] is the d-th list's pointer for this block's tensor (nullptr where a
// list has none, e.g. an absent momentum buffer); [begin, end) is the chunk, in
// elements; the MultiTensorBlockInfo says which slot and which block of the whole
// plan this is (for functors that write one partial result per block).
#pragma once
#include <cuda_runtime.h>

#include <vector>

#include "engine/core/check.h"
#include "kernels/launch.cuh"
#include "engine/cuda/cuda_check.h"
#include "engine/optim/multi_tensor.h"

namespace kiln::cuda {

constexpr int kMultiTensorThreads = 512;

// The largest table for `depth` pointers a tensor (multi_tensor_max_tensors, as a
// compile-time constant for the array sizes).
template <int kDepth>
constexpr int max_tensors_for_depth() {
  return 2048 / (8 * (kDepth + 1)) < 110 ? 2048 / (8 * (kDepth + 1)) : 110;
}

template <int kDepth>
struct TensorListMetadata {
  static constexpr int kMaxTensors = max_tensors_for_depth<kDepth>();
  void* addresses[kDepth][kMaxTensors];
  int64_t sizes[kMaxTensors];
  unsigned char block_to_slot[optim::kMultiTensorMaxBlocks];
  int block_to_chunk[optim::kMultiTensorMaxBlocks];
  int first_block;  // this launch's first block in the whole plan (for per-block results)
};

// What a functor learns about its block besides the addresses.
struct MultiTensorBlockInfo {
  int slot;          // the tensor's slot in this launch
  int plan_block;    // the block's number counted over all launches of the plan
  int64_t size;      // the tensor's element count
};

template <int kDepth, class Functor>
__global__ void __launch_bounds__(kMultiTensorThreads)
    multi_tensor_kernel(TensorListMetadata<kDepth> meta, Functor functor) {
  const int slot = meta.block_to_slot[blockIdx.x];
  const int64_t size = meta.sizes[slot];
  const int64_t begin = static_cast<int64_t>(meta.block_to_chunk[blockIdx.x]) * optim::kMultiTensorChunk;
  const int64_t end = begin + optim::kMultiTensorChunk < size ? begin + optim::kMultiTensorChunk : size;
  void* addresses[kDepth];
#pragma unroll
  for (int d = 0; d < kDepth; ++d) addresses[d] = meta.addresses[d][slot];
  functor(addresses, begin, end, MultiTensorBlockInfo{slot, meta.first_block + static_cast<int>(blockIdx.x), size});
}

// Launches `functor` over every element of the tensors whose `depth` address lists
// are `lists` (lists[d][t]: tensor t's pointer in list d) and whose sizes are
// `sizes`, on `stream`. Returns the number of blocks of the whole plan (one per
// chunk), for functors that write one result per block.
template <int kDepth, class Functor>
int multi_tensor_apply(const std::vector<void*> (&lists)[kDepth], const std::vector<int64_t>& sizes,
                       const Functor& functor, cudaStream_t stream, const char* op) {
  static_assert(sizeof(TensorListMetadata<kDepth>) + sizeof(Functor) <= 4096,
                "a launch's arguments must fit the 4 KiB CUDA allows");
  for (int d = 0; d < kDepth; ++d)
    KILN_CHECK(lists[d].size() == sizes.size(), op, ": address list ", d, " has ", lists[d].size(),
               " entries for ", sizes.size(), " tensors");
  const std::vector<optim::MultiTensorLaunch> plan =
      optim::plan_multi_tensor_launches(sizes, TensorListMetadata<kDepth>::kMaxTensors);
  int blocks_so_far = 0;
  for (const optim::MultiTensorLaunch& launch : plan) {
    TensorListMetadata<kDepth> meta;
    for (size_t slot = 0; slot < launch.tensors.size(); ++slot) {
      const int t = launch.tensors[slot];
      for (int d = 0; d < kDepth; ++d) meta.addresses[d][slot] = lists[d][t];
      meta.sizes[slot] = sizes[t];
    }
    for (size_t b = 0; b < launch.blocks.size(); ++b) {
      meta.block_to_slot[b] = static_cast<unsigned char>(launch.blocks[b].slot);
      meta.block_to_chunk[b] = launch.blocks[b].chunk;
    }
    meta.first_block = blocks_so_far;
    const int blocks = static_cast<int>(launch.blocks.size());
    KILN_LAUNCH(blocks, kMultiTensorThreads, 0, stream, multi_tensor_kernel<kDepth, Functor>)(meta, functor);
    KILN_CHECK_LAUNCH(op);
    blocks_so_far += blocks;
  }
  return blocks_so_far;
}

}  // namespace kiln::cuda
