// Pooling's CPU fast path (declared in pool.h under `namespace cpu_fast`): the same
// math as the reference (engine/ops/cpu/pool_cpu.cpp, geometry in engine/ops/pool.h),
// for f32 arrays whose pixels are dense, in nchw (each (n, c) plane of H*W values
// contiguous) or in nhwc (each pixel's C values contiguous).
//
// Why the reference is slow: per output it recomputes both window spans, per element
// it forms a 4-D address from four strides, and max pooling's `v > best || isnan(v)`
// is a branch whose outcome is random on real activations (half mispredicted); its
// backward divides every argmax by W to get (h, w) back. cnn5's training step spent
// 20 % of its time there (docs/benchmarks.md). Here
//   - the window spans of every output row and column are computed once per call;
//   - nchw max pooling sweeps an output row in chunks of 64 outputs: for each tap of
//     the window, one vector loop updates the chunk's running maxima and indices,
//     the comparison written as a select, not a branch (the window's width and stride
//     are compile-time constants for the models' 2x2/2 and 3x3/2, so the strided
//     loads vectorise); outputs whose window reaches into the left or right padding
//     take the same update behind a bounds check. Each output visits its taps in row-major order,
//     so the result (and the argmax on ties) is the reference's, bit for bit;
//   - nhwc max and average pooling put the channels innermost: one simd loop over C
//     per tap;
//   - the backward passes write every element of grad_input (zeroing their own part
//     first, inside the parallel loop) and scatter with plane offsets, no division.
// Summation orders are the reference's (taps in row-major order per output; backward
// scatters outputs in order), so the f32 results equal the reference's exactly, and the
// tests (tests/ops/test_pool_fast.cpp) require that: no element may differ.
//
// Max-pool ties: the first maximum in row-major window order gets the gradient (a
// later equal value does not pass `v > best`); a NaN always takes the slot (the last
// NaN in window order), as in the reference and PyTorch.
//
// Bytes moved per element: forward reads x once per window that holds it (k*k/s^2,
// 1 for 2x2 stride 2) and writes y (and the i64 argmax); backward reads dy (and the
// argmax) once and writes dx once.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "engine/core/check.h"
#include "engine/ops/pool.h"

