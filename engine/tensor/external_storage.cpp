#include "engine/tensor/external_storage.h"

namespace kiln {
namespace {

// Hands out one pointer it was given, once, and calls `release` when it comes back.
class ExternalAllocator final : public Allocator {
 public:
  ExternalAllocator(void* data, size_t nbytes, std::function<void()> release, Device device)
      : data_(data), nbytes_(nbytes), release_(std::move(release)), device_(device) {}

  void* allocate(size_t bytes) override {
    KILN_CHECK(bytes == nbytes_, "external storage: asked for ", bytes, " bytes of a ", nbytes_, "-byte buffer");
    return data_;
  }
  void deallocate(void*, size_t) override {
    if (release_) release_();
  }
  MemoryStats stats() const override {
    MemoryStats stats;
    stats.bytes_in_use = stats.peak_bytes_in_use = static_cast<int64_t>(nbytes_);
    return stats;
  }
  void reset_peak() override {}
  Device device() const override { return device_; }

 private:
  void* data_;
  size_t nbytes_;
  std::function<void()> release_;
  Device device_;
};

// Members are destroyed in reverse order: the Storage (which calls deallocate) goes
// before the allocator it refers to.
struct ExternalBlock {
  ExternalAllocator allocator;
  Storage storage;
  ExternalBlock(void* data, size_t nbytes, std::function<void()> release, Device device)
      : allocator(data, nbytes, std::move(release), device), storage(nbytes, allocator) {}
};

}  // namespace

std::shared_ptr<Storage> make_external_storage(void* data, size_t nbytes, std::function<void()> release,
                                               Device device) {
  auto block = std::make_shared<ExternalBlock>(data, nbytes, std::move(release), device);
  // The aliasing constructor: a pointer to the Storage that keeps the whole block alive.
  return std::shared_ptr<Storage>(block, &block->storage);
}

Tensor view_storage(const std::shared_ptr<Storage>& storage, size_t byte_offset, const Shape& shape, DType dtype) {
  const size_t element = static_cast<size_t>(size_of(dtype));
  const size_t bytes = static_cast<size_t>(shape.numel()) * element;
  KILN_CHECK(byte_offset % element == 0, "view_storage: byte offset ", byte_offset, " is not a multiple of the ",
             element, "-byte ", dtype_name(dtype), " element");
  KILN_CHECK(byte_offset + bytes <= storage->nbytes(), "view_storage: a ", dtype_name(dtype), " ", shape,
             " view at byte ", byte_offset, " needs ", byte_offset + bytes, " bytes, the storage has ",
             storage->nbytes());
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = storage;
  impl->offset = static_cast<int64_t>(byte_offset / element);
  impl->shape = shape;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

}  // namespace kiln
