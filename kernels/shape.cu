// Kernels that move elements without computing on them (engine/ops/shape_ops.h).
//
// gather_copy:  dst[i] = src[src_at(i)], i over dst's memory offsets. src_at is an
//   OffsetCalculator (kernels/common.cuh). Used by permute, broadcast_to and layout
//   changes. Threads write consecutive addresses; reads follow src_at.
//   Bytes moved per element: 2 * sizeof(T).
//
// permute_forward:  y = x with dims reordered: y[i_order[0], i_order[1], ...] =
//   x[i_0, i_1, ...]; x (d_0, ..., d_{r-1}) row-major, y (d_order[0], ...) row-major.
//   A gather: y walks its memory in order and reads x at stride x_strides[order[k]].
//   (A tiled shared-memory transpose would coalesce the reads too; permutes are rare
//   in kiln's models, so the simple gather is kept.)
//
// copy_rows:  for r < outer, c < length:  y[r * y_inner + y_offset + c] = x[r * x_inner + x_offset + c]
//   x seen as (outer, x_inner), y as (outer, y_inner): the block copy behind concat
//   and slice. Bytes moved per element: 2 * sizeof(T).
//
// Dtypes: any. These kernels copy bits, so they dispatch on the element size.
#include "engine/cuda/context.h"
#include "engine/cuda/cuda_check.h"
#include "engine/ops/shape_ops.h"
#include "kernels/common.cuh"

namespace kiln::cuda {

namespace {

template <class T>
__global__ void gather_kernel(const T* src, T* dst, int64_t n, OffsetCalculator<1> src_at) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    int64_t offsets[1];
    src_at.offsets(i, offsets);
    dst[i] = src[offsets[0]];
  }
}

template <class T>
__global__ void copy_rows_kernel(const T* x, T* y, int64_t outer, int64_t x_inner, int64_t y_inner, int64_t x_offset,
                                 int64_t y_offset, int64_t length) {
  KILN_GRID_STRIDE_LOOP(i, outer * length) {
    const int64_t row = i / length, column = i % length;
    y[row * y_inner + y_offset + column] = x[row * x_inner + x_offset + column];
  }
}

}  // namespace

void gather_copy(const Tensor& src, const Tensor& dst, const OffsetCalculator<1>& src_at, const char* op) {
  KILN_CHECK(src.dtype() == dst.dtype(), op, ": gather_copy needs one dtype, got ", src.describe(), " and ",
             dst.describe());
  const int64_t n = dst.numel();
  if (n == 0) return;
  Context& ctx = context_for(dst);
  set_device(ctx);
  // After dim merging a plain copy is a rank-1 loop with stride 1: let the copy engine do it.
  if (src_at.rank <= 1 && (src_at.rank == 0 ? n == 1 : src_at.strides[0][0] == 1)) {
    CUDA_CHECK(cudaMemcpyAsync(dst.raw_data(), src.raw_data(), static_cast<size_t>(dst.nbytes()),
                               cudaMemcpyDeviceToDevice, ctx.stream()));
    return;
  }
  KILN_DISPATCH_CUDA_ELEMENT_SIZE(dst.dtype(), op, {
    KILN_LAUNCH(grid_size(n), kThreads, 0, ctx.stream(), gather_kernel<element_t>)(
        static_cast<const element_t*>(src.raw_data()), static_cast<element_t*>(dst.raw_data()), n, src_at);
    KILN_CHECK_LAUNCH(op);
  });
}

void permute_forward(const Tensor& x, const Tensor& y, const std::vector<int>& order) {
  KILN_CHECK(x.layout() == Layout::nchw && y.layout() == Layout::nchw, "permute: the cuda kernel expects row-major ",
             "x and y, got ", x.describe(), " and ", y.describe());
  const std::vector<int64_t> x_strides = x.strides();
  std::vector<int64_t> y_sizes(order.size());
  std::vector<int64_t> read_strides[1] = {std::vector<int64_t>(order.size())};
  for (size_t k = 0; k < order.size(); ++k) {
    y_sizes[k] = x.shape()[order[k]];
    read_strides[0][k] = x_strides[order[k]];
  }
  gather_copy(x, y, make_offset_calculator<1>(y_sizes, read_strides, "permute"), "permute");
}

void copy_rows(const Tensor& x, const Tensor& y, int64_t outer, int64_t x_inner, int64_t y_inner, int64_t x_offset,
               int64_t y_offset, int64_t length) {
  KILN_CHECK(x.dtype() == y.dtype(), "copy_rows: x is ", x.describe(), " but y is ", y.describe());
  const int64_t n = outer * length;
  if (n == 0) return;
  Context& ctx = context_for(y);
  set_device(ctx);
  KILN_DISPATCH_CUDA_ELEMENT_SIZE(x.dtype(), "concat", {
    KILN_LAUNCH(grid_size(n), kThreads, 0, ctx.stream(), copy_rows_kernel<element_t>)(
        static_cast<const element_t*>(x.raw_data()), static_cast<element_t*>(y.raw_data()), outer, x_inner, y_inner,
        x_offset, y_offset, length);
    KILN_CHECK_LAUNCH("concat");
  });
}

}  // namespace kiln::cuda
