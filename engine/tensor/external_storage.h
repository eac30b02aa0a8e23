// Storage over memory that kiln did not allocate: a memory-mapped file (data/pack.cpp)
// or a buffer another library owns. Tensors view it without a copy, exactly as they
// view a Storage from an Allocator, and `release` runs once, when the last tensor
// viewing it is gone (munmap, free, ...).
//
// Storage itself is unchanged: it asks an Allocator for its bytes and gives them back
// in its destructor. Here the "allocator" is a one-shot object that hands out the
// external pointer and calls `release` on deallocate, and it lives in the same heap
// block as the Storage, so it outlives it by construction.
#pragma once
#include <functional>
#include <memory>

#include "engine/tensor/tensor.h"

namespace kiln {

// A Storage of `nbytes` bytes at `data` on `device`; `release` (may be empty) is called
// when the Storage is destroyed.
std::shared_ptr<Storage> make_external_storage(void* data, size_t nbytes, std::function<void()> release,
                                               Device device = Device::cpu());

// A dense row-major tensor of `shape` and `dtype` that views `storage` from byte
// `byte_offset` on. Throws when the bytes do not fit or the offset is not a multiple
// of the element size (TensorImpl counts its offset in elements).
Tensor view_storage(const std::shared_ptr<Storage>& storage, size_t byte_offset, const Shape& shape, DType dtype);

}  // namespace kiln