namespace kiln::cpu_fast {

namespace {

// Work below this many values stays on one thread (the reference's threshold).
constexpr int64_t kParallelValues = 16384;

// The windows of every output index along one dim: [start, end) clipped to the
// input, and the divisor an average divides by (pool.h's rules).
struct Spans {
  std::vector<int64_t> start, end, divisor;
};

Spans window_spans(int64_t outputs, int kernel, int stride, int pad, int64_t size, bool count_include_pad) {
  Spans s;
  for (int64_t o = 0; o < outputs; ++o) {
    int64_t start = o * stride - pad;
    int64_t end = std::min<int64_t>(start + kernel, size + pad);
    const int64_t padded_length = end - start;
    start = std::max<int64_t>(start, 0);
    end = std::min<int64_t>(end, size);
    s.start.push_back(start);
    s.end.push_back(end);
    s.divisor.push_back(count_include_pad ? padded_length : end - start);
  }
  return s;
}

Spans adaptive_spans(int64_t outputs, int64_t size) {
  Spans s;
  for (int64_t o = 0; o < outputs; ++o) {
    s.start.push_back((o * size) / outputs);
    s.end.push_back(((o + 1) * size + outputs - 1) / outputs);
    s.divisor.push_back(s.end.back() - s.start.back());
  }
  return s;
}

// The spans of an average pool: its window's, or the adaptive ones when `window` is null.
Spans avg_spans(const PoolWindow* window, bool count_include_pad, int64_t outputs, int64_t size, bool rows) {
  if (!window) return adaptive_spans(outputs, size);
  return rows ? window_spans(outputs, window->kernel_h, window->stride_h, window->pad_h, size, count_include_pad)
              : window_spans(outputs, window->kernel_w, window->stride_w, window->pad_w, size, count_include_pad);
}

template <class T>
T* plane(T* base, const ImageView& v, int64_t n, int64_t c) {
  return base + n * v.stride_n + c * v.stride_c;
}

// The max-pool update: a larger value or any NaN takes the slot (pool.h's rule).
inline void take_if_larger(float v, int64_t index, float& best, int64_t& best_index) {
  const bool take = (v > best) | (v != v);
  best = take ? v : best;
  best_index = take ? index : best_index;
}

// ------------------------------------------------------------------ nchw
// One output row of an nchw max pool. Outputs whose window lies inside the row
// ([interior_begin, interior_end)) keep their running max and index in registers,
// with the window width and the stride compile-time constants for the models' 2x2/2 and
// 3x3/2 (KW, SW; 0: read at run time), so the strided loads become shuffles. The outputs
// at the borders take the same taps behind a bounds check.
template <int KW, int SW>
void max_row(const float* xp, int64_t W, int64_t row_begin, int64_t row_end, const Spans& cols, const PoolWindow& w,
             int64_t interior_begin, int64_t interior_end, float* y_row, int64_t* argmax_row, int64_t Wo) {
  const int kernel_w = KW ? KW : w.kernel_w;
  const int64_t sw = SW ? SW : w.stride_w;
  auto border = [&](int64_t ow) {  // the window clipped to [cols.start, cols.end)
    float best = -std::numeric_limits<float>::infinity();  // padding reads as -inf
    int64_t best_index = row_begin * W + cols.start[ow];
    for (int64_t h = row_begin; h < row_end; ++h)
      for (int64_t col = cols.start[ow]; col < cols.end[ow]; ++col)
        take_if_larger(xp[h * W + col], h * W + col, best, best_index);
    y_row[ow] = best;
    argmax_row[ow] = best_index;
  };
  for (int64_t ow = 0; ow < interior_begin; ++ow) border(ow);
  // The interior in chunks of kChunk outputs: for each tap (h, j) of the window, one
  // vector loop updates the chunk's running maxima and indices (local arrays, in L1),
  // each lane one output; indices are plane offsets in 32 bits (max_forward_planes
  // checks that a plane fits) so that they fill the same vector lanes as the floats.
  constexpr int kChunk = 64;
  const int32_t W32 = static_cast<int32_t>(W), sw32 = static_cast<int32_t>(sw);
  for (int64_t chunk = interior_begin; chunk < interior_end; chunk += kChunk) {
    const int count = static_cast<int>(std::min<int64_t>(kChunk, interior_end - chunk));
    const int32_t first_col = static_cast<int32_t>(chunk * sw - w.pad_w);  // the chunk's first window's column
    float best[kChunk];
    int32_t best_index[kChunk];
    for (int k = 0; k < count; ++k) {
      best[k] = -std::numeric_limits<float>::infinity();
      best_index[k] = static_cast<int32_t>(row_begin) * W32 + first_col + k * sw32;
    }
    for (int64_t h = row_begin; h < row_end; ++h)
      for (int j = 0; j < kernel_w; ++j) {
        const int32_t tap = static_cast<int32_t>(h) * W32 + first_col + j;  // lane k reads tap + k*sw
        const float* xr = xp + tap;
#pragma omp simd
        for (int k = 0; k < count; ++k) {
          const float v = xr[k * sw32];
          const bool take = (v > best[k]) | (v != v);
          best[k] = take ? v : best[k];
          best_index[k] = take ? tap + k * sw32 : best_index[k];
        }
      }
    for (int k = 0; k < count; ++k) {
      y_row[chunk + k] = best[k];
      argmax_row[chunk + k] = best_index[k];
    }
  }
  for (int64_t ow = interior_end; ow < Wo; ++ow) border(ow);
}

void max_forward_planes(const float* x, const ImageView& xv, float* y, int64_t* argmax, const ImageView& yv,
                        const PoolWindow& w) {
  const Spans rows = window_spans(yv.H, w.kernel_h, w.stride_h, w.pad_h, xv.H, true);
  const Spans cols = window_spans(yv.W, w.kernel_w, w.stride_w, w.pad_w, xv.W, true);
  const int64_t W = xv.W, Wo = yv.W, sw = w.stride_w;
  // Outputs [interior_begin, interior_end) have every column of their window inside [0, W).
  const int64_t interior_begin = std::min<int64_t>(Wo, (w.pad_w + sw - 1) / sw);
  const int64_t last_inside = W + w.pad_w - w.kernel_w;  // an output starting at ow*sw - pad_w <= this fits
  const int64_t interior_end =
      std::max(interior_begin, std::min<int64_t>(Wo, last_inside < 0 ? 0 : last_inside / sw + 1));
  KILN_CHECK(xv.H * xv.W < (int64_t{1} << 31), "max_pool2d: a plane of ", xv.H, " x ", xv.W,
             " values is more than the fast path indexes (2^31); KILN_CPU_POOL=reference runs the reference");
  const auto row = w.kernel_w == 2 && w.stride_w == 2   ? max_row<2, 2>
                   : w.kernel_w == 3 && w.stride_w == 2 ? max_row<3, 2>
                                                        : max_row<0, 0>;
#pragma omp parallel for collapse(2) if (yv.N * yv.C * yv.H * yv.W > kParallelValues)
  for (int64_t n = 0; n < yv.N; ++n)
    for (int64_t c = 0; c < yv.C; ++c) {
      const float* xp = plane(x, xv, n, c);
      float* yp = plane(y, yv, n, c);
      int64_t* ap = plane(argmax, yv, n, c);
      for (int64_t oh = 0; oh < yv.H; ++oh)
        row(xp, W, rows.start[oh], rows.end[oh], cols, w, interior_begin, interior_end, yp + oh * Wo, ap + oh * Wo, Wo);
    }
}

void max_backward_planes(const float* grad_output, const ImageView& gv, const int64_t* argmax, const ImageView& av,
                         float* grad_input, const ImageView& giv) {
  const int64_t outputs = gv.H * gv.W, inputs = giv.H * giv.W;
#pragma omp parallel for collapse(2) if (gv.N * gv.C * outputs > kParallelValues)
  for (int64_t n = 0; n < gv.N; ++n)
    for (int64_t c = 0; c < gv.C; ++c) {
      const float* gp = plane(grad_output, gv, n, c);
      const int64_t* ap = plane(argmax, av, n, c);
      float* gip = plane(grad_input, giv, n, c);
      std::memset(gip, 0, sizeof(float) * inputs);
      for (int64_t o = 0; o < outputs; ++o) gip[ap[o]] += gp[o];  // the argmax is the offset in the plane
    }
}

void avg_forward_planes(const float* x, const ImageView& xv, float* y, const ImageView& yv, const Spans& rows,
                        const Spans& cols) {
#pragma omp parallel for collapse(2) if (xv.N * xv.C * xv.H * xv.W > kParallelValues)
  for (int64_t n = 0; n < yv.N; ++n)
    for (int64_t c = 0; c < yv.C; ++c) {
      const float* xp = plane(x, xv, n, c);
      float* yp = plane(y, yv, n, c);
      for (int64_t oh = 0; oh < yv.H; ++oh)
        for (int64_t ow = 0; ow < yv.W; ++ow) {
          float sum = 0;
          for (int64_t h = rows.start[oh]; h < rows.end[oh]; ++h)
            for (int64_t w = cols.start[ow]; w < cols.end[ow]; ++w) sum += xp[h * xv.W + w];
          yp[oh * yv.W + ow] = sum / static_cast<float>(rows.divisor[oh] * cols.divisor[ow]);
        }
    }
}

void avg_backward_planes(const float* grad_output, const ImageView& gv, float* grad_input, const ImageView& giv,
                         const Spans& rows, const Spans& cols) {
#pragma omp parallel for collapse(2) if (giv.N * giv.C * giv.H * giv.W > kParallelValues)
  for (int64_t n = 0; n < gv.N; ++n)
    for (int64_t c = 0; c < gv.C; ++c) {
      const float* gp = plane(grad_output, gv, n, c);
      float* gip = plane(grad_input, giv, n, c);
      std::memset(gip, 0, sizeof(float) * giv.H * giv.W);
      for (int64_t oh = 0; oh < gv.H; ++oh)
        for (int64_t ow = 0; ow < gv.W; ++ow) {
          const float share = gp[oh * gv.W + ow] / static_cast<float>(rows.divisor[oh] * cols.divisor[ow]);
          for (int64_t h = rows.start[oh]; h < rows.end[oh]; ++h)
            for (int64_t w = cols.start[ow]; w < cols.end[ow]; ++w) gip[h * giv.W + w] += share;
        }
    }
}

// ------------------------------------------------------------------ nhwc
// Pixel (n, h, w)'s C values start at pixel(base, v, n, h, w); channels are contiguous.
template <class T>
T* pixel(T* base, const ImageView& v, int64_t n, int64_t h, int64_t w) {
  return base + n * v.stride_n + h * v.stride_h + w * v.stride_w;
}

void max_forward_pixels(const float* x, const ImageView& xv, float* y, int64_t* argmax, const ImageView& yv,
                        const PoolWindow& w) {
  const Spans rows = window_spans(yv.H, w.kernel_h, w.stride_h, w.pad_h, xv.H, true);
  const Spans cols = window_spans(yv.W, w.kernel_w, w.stride_w, w.pad_w, xv.W, true);
  const int64_t C = yv.C;
#pragma omp parallel for collapse(2) if (yv.N * yv.C * yv.H * yv.W > kParallelValues)
  for (int64_t n = 0; n < yv.N; ++n)
    for (int64_t oh = 0; oh < yv.H; ++oh)
      for (int64_t ow = 0; ow < yv.W; ++ow) {
        float* best = pixel(y, yv, n, oh, ow);
        int64_t* best_index = pixel(argmax, yv, n, oh, ow);
        const int64_t first = rows.start[oh] * xv.W + cols.start[ow];
        for (int64_t c = 0; c < C; ++c) {
          best[c] = -std::numeric_limits<float>::infinity();
          best_index[c] = first;
        }
        for (int64_t h = rows.start[oh]; h < rows.end[oh]; ++h)
          for (int64_t col = cols.start[ow]; col < cols.end[ow]; ++col) {
            const float* xc = pixel(x, xv, n, h, col);
            const int64_t index = h * xv.W + col;
#pragma omp simd
            for (int64_t c = 0; c < C; ++c) take_if_larger(xc[c], index, best[c], best_index[c]);
          }
      }
}

void max_backward_pixels(const float* grad_output, const ImageView& gv, const int64_t* argmax, const ImageView& av,
                         float* grad_input, const ImageView& giv) {
  const int64_t C = gv.C;
  // Parallel over images only: outputs of one image may share an argmax.
#pragma omp parallel for if (gv.N * gv.C * gv.H * gv.W > kParallelValues)
  for (int64_t n = 0; n < gv.N; ++n) {
    float* gin = grad_input + n * giv.stride_n;
    std::memset(gin, 0, sizeof(float) * giv.H * giv.W * C);
    for (int64_t oh = 0; oh < gv.H; ++oh)
      for (int64_t ow = 0; ow < gv.W; ++ow) {
        const float* g = pixel(grad_output, gv, n, oh, ow);
        const int64_t* a = pixel(argmax, av, n, oh, ow);
        for (int64_t c = 0; c < C; ++c) gin[a[c] * C + c] += g[c];  // pixel h*W + w of channel c
      }
  }
}

void avg_forward_pixels(const float* x, const ImageView& xv, float* y, const ImageView& yv, const Spans& rows,
                        const Spans& cols) {
  const int64_t C = yv.C;
#pragma omp parallel for collapse(2) if (xv.N * xv.C * xv.H * xv.W > kParallelValues)
  for (int64_t n = 0; n < yv.N; ++n)
    for (int64_t oh = 0; oh < yv.H; ++oh)
      for (int64_t ow = 0; ow < yv.W; ++ow) {
        float* sum = pixel(y, yv, n, oh, ow);
        std::fill(sum, sum + C, 0.0f);
        for (int64_t h = rows.start[oh]; h < rows.end[oh]; ++h)
          for (int64_t col = cols.start[ow]; col < cols.end[ow]; ++col) {
            const float* xc = pixel(x, xv, n, h, col);
#pragma omp simd
            for (int64_t c = 0; c < C; ++c) sum[c] += xc[c];
          }
        const float divisor = static_cast<float>(rows.divisor[oh] * cols.divisor[ow]);
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) sum[c] /= divisor;
      }
}

void avg_backward_pixels(const float* grad_output, const ImageView& gv, float* grad_input, const ImageView& giv,
                         const Spans& rows, const Spans& cols) {
  const int64_t C = gv.C;
#pragma omp parallel for if (giv.N * giv.C * giv.H * giv.W > kParallelValues)
  for (int64_t n = 0; n < gv.N; ++n) {
    std::memset(grad_input + n * giv.stride_n, 0, sizeof(float) * giv.H * giv.W * C);
    for (int64_t oh = 0; oh < gv.H; ++oh)
      for (int64_t ow = 0; ow < gv.W; ++ow) {
        const float* g = pixel(grad_output, gv, n, oh, ow);
        const float divisor = static_cast<float>(rows.divisor[oh] * cols.divisor[ow]);
        for (int64_t h = rows.start[oh]; h < rows.end[oh]; ++h)
          for (int64_t col = cols.start[ow]; col < cols.end[ow]; ++col) {
            float* gi = pixel(grad_input, giv, n, h, col);
#pragma omp simd
            for (int64_t c = 0; c < C; ++c) gi[c] += g[c] / divisor;
          }
      }
  }
}

}  // namespace

