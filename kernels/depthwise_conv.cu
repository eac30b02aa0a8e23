// Depthwise convolution on the GPU: kiln's own kernels, raced against cuDNN's grouped
// convolution by the policy in engine/ops/depthwise_race.h (docs/cuda.md).
//
// Depthwise: groups = C, channel multiplier M = K/C, output channel k reads input
// channel c = k/M, weight (K, 1, R, S) (the same bytes in nchw and nhwc):
//
//   forward          y[n,k,i,j]  = sum_{r,s} w[k,r,s] * x[n, k/M, i*sh-ph+r*dh, j*sw-pw+s*dw]
//   backward input   dx[n,c,h,w] = sum_{m<M} sum_{r,s} w[cM+m,r,s] * dy[n,cM+m,i,j]
//                        over the (r, s) with i = (h+ph-r*dh)/sh and j = (w+pw-s*dw)/sw whole and in range
//   backward weight  dw[k,r,s]   = sum_{n,i,j} dy[n,k,i,j] * x[n, k/M, i*sh-ph+r*dh, j*sw-pw+s*dw]
//
// (x is zero outside the image.) Each output costs R*S multiply-adds, so the work is
// tiny next to the data: with b = sizeof(T) (4 for f32, 2 for f16/bf16),
//   forward          reads b*(N*C*H*W + K*R*S), writes b*N*K*Ho*Wo; 2*N*K*Ho*Wo*R*S flops
//   backward input   reads b*(N*K*Ho*Wo + K*R*S), writes b*N*C*H*W; the same flops
//   backward weight  reads b*(N*K*Ho*Wo + N*C*H*W), writes b*K*R*S (+ 4 bytes per
//                    partial sum, below); the same flops
// That is 2*R*S/(2b) = 4.5 flops per byte for a 3x3 in 16 bits: memory-bound by far
// (an H100 needs ~300 flops per byte to be compute-bound), so the kernels are about
// reading each element once with coalesced accesses, in f32 arithmetic:
//
//   forward, backward input: one thread per output element (per dx element for the
//     backward, which gathers instead of scattering, so no atomics), threads in memory
//     order: along j in nchw, along the channel in nhwc. The R*S neighbours a thread
//     reads are the neighbours of its neighbours' too, so they come from L1/L2.
//   backward weight: a sum over N*Ho*Wo for each of the K*R*S weights. Pass 1 splits
//     the pixels into chunks; a block sums one chunk for one weight tap (nchw: one
//     (k, tap), its threads along the pixels; nhwc: 32 channels x 8 pixel lanes, so a
//     warp reads 32 neighbouring channels) and writes an f32 partial. Pass 2 adds the
//     chunks in order per weight. Deterministic: no atomics, fixed summation order
//     (the chunking depends on the shapes only). The grid follows the work: chunks
//     of at least 16 pixels per summing thread, so a small input gets a few blocks,
//     up to ~8192 blocks, after which the chunks grow (depthwise_backward_weight_grid).
//     Partials: chunks*K*R*S f32 in the context's workspace.
#include <algorithm>

#include "engine/cuda/context.h"
#include "engine/cuda/cuda_check.h"
#include "engine/ops/conv.h"
#include "kernels/common.cuh"

namespace kiln::cuda {

namespace {

// KILN_GRID_STRIDE_LOOP in the kernel's index type.
#define DEPTHWISE_LOOP(i, n) \
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); i += static_cast<Index>(blockDim.x) * gridDim.x)

// The sizes the kernels need, passed by value (parameter space, no device copy), in
// the index type of the kernel: int32 whenever every tensor has < 2^31 elements
// (64-bit division and modulo are emulated on the GPU and cost more than the loads).
template <class Index>
struct DepthwiseShape {
  Index N, C, H, W, K, R, S, Ho, Wo, M;
  Index stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;

  template <class Other>
  DepthwiseShape<Other> as() const {
    return {static_cast<Other>(N),          static_cast<Other>(C),        static_cast<Other>(H),
            static_cast<Other>(W),          static_cast<Other>(K),        static_cast<Other>(R),
            static_cast<Other>(S),          static_cast<Other>(Ho),       static_cast<Other>(Wo),
            static_cast<Other>(M),          static_cast<Other>(stride_h), static_cast<Other>(stride_w),
            static_cast<Other>(pad_h),      static_cast<Other>(pad_w),    static_cast<Other>(dilation_h),
            static_cast<Other>(dilation_w)};
  }
  // Whether int32 indices reach every element of x, y and the pixel loops.
  bool fits_int32() const {
    const int64_t limit = int64_t(1) << 30;  // headroom: the loop index may step past the end once
    return int64_t(N) * C * H * W < limit && int64_t(N) * K * Ho * Wo < limit;
  }
};

