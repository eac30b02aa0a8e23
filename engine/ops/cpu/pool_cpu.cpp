// CPU reference for pooling: one loop nest per op over (n, c, oh, ow), templated on
// float and double. Element addresses come from ImageView strides, so nchw and
// nhwc tensors take the same code. Backward scatters into a zeroed grad_input (+=).
#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/ops/pool.h"

namespace kiln::cpu {

static inline int64_t at(const ImageView& v, int64_t n, int64_t c, int64_t h, int64_t w) {
  return n * v.stride_n + c * v.stride_c + h * v.stride_h + w * v.stride_w;
}

// One output's window along one dim: [start, end) clipped to the input, and the
// length of the window clipped only to the padded input [-pad, size + pad) (the
// count_include_pad divisor; with ceil_mode the last window can reach past it).
struct Span {
  int64_t start, end, padded_length;
};
static Span window_span(int64_t out_index, int kernel, int stride, int pad, int64_t size) {
  int64_t start = out_index * stride - pad;
  int64_t end = std::min<int64_t>(start + kernel, size + pad);
  const int64_t padded_length = end - start;
  start = std::max<int64_t>(start, 0);
  end = std::min<int64_t>(end, size);
  return {start, end, padded_length};
}

// Adaptive windows: [floor(o*size/out), ceil((o+1)*size/out)), PyTorch's formula.
static Span adaptive_span(int64_t out_index, int64_t out_size, int64_t size) {
  const int64_t start = (out_index * size) / out_size;
  const int64_t end = ((out_index + 1) * size + out_size - 1) / out_size;
  return {start, end, end - start};
}

template <class T>
void max_pool2d_forward(const T* x, const ImageView& xv, T* y, int64_t* argmax, const ImageView& yv,
                        const PoolWindow& window) {
#pragma omp parallel for collapse(2) if (yv.N * yv.C * yv.H * yv.W > 16384)
  for (int64_t n = 0; n < yv.N; ++n)
    for (int64_t c = 0; c < yv.C; ++c)
      for (int64_t oh = 0; oh < yv.H; ++oh)
        for (int64_t ow = 0; ow < yv.W; ++ow) {
          const Span rows = window_span(oh, window.kernel_h, window.stride_h, window.pad_h, xv.H);
          const Span cols = window_span(ow, window.kernel_w, window.stride_w, window.pad_w, xv.W);
          T best = -std::numeric_limits<T>::infinity();  // padding reads as -inf
          int64_t best_index = rows.start * xv.W + cols.start;
          for (int64_t h = rows.start; h < rows.end; ++h)
            for (int64_t w = cols.start; w < cols.end; ++w) {
              const T v = x[at(xv, n, c, h, w)];
              // Strict > keeps the first maximum on ties; NaN propagates, as in PyTorch.
              if (v > best || std::isnan(v)) {
                best = v;
                best_index = h * xv.W + w;
              }
            }
          y[at(yv, n, c, oh, ow)] = best;
          argmax[at(yv, n, c, oh, ow)] = best_index;
        }
}

template <class T>
void max_pool2d_backward(const T* grad_output, const ImageView& gv, const int64_t* argmax, const ImageView& av,
                         T* grad_input, const ImageView& giv) {
  // Parallel over planes only: windows of one plane may share an argmax.
#pragma omp parallel for collapse(2) if (gv.N * gv.C * gv.H * gv.W > 16384)
  for (int64_t n = 0; n < gv.N; ++n)
    for (int64_t c = 0; c < gv.C; ++c)
      for (int64_t oh = 0; oh < gv.H; ++oh)
        for (int64_t ow = 0; ow < gv.W; ++ow) {
          const int64_t index = argmax[at(av, n, c, oh, ow)];
          grad_input[at(giv, n, c, index / giv.W, index % giv.W)] += grad_output[at(gv, n, c, oh, ow)];
        }
}

template <class T>
void avg_pool2d_forward(const T* x, const ImageView& xv, T* y, const ImageView& yv, const PoolWindow& window,
                        bool count_include_pad) {
#pragma omp parallel for collapse(2) if (yv.N * yv.C * yv.H * yv.W > 16384)
  for (int64_t n = 0; n < yv.N; ++n)
    for (int64_t c = 0; c < yv.C; ++c)
      for (int64_t oh = 0; oh < yv.H; ++oh)
        for (int64_t ow = 0; ow < yv.W; ++ow) {
          const Span rows = window_span(oh, window.kernel_h, window.stride_h, window.pad_h, xv.H);
          const Span cols = window_span(ow, window.kernel_w, window.stride_w, window.pad_w, xv.W);
          T sum = 0;
          for (int64_t h = rows.start; h < rows.end; ++h)
            for (int64_t w = cols.start; w < cols.end; ++w) sum += x[at(xv, n, c, h, w)];
          const int64_t divisor = count_include_pad ? rows.padded_length * cols.padded_length
                                                    : (rows.end - rows.start) * (cols.end - cols.start);
          y[at(yv, n, c, oh, ow)] = sum / static_cast<T>(divisor);
        }
}

template <class T>
void avg_pool2d_backward(const T* grad_output, const ImageView& gv, T* grad_input, const ImageView& giv,
                         const PoolWindow& window, bool count_include_pad) {
#pragma omp parallel for collapse(2) if (gv.N * gv.C * gv.H * gv.W > 16384)
  for (int64_t n = 0; n < gv.N; ++n)
    for (int64_t c = 0; c < gv.C; ++c)
      for (int64_t oh = 0; oh < gv.H; ++oh)
        for (int64_t ow = 0; ow < gv.W; ++ow) {
          const Span rows = window_span(oh, window.kernel_h, window.stride_h, window.pad_h, giv.H);
          const Span cols = window_span(ow, window.kernel_w, window.stride_w, window.pad_w, giv.W);
          const int64_t divisor = count_include_pad ? rows.padded_length * cols.padded_length
                                                    : (rows.end - rows.start) * (cols.end - cols.start);
          // Each input of the window contributed 1/divisor of this output.
          const T share = grad_output[at(gv, n, c, oh, ow)] / static_cast<T>(divisor);
          for (int64_t h = rows.start; h < rows.end; ++h)
            for (int64_t w = cols.start; w < cols.end; ++w) grad_input[at(giv, n, c, h, w)] += share;
        }
}

template <class T>
void adaptive_avg_pool2d_forward(const T* x, const ImageView& xv, T* y, const ImageView& yv) {
#pragma omp parallel for collapse(2) if (xv.N * xv.C * xv.H * xv.W > 16384)
  for (int64_t n = 0; n < yv.N; ++n)
    for (int64_t c = 0; c < yv.C; ++c)
      for (int64_t oh = 0; oh < yv.H; ++oh)
        for (int64_t ow = 0; ow < yv.W; ++ow) {
          const Span rows = adaptive_span(oh, yv.H, xv.H);
          const Span cols = adaptive_span(ow, yv.W, xv.W);
          T sum = 0;
          for (int64_t h = rows.start; h < rows.end; ++h)
            for (int64_t w = cols.start; w < cols.end; ++w) sum += x[at(xv, n, c, h, w)];
          y[at(yv, n, c, oh, ow)] = sum / static_cast<T>(rows.padded_length * cols.padded_length);
        }
}

template <class T>
void adaptive_avg_pool2d_backward(const T* grad_output, const ImageView& gv, T* grad_input, const ImageView& giv) {
#pragma omp parallel for collapse(2) if (giv.N * giv.C * giv.H * giv.W > 16384)
  for (int64_t n = 0; n < gv.N; ++n)
    for (int64_t c = 0; c < gv.C; ++c)
      for (int64_t oh = 0; oh < gv.H; ++oh)
        for (int64_t ow = 0; ow < gv.W; ++ow) {
          const Span rows = adaptive_span(oh, gv.H, giv.H);
          const Span cols = adaptive_span(ow, gv.W, giv.W);
          const T share = grad_output[at(gv, n, c, oh, ow)] / static_cast<T>(rows.padded_length * cols.padded_length);
          for (int64_t h = rows.start; h < rows.end; ++h)
            for (int64_t w = cols.start; w < cols.end; ++w) grad_input[at(giv, n, c, h, w)] += share;
        }
}

#define KILN_INSTANTIATE(T)                                                                                     \
  template void max_pool2d_forward<T>(const T*, const ImageView&, T*, int64_t*, const ImageView&,               \
                                      const PoolWindow&);                                                        \
  template void max_pool2d_backward<T>(const T*, const ImageView&, const int64_t*, const ImageView&, T*,        \
                                       const ImageView&);                                                        \
  template void avg_pool2d_forward<T>(const T*, const ImageView&, T*, const ImageView&, const PoolWindow&, bool); \
  template void avg_pool2d_backward<T>(const T*, const ImageView&, T*, const ImageView&, const PoolWindow&, bool); \
  template void adaptive_avg_pool2d_forward<T>(const T*, const ImageView&, T*, const ImageView&);               \
  template void adaptive_avg_pool2d_backward<T>(const T*, const ImageView&, T*, const ImageView&);
KILN_INSTANTIATE(float)
KILN_INSTANTIATE(double)
#undef KILN_INSTANTIATE

}  // namespace kiln::cpu
