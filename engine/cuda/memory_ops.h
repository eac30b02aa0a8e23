// Host-side entry points for moving and converting device memory (CUDA builds).
// Implemented in engine/cuda/memory_ops.cpp (copies) and kernels/convert.cu (dtype
// and layout conversion, fill). Callers reach them only through copy_() and fill_()
// in engine/tensor/factory.cpp, the one place that moves data between devices.
#pragma once
#include <cstddef>

#include "engine/tensor/tensor.h"

struct CUevent_st;  // cudaEvent_t is CUevent_st*; declared here so this header needs no CUDA include

namespace kiln::cuda {

// Synchronous copies: when they return, the host buffer may be reused / read.
void copy_host_to_device(void* device_dst, const void* host_src, size_t bytes, const Device& device);
void copy_device_to_host(void* host_dst, const void* device_src, size_t bytes, const Device& device);
// Asynchronous host->device copy from pinned memory (engine/tensor/async_upload.h):
// queued on the stream, it returns at once. The host bytes must stay unchanged until
// an event recorded after the copy has passed.
void copy_host_to_device_async(void* device_dst, const void* host_src, size_t bytes, const Device& device);
// An event recorded on the device's stream after everything queued so far.
CUevent_st* record_event(const Device& device);
// Blocks until the event has passed (the work before it is done), then frees it.
void wait_and_destroy_event(CUevent_st* event);
void copy_device_to_device(void* dst, const void* src, size_t bytes, const Device& device);

// dst = src converted to dst's dtype and layout; both on the same CUDA device, same shape.
void convert(const Tensor& src, const Tensor& dst);
void fill(const Tensor& dst, double value);

}  // namespace kiln::cuda