bool pool_applies(const ImageView& v) {
  return v.channels_last ? v.stride_c == 1 && v.stride_w == v.C && v.stride_h == v.W * v.C &&
                               v.stride_n == v.H * v.W * v.C
                         : v.stride_w == 1 && v.stride_h == v.W;
}

void max_pool2d_forward(const float* x, const ImageView& xv, float* y, int64_t* argmax, const ImageView& yv,
                        const PoolWindow& window) {
  if (xv.channels_last)
    max_forward_pixels(x, xv, y, argmax, yv, window);
  else
    max_forward_planes(x, xv, y, argmax, yv, window);
}

void max_pool2d_backward(const float* grad_output, const ImageView& gv, const int64_t* argmax, const ImageView& av,
                         float* grad_input, const ImageView& giv) {
  if (giv.channels_last)
    max_backward_pixels(grad_output, gv, argmax, av, grad_input, giv);
  else
    max_backward_planes(grad_output, gv, argmax, av, grad_input, giv);
}

void avg_pool2d_forward(const float* x, const ImageView& xv, float* y, const ImageView& yv, const PoolWindow* window,
                        bool count_include_pad) {
  const Spans rows = avg_spans(window, count_include_pad, yv.H, xv.H, true);
  const Spans cols = avg_spans(window, count_include_pad, yv.W, xv.W, false);
  if (xv.channels_last)
    avg_forward_pixels(x, xv, y, yv, rows, cols);
  else
    avg_forward_planes(x, xv, y, yv, rows, cols);
}

void avg_pool2d_backward(const float* grad_output, const ImageView& gv, float* grad_input, const ImageView& giv,
                         const PoolWindow* window, bool count_include_pad) {
  const Spans rows = avg_spans(window, count_include_pad, gv.H, giv.H, true);
  const Spans cols = avg_spans(window, count_include_pad, gv.W, giv.W, false);
  if (giv.channels_last)
    avg_backward_pixels(grad_output, gv, grad_input, giv, rows, cols);
  else
    avg_backward_planes(grad_output, gv, grad_input, giv, rows, cols);
}

}  // namespace kiln::cpu_fast
