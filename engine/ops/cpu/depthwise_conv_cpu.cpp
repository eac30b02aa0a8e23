// CPU depthwise convolution, computed directly (no im2col, no GEMM).
//
// Depthwise means groups = C: every input channel c is filtered on its own by M =
// K/C filters (the channel multiplier; MobileNetV2 uses M = 1). Output channel k
// reads input channel c = k / M, and the weight is (K, 1, R, S):
//
//   forward          y[n,k,i,j]  = bias[k] + sum_{r,s} w[k,r,s] * x[n, k/M, i*sh-ph+r*dh, j*sw-pw+s*dw]
//   backward input   dx[n,c,h,w] = sum_{m<M} sum_{r,s : h = i*sh-ph+r*dh, w = j*sw-pw+s*dw} w[cM+m,r,s] * dy[n,cM+m,i,j]
//   backward weight  dw[k,r,s]   = sum_{n,i,j} dy[n,k,i,j] * x[n, k/M, i*sh-ph+r*dh, j*sw-pw+s*dw]
//
// (x is zero outside the image.) The grouped im2col + GEMM path in conv_cpu.cpp
// computes the same sums, but for depthwise every GEMM is (M x R*S) * (R*S x Ho*Wo):
// a 1 x 9 row times a 9 x P matrix, C separate times per image. That is all call
// overhead and an unrolled copy of the image nine times over, for 2*R*S flops per
// output. Here each output is R*S multiply-adds straight from the input, and the
// innermost loop runs along the contiguous axis so the compiler vectorises it:
//
//   nchw (channels-first): one (n, k) plane per task; for an output row i and a tap
//        (r, s), the valid columns j form one range [j_begin, j_end) computed up front,
//        so the inner loop `y_row[j] += w * x_row[j*sw + offset]` has no bounds test.
//   nhwc (channels-last): one (n, output row) per task; at each output pixel the C
//        channels are contiguous, so the inner loop runs over channels with the
//        weight transposed to (R, S, K) so it is contiguous too.
//
// Threads (OpenMP), as in the rest of the CPU backend, never write the same element:
//   forward            nchw: tasks (n, k);  nhwc: tasks (n, i)
//   backward input     nchw: tasks (n, c), each scattering into its own plane of dx;
//                      nhwc: tasks (n, h), each gathering one row of dx
//   backward weight    nchw: tasks k (each sums its channel over the batch, in a
//                      double accumulator per tap); nhwc: per-thread partial sums over
//                      the batch added in thread order (deterministic per thread count).
// Arrays are dense in the stated layout; outputs are overwritten, never accumulated into.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "engine/ops/conv.h"

