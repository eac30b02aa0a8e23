// The augmentation settings as plain data. AugmentSpec is passed by value to the
// CUDA kernel, so it holds only numbers (no strings, no vectors); the CLI string
// parser that fills it lives in augment.h. A field at its default value means
// "this transform is off", and the default spec is the identity (eval) transform.
#pragma once
#include <cstdint>

namespace kiln::augment {

// Batch-level mixing (mix_batch in augment.h). alpha = 0 turns a mode off; when
// both are on, each image picks one of the two with probability 1/2 (as timm does).
struct MixSpec {
  float mixup_alpha = 0.f;   // lambda ~ Beta(alpha, alpha); mixed = lambda * x + (1 - lambda) * x_partner
  float cutmix_alpha = 0.f;  // a box of area (1 - lambda) * H * W is pasted from the partner
  bool enabled() const { return mixup_alpha > 0.f || cutmix_alpha > 0.f; }
};

struct AugmentSpec {
  // ---- geometry: one inverse affine map per image (draws.h)
  bool crop = false;                               // RandomResizedCrop
  float crop_scale_lo = 0.08f, crop_scale_hi = 1.f;  // fraction of the source area
  float crop_ratio_lo = 0.75f, crop_ratio_hi = 4.f / 3.f;  // width / height of the crop
  float zoom_lo = 1.f, zoom_hi = 1.f;              // scale jitter: > 1 zooms in
  float hflip = 0.f, vflip = 0.f;                  // probabilities
  float rotate_degrees = 0.f;                      // angle ~ U(-d, d)
  float translate = 0.f;                           // shift ~ U(-t, t) * out_size, per axis
  float center_crop = 1.f;  // without `crop`: the centred square of side center_crop * min(H, W)
  // ---- colour, applied in this order (torchvision formulas, docs/augment.md)
  float brightness = 0.f;  // factor ~ U(1 - b, 1 + b)
  float contrast = 0.f;    // factor ~ U(1 - c, 1 + c)
  float saturation = 0.f;  // factor ~ U(1 - s, 1 + s)
  float hue = 0.f;         // shift ~ U(-h, h) of a full turn, h <= 0.5
  float gray = 0.f;        // probability of replacing RGB by its luma
  float blur_sigma = 0.f;  // gaussian blur, sigma ~ U(0, blur_sigma) output pixels (5x5 taps)
  float noise_sigma = 0.f; // additive gaussian noise, std in [0, 1] pixel units
  // ---- last: random erasing (cutout) in the output image
  float erase = 0.f;                                 // probability
  float erase_area_lo = 0.02f, erase_area_hi = 0.33f;  // fraction of the output area
  // ---- batch level, not used by augment_batch
  MixSpec mix;
};

}  // namespace kiln::augment
