// Copies between host and device memory (memory_ops.h), all on the device's
// context stream.
//
// Why the context stream and not cudaMemcpy: kiln's stream is non-blocking, so it
// is not ordered with the legacy default stream that cudaMemcpy uses. A copy on
// another stream could read a tensor before the kernel that writes it has run, or
// overwrite a recycled block that a queued kernel still reads. On the context
// stream every copy is ordered after the work queued before it.
//
// Host->device and device->host wait for the copy (cudaStreamSynchronize), so the
// caller may reuse or read the host buffer on return. The host buffers are
// ordinary pageable memory: the driver stages them through its own pinned buffer.
// The one exception is copy_host_to_device_async, for pinned buffers only: it does
// not wait, and its caller (AsyncUpload, engine/tensor/async_upload.h) records an
// event after it and keeps the host buffer until the event has passed.
#include "engine/cuda/memory_ops.h"

#include "engine/cuda/context.h"
#include "engine/cuda/cuda_check.h"

namespace kiln::cuda {

namespace {
Context& context_of(const Device& device) {
  KILN_CHECK(device.is_cuda(), "cuda copy: expected a CUDA device, got ", device.to_string());
  Context& ctx = Context::get(device.index);
  set_device(ctx);
  return ctx;
}
}  // namespace

void copy_host_to_device(void* device_dst, const void* host_src, size_t bytes, const Device& device) {
  if (bytes == 0) return;
  Context& ctx = context_of(device);
  CUDA_CHECK(cudaMemcpyAsync(device_dst, host_src, bytes, cudaMemcpyHostToDevice, ctx.stream()));
  CUDA_CHECK(cudaStreamSynchronize(ctx.stream()));
}

void copy_device_to_host(void* host_dst, const void* device_src, size_t bytes, const Device& device) {
  if (bytes == 0) return;
  Context& ctx = context_of(device);
  CUDA_CHECK(cudaMemcpyAsync(host_dst, device_src, bytes, cudaMemcpyDeviceToHost, ctx.stream()));
  CUDA_CHECK(cudaStreamSynchronize(ctx.stream()));  // the caller reads host_dst next
}

void copy_host_to_device_async(void* device_dst, const void* host_src, size_t bytes, const Device& device) {
  if (bytes == 0) return;
  Context& ctx = context_of(device);
  CUDA_CHECK(cudaMemcpyAsync(device_dst, host_src, bytes, cudaMemcpyHostToDevice, ctx.stream()));
}

CUevent_st* record_event(const Device& device) {
  Context& ctx = context_of(device);
  cudaEvent_t event = nullptr;
  // No timing: a plain event is cheaper to record and to wait for.
  CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  CUDA_CHECK(cudaEventRecord(event, ctx.stream()));
  return event;
}

void wait_and_destroy_event(CUevent_st* event) {
  if (!event) return;
  const cudaError_t waited = cudaEventSynchronize(event);
  CUDA_CHECK_NOTHROW(cudaEventDestroy(event));
  CUDA_CHECK(waited);
}

void copy_device_to_device(void* dst, const void* src, size_t bytes, const Device& device) {
  if (bytes == 0) return;
  Context& ctx = context_of(device);
  // Asynchronous: both ends are on the device, and later work on the stream sees the result.
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, ctx.stream()));
}

}  // namespace kiln::cuda