DepthwiseShape<int64_t> depthwise_shape(const char* op, const Shape& x_shape, const Shape& weight_shape,
                                        const Conv2dParams& params) {
  const Conv2dGeometry g = conv2d_geometry(op, x_shape, weight_shape, params);
  KILN_CHECK(g.depthwise(), op, ": kiln's depthwise kernels need groups = C > 1, got groups = ", g.groups,
             " for x ", x_shape);
  return {g.N,  g.C,       g.H,        g.W,        g.K,     g.R,     g.S,          g.Ho,
          g.Wo, g.K / g.C, g.stride_h, g.stride_w, g.pad_h, g.pad_w, g.dilation_h, g.dilation_w};
}

// Offset of (n, c, h, w) in a tensor of C channels and H x W pixels, in either layout.
template <bool kChannelsLast, class Index>
__device__ __forceinline__ Index offset_of(Index n, Index c, Index h, Index w, Index C, Index H, Index W) {
  return kChannelsLast ? ((n * H + h) * W + w) * C + c : ((n * C + c) * H + h) * W + w;
}

// Splits a memory offset of a (N, C, H, W) tensor back into its coordinates.
template <bool kChannelsLast, class Index>
__device__ __forceinline__ void coordinates_of(Index index, Index C, Index H, Index W, Index& n, Index& c, Index& h,
                                               Index& w) {
  if (kChannelsLast) {
    c = index % C;
    index /= C;
    w = index % W;
    index /= W;
    h = index % H;
    n = index / H;
  } else {
    w = index % W;
    index /= W;
    h = index % H;
    index /= H;
    c = index % C;
    n = index / C;
  }
}

template <class T, bool kChannelsLast, class Index>
__global__ void depthwise_forward_kernel(const T* __restrict__ x, const T* __restrict__ weight, T* __restrict__ y,
                                         DepthwiseShape<Index> d) {
  const Index total = d.N * d.K * d.Ho * d.Wo;
  DEPTHWISE_LOOP(index, total) {
    Index n, k, i, j;
    coordinates_of<kChannelsLast>(index, d.K, d.Ho, d.Wo, n, k, i, j);
    const Index c = k / d.M;
    const T* taps = weight + k * d.R * d.S;
    float acc = 0.0f;
    for (Index r = 0; r < d.R; ++r) {
      const Index h = i * d.stride_h - d.pad_h + r * d.dilation_h;
      if (h < 0 || h >= d.H) continue;
      for (Index s = 0; s < d.S; ++s) {
        const Index w = j * d.stride_w - d.pad_w + s * d.dilation_w;
        if (w < 0 || w >= d.W) continue;
        acc += to_float(taps[r * d.S + s]) * to_float(x[offset_of<kChannelsLast>(n, c, h, w, d.C, d.H, d.W)]);
      }
    }
    y[index] = from_float<T>(acc);
  }
}

template <class T, bool kChannelsLast, class Index>
__global__ void depthwise_backward_input_kernel(const T* __restrict__ grad_output, const T* __restrict__ weight,
                                                T* __restrict__ grad_input, DepthwiseShape<Index> d) {
  const Index total = d.N * d.C * d.H * d.W;
  DEPTHWISE_LOOP(index, total) {
    Index n, c, h, w;
    coordinates_of<kChannelsLast>(index, d.C, d.H, d.W, n, c, h, w);
    float acc = 0.0f;
    for (Index m = 0; m < d.M; ++m) {
      const Index k = c * d.M + m;
      const T* taps = weight + k * d.R * d.S;
      for (Index r = 0; r < d.R; ++r) {
        // Output row i used input row h through tap r when i*sh - ph + r*dh = h.
        const Index i_scaled = h + d.pad_h - r * d.dilation_h;
        if (i_scaled < 0 || i_scaled % d.stride_h != 0) continue;
        const Index i = i_scaled / d.stride_h;
        if (i >= d.Ho) continue;
        for (Index s = 0; s < d.S; ++s) {
          const Index j_scaled = w + d.pad_w - s * d.dilation_w;
          if (j_scaled < 0 || j_scaled % d.stride_w != 0) continue;
          const Index j = j_scaled / d.stride_w;
          if (j >= d.Wo) continue;
          acc += to_float(taps[r * d.S + s]) *
                 to_float(grad_output[offset_of<kChannelsLast>(n, k, i, j, d.K, d.Ho, d.Wo)]);
        }
      }
    }
    grad_input[index] = from_float<T>(acc);
  }
}

