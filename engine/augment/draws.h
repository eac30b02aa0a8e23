// The per-image random draws of the augmentation, computed by the same function on
// the host (CPU reference) and on the device (the fused kernel calls it once per
// image, from one thread, into shared memory).
//
// Draw scheme: every random number is uniform01(seed, image * kDrawsPerImage + slot)
// (engine/core/rng.h), with one fixed slot per use (DrawSlot below). An image's
// draws therefore depend only on (seed, image index, spec), never on the batch
// size, the backend or on which other transforms are on. Turning a transform off
// leaves the others' draws unchanged, which makes previews comparable.
//
// The geometry is folded into one 2x3 matrix M that maps an output pixel centre
// (x + 0.5, y + 0.5) to continuous source coordinates; the sampler then reads the
// source bilinearly at (xs - 0.5, ys - 0.5) (pixel centres sit at integer + 0.5).
#pragma once
#include <cmath>
#include <cstdint>

#include "engine/augment/spec.h"
#include "engine/core/rng.h"

namespace kiln::augment {

constexpr int kCropAttempts = 10;  // torchvision RandomResizedCrop tries 10 rectangles
enum DrawSlot : int {
  kSlotCrop = 0,  // 4 draws per attempt: area, log-ratio, x, y
  kSlotZoom = kSlotCrop + 4 * kCropAttempts,
  kSlotHflip, kSlotVflip, kSlotRotate, kSlotTranslateX, kSlotTranslateY,
  kSlotBrightness, kSlotContrast, kSlotSaturation, kSlotHue, kSlotGray, kSlotBlur,
  kSlotErase, kSlotEraseArea, kSlotEraseRatio, kSlotEraseX, kSlotEraseY,
  kSlotCount
};
constexpr int kDrawsPerImage = 64;
static_assert(kSlotCount <= kDrawsPerImage, "more draw slots than kDrawsPerImage reserves");

// Plain aggregate (no default member initialisers) so that the kernel can hold it
// in __shared__ memory. Identity values: brightness = contrast = saturation = 1.
struct ImageDraws {
  float matrix[6];  // xs = m0 x' + m1 y' + m2,  ys = m3 x' + m4 y' + m5,  (x', y') = pixel centre
  float brightness, contrast, saturation, hue;  // factors, and hue shift in turns
  float blur_sigma;                             // 0: no blur
  int gray;                                     // 1: replace RGB by luma
  int erase_x0, erase_y0, erase_x1, erase_y1;   // erased output rectangle [x0, x1) x [y0, y1); empty if x0 == x1
};

// Keeps nvcc from fusing a * b + c into one FMA: the host compiler rounds twice,
// and the parity test wants both sides to evaluate the same rounded formula.
KILN_HOST_DEVICE inline float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}

// exp and log of the crop and erase ratios, computed in double and rounded to float.
// These results decide discrete things: whether a crop attempt fits the image, and the
// rounded size of an erase rectangle. CUDA's expf and logf are up to 2 ulp from
// glibc's, so near a boundary the GPU would pick another crop than the CPU (the
// emulator cannot show it: it runs glibc's). In double the two libraries differ by at
// most an ulp of a double, which the rounding to float hides unless the exact value
// lies within about 2^-29 of a float rounding boundary.
KILN_HOST_DEVICE inline float exp_via_double(float x) { return static_cast<float>(exp(static_cast<double>(x))); }
KILN_HOST_DEVICE inline float log_via_double(float x) { return static_cast<float>(log(static_cast<double>(x))); }

// Folds the geometric transforms into d.matrix. Forward (source -> output) the
// picture is: take the crop rectangle (crop_x, crop_y, crop_w, crop_h) of the
// source, resize it to out_size^2, flip, zoom by `zoom` about the centre, rotate by
// `angle` (radians) about the centre, translate by (shift_x, shift_y) output pixels.
// The sampler needs the inverse, output -> source, relative to the centres:
//   p = R(-angle) (u - shift) / zoom,  p.x *= hflip ? -1 : 1,  src = crop_centre + p * crop_size / out_size
KILN_HOST_DEVICE inline void set_geometry(ImageDraws& d, float crop_x, float crop_y, float crop_w, float crop_h,
                                          int out_size, bool hflip, bool vflip, float zoom, float angle,
                                          float shift_x, float shift_y) {
  const float cos_a = cosf(angle), sin_a = sinf(angle);
  const float size = static_cast<float>(out_size), half = 0.5f * size;
  const float sx = (hflip ? -1.f : 1.f) * crop_w / (size * zoom);
  const float sy = (vflip ? -1.f : 1.f) * crop_h / (size * zoom);
  // R(-angle) = [[cos, sin], [-sin, cos]], scaled per source axis.
  const float a00 = sx * cos_a, a01 = sx * sin_a, a10 = -sy * sin_a, a11 = sy * cos_a;
  const float centre_x = crop_x + 0.5f * crop_w, centre_y = crop_y + 0.5f * crop_h;
  d.matrix[0] = a00;
  d.matrix[1] = a01;
  d.matrix[2] = centre_x - mul_rn(a00, half + shift_x) - mul_rn(a01, half + shift_y);
  d.matrix[3] = a10;
  d.matrix[4] = a11;
  d.matrix[5] = centre_y - mul_rn(a10, half + shift_x) - mul_rn(a11, half + shift_y);
}

