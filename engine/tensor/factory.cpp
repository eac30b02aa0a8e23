#include "engine/tensor/factory.h"

#include <cstring>

#include "engine/core/saturate_i64.h"
#include "engine/ops/dispatch.h"
#if KILN_WITH_CUDA
#include "engine/cuda/memory_ops.h"
#endif

namespace kiln {

TensorOptions options_of(const Tensor& t) { return {t.dtype(), t.device(), t.layout()}; }

Tensor empty(const Shape& shape, TensorOptions options) {
  for (int i = 0; i < shape.dim(); ++i)
    KILN_CHECK(shape[i] >= 0, "empty: negative size in shape ", shape);
  KILN_CHECK(options.layout == Layout::nchw || shape.dim() == 4, "empty: layout nhwc needs a 4-D shape ",
             "(N, C, H, W), got ", shape);
  auto impl = std::make_shared<TensorImpl>();
  const size_t bytes = static_cast<size_t>(shape.numel() * size_of(options.dtype));
  try {
    impl->storage = std::make_shared<Storage>(bytes, allocator_for(options.device));
  } catch (const OutOfMemoryError& e) {  // say what the memory was for; the layers above say where
    throw OutOfMemoryError(str(e.request(), "; while allocating a ", dtype_name(options.dtype), " ", shape,
                               " tensor"),
                           __FILE__, __LINE__);
  } catch (const Error& e) {
    KILN_FAIL(e.message(), "; while allocating a ", dtype_name(options.dtype), " ", shape, " tensor on ",
              options.device.to_string());
  }
  impl->shape = shape;
  impl->dtype = options.dtype;
  impl->layout = options.layout;
  return Tensor(std::move(impl));
}

Tensor empty_pinned(const Shape& shape, DType dtype) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(static_cast<size_t>(shape.numel() * size_of(dtype)), pinned_host_allocator());
  impl->shape = shape;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

bool is_pinned(const Tensor& t) {
  return KILN_WITH_CUDA && t.defined() && &t.storage()->allocator() == &pinned_host_allocator();
}

Tensor full(const Shape& shape, double value, TensorOptions options) {
  Tensor t = empty(shape, options);
  fill_(t, value);
  return t;
}
Tensor zeros(const Shape& shape, TensorOptions options) { return full(shape, 0.0, options); }
Tensor ones(const Shape& shape, TensorOptions options) { return full(shape, 1.0, options); }
Tensor empty_like(const Tensor& t) { return empty(t.shape(), options_of(t)); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), options_of(t)); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), options_of(t)); }
Tensor full_like(const Tensor& t, double value) { return full(t.shape(), value, options_of(t)); }

// ---- element access on the host, any dtype, through double.
namespace {

double load(const void* base, DType dtype, int64_t i) {
  switch (dtype) {
    case DType::f32: return static_cast<const float*>(base)[i];
    case DType::f64: return static_cast<const double*>(base)[i];
    case DType::f16: return f16_bits_to_float(static_cast<const uint16_t*>(base)[i]);
    case DType::bf16: return bf16_bits_to_float(static_cast<const uint16_t*>(base)[i]);
    case DType::u8: return static_cast<const uint8_t*>(base)[i];
    case DType::i32: return static_cast<const int32_t*>(base)[i];
    case DType::i64: return static_cast<double>(static_cast<const int64_t*>(base)[i]);
  }
  return 0;
}

void store(void* base, DType dtype, int64_t i, double v) {
  switch (dtype) {
    case DType::f32: static_cast<float*>(base)[i] = static_cast<float>(v); break;
    case DType::f64: static_cast<double*>(base)[i] = v; break;
    case DType::f16: static_cast<uint16_t*>(base)[i] = float_to_f16_bits(static_cast<float>(v)); break;
    case DType::bf16: static_cast<uint16_t*>(base)[i] = float_to_bf16_bits(static_cast<float>(v)); break;
    // Saturating (NaN -> 0), the same rule as the GPU's convert kernel: engine/core/dtype.h.
    case DType::u8: static_cast<uint8_t*>(base)[i] = saturate_to_u8(v); break;
    case DType::i32: static_cast<int32_t*>(base)[i] = saturate_to_i32(v); break;
    case DType::i64: static_cast<int64_t*>(base)[i] = saturate_to_i64(v); break;
  }
}

// Memory offset of logical (row-major) element `i` of a dense tensor.
struct LogicalToMemory {
  explicit LogicalToMemory(const Tensor& t) : shape(t.shape()), strides(t.strides()), identity(t.layout() == Layout::nchw || t.dim() != 4) {}
  int64_t operator()(int64_t i) const {
    if (identity) return i;
    int64_t offset = 0;
    for (int d = shape.dim() - 1; d >= 0; --d) {
      offset += (i % shape[d]) * strides[d];
      i /= shape[d];
    }
    return offset;
  }
  Shape shape;
  std::vector<int64_t> strides;
  bool identity;
};

// dst = src, both on the CPU: dtype and layout conversion.
void copy_cpu(const Tensor& dst, const Tensor& src) {
  if (dst.dtype() == src.dtype() && dst.layout() == src.layout()) {
    std::memcpy(dst.raw_data(), src.raw_data(), static_cast<size_t>(src.nbytes()));
    return;
  }
  const LogicalToMemory src_at(src), dst_at(dst);
  const void* s = src.raw_data();
  void* d = dst.raw_data();
  const int64_t n = src.numel();
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; ++i) store(d, dst.dtype(), dst_at(i), load(s, src.dtype(), src_at(i)));
}

}  // namespace

