// Copying a batch to the GPU without stopping the host.
//
// copy_() (and so Tensor::to) waits for a host-to-device copy to finish before it
// returns, so that the caller may overwrite or free its host buffer at once: a host
// sync per copy. A copy from pinned (page-locked) memory can instead be queued on the
// device's stream and return immediately: the kernels queued after it on that stream
// see the bytes, and the host goes on preparing the next step while the copy engine
// works. The price is a rule: the host buffer must not be written, or go back to the
// pinned cache where a loader worker would refill it, until the copy has read it.
//
// AsyncUpload keeps that rule by owning the host tensors and a CUDA event recorded
// right after their copies. wait() blocks until the event has passed; the destructor
// and the move assignment call it before they let go of the host tensors, so a
// pinned buffer can only return to the cache once its copy has completed, whoever
// else still holds (or dropped) a handle to it.
//
//   AsyncUpload upload;                        // outlives the step
//   while (loader.next(batch)) {
//     upload = AsyncUpload({batch.images_u8, batch.labels}, device);  // waits for the previous copy
//     train_step(upload.device_tensor(0), upload.device_tensor(1));
//   }
//
// Holding the upload until the next step costs nothing in a steady loop (by then the
// copy has long finished) and bounds how far the host runs ahead of the GPU to about
// one step. Where the copy cannot be asynchronous (a pageable host tensor, a CPU
// build) the constructor falls back to an ordinary copy, and on a CPU device the
// "device tensors" are the host tensors themselves.
#pragma once
#include <vector>

#include "engine/tensor/tensor.h"

struct CUevent_st;

namespace kiln {

class AsyncUpload {
 public:
  AsyncUpload() = default;
  // Starts copying each host tensor (CPU, any dtype and layout) to `device`, same
  // dtype and layout; asynchronous for pinned tensors on a CUDA device.
  AsyncUpload(std::vector<Tensor> host, const Device& device);
  ~AsyncUpload();
  AsyncUpload(AsyncUpload&& other) noexcept;
  AsyncUpload& operator=(AsyncUpload&& other);  // waits for this upload's copies first
  AsyncUpload(const AsyncUpload&) = delete;
  AsyncUpload& operator=(const AsyncUpload&) = delete;

  // The i-th tensor on the device: usable by ops at once (they queue after the copy).
  const Tensor& device_tensor(size_t i) const;
  size_t size() const { return device_.size(); }
  bool asynchronous() const { return event_ != nullptr; }  // false: copied synchronously (or nothing to copy)
  // Blocks until the copies have read the host tensors; they may be reused afterwards.
  void wait();

 private:
  std::vector<Tensor> host_, device_;
  CUevent_st* event_ = nullptr;  // recorded after the asynchronous copies; null once waited for
};

}  // namespace kiln
