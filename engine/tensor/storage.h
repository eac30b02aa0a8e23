// Storage: one reference-counted buffer of bytes on one device. Tensors that are
// views of each other (reshape, detach, a batch slice) share one Storage.
#pragma once
#include <cstddef>

#include "engine/core/device.h"
#include "engine/memory/allocator.h"

namespace kiln {

class Storage {
 public:
  Storage(size_t nbytes, Allocator& allocator)
      : data_(allocator.allocate(nbytes)), nbytes_(nbytes), allocator_(allocator) {}
  ~Storage() { allocator_.deallocate(data_, nbytes_); }
  Storage(const Storage&) = delete;  // copying a buffer must be an explicit op, never an accident
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return allocator_.device(); }
  const Allocator& allocator() const { return allocator_; }  // e.g. pinned_host_allocator() (is_pinned)

 private:
  void* data_;
  size_t nbytes_;
  Allocator& allocator_;
};

}  // namespace kiln