namespace kiln::cpu {

namespace {

// The output positions j in [0, out) whose input coordinate j*stride + offset lies in
// [0, in): one range [begin, end), so the inner loops need no bounds tests.
struct ValidRange {
  int64_t begin, end;
};
ValidRange valid_outputs(int64_t offset, int64_t stride, int64_t in, int64_t out) {
  // j*stride + offset >= 0  <=>  j >= ceil(-offset / stride)
  int64_t begin = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  // j*stride + offset <= in - 1  <=>  j <= floor((in - 1 - offset) / stride)
  const int64_t last = in - 1 - offset;
  int64_t end = last < 0 ? 0 : last / stride + 1;
  begin = std::min(begin, out);
  end = std::max(begin, std::min(end, out));
  return {begin, end};
}

// The weight (K, 1, R, S) transposed to (R*S, K): in nhwc the channels are innermost.
template <class T>
std::vector<T> taps_by_channel(const T* weight, const Conv2dGeometry& g) {
  const int64_t taps = g.R * g.S;
  std::vector<T> out(static_cast<size_t>(taps * g.K));
  for (int64_t k = 0; k < g.K; ++k)
    for (int64_t t = 0; t < taps; ++t) out[t * g.K + k] = weight[k * taps + t];
  return out;
}

int64_t multiplier(const Conv2dGeometry& g) { return g.K / g.C; }

// ---------------------------------------------------------------- nchw
template <class T>
void forward_nchw(const T* x, const T* weight, const T* bias, T* y, const Conv2dGeometry& g) {
  const int64_t M = multiplier(g), plane_in = g.H * g.W, plane_out = g.Ho * g.Wo;
#pragma omp parallel for schedule(static)
  for (int64_t nk = 0; nk < g.N * g.K; ++nk) {
    const int64_t n = nk / g.K, k = nk % g.K;
    const T* x_plane = x + (n * g.C + k / M) * plane_in;
    const T* w = weight + k * g.R * g.S;
    T* y_plane = y + nk * plane_out;
    std::fill(y_plane, y_plane + plane_out, bias ? bias[k] : T(0));
    for (int64_t s = 0; s < g.S; ++s) {
      const int64_t offset_w = s * g.dilation_w - g.pad_w;
      const ValidRange cols = valid_outputs(offset_w, g.stride_w, g.W, g.Wo);
      for (int64_t i = 0; i < g.Ho; ++i) {
        T* y_row = y_plane + i * g.Wo;
        for (int64_t r = 0; r < g.R; ++r) {
          const int64_t h = i * g.stride_h - g.pad_h + r * g.dilation_h;
          if (h < 0 || h >= g.H) continue;
          const T tap = w[r * g.S + s];
          const T* x_row = x_plane + h * g.W + offset_w;
          if (g.stride_w == 1) {
            for (int64_t j = cols.begin; j < cols.end; ++j) y_row[j] += tap * x_row[j];
          } else {
            for (int64_t j = cols.begin; j < cols.end; ++j) y_row[j] += tap * x_row[j * g.stride_w];
          }
        }
      }
    }
  }
}

template <class T>
void backward_input_nchw(const T* grad_output, const T* weight, T* grad_input, const Conv2dGeometry& g) {
  const int64_t M = multiplier(g), plane_in = g.H * g.W, plane_out = g.Ho * g.Wo;
#pragma omp parallel for schedule(static)
  for (int64_t nc = 0; nc < g.N * g.C; ++nc) {
    const int64_t n = nc / g.C, c = nc % g.C;
    T* dx_plane = grad_input + nc * plane_in;
    std::fill(dx_plane, dx_plane + plane_in, T(0));
    for (int64_t m = 0; m < M; ++m) {
      const int64_t k = c * M + m;
      const T* dy_plane = grad_output + (n * g.K + k) * plane_out;
      const T* w = weight + k * g.R * g.S;
      // The adjoint of the forward: each product tap * x_row[...] becomes a scatter
      // dx_row[...] += tap * dy_row[j], over the same valid ranges.
      for (int64_t s = 0; s < g.S; ++s) {
        const int64_t offset_w = s * g.dilation_w - g.pad_w;
        const ValidRange cols = valid_outputs(offset_w, g.stride_w, g.W, g.Wo);
        for (int64_t i = 0; i < g.Ho; ++i) {
          const T* dy_row = dy_plane + i * g.Wo;
          for (int64_t r = 0; r < g.R; ++r) {
            const int64_t h = i * g.stride_h - g.pad_h + r * g.dilation_h;
            if (h < 0 || h >= g.H) continue;
            const T tap = w[r * g.S + s];
            T* dx_row = dx_plane + h * g.W + offset_w;
            if (g.stride_w == 1) {
              for (int64_t j = cols.begin; j < cols.end; ++j) dx_row[j] += tap * dy_row[j];
            } else {
              for (int64_t j = cols.begin; j < cols.end; ++j) dx_row[j * g.stride_w] += tap * dy_row[j];
            }
          }
        }
      }
    }
  }
}

template <class T>
void backward_weight_nchw(const T* grad_output, const T* x, T* grad_weight, const Conv2dGeometry& g) {
  const int64_t M = multiplier(g), plane_in = g.H * g.W, plane_out = g.Ho * g.Wo, taps = g.R * g.S;
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < g.K; ++k) {
    std::vector<double> total(static_cast<size_t>(taps), 0.0);  // keeps the f32 sum over N*Ho*Wo accurate
    for (int64_t n = 0; n < g.N; ++n) {
      const T* x_plane = x + (n * g.C + k / M) * plane_in;
      const T* dy_plane = grad_output + (n * g.K + k) * plane_out;
      for (int64_t r = 0; r < g.R; ++r)
        for (int64_t s = 0; s < g.S; ++s) {
          const int64_t offset_w = s * g.dilation_w - g.pad_w;
          const ValidRange cols = valid_outputs(offset_w, g.stride_w, g.W, g.Wo);
          T plane_sum = 0;  // one image's contribution, summed in T (vectorised), then added in double
          for (int64_t i = 0; i < g.Ho; ++i) {
            const int64_t h = i * g.stride_h - g.pad_h + r * g.dilation_h;
            if (h < 0 || h >= g.H) continue;
            const T* x_row = x_plane + h * g.W + offset_w;
            const T* dy_row = dy_plane + i * g.Wo;
            T row_sum = 0;
            if (g.stride_w == 1) {
              for (int64_t j = cols.begin; j < cols.end; ++j) row_sum += dy_row[j] * x_row[j];
            } else {
              for (int64_t j = cols.begin; j < cols.end; ++j) row_sum += dy_row[j] * x_row[j * g.stride_w];
            }
            plane_sum += row_sum;
          }
          total[r * g.S + s] += plane_sum;
        }
    }
    for (int64_t t = 0; t < taps; ++t) grad_weight[k * taps + t] = static_cast<T>(total[t]);
  }
}

// ---------------------------------------------------------------- nhwc
// x (N, H, W, C), y and dy (N, Ho, Wo, K); the weight is (K, 1, R, S) either way.
template <class T>
void forward_nhwc(const T* x, const T* weight, const T* bias, T* y, const Conv2dGeometry& g) {
  const int64_t M = multiplier(g), K = g.K;
  const std::vector<T> taps = taps_by_channel(weight, g);
#pragma omp parallel for schedule(static)
  for (int64_t ni = 0; ni < g.N * g.Ho; ++ni) {
    const int64_t n = ni / g.Ho, i = ni % g.Ho;
    for (int64_t j = 0; j < g.Wo; ++j) {
      T* y_pixel = y + (ni * g.Wo + j) * K;
      for (int64_t k = 0; k < K; ++k) y_pixel[k] = bias ? bias[k] : T(0);
      for (int64_t r = 0; r < g.R; ++r) {
        const int64_t h = i * g.stride_h - g.pad_h + r * g.dilation_h;
        if (h < 0 || h >= g.H) continue;
        for (int64_t s = 0; s < g.S; ++s) {
          const int64_t w = j * g.stride_w - g.pad_w + s * g.dilation_w;
          if (w < 0 || w >= g.W) continue;
          const T* x_pixel = x + ((n * g.H + h) * g.W + w) * g.C;
          const T* tap = taps.data() + (r * g.S + s) * K;
          if (M == 1) {
            for (int64_t k = 0; k < K; ++k) y_pixel[k] += tap[k] * x_pixel[k];
          } else {
            for (int64_t k = 0; k < K; ++k) y_pixel[k] += tap[k] * x_pixel[k / M];
          }
        }
      }
    }
  }
}

template <class T>
void backward_input_nhwc(const T* grad_output, const T* weight, T* grad_input, const Conv2dGeometry& g) {
  const int64_t M = multiplier(g), K = g.K;
  const std::vector<T> taps = taps_by_channel(weight, g);
  // Gather: input pixel (h, w) received tap (r, s) from output (i, j) when
  // h = i*sh - ph + r*dh, i.e. i = (h + ph - r*dh) / sh if that divides exactly.
#pragma omp parallel for schedule(static)
  for (int64_t nh = 0; nh < g.N * g.H; ++nh) {
    const int64_t n = nh / g.H, h = nh % g.H;
    for (int64_t w = 0; w < g.W; ++w) {
      T* dx_pixel = grad_input + (nh * g.W + w) * g.C;
      std::fill(dx_pixel, dx_pixel + g.C, T(0));
      for (int64_t r = 0; r < g.R; ++r) {
        const int64_t i_scaled = h + g.pad_h - r * g.dilation_h;
        if (i_scaled < 0 || i_scaled % g.stride_h != 0 || i_scaled / g.stride_h >= g.Ho) continue;
        const int64_t i = i_scaled / g.stride_h;
        for (int64_t s = 0; s < g.S; ++s) {
          const int64_t j_scaled = w + g.pad_w - s * g.dilation_w;
          if (j_scaled < 0 || j_scaled % g.stride_w != 0 || j_scaled / g.stride_w >= g.Wo) continue;
          const int64_t j = j_scaled / g.stride_w;
          const T* dy_pixel = grad_output + ((n * g.Ho + i) * g.Wo + j) * K;
          const T* tap = taps.data() + (r * g.S + s) * K;
          if (M == 1) {
            for (int64_t c = 0; c < g.C; ++c) dx_pixel[c] += tap[c] * dy_pixel[c];
          } else {
            for (int64_t k = 0; k < K; ++k) dx_pixel[k / M] += tap[k] * dy_pixel[k];
          }
        }
      }
    }
  }
}

template <class T>
void backward_weight_nhwc(const T* grad_output, const T* x, T* grad_weight, const Conv2dGeometry& g) {
  const int64_t M = multiplier(g), K = g.K, taps = g.R * g.S, numel = taps * K;
  // Every image adds to every tap of every channel: each thread sums its rows into its
  // own (R*S, K) buffer; the buffers are added in thread order at the end.
  const int threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(omp_get_max_threads(), g.N * g.Ho)));
  std::vector<T> partial(static_cast<size_t>(threads * numel), T(0));