// Pass 1, nchw: block (k*R*S + tap, chunk) sums dy * x over its chunk of the N*Ho*Wo
// output pixels; partial[chunk][k*R*S + tap].
template <class T, class Index>
__global__ void depthwise_weight_partial_nchw(const T* __restrict__ grad_output, const T* __restrict__ x,
                                              float* __restrict__ partial, DepthwiseShape<Index> d,
                                              Index pixels_per_chunk) {
  const Index taps = d.R * d.S, weight_index = blockIdx.x;
  const Index k = weight_index / taps, tap = weight_index % taps, r = tap / d.S, s = tap % d.S, c = k / d.M;
  const Index pixels = d.N * d.Ho * d.Wo;
  const Index begin = blockIdx.y * pixels_per_chunk, end = min(begin + pixels_per_chunk, pixels);
  float acc = 0.0f;
  for (Index p = begin + threadIdx.x; p < end; p += blockDim.x) {
    const Index j = p % d.Wo, i = (p / d.Wo) % d.Ho, n = p / (d.Wo * d.Ho);
    const Index h = i * d.stride_h - d.pad_h + r * d.dilation_h;
    const Index w = j * d.stride_w - d.pad_w + s * d.dilation_w;
    if (h < 0 || h >= d.H || w < 0 || w >= d.W) continue;
    acc += to_float(grad_output[((n * d.K + k) * d.Ho + i) * d.Wo + j]) *
           to_float(x[((n * d.C + c) * d.H + h) * d.W + w]);
  }
  acc = block_reduce_sum(acc);  // every thread takes part: no early return above
  if (threadIdx.x == 0) partial[blockIdx.y * d.K * taps + weight_index] = acc;
}

// Pass 1, nhwc: block (channel tile of 32, chunk, tap); thread (x = channel in the
// tile, y = one of 8 pixel lanes). A warp reads 32 neighbouring channels of one pixel.
constexpr int kChannelTile = 32, kPixelLanes = 8;

template <class T, class Index>
__global__ void depthwise_weight_partial_nhwc(const T* __restrict__ grad_output, const T* __restrict__ x,
                                              float* __restrict__ partial, DepthwiseShape<Index> d,
                                              Index pixels_per_chunk) {
  __shared__ float lane_sums[kPixelLanes][kChannelTile + 1];  // +1: no bank conflicts on the column read
  const Index taps = d.R * d.S, tap = blockIdx.z, r = tap / d.S, s = tap % d.S;
  const Index k = static_cast<Index>(blockIdx.x) * kChannelTile + threadIdx.x, c = k / d.M;
  const Index pixels = d.N * d.Ho * d.Wo;
  const Index begin = blockIdx.y * pixels_per_chunk, end = min(begin + pixels_per_chunk, pixels);
  float acc = 0.0f;
  if (k < d.K) {
    for (Index p = begin + threadIdx.y; p < end; p += kPixelLanes) {
      const Index j = p % d.Wo, i = (p / d.Wo) % d.Ho, n = p / (d.Wo * d.Ho);
      const Index h = i * d.stride_h - d.pad_h + r * d.dilation_h;
      const Index w = j * d.stride_w - d.pad_w + s * d.dilation_w;
      if (h < 0 || h >= d.H || w < 0 || w >= d.W) continue;
      acc += to_float(grad_output[p * d.K + k]) * to_float(x[((n * d.H + h) * d.W + w) * d.C + c]);
    }
  }
  lane_sums[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && k < d.K) {
    float sum = 0.0f;
    for (int lane = 0; lane < kPixelLanes; ++lane) sum += lane_sums[lane][threadIdx.x];
    partial[blockIdx.y * d.K * taps + k * taps + tap] = sum;
  }
}

// Pass 1's grid (depthwise_backward_weight_grid): every thread sums at least this
// many pixels of its chunk, and the grid stops growing at about this many blocks
// (~60 per SM of a 132-SM H100, enough to hide latency); larger inputs get larger chunks.
constexpr int64_t kWeightPixelsPerThread = 16;
constexpr int64_t kWeightMaxBlocks = 8192;

