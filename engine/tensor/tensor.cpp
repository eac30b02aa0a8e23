#include "engine/tensor/tensor.h"

#include "engine/autograd/tape.h"
#include "engine/tensor/factory.h"

namespace kiln {

std::vector<double> read_logical(const Tensor& t);  // factory.cpp

std::string Tensor::describe() const {
  return str(dtype_name(dtype()), " ", shape(), dim() == 4 ? std::string(" ") + layout_name(layout()) : "", " ",
             device().to_string());
}

std::shared_ptr<AutogradMeta> Tensor::ensure_autograd_meta() const {
  if (!impl().autograd) impl().autograd = std::make_shared<AutogradMeta>();
  return impl().autograd;
}

const std::shared_ptr<Node>& Tensor::grad_fn() const {
  static const std::shared_ptr<Node> none;
  return impl().autograd ? impl().autograd->grad_fn : none;
}

Tensor& Tensor::set_requires_grad(bool requires_grad) {
  KILN_CHECK(is_leaf(), "set_requires_grad: only leaf tensors (parameters, inputs) can change requires_grad; ",
             "this one was made by '", grad_fn()->op, "' (use detach() first)");
  KILN_CHECK(!requires_grad || is_floating(dtype()), "set_requires_grad: a ", dtype_name(dtype()),
             " tensor cannot require grad (only floating dtypes can)");
  ensure_autograd_meta()->requires_grad = requires_grad;
  return *this;
}

Tensor Tensor::grad() const {
  auto meta = autograd_meta();
  return meta && meta->grad ? *meta->grad : Tensor();
}

void Tensor::set_grad(const Tensor& grad) const {
  if (grad.defined())
    KILN_CHECK(grad.shape() == shape(), "set_grad: gradient shape ", grad.shape(), " differs from tensor shape ",
               shape());
  ensure_autograd_meta()->grad = grad.defined() ? std::make_shared<Tensor>(grad) : nullptr;
}

void Tensor::zero_grad() const {
  if (auto meta = autograd_meta()) meta->grad = nullptr;
}

void Tensor::backward(const Tensor& grad_output) const { run_backward(*this, grad_output); }

Tensor Tensor::detach() const {
  auto impl_copy = std::make_shared<TensorImpl>(impl());
  impl_copy->autograd = nullptr;
  return Tensor(std::move(impl_copy));
}

// A conversion and its gradient: the gradient goes back through the inverse
// conversion (to the source's device, dtype or layout).
static Tensor convert_recorded(const Tensor& src, TensorOptions options, const char* op) {
  Tensor out = empty(src.shape(), options);
  copy_(out, src);
  if (needs_grad(src)) {
    const TensorOptions back = options_of(src);
    record(out, op, {src}, [back](const Tensor& grad_output, const std::vector<bool>&) {
      Tensor grad_input = empty(grad_output.shape(), back);
      copy_(grad_input, grad_output);
      return std::vector<Tensor>{grad_input};
    });
  }
  return out;
}

Tensor Tensor::to(const Device& device) const {
  if (device == this->device()) return *this;
  TensorOptions o = options_of(*this);
  o.device = device;
  return convert_recorded(*this, o, "to_device");
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == this->dtype()) return *this;
  KILN_CHECK(!needs_grad(*this) || is_floating(dtype), "to(", dtype_name(dtype),
             "): a tensor that requires grad can only be converted to a floating dtype");
  TensorOptions o = options_of(*this);
  o.dtype = dtype;
  return convert_recorded(*this, o, "to_dtype");
}

Tensor Tensor::to(Layout layout) const {
  if (layout == this->layout() || (dim() != 4 && layout == Layout::nchw)) return *this;
  KILN_CHECK(dim() == 4, "to(nhwc): channels-last needs a 4-D (N, C, H, W) tensor, got ", describe());
  TensorOptions o = options_of(*this);
  o.layout = layout;
  return convert_recorded(*this, o, "to_layout");
}

Tensor Tensor::clone() const {
  Tensor out = empty_like(*this);
  copy_(out, *this);
  return out;
}

Tensor Tensor::narrow0(int64_t start, int64_t length) const {
  KILN_CHECK(dim() >= 1 && start >= 0 && length >= 0 && start + length <= shape()[0], "narrow0: rows [", start,
             ", ", start + length, ") out of range for ", describe());
  auto impl_copy = std::make_shared<TensorImpl>(impl());
  impl_copy->autograd = nullptr;
  impl_copy->shape[0] = length;
  impl_copy->offset += start * (numel() / std::max<int64_t>(shape()[0], 1));
  return Tensor(std::move(impl_copy));
}

double Tensor::item() const {
  KILN_CHECK(numel() == 1, "item: the tensor has ", numel(), " elements, expected 1 (", describe(), ")");
  return to_vector()[0];
}

std::vector<double> Tensor::to_vector() const {
  KILN_CHECK(device().is_cpu(), "to_vector/item: the tensor is on ", device().to_string(),
             "; read it on the host with .to(Device::cpu()) first (a copy and a synchronisation)");
  return read_logical(*this);
}

}  // namespace kiln
