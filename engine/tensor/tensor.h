// Tensor: a handle to dense n-d data on one device.
//
// A Tensor is a shared_ptr to its TensorImpl: copying a Tensor copies the handle,
// not the data (as in PyTorch). The data are dense in one of two layouts (see
// engine/core/shape.h): nchw (row-major) or nhwc (channels-last, 4-D only), so
// strides follow from (shape, layout). Views that keep that property share the
// storage: reshape of an nchw tensor, narrow along dim 0 (a batch slice), detach.
//
// Transfers between devices happen only through to(device): no op moves data
// behind your back. item() and to_vector() read values on the host and therefore
// only work on CPU tensors: call .to(Device::cpu()) first, which says what it costs.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/autograd/node.h"
#include "engine/core/check.h"
#include "engine/core/dtype.h"
#include "engine/core/shape.h"
#include "engine/tensor/storage.h"

namespace kiln {

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements, from storage->data()
  Shape shape;
  DType dtype = DType::f32;
  Layout layout = Layout::nchw;
  std::shared_ptr<AutogradMeta> autograd;  // created on demand
};

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::f32; }
template <> constexpr DType dtype_of<double>() { return DType::f64; }
template <> constexpr DType dtype_of<uint8_t>() { return DType::u8; }
template <> constexpr DType dtype_of<int32_t>() { return DType::i32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::i64; }

class Tensor {
 public:
  Tensor() = default;  // an undefined tensor: an absent optional input or gradient
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  int dim() const { return shape().dim(); }
  int64_t size(int d) const { return shape()[wrap_dim(d, dim(), "size")]; }
  int64_t numel() const { return shape().numel(); }
  DType dtype() const { return impl().dtype; }
  Layout layout() const { return impl().layout; }
  Device device() const { return impl().storage->device(); }
  std::vector<int64_t> strides() const { return shape().strides(layout()); }
  int64_t nbytes() const { return numel() * size_of(dtype()); }
  std::string describe() const;  // "f32 (32, 3, 224, 224) nhwc cuda:0"

  // Typed pointer to the first element; checks that T matches the dtype.
  template <class T> T* data() const {
    KILN_CHECK(dtype_of<T>() == dtype(), "tensor data<", dtype_name(dtype_of<T>()),
               ">() on a tensor of dtype ", dtype_name(dtype()));
    return static_cast<T*>(raw_data());
  }
  void* raw_data() const {
    return static_cast<char*>(impl().storage->data()) + impl().offset * size_of(dtype());
  }
  const std::shared_ptr<Storage>& storage() const { return impl().storage; }
  bool same_storage(const Tensor& other) const { return storage() == other.storage(); }

  // ---- autograd
  bool requires_grad() const { return impl_ && impl_->autograd && impl_->autograd->requires_grad; }
  Tensor& set_requires_grad(bool requires_grad);  // leaves only
  bool is_leaf() const { return !(impl_ && impl_->autograd && impl_->autograd->grad_fn); }
  Tensor grad() const;             // undefined until a backward reached this leaf
  void set_grad(const Tensor& grad) const;
  void zero_grad() const;          // drops the gradient (the next backward writes a fresh one)
  // Runs backward from this tensor. A scalar uses gradient 1; otherwise pass
  // grad_output of the same shape. See engine/autograd/tape.cpp.
  void backward(const Tensor& grad_output = Tensor()) const;
  std::shared_ptr<AutogradMeta> autograd_meta() const { return impl_ ? impl_->autograd : nullptr; }
  std::shared_ptr<AutogradMeta> ensure_autograd_meta() const;
  const std::shared_ptr<Node>& grad_fn() const;

  // A tensor that shares the data but is cut off from the graph. Backward closures
  // save outputs this way, so a node never owns the tensor that owns the node.
  Tensor detach() const;

  // ---- conversions (each records a differentiable node when its input needs grad)
  Tensor to(const Device& device) const;
  Tensor to(DType dtype) const;
  Tensor to(Layout layout) const;
  Tensor contiguous() const { return to(Layout::nchw); }
  Tensor clone() const;  // a copy with its own storage, same device/dtype/layout

  // ---- views (share storage)
  Tensor narrow0(int64_t start, int64_t length) const;  // rows [start, start+length) of dim 0, no grad

  // ---- host access (CPU tensors only)
  double item() const;                         // a one-element tensor's value
  std::vector<double> to_vector() const;       // all values in logical (row-major) order
  template <class T> std::vector<T> to_vector_as() const {
    std::vector<double> v = to_vector();
    return std::vector<T>(v.begin(), v.end());
  }

  TensorImpl& impl() const {
    KILN_CHECK(impl_ != nullptr, "use of an undefined tensor");
    return *impl_;
  }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& out, const Tensor& t);  // engine/tensor/print.cpp

}  // namespace kiln