#pragma omp parallel num_threads(threads)
  {
    T* mine = partial.data() + omp_get_thread_num() * numel;
#pragma omp for schedule(static)
    for (int64_t ni = 0; ni < g.N * g.Ho; ++ni) {
      const int64_t n = ni / g.Ho, i = ni % g.Ho;
      for (int64_t j = 0; j < g.Wo; ++j) {
        const T* dy_pixel = grad_output + (ni * g.Wo + j) * K;
        for (int64_t r = 0; r < g.R; ++r) {
          const int64_t h = i * g.stride_h - g.pad_h + r * g.dilation_h;
          if (h < 0 || h >= g.H) continue;
          for (int64_t s = 0; s < g.S; ++s) {
            const int64_t w = j * g.stride_w - g.pad_w + s * g.dilation_w;
            if (w < 0 || w >= g.W) continue;
            const T* x_pixel = x + ((n * g.H + h) * g.W + w) * g.C;
            T* tap_sum = mine + (r * g.S + s) * K;
            if (M == 1) {
              for (int64_t k = 0; k < K; ++k) tap_sum[k] += dy_pixel[k] * x_pixel[k];
            } else {
              for (int64_t k = 0; k < K; ++k) tap_sum[k] += dy_pixel[k] * x_pixel[k / M];
            }
          }
        }
      }
    }
  }
  std::fill(grad_weight, grad_weight + numel, T(0));
  for (int t = 0; t < threads; ++t)
    for (int64_t tap = 0; tap < taps; ++tap)
      for (int64_t k = 0; k < K; ++k) grad_weight[k * taps + tap] += partial[t * numel + tap * K + k];
}

}  // namespace

