// The fused augmentation kernel: u8 images -> augmented, normalized float batch.
//
//   In:   images u8 (N, C, H, W) nchw, C <= 4, on the GPU.
//   Out:  (N, C, S, S) f32 / f16 / bf16, nchw or nhwc.
//   Math: per output pixel (x, y) of image n, with the draws of image n
//         (engine/augment/draws.h, the same function the CPU calls):
//           v = bilinear(source, M_n (x + 0.5, y + 0.5))        (5x5 gaussian taps if blurred)
//           v = brightness, contrast (blend with the image's mean luma), saturation,
//               hue, grayscale, noise      (engine/augment/pixel.h, in that order)
//           out = erased ? 0 : v * scale_c - shift_c
//   Grid: one block per image. Thread 0 computes the image's draws into shared
//         memory; when contrast is on, the block first sums the luma of every
//         output pixel (block_reduce_sum, no atomics, same result every run), then
//         each thread writes pixels p = threadIdx.x, + blockDim.x, ... (all C
//         channels of a pixel together, as saturation and hue need RGB).
//   Memory: N*C*H*W bytes in (each source pixel is read by ~(S/H)^2 * 4 samples,
//         mostly from L1/L2), N*C*S*S*sizeof(out) bytes out. The per-pixel math is
//         a few dozen flops (25x more with blur), so the kernel is bound by the
//         output stores unless blur is on.
// Build note: CMakeLists compiles this file with -fmad=false as well, and the
// shared formulas use __fmul_rn, so no a*b+c is fused into an FMA that the
// host compiler would round differently (the parity test compares to 1e-4).
#include "engine/augment/augment.h"
#include "engine/cuda/context.h"
#include "engine/cuda/cuda_check.h"
#include "kernels/common.cuh"

namespace kiln::cuda {
namespace {

using augment::ImageDraws;

constexpr int kAugmentThreads = 256;  // a multiple of 32, as block_reduce_sum needs

template <class T>
__global__ void augment_kernel(const uint8_t* __restrict__ images, T* __restrict__ out, int C, int H, int W, int S,
                               augment::AugmentSpec spec, uint64_t seed, augment::Normalize norm, bool nhwc) {
  __shared__ ImageDraws draws;
  const int64_t n = blockIdx.x;
  if (threadIdx.x == 0) draws = augment::draw_image_params(spec, seed, n, H, W, S);
  __syncthreads();

  const uint8_t* image = images + n * C * H * W;
  const int pixels = S * S;
  float v[augment::kMaxChannels], result[augment::kMaxChannels];
  float mean_luma = 0.f;
  if (draws.contrast != 1.f) {  // uniform across the block: every thread takes this branch or none
    float partial = 0.f;
    for (int p = threadIdx.x; p < pixels; p += blockDim.x) {
      augment::geometry_pixel(image, C, H, W, draws, p % S, p / S, v);
      partial += augment::contrast_luma(v, C);
    }
    mean_luma = block_reduce_sum(partial) / static_cast<float>(pixels);
  }
  const uint64_t noise_seed = augment::noise_seed_of(seed);
  const int64_t pixels64 = pixels;
  for (int p = threadIdx.x; p < pixels; p += blockDim.x) {
    const int x = p % S, y = p / S;
    augment::geometry_pixel(image, C, H, W, draws, x, y, v);
    augment::colour_pixel(v, C, draws, mean_luma, norm, spec.noise_sigma, noise_seed, n, S, x, y, result);
    // Neighbouring threads hold neighbouring pixels: the stores of each channel
    // (nchw) or of each pixel's C values (nhwc) are coalesced.
    for (int c = 0; c < C; ++c) {
      const int64_t index = nhwc ? (n * pixels64 + p) * C + c : (n * C + c) * pixels64 + p;
      out[index] = from_float<T>(result[c]);
    }
  }
}

}  // namespace
}  // namespace kiln::cuda

// The entry point declared in engine/augment/augment.h (namespace augment::cuda).
namespace kiln::augment::cuda {

using kiln::cuda::Context;
using kiln::cuda::context_for;
using kiln::cuda::set_device;

void augment_forward(const Tensor& images_u8, const augment::AugmentSpec& spec, uint64_t seed,
                     const augment::Normalize& norm, const Tensor& out) {
  const int64_t batch = images_u8.shape()[0];
  const int C = static_cast<int>(images_u8.shape()[1]);
  const int H = static_cast<int>(images_u8.shape()[2]), W = static_cast<int>(images_u8.shape()[3]);
  const int S = static_cast<int>(out.shape()[2]);
  KILN_CHECK(images_u8.layout() == Layout::nchw && images_u8.device() == out.device() &&
                 out.shape() == Shape({batch, C, S, S}) && C <= augment::kMaxChannels,
             "augment_forward (cuda): expected nchw u8 images and an output (N, C, S, S) on the same GPU, got ",
             images_u8.describe(), " and ", out.describe());
  KILN_CHECK(batch <= 2147483647, "augment_forward (cuda): at most 2^31 - 1 images per batch, got ", batch);
  if (batch == 0) return;
  Context& ctx = context_for(images_u8);
  set_device(ctx);
  const bool nhwc = out.layout() == Layout::nhwc;
  KILN_DISPATCH_CUDA_FLOAT(out.dtype(), "augment_batch", {
    KILN_LAUNCH(static_cast<unsigned>(batch), kiln::cuda::kAugmentThreads, 0, ctx.stream(), kiln::cuda::augment_kernel<scalar_t>)(
        static_cast<const uint8_t*>(images_u8.raw_data()), static_cast<scalar_t*>(out.raw_data()), C, H, W, S, spec,
        seed, norm, nhwc);
  });
  KILN_CHECK_LAUNCH("augment_batch");
}

}  // namespace kiln::augment::cuda