void fill_(const Tensor& dst, double value) {
  on_device(
      dst.device(),
      [&] {
        const int64_t n = dst.numel();
        void* d = dst.raw_data();
        if (dst.dtype() == DType::f32) {
          std::fill_n(static_cast<float*>(d), n, static_cast<float>(value));
        } else {
          for (int64_t i = 0; i < n; ++i) store(d, dst.dtype(), i, value);
        }
      },
      [&] { KILN_CUDA_ONLY(cuda::fill(dst, value)); });
}

void copy_(const Tensor& dst, const Tensor& src) {
  KILN_CHECK(dst.shape() == src.shape(), "copy: destination shape ", dst.shape(), " differs from source shape ",
             src.shape());
  if (src.numel() == 0) return;
  const bool src_cpu = src.device().is_cpu(), dst_cpu = dst.device().is_cpu();
  if (src_cpu && dst_cpu) return copy_cpu(dst, src);
#if KILN_WITH_CUDA
  if (src_cpu) {  // host -> device: convert on the host, then one transfer
    Tensor staged = (src.dtype() == dst.dtype() && src.layout() == dst.layout())
                        ? src
                        : empty(src.shape(), {dst.dtype(), Device::cpu(), dst.layout()});
    if (!staged.same_storage(src)) copy_cpu(staged, src);
    cuda::copy_host_to_device(dst.raw_data(), staged.raw_data(), static_cast<size_t>(staged.nbytes()), dst.device());
  } else if (dst_cpu) {  // device -> host: one transfer, then convert on the host
    Tensor staged = empty(src.shape(), {src.dtype(), Device::cpu(), src.layout()});
    cuda::copy_device_to_host(staged.raw_data(), src.raw_data(), static_cast<size_t>(src.nbytes()), src.device());
    copy_cpu(dst, staged);
  } else if (src.device() != dst.device()) {  // between GPUs: through the host, rarely needed
    Tensor staged = empty(src.shape(), {src.dtype(), Device::cpu(), src.layout()});
    copy_(staged, src);
    copy_(dst, staged);
  } else if (src.dtype() == dst.dtype() && src.layout() == dst.layout()) {
    cuda::copy_device_to_device(dst.raw_data(), src.raw_data(), static_cast<size_t>(src.nbytes()), src.device());
  } else {
    cuda::convert(src, dst);
  }
#else
  throw_built_without_cuda(__FILE__, __LINE__);
#endif
}

Tensor from_vector(const std::vector<double>& values, const Shape& shape, TensorOptions options) {
  KILN_CHECK(static_cast<int64_t>(values.size()) == shape.numel(), "from_vector: ", values.size(),
             " values for shape ", shape, " (", shape.numel(), " elements)");
  Tensor host = empty(shape, {DType::f64, Device::cpu(), Layout::nchw});
  std::copy(values.begin(), values.end(), host.data<double>());
  if (options.dtype == DType::f64 && options.device.is_cpu() && options.layout == Layout::nchw) return host;
  Tensor out = empty(shape, options);
  copy_(out, host);
  return out;
}

Tensor scalar(double value, TensorOptions options) { return full(Shape{}, value, options); }

Tensor arange(int64_t n, TensorOptions options) {
  std::vector<double> values(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) values[i] = static_cast<double>(i);
  return from_vector(values, Shape{n}, options);
}

namespace {
// Draws numel values from `draw` in logical order. A row-major f32/f64 CPU tensor is
// written in place (a VGG classifier weight has 100M elements: no 800 MB staging
// vector); anything else is drawn on the host and converted by from_vector.
template <class Draw>
Tensor random_tensor(const Shape& shape, TensorOptions options, Draw&& draw) {
  const bool direct = options.device.is_cpu() && options.layout == Layout::nchw &&
                      (options.dtype == DType::f32 || options.dtype == DType::f64);
  if (direct) {
    Tensor t = empty(shape, options);
    const int64_t n = shape.numel();
    if (options.dtype == DType::f32) {
      float* p = t.data<float>();
      for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(draw());
    } else {
      double* p = t.data<double>();
      for (int64_t i = 0; i < n; ++i) p[i] = draw();
    }
    return t;
  }
  std::vector<double> values(static_cast<size_t>(shape.numel()));
  for (double& v : values) v = draw();
  return from_vector(values, shape, options);
}
}  // namespace

Tensor uniform(const Shape& shape, double lo, double hi, Rng& rng, TensorOptions options) {
  return random_tensor(shape, options, [&] { return rng.uniform(lo, hi); });
}

Tensor randn(const Shape& shape, Rng& rng, TensorOptions options) {
  return random_tensor(shape, options, [&] { return rng.normal(); });
}

// Logical-order read used by Tensor::to_vector (declared in tensor.cpp).
std::vector<double> read_logical(const Tensor& t) {
  const LogicalToMemory at(t);
  std::vector<double> out(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) out[i] = load(t.raw_data(), t.dtype(), at(i));
  return out;
}

}  // namespace kiln