// Pass 2: grad_weight[e] = sum over chunks of partial[chunk][e], in chunk order.
template <class T>
__global__ void depthwise_weight_finish(const float* __restrict__ partial, T* __restrict__ grad_weight,
                                        int64_t weights, int64_t chunks) {
  KILN_GRID_STRIDE_LOOP(e, weights) {
    float sum = 0.0f;
    for (int64_t chunk = 0; chunk < chunks; ++chunk) sum += partial[chunk * weights + e];
    grad_weight[e] = from_float<T>(sum);  // overwrite: a fresh gradient
  }
}

void check_operands(const char* op, const Tensor& a, const Tensor& b, const Tensor& out) {
  KILN_CHECK(a.layout() == b.layout() && a.layout() == out.layout(), op, ": one layout expected, got ", a.describe(),
             ", ", b.describe(), " and ", out.describe());
  KILN_CHECK(a.dtype() == b.dtype() && a.dtype() == out.dtype(), op, ": one dtype expected, got ", a.describe(), ", ",
             b.describe(), " and ", out.describe());
}

// Calls launch(shape) with the shape in int32 when every index fits, else in int64.
template <class Launch>
void with_index_type(const DepthwiseShape<int64_t>& d, Launch&& launch) {
  if (d.fits_int32()) {
    launch(d.as<int32_t>());
  } else {
    launch(d);
  }
}

}  // namespace

void depthwise_conv2d_forward(const Tensor& x, const Tensor& weight, const Tensor& y, const Conv2dParams& params) {
  const char* op = "depthwise_conv2d_forward (cuda)";
  check_operands(op, x, weight, y);
  const DepthwiseShape<int64_t> shape = depthwise_shape(op, x.shape(), weight.shape(), params);
  Context& ctx = context_for(x);
  set_device(ctx);
  const int64_t total = y.numel();
  if (total == 0) return;
  const bool channels_last = x.layout() == Layout::nhwc;
  KILN_DISPATCH_CUDA_FLOAT(x.dtype(), op, {
    const auto* x_data = static_cast<const scalar_t*>(x.raw_data());
    const auto* w_data = static_cast<const scalar_t*>(weight.raw_data());
    auto* y_data = static_cast<scalar_t*>(y.raw_data());
    with_index_type(shape, [&](auto d) {
      using Index = decltype(d.N);
      if (channels_last)
        KILN_LAUNCH(grid_size(total), kThreads, 0, ctx.stream(), depthwise_forward_kernel<scalar_t, true, Index>)(x_data, w_data, y_data, d);
      else
        KILN_LAUNCH(grid_size(total), kThreads, 0, ctx.stream(), depthwise_forward_kernel<scalar_t, false, Index>)(x_data, w_data, y_data, d);
    });
  });
  KILN_CHECK_LAUNCH(op);
}

void depthwise_conv2d_backward_input(const Tensor& grad_output, const Tensor& weight, const Tensor& grad_input,
                                     const Conv2dParams& params) {
  const char* op = "depthwise_conv2d_backward_input (cuda)";
  check_operands(op, grad_output, weight, grad_input);
  const DepthwiseShape<int64_t> shape = depthwise_shape(op, grad_input.shape(), weight.shape(), params);
  Context& ctx = context_for(grad_output);
  set_device(ctx);
  const int64_t total = grad_input.numel();
  if (total == 0) return;
  const bool channels_last = grad_output.layout() == Layout::nhwc;
  KILN_DISPATCH_CUDA_FLOAT(grad_output.dtype(), op, {
    const auto* dy = static_cast<const scalar_t*>(grad_output.raw_data());
    const auto* w_data = static_cast<const scalar_t*>(weight.raw_data());
    auto* dx = static_cast<scalar_t*>(grad_input.raw_data());
    with_index_type(shape, [&](auto d) {
      using Index = decltype(d.N);
      if (channels_last)
        KILN_LAUNCH(grid_size(total), kThreads, 0, ctx.stream(), depthwise_backward_input_kernel<scalar_t, true, Index>)(dy, w_data, dx, d);
      else
        KILN_LAUNCH(grid_size(total), kThreads, 0, ctx.stream(), depthwise_backward_input_kernel<scalar_t, false, Index>)(dy, w_data, dx, d);
    });
  });
  KILN_CHECK_LAUNCH(op);
}

