// Data augmentation for image classification (docs/augment.md).
//
//   AugmentSpec spec = parse_augment_spec("crop:0.08-1,hflip:0.5,brightness:0.2,erase:0.25");
//   Tensor x = augment_batch(images_u8, spec, {224, mean, std, DType::bf16, Layout::nhwc}, seed);
//   MixResult mixed = mix_batch(x, labels, num_classes, spec.mix, seed);   // optional
//   Tensor loss = soft_cross_entropy(model.forward(mixed.images), mixed.targets);
//
// augment_batch turns u8 (N, C, H, W) images into a normalized float batch
// (N, C, S, S) with every per-image random transform applied. On the GPU it is one
// fused kernel (kernels/augment.cu): the u8 batch is the only upload, 4x fewer
// bytes than f32. The CPU reference (augment_cpu.cpp) computes the same formulas
// (engine/augment/pixel.h) with the same random draws (engine/augment/draws.h).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/augment/pixel.h"
#include "engine/augment/spec.h"
#include "engine/tensor/tensor.h"

namespace kiln {
class AsyncUpload;  // engine/tensor/async_upload.h
}  // namespace kiln

namespace kiln::augment {

// Parses "name:args,name:args,...". An argument is a number or a range "lo-hi":
//   crop:SCALE[:RATIO]   scale:LO-HI   hflip:P   vflip:P   rotate:DEG   translate:F
//   brightness:B  contrast:C  saturation:S  hue:H  gray:P  blur:SIGMA  noise:SIGMA
//   erase:P[:AREA]  mixup:ALPHA  cutmix:ALPHA
// "" and "none" give the identity. Errors name the bad token and list the names.
// A preset name stands for its spec, and later tokens override its entries:
// "tiny,mixup:0" is the tiny preset without mixup.
AugmentSpec parse_augment_spec(const std::string& text);
// name -> spec of every preset: "tiny" (14 transforms tuned for 64 px images).
const std::vector<std::pair<std::string, std::string>>& augment_presets();
std::string augment_spec_to_string(const AugmentSpec& spec);  // the canonical form, for run reports
const std::vector<std::string>& augment_names();

struct AugmentParams {
  int64_t out_size = 224;             // S: output images are S x S
  std::vector<double> mean = {0.5};   // per channel, in [0, 1] units
  std::vector<double> std = {0.5};
  DType dtype = DType::f32;           // f32, f16 or bf16
  Layout layout = Layout::nchw;
};

// images_u8: u8 (N, C, H, W), C <= 4, on the cpu or a GPU. Returns (N, C, S, S) of
// params.dtype in params.layout on the same device. Image n uses the draws of
// index n under `seed`: pass a different seed per step.
Tensor augment_batch(const Tensor& images_u8, const AugmentSpec& spec, const AugmentParams& params, uint64_t seed);

// The evaluation transform: the centred square of side center_crop * min(H, W)
// resized to S (= resize the shorter side to S / center_crop, then centre-crop S),
// then normalize. No randomness.
Tensor eval_transform(const Tensor& images_u8, const AugmentParams& params, float center_crop = 1.f);

// ---- batch-level mixing (mixup, cutmix)
struct MixResult {
  Tensor images;                // like the input images: row n mixes image n with image partner[n]
  Tensor targets;               // f32 (N, K) on the images' device; each row sums to 1
  std::vector<float> lambda;    // per image: the weight of its own label
  std::vector<int64_t> partner; // per image: the image it was mixed with
  // A GPU batch: the pinned host copies of the masks and targets, kept until their
  // asynchronous copy has read them (engine/tensor/async_upload.h); null on the cpu.
  std::shared_ptr<AsyncUpload> staged;
};
// images: float (N, C, H, W), any layout and device; labels: i64 (N) on the cpu.
// With spec disabled the images are returned unchanged and targets are one-hot.
MixResult mix_batch(const Tensor& images, const Tensor& labels, int64_t num_classes, const MixSpec& spec,
                    uint64_t seed);

// ---- backends (called by augment_batch; tests call the cpu one with hand-made draws)
namespace cpu {
// draws: one per image. out: (N, C, S, S) f32, f16 or bf16 on the cpu, any layout.
void augment_forward(const Tensor& images_u8, const std::vector<ImageDraws>& draws, float noise_sigma,
                     uint64_t seed, const Normalize& norm, const Tensor& out);
}  // namespace cpu
namespace cuda {
// Computes the draws on the device from (spec, seed); out as above, on the images' GPU.
void augment_forward(const Tensor& images_u8, const AugmentSpec& spec, uint64_t seed, const Normalize& norm,
                     const Tensor& out);
}  // namespace cuda

// The normalization constants of params, checked against the channel count.
Normalize make_normalize(const AugmentParams& params, int64_t channels);

}  // namespace kiln::augment
