// The CPU reference of augment_batch: plain loops over images and output pixels
// that call the per-pixel formulas of pixel.h. One image at a time:
//   pass 1 (only when the image's contrast factor is not 1): the mean luma of the
//          image after geometry and brightness, which contrast blends with;
//   pass 2: every output pixel, all channels at once (saturation and hue need RGB
//          together), stored in the output's dtype and layout.
// Images are independent, so the image loop is an OpenMP parallel loop.
#include <vector>

#include "engine/augment/augment.h"
#include "engine/core/check.h"

namespace kiln::augment::cpu {
namespace {

// Stores one value in the output's dtype: f16/bf16 are storage types on the CPU,
// rounded to nearest even exactly as CUDA's __float2half_rn / __float2bfloat16_rn.
void store(void* base, DType dtype, int64_t index, float value) {
  switch (dtype) {
    case DType::f32: static_cast<float*>(base)[index] = value; break;
    case DType::f16: static_cast<uint16_t*>(base)[index] = float_to_f16_bits(value); break;
    case DType::bf16: static_cast<uint16_t*>(base)[index] = float_to_bf16_bits(value); break;
    default: KILN_FAIL("augment_batch: cannot store dtype ", dtype_name(dtype));
  }
}

}  // namespace

void augment_forward(const Tensor& images_u8, const std::vector<ImageDraws>& draws, float noise_sigma,
                     uint64_t seed, const Normalize& norm, const Tensor& out) {
  const int64_t batch = images_u8.shape()[0];
  const int C = static_cast<int>(images_u8.shape()[1]);
  const int H = static_cast<int>(images_u8.shape()[2]), W = static_cast<int>(images_u8.shape()[3]);
  const int S = static_cast<int>(out.shape()[2]);
  KILN_CHECK(images_u8.layout() == Layout::nchw && static_cast<int64_t>(draws.size()) == batch &&
                 out.shape() == Shape({batch, C, S, S}) && !out.device().is_cuda(),
             "augment_forward (cpu): expected nchw u8 images, one draw per image and an output (N, C, S, S) on the "
             "cpu; got ", images_u8.describe(), ", ", draws.size(), " draws, ", out.describe());
  const uint8_t* src = images_u8.data<uint8_t>();
  void* dst = out.raw_data();
  const bool nhwc = out.layout() == Layout::nhwc;
  const uint64_t noise_seed = noise_seed_of(seed);
  const int64_t pixels = static_cast<int64_t>(S) * S;

#pragma omp parallel for schedule(dynamic)
  for (int64_t n = 0; n < batch; ++n) {
    const uint8_t* image = src + n * C * H * W;
    const ImageDraws& d = draws[n];
    float v[kMaxChannels], result[kMaxChannels];
    float mean_luma = 0.f;
    if (d.contrast != 1.f) {
      double sum = 0;  // the GPU sums in a tree in f32: the two agree to ~1e-6 relative
      for (int y = 0; y < S; ++y)
        for (int x = 0; x < S; ++x) {
          geometry_pixel(image, C, H, W, d, x, y, v);
          sum += contrast_luma(v, C);
        }
      mean_luma = static_cast<float>(sum / static_cast<double>(pixels));
    }
    for (int y = 0; y < S; ++y)
      for (int x = 0; x < S; ++x) {
        geometry_pixel(image, C, H, W, d, x, y, v);
        colour_pixel(v, C, d, mean_luma, norm, noise_sigma, noise_seed, n, S, x, y, result);
        const int64_t pixel = static_cast<int64_t>(y) * S + x;
        for (int c = 0; c < C; ++c) {
          const int64_t index = nhwc ? (n * pixels + pixel) * C + c : (n * C + c) * pixels + pixel;
          store(dst, out.dtype(), index, result[c]);
        }
      }
  }
}

}  // namespace kiln::augment::cpu