DepthwiseWeightGrid depthwise_backward_weight_grid(const Shape& x_shape, const Shape& weight_shape,
                                                  const Conv2dParams& params, bool channels_last) {
  const DepthwiseShape<int64_t> shape =
      depthwise_shape("depthwise_conv2d_backward_weight (cuda)", x_shape, weight_shape, params);
  DepthwiseWeightGrid grid;
  const int64_t taps = shape.R * shape.S, weights = shape.K * taps;
  grid.pixels = shape.N * shape.Ho * shape.Wo;
  grid.block_threads = channels_last ? kChannelTile * kPixelLanes : kThreads;
  const int64_t channel_tiles = (shape.K + kChannelTile - 1) / kChannelTile;
  grid.blocks_per_chunk = channels_last ? channel_tiles * taps : weights;
  // The threads of a block that share its chunk's pixels: all 256 in nchw, the 8
  // pixel lanes in nhwc (each lane thread has its own channel).
  const int64_t pixel_lanes = channels_last ? kPixelLanes : kThreads;
  // As many chunks as give every summing thread at least kWeightPixelsPerThread
  // pixels, but no more than fit in about kWeightMaxBlocks blocks (past that the
  // chunks grow instead) or the grid's y limit. An empty batch has no chunk: pass 2
  // then writes zeros.
  const int64_t min_chunk = pixel_lanes * kWeightPixelsPerThread;
  const int64_t max_chunks = std::min<int64_t>(65535, std::max<int64_t>(1, kWeightMaxBlocks / grid.blocks_per_chunk));
  grid.chunks = std::min((grid.pixels + min_chunk - 1) / min_chunk, max_chunks);
  if (grid.chunks > 0) {
    grid.pixels_per_chunk = (grid.pixels + grid.chunks - 1) / grid.chunks;
    grid.chunks = (grid.pixels + grid.pixels_per_chunk - 1) / grid.pixels_per_chunk;  // no empty chunk at the end
  }
  grid.blocks = grid.chunks * grid.blocks_per_chunk;
  return grid;
}

void depthwise_conv2d_backward_weight(const Tensor& grad_output, const Tensor& x, const Tensor& grad_weight,
                                      const Conv2dParams& params) {
  const char* op = "depthwise_conv2d_backward_weight (cuda)";
  check_operands(op, grad_output, x, grad_weight);
  const DepthwiseShape<int64_t> shape = depthwise_shape(op, x.shape(), grad_weight.shape(), params);
  Context& ctx = context_for(x);
  set_device(ctx);
  const int64_t taps = shape.R * shape.S, weights = shape.K * taps;
  KILN_CHECK(weights <= 2147483647LL && taps <= 65535, op, ": ", weights, " weights (", taps,
             " taps) exceed the grid limits");
  const bool channels_last = x.layout() == Layout::nhwc;
  const int64_t channel_tiles = (shape.K + kChannelTile - 1) / kChannelTile;
  const DepthwiseWeightGrid plan = depthwise_backward_weight_grid(x.shape(), grad_weight.shape(), params, channels_last);
  const int64_t chunks = plan.chunks, pixels_per_chunk = plan.pixels_per_chunk;
  auto* partial = static_cast<float*>(
      ctx.workspace(static_cast<size_t>(std::max<int64_t>(1, chunks * weights)) * sizeof(float)));
  KILN_DISPATCH_CUDA_FLOAT(x.dtype(), op, {
    const auto* dy = static_cast<const scalar_t*>(grad_output.raw_data());
    const auto* x_data = static_cast<const scalar_t*>(x.raw_data());
    if (chunks > 0) {
      with_index_type(shape, [&](auto d) {
        using Index = decltype(d.N);
        if (channels_last) {
          const dim3 grid(static_cast<unsigned>(channel_tiles), static_cast<unsigned>(chunks),
                          static_cast<unsigned>(taps));
          const dim3 block(kChannelTile, kPixelLanes);
          KILN_LAUNCH(grid, block, 0, ctx.stream(), depthwise_weight_partial_nhwc<scalar_t, Index>)(dy, x_data, partial, d, static_cast<Index>(pixels_per_chunk));
        } else {
          const dim3 grid(static_cast<unsigned>(weights), static_cast<unsigned>(chunks));
          KILN_LAUNCH(grid, kThreads, 0, ctx.stream(), depthwise_weight_partial_nchw<scalar_t, Index>)(dy, x_data, partial, d, static_cast<Index>(pixels_per_chunk));
        }
      });
      KILN_CHECK_LAUNCH(op);
    }
    KILN_LAUNCH(grid_size(weights), kThreads, 0, ctx.stream(), depthwise_weight_finish<scalar_t>)(
        partial, static_cast<scalar_t*>(grad_weight.raw_data()), weights, chunks);
  });
  KILN_CHECK_LAUNCH(op);
}

}  // namespace kiln::cuda
