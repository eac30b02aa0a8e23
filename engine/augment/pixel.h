// The per-pixel math of the augmentation, shared by the CPU reference loops
// (augment_cpu.cpp) and the fused CUDA kernel (kernels/augment.cu). Both backends
// evaluate these same float formulas, so they agree to rounding of the few
// transcendental functions (expf, logf, cosf) that libm and CUDA round differently.
//
// Values stay in 0..255 "pixel units" until the last step, where
//   out = v * scale_c - shift_c,  scale_c = 1 / (255 std_c),  shift_c = mean_c / std_c
// is the plain normalisation ((v / 255) - mean) / std, rounded once, so the identity
// transform reproduces it bit for bit.
//
// Order for one output pixel (x, y) of image b (docs/augment.md has each formula):
//   1. geometry + blur: bilinear samples of the source through the image's matrix
//      (5x5 gaussian taps in output pixels when blur_sigma > 0)
//   2. brightness   3. contrast (needs the image's mean luma after step 2)
//   4. saturation   5. hue   6. grayscale   7. noise   8. normalize   9. erase
#pragma once
#include <cmath>
#include <cstdint>

#include "engine/augment/draws.h"

namespace kiln::augment {

constexpr int kMaxChannels = 4;

struct Normalize {
  float scale[kMaxChannels];  // 1 / (255 std_c)
  float shift[kMaxChannels];  // mean_c / std_c
};

KILN_HOST_DEVICE inline float clamp255(float v) { return v < 0.f ? 0.f : (v > 255.f ? 255.f : v); }
KILN_HOST_DEVICE inline float lerp_rn(float a, float b, float t) { return a + mul_rn(t, b - a); }

// torchvision's _blend(a, b, ratio) = clamp(ratio * a + (1 - ratio) * b).
KILN_HOST_DEVICE inline float blend(float a, float b, float ratio) {
  return clamp255(mul_rn(ratio, a) + mul_rn(1.f - ratio, b));
}

// ITU-R 601 luma, as torchvision's rgb_to_grayscale.
KILN_HOST_DEVICE inline float luma(const float* rgb) {
  return mul_rn(0.299f, rgb[0]) + mul_rn(0.587f, rgb[1]) + mul_rn(0.114f, rgb[2]);
}

// One channel plane (H, W) read at continuous coordinates (xs, ys), pixel centres
// at integer + 0.5. Inside the image the four nearest pixels are blended (edge
// pixels repeated at the half-pixel border); outside, the value is 0 (black), as
// torchvision fills rotated and translated images. At integer positions the
// blend weights are exactly 0 and 1, so the identity map copies pixels exactly.
KILN_HOST_DEVICE inline float sample_bilinear(const uint8_t* plane, int H, int W, float xs, float ys) {
  const float x = xs - 0.5f, y = ys - 0.5f;
  if (!(x >= -0.5f && x <= static_cast<float>(W) - 0.5f && y >= -0.5f && y <= static_cast<float>(H) - 0.5f))
    return 0.f;
  const float x_floor = floorf(x), y_floor = floorf(y);
  const float fx = x - x_floor, fy = y - y_floor;
  int x0 = static_cast<int>(x_floor), y0 = static_cast<int>(y_floor);
  const int x1 = x0 + 1 < W ? x0 + 1 : W - 1, y1 = y0 + 1 < H ? y0 + 1 : H - 1;
  x0 = x0 < 0 ? 0 : x0;
  y0 = y0 < 0 ? 0 : y0;
  const float top = lerp_rn(plane[y0 * W + x0], plane[y0 * W + x1], fx);
  const float bottom = lerp_rn(plane[y1 * W + x0], plane[y1 * W + x1], fx);
  return lerp_rn(top, bottom, fy);
}

// Step 1-2: the C channel values (pixel units) of output pixel (x, y) after the
// geometry, the blur and the brightness. image: u8 (C, H, W).
KILN_HOST_DEVICE inline void geometry_pixel(const uint8_t* image, int C, int H, int W, const ImageDraws& d, int x,
                                            int y, float* v) {
  const float* m = d.matrix;
  for (int c = 0; c < C; ++c) v[c] = 0.f;
  const int radius = d.blur_sigma > 0.05f ? 2 : 0;  // below 0.05 px the outer taps weigh < e^-800
  float total = 0.f;
  for (int dy = -radius; dy <= radius; ++dy)
    for (int dx = -radius; dx <= radius; ++dx) {
      const float weight =
          radius == 0 ? 1.f : expf(-static_cast<float>(dx * dx + dy * dy) / (2.f * d.blur_sigma * d.blur_sigma));
      const float X = static_cast<float>(x + dx) + 0.5f, Y = static_cast<float>(y + dy) + 0.5f;
      const float xs = mul_rn(m[0], X) + mul_rn(m[1], Y) + m[2];
      const float ys = mul_rn(m[3], X) + mul_rn(m[4], Y) + m[5];
      for (int c = 0; c < C; ++c) v[c] += mul_rn(weight, sample_bilinear(image + c * H * W, H, W, xs, ys));
      total += weight;
    }
  for (int c = 0; c < C; ++c) {
    if (radius > 0) v[c] = v[c] / total;
    if (d.brightness != 1.f) v[c] = clamp255(mul_rn(v[c], d.brightness));  // brightness blends with black
  }
}

// The mean of this value over the output image is what contrast blends with.
KILN_HOST_DEVICE inline float contrast_luma(const float* v, int C) { return C == 3 ? luma(v) : v[0]; }

// Hue rotation through HSV (torchvision's _rgb2hsv / _hsv2rgb; scale-free, so it
// works in pixel units). shift is in turns: 0.5 maps red to cyan.
KILN_HOST_DEVICE inline void rotate_hue(float* rgb, float shift) {
  const float r = rgb[0], g = rgb[1], b = rgb[2];
  const float maxc = fmaxf(r, fmaxf(g, b)), minc = fminf(r, fminf(g, b));
  const float chroma = maxc - minc;
  if (chroma == 0.f) return;  // a gray pixel has no hue to rotate
  const float s = chroma / maxc;
  const float rc = (maxc - r) / chroma, gc = (maxc - g) / chroma, bc = (maxc - b) / chroma;
  float h = maxc == r ? bc - gc : (maxc == g ? 2.f + rc - bc : 4.f + gc - rc);
  h = h / 6.f + shift;
  h = h - floorf(h);  // wrap into [0, 1)
  const float h6 = h * 6.f;
  const float sector_f = floorf(h6), f = h6 - sector_f;
  const int sector = static_cast<int>(sector_f) % 6;
  const float v = maxc, p = mul_rn(v, 1.f - s), q = mul_rn(v, 1.f - mul_rn(s, f)),
              t = mul_rn(v, 1.f - mul_rn(s, 1.f - f));
  const float table[6][3] = {{v, t, p}, {q, v, p}, {p, v, t}, {p, q, v}, {t, p, v}, {v, p, q}};
  for (int c = 0; c < 3; ++c) rgb[c] = clamp255(table[sector][c]);
}

// Steps 3-9 for output pixel (x, y) of image `image` (its index in the batch),
// given its values v from geometry_pixel and the image's mean luma. Writes the
// normalized outputs to out[0..C).
KILN_HOST_DEVICE inline void colour_pixel(float* v, int C, const ImageDraws& d, float mean_luma,
                                          const Normalize& norm, float noise_sigma, uint64_t noise_seed,
                                          int64_t image, int S, int x, int y, float* out) {
  if (d.contrast != 1.f)
    for (int c = 0; c < C; ++c) v[c] = blend(v[c], mean_luma, d.contrast);
  if (C == 3) {
    if (d.saturation != 1.f) {
      const float gray = luma(v);
      for (int c = 0; c < 3; ++c) v[c] = blend(v[c], gray, d.saturation);
    }
    if (d.hue != 0.f) rotate_hue(v, d.hue);
    if (d.gray) v[0] = v[1] = v[2] = luma(v);
  }
  const bool erased = x >= d.erase_x0 && x < d.erase_x1 && y >= d.erase_y0 && y < d.erase_y1;
  for (int c = 0; c < C; ++c) {
    if (noise_sigma > 0.f) {
      // Box-Muller from two counter draws per element; index = the output element.
      const uint64_t index = static_cast<uint64_t>(((image * C + c) * S + y) * S + x);
      const float u1 = uniform01(noise_seed, 2 * index), u2 = uniform01(noise_seed, 2 * index + 1);
      const float z = sqrtf(-2.f * logf(1.f - u1)) * cosf(6.28318530718f * u2);
      v[c] = clamp255(v[c] + mul_rn(255.f * noise_sigma, z));
    }
    // Erasing happens after normalization and writes 0, i.e. the dataset mean colour.
    out[c] = erased ? 0.f : mul_rn(v[c], norm.scale[c]) - norm.shift[c];
  }
}

// The noise stream is separate from the per-image draws (it needs one number per
// element, not a fixed count per image).
KILN_HOST_DEVICE inline uint64_t noise_seed_of(uint64_t seed) { return splitmix64(seed ^ 0x6e6f697365ull); }

}  // namespace kiln::augment
