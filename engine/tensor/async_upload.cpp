// Asynchronous host-to-device uploads: see async_upload.h.
#include "engine/tensor/async_upload.h"

#include <cstdio>

#include "engine/ops/dispatch.h"
#include "engine/tensor/factory.h"
#if KILN_WITH_CUDA
#include "engine/cuda/memory_ops.h"
#endif

namespace kiln {

AsyncUpload::AsyncUpload(std::vector<Tensor> host, const Device& device) : host_(std::move(host)) {
  bool all_pinned = device.is_cuda();
  for (const Tensor& t : host_) {
    check_defined("AsyncUpload", "host tensor", t);
    KILN_CHECK(t.device().is_cpu(), "AsyncUpload: expected host tensors, got ", t.describe());
    all_pinned = all_pinned && is_pinned(t);
  }
  if (!all_pinned) {  // the cpu device (no copy at all), or pageable memory: copy_ waits
    for (const Tensor& t : host_) device_.push_back(t.to(device));
    host_.clear();
    return;
  }
#if KILN_WITH_CUDA
  for (const Tensor& t : host_) {
    Tensor on_device = empty(t.shape(), {t.dtype(), device, t.layout()});
    cuda::copy_host_to_device_async(on_device.raw_data(), t.raw_data(), static_cast<size_t>(t.nbytes()), device);
    device_.push_back(std::move(on_device));
  }
  event_ = cuda::record_event(device);
#endif
}

AsyncUpload::~AsyncUpload() {
  try {
    wait();
  } catch (const std::exception& e) {  // a destructor reports, never throws
    std::fprintf(stderr, "AsyncUpload: %s\n", e.what());
  }
}

AsyncUpload::AsyncUpload(AsyncUpload&& other) noexcept
    : host_(std::move(other.host_)), device_(std::move(other.device_)), event_(other.event_) {
  other.event_ = nullptr;
}

AsyncUpload& AsyncUpload::operator=(AsyncUpload&& other) {
  if (this == &other) return *this;
  wait();  // only now may this upload's host buffers be released
  host_ = std::move(other.host_);
  device_ = std::move(other.device_);
  event_ = other.event_;
  other.event_ = nullptr;
  return *this;
}

const Tensor& AsyncUpload::device_tensor(size_t i) const {
  KILN_CHECK(i < device_.size(), "AsyncUpload: tensor ", i, " of ", device_.size());
  return device_[i];
}

void AsyncUpload::wait() {
  if (event_) {
#if KILN_WITH_CUDA
    CUevent_st* event = event_;
    event_ = nullptr;
    cuda::wait_and_destroy_event(event);
#endif
  }
  host_.clear();
}

}  // namespace kiln
