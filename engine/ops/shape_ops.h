// Ops that change the shape or the order of elements.
//
//   reshape / view: same elements, new shape; a view (no copy) of a row-major tensor.
//   flatten(x, start_dim): merge dims start_dim.. into one ((N, C, H, W) -> (N, C*H*W)).
//   permute(x, order) / transpose(x, d0, d1): y[..i_order[k]..] = x[..i_k..]; a copy.
//   concat(xs, dim): join along dim; backward slices the gradient back apart.
// Backward of each is the inverse rearrangement of grad_output.
#pragma once
#include <vector>

#include "engine/tensor/tensor.h"

namespace kiln {

Tensor reshape(const Tensor& x, const Shape& shape);  // one dim may be -1
Tensor flatten(const Tensor& x, int start_dim = 1);
Tensor permute(const Tensor& x, const std::vector<int>& order);
Tensor transpose(const Tensor& x, int dim0, int dim1);
Tensor concat(const std::vector<Tensor>& xs, int dim);
// Elements [start, start+length) along dim, as a new tensor (differentiable).
Tensor slice(const Tensor& x, int dim, int64_t start, int64_t length);

namespace cpu {
// y = x permuted; x row-major with x_shape; y row-major.
template <class T> void permute_forward(const T* x, T* y, const Shape& x_shape, const std::vector<int>& order);
// Copy a block: x seen as (outer, x_inner) rows; y as (outer, y_inner); x_inner
// elements are written at column offset `y_offset` of each y row (concat and slice).
template <class T>
void copy_rows(const T* x, T* y, int64_t outer, int64_t x_inner, int64_t y_inner, int64_t x_offset,
               int64_t y_offset, int64_t length);
}  // namespace cpu
namespace cuda {
void permute_forward(const Tensor& x, const Tensor& y, const std::vector<int>& order);
void copy_rows(const Tensor& x, const Tensor& y, int64_t outer, int64_t x_inner, int64_t y_inner, int64_t x_offset,
               int64_t y_offset, int64_t length);
}  // namespace cuda

}  // namespace kiln