// The draws of image `image` of a batch of (height x width) sources resized to
// out_size^2. The same spec and seed give the same draws on every backend.
KILN_HOST_DEVICE inline ImageDraws draw_image_params(const AugmentSpec& spec, uint64_t seed, int64_t image, int height,
                                                     int width, int out_size) {
  const uint64_t base = static_cast<uint64_t>(image) * kDrawsPerImage;
  auto u = [&](int slot) { return uniform01(seed, base + static_cast<uint64_t>(slot)); };
  auto between = [&](int slot, float lo, float hi) { return lo + (hi - lo) * u(slot); };
  const float H = static_cast<float>(height), W = static_cast<float>(width);

  // The crop rectangle: RandomResizedCrop (torchvision's get_params, without the
  // integer rounding), or the centred square that the eval transform uses.
  float side = spec.center_crop * fminf(H, W);
  float crop_w = side, crop_h = side, crop_x = 0.5f * (W - side), crop_y = 0.5f * (H - side);
  if (spec.crop) {
    bool found = false;
    const float log_lo = log_via_double(spec.crop_ratio_lo), log_hi = log_via_double(spec.crop_ratio_hi);
    for (int attempt = 0; attempt < kCropAttempts && !found; ++attempt) {
      const int slot = kSlotCrop + 4 * attempt;
      const float area = H * W * between(slot, spec.crop_scale_lo, spec.crop_scale_hi);
      const float ratio = exp_via_double(between(slot + 1, log_lo, log_hi));
      const float w = sqrtf(area * ratio), h = sqrtf(area / ratio);
      if (w <= W && h <= H) {
        crop_w = w, crop_h = h, crop_x = u(slot + 2) * (W - w), crop_y = u(slot + 3) * (H - h);
        found = true;
      }
    }
    if (!found) {  // torchvision's fallback: the whole image, its ratio clamped into range
      const float ratio = fminf(fmaxf(W / H, spec.crop_ratio_lo), spec.crop_ratio_hi);
      crop_w = fminf(W, H * ratio), crop_h = fminf(H, W / ratio);
      crop_x = 0.5f * (W - crop_w), crop_y = 0.5f * (H - crop_h);
    }
  }
  const float size = static_cast<float>(out_size);
  const float zoom = between(kSlotZoom, spec.zoom_lo, spec.zoom_hi);
  const bool hflip = u(kSlotHflip) < spec.hflip, vflip = u(kSlotVflip) < spec.vflip;
  const float angle = between(kSlotRotate, -spec.rotate_degrees, spec.rotate_degrees) * (3.14159265358979f / 180.f);
  const float shift_x = between(kSlotTranslateX, -spec.translate, spec.translate) * size;
  const float shift_y = between(kSlotTranslateY, -spec.translate, spec.translate) * size;

  ImageDraws d;
  set_geometry(d, crop_x, crop_y, crop_w, crop_h, out_size, hflip, vflip, zoom, angle, shift_x, shift_y);
  d.brightness = between(kSlotBrightness, 1.f - spec.brightness, 1.f + spec.brightness);
  d.contrast = between(kSlotContrast, 1.f - spec.contrast, 1.f + spec.contrast);
  d.saturation = between(kSlotSaturation, 1.f - spec.saturation, 1.f + spec.saturation);
  d.hue = between(kSlotHue, -spec.hue, spec.hue);
  d.gray = u(kSlotGray) < spec.gray ? 1 : 0;
  d.blur_sigma = spec.blur_sigma * u(kSlotBlur);

  // Random erasing: one rectangle (torchvision retries up to 10 times; clamping the
  // size into the image instead keeps the draw count fixed).
  d.erase_x0 = d.erase_y0 = d.erase_x1 = d.erase_y1 = 0;
  if (u(kSlotErase) < spec.erase) {
    const float area = size * size * between(kSlotEraseArea, spec.erase_area_lo, spec.erase_area_hi);
    const float ratio = exp_via_double(between(kSlotEraseRatio, log_via_double(0.3f), log_via_double(3.3f)));
    const int h = static_cast<int>(fminf(fmaxf(roundf(sqrtf(area * ratio)), 1.f), size));
    const int w = static_cast<int>(fminf(fmaxf(roundf(sqrtf(area / ratio)), 1.f), size));
    d.erase_x0 = static_cast<int>(u(kSlotEraseX) * static_cast<float>(out_size - w + 1));
    d.erase_y0 = static_cast<int>(u(kSlotEraseY) * static_cast<float>(out_size - h + 1));
    d.erase_x1 = d.erase_x0 + w;
    d.erase_y1 = d.erase_y0 + h;
  }
  return d;
}

}  // namespace kiln::augment