template <class T>
void depthwise_conv2d_forward(const T* x, const T* weight, const T* bias, T* y, const Conv2dGeometry& g,
                              bool channels_last) {
  KILN_CHECK(g.depthwise(), "depthwise_conv2d_forward: groups = ", g.groups, " must equal C = ", g.C);
  channels_last ? forward_nhwc(x, weight, bias, y, g) : forward_nchw(x, weight, bias, y, g);
}

template <class T>
void depthwise_conv2d_backward_input(const T* grad_output, const T* weight, T* grad_input, const Conv2dGeometry& g,
                                     bool channels_last) {
  KILN_CHECK(g.depthwise(), "depthwise_conv2d_backward_input: groups = ", g.groups, " must equal C = ", g.C);
  channels_last ? backward_input_nhwc(grad_output, weight, grad_input, g)
                : backward_input_nchw(grad_output, weight, grad_input, g);
}

template <class T>
void depthwise_conv2d_backward_weight(const T* grad_output, const T* x, T* grad_weight, const Conv2dGeometry& g,
                                      bool channels_last) {
  KILN_CHECK(g.depthwise(), "depthwise_conv2d_backward_weight: groups = ", g.groups, " must equal C = ", g.C);
  channels_last ? backward_weight_nhwc(grad_output, x, grad_weight, g)
                : backward_weight_nchw(grad_output, x, grad_weight, g);
}

#define KILN_INSTANTIATE(T)                                                                                      \
  template void depthwise_conv2d_forward<T>(const T*, const T*, const T*, T*, const Conv2dGeometry&, bool);     \
  template void depthwise_conv2d_backward_input<T>(const T*, const T*, T*, const Conv2dGeometry&, bool);        \
  template void depthwise_conv2d_backward_weight<T>(const T*, const T*, T*, const Conv2dGeometry&, bool);
KILN_INSTANTIATE(float)
KILN_INSTANTIATE(double)
#undef KILN_INSTANTIATE

}  // namespace kiln::cpu
