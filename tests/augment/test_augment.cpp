// Tests of the augmentation (engine/augment): the spec parser, exact formulas on
// known pixels with hand-made draws, the draw scheme, mixing, the soft-target loss,
// and CPU-vs-GPU parity of the fused kernel.
#include <cmath>

#include "engine/augment/augment.h"
#include "engine/augment/mix_loss.h"
#include "engine/core/rng.h"
#include "engine/tensor/factory.h"
#include "test_util.h"

using namespace kiln;
using namespace kiln::augment;

namespace {

const char* kFullSpec =
    "crop:0.08-1,hflip:0.5,rotate:15,brightness:0.2,contrast:0.2,saturation:0.2,hue:0.05,gray:0.1,blur:0.5,"
    "noise:0.02,erase:0.25,translate:0.1,scale:0.9-1.1,vflip:0.5";

Tensor random_images(int64_t n, int64_t c, int64_t h, int64_t w, uint64_t seed) {
  Rng rng(seed);
  std::vector<double> values(static_cast<size_t>(n * c * h * w));
  for (double& v : values) v = std::floor(rng.uniform() * 256.0);
  return from_vector(values, {n, c, h, w}, {DType::u8});
}

// Draws that leave the image alone: the full (S x S) source, no colour change.
ImageDraws identity_draws(int size) {
  ImageDraws d{};
  set_geometry(d, 0, 0, static_cast<float>(size), static_cast<float>(size), size, false, false, 1.f, 0.f, 0, 0);
  d.brightness = d.contrast = d.saturation = 1.f;
  return d;
}

AugmentParams unit_params(int64_t size, int64_t channels) {  // mean 0, std 1: out = v / 255
  AugmentParams p;
  p.out_size = size;
  p.mean.assign(static_cast<size_t>(channels), 0.0);
  p.std.assign(static_cast<size_t>(channels), 1.0);
  return p;
}

std::vector<double> run_cpu(const Tensor& images, const ImageDraws& d, const AugmentParams& p) {
  Tensor out = empty({images.shape()[0], images.shape()[1], p.out_size, p.out_size});
  cpu::augment_forward(images, std::vector<ImageDraws>(static_cast<size_t>(images.shape()[0]), d), 0.f, 0,
                       make_normalize(p, images.shape()[1]), out);
  return out.to_vector();
}

}  // namespace

TEST_CASE("augment: the spec parser reads every name and names bad tokens") {
  const AugmentSpec s = parse_augment_spec(kFullSpec);
  CHECK(s.crop);
  CHECK(s.crop_scale_lo == doctest::Approx(0.08));
  CHECK(s.zoom_hi == doctest::Approx(1.1));
  CHECK(s.rotate_degrees == 15.f);
  CHECK(s.erase == 0.25f);
  CHECK(s.noise_sigma == doctest::Approx(0.02));
  const AugmentSpec mixed = parse_augment_spec("mixup:0.2,cutmix:1,erase:0.5:0.1-0.2,crop:0.5-1:1-2");
  CHECK(mixed.mix.mixup_alpha == doctest::Approx(0.2));
  CHECK(mixed.erase_area_hi == doctest::Approx(0.2));
  CHECK(mixed.crop_ratio_hi == 2.f);
  CHECK(augment_spec_to_string(parse_augment_spec("none")) == "none");
  CHECK(augment_spec_to_string(parse_augment_spec(augment_spec_to_string(s))) == augment_spec_to_string(s));
  test::expect_error_containing([] { parse_augment_spec("hflip:0.5,twirl:3"); }, {"twirl", "valid:", "rotate"});
  test::expect_error_containing([] { parse_augment_spec("hflip:1.5"); }, {"hflip:1.5", "probability"});
  test::expect_error_containing([] { parse_augment_spec("rotate:abc"); }, {"rotate:abc"});
  test::expect_error_containing([] { parse_augment_spec("scale:1.1-0.9"); }, {"scale:1.1-0.9"});
  test::expect_error_containing([] { parse_augment_spec("hflip"); }, {"'hflip'", "arguments"});
}

TEST_CASE("augment: the identity spec equals the eval normalization exactly") {
  const Tensor images = random_images(3, 3, 16, 16, 1);
  AugmentParams p;
  p.out_size = 16;
  p.mean = {0.485, 0.456, 0.406};
  p.std = {0.229, 0.224, 0.225};
  const std::vector<double> got = augment_batch(images, AugmentSpec{}, p, 7).to_vector();
  // The plain normalisation, in float as the kernels compute it: v / (255 std) - mean / std.
  std::vector<double> want;
  const std::vector<double> pixels = images.to_vector();
  const int64_t plane = 16 * 16;
  for (size_t i = 0; i < pixels.size(); ++i) {
    const size_t c = (i / plane) % 3;
    const float scale = static_cast<float>(1.0 / (255.0 * p.std[c])), shift = static_cast<float>(p.mean[c] / p.std[c]);
    want.push_back(static_cast<float>(pixels[i]) * scale - shift);
  }
  CHECK(test::max_abs_diff(got, want) == 0.0);
  CHECK(test::max_abs_diff(eval_transform(images, p).to_vector(), want) == 0.0);
}

TEST_CASE("augment: eval_transform takes the centred square of the shorter side") {
  // A 4x8 image resized to 4x4 is its middle 4 columns, pixel for pixel.
  const Tensor images = random_images(1, 1, 4, 8, 2);
  const std::vector<double> got = eval_transform(images, unit_params(4, 1)).to_vector();
  const std::vector<double> src = images.to_vector();
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) CHECK(got[y * 4 + x] == doctest::Approx(src[y * 8 + x + 2] / 255.0).epsilon(1e-6));
}

TEST_CASE("augment: hflip:1 mirrors exactly and rotating by 90 degrees transposes and flips") {
  const int S = 12;
  const Tensor images = random_images(2, 3, S, S, 3);
  const std::vector<double> src = images.to_vector();
  const std::vector<double> plain = eval_transform(images, unit_params(S, 3)).to_vector();
  const std::vector<double> flipped = augment_batch(images, parse_augment_spec("hflip:1"), unit_params(S, 3), 5).to_vector();
  ImageDraws rotated = identity_draws(S);
  set_geometry(rotated, 0, 0, S, S, S, false, false, 1.f, 3.14159265358979f / 2, 0, 0);
  const std::vector<double> turned = run_cpu(images, rotated, unit_params(S, 3));
  double worst = 0;
  for (int plane = 0; plane < 6; ++plane)
    for (int y = 0; y < S; ++y)
      for (int x = 0; x < S; ++x) {
        const size_t at = (static_cast<size_t>(plane) * S + y) * S + x;
        CHECK(flipped[at] == plain[(static_cast<size_t>(plane) * S + y) * S + (S - 1 - x)]);
        // out(y, x) = in(S-1-x, y): cos(pi/2) is -4e-8 in float, hence the tolerance.
        worst = std::max(worst, std::abs(turned[at] - src[(static_cast<size_t>(plane) * S + (S - 1 - x)) * S + y] / 255.0));
      }
  CHECK(worst < 1e-4);
}

TEST_CASE("augment: brightness, contrast, saturation and gray on known pixels") {
  // A 2x2 RGB image with four different colours (values in 0..255).
  const std::vector<double> rgb = {200, 10, 50, 120, /*G*/ 100, 30, 250, 60, /*B*/ 50, 90, 20, 200};
  const Tensor images = from_vector(rgb, {1, 3, 2, 2}, {DType::u8});
  auto pixel = [&](int c, int i) { return rgb[c * 4 + i]; };
  auto luma = [](double r, double g, double b) { return 0.299 * r + 0.587 * g + 0.114 * b; };
  auto clamp = [](double v) { return std::min(255.0, std::max(0.0, v)); };
  const AugmentParams p = unit_params(2, 3);

  ImageDraws d = identity_draws(2);
  d.brightness = 1.5f;  // multiplies, then clamps
  std::vector<double> got = run_cpu(images, d, p);
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 4; ++i) CHECK(got[c * 4 + i] * 255 == doctest::Approx(clamp(1.5 * pixel(c, i))).epsilon(1e-5));

  d = identity_draws(2);
  d.contrast = 0.6f;  // blends with the mean luma of the whole image
  double mean = 0;
  for (int i = 0; i < 4; ++i) mean += luma(pixel(0, i), pixel(1, i), pixel(2, i)) / 4;
  got = run_cpu(images, d, p);
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 4; ++i)
      CHECK(got[c * 4 + i] * 255 == doctest::Approx(clamp(0.6 * pixel(c, i) + 0.4 * mean)).epsilon(1e-5));

  d = identity_draws(2);
  d.saturation = 1.7f;  // blends with each pixel's own luma
  got = run_cpu(images, d, p);
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 4; ++i) {
      const double gray = luma(pixel(0, i), pixel(1, i), pixel(2, i));
      CHECK(got[c * 4 + i] * 255 == doctest::Approx(clamp(1.7 * pixel(c, i) - 0.7 * gray)).epsilon(1e-5));
    }

  d = identity_draws(2);
  d.gray = 1;
  got = run_cpu(images, d, p);
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 4; ++i)
      CHECK(got[c * 4 + i] * 255 == doctest::Approx(luma(pixel(0, i), pixel(1, i), pixel(2, i))).epsilon(1e-5));

  // A third of a turn maps pure red to pure green.
  ImageDraws hue = identity_draws(1);
  hue.hue = 1.f / 3.f;
  got = run_cpu(from_vector({255, 0, 0}, {1, 3, 1, 1}, {DType::u8}), hue, unit_params(1, 3));
  CHECK(got[0] == doctest::Approx(0.0).epsilon(1e-5));
  CHECK(got[1] == doctest::Approx(1.0).epsilon(1e-5));
}

TEST_CASE("augment: erase fills its drawn rectangle with 0 (the mean after normalization)") {
  const int S = 32;
  const Tensor images = random_images(8, 3, S, S, 4);
  images.data<uint8_t>()[0] = 0;
  AugmentParams p;
  p.out_size = S;
  p.mean = {0.5, 0.5, 0.5};
  p.std = {0.25, 0.25, 0.25};
  const AugmentSpec spec = parse_augment_spec("erase:1:0.1-0.2");
  const std::vector<double> got = augment_batch(images, spec, p, 11).to_vector();
  for (int64_t n = 0; n < 8; ++n) {
    const ImageDraws d = draw_image_params(spec, 11, n, S, S, S);
    const int area = (d.erase_x1 - d.erase_x0) * (d.erase_y1 - d.erase_y0);
    // The drawn area, up to rounding of the sides to whole pixels.
    CHECK(area >= 0.1 * S * S * 0.75);
    CHECK(area <= 0.2 * S * S * 1.25);
    int zeros = 0;
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < S; ++y)
        for (int x = 0; x < S; ++x) {
          const double v = got[((n * 3 + c) * S + y) * S + x];
          const bool inside = x >= d.erase_x0 && x < d.erase_x1 && y >= d.erase_y0 && y < d.erase_y1;
          if (inside) CHECK(v == 0.0);
          zeros += v == 0.0;
        }
    CHECK(zeros >= 3 * area);
  }
}

TEST_CASE("augment: draws are deterministic per (seed, image) and the output has the asked shape") {
  const Tensor images = random_images(4, 3, 20, 24, 5);
  const AugmentSpec spec = parse_augment_spec(kFullSpec);
  AugmentParams p = unit_params(16, 3);
  const std::vector<double> a = augment_batch(images, spec, p, 42).to_vector();
  CHECK(test::max_abs_diff(augment_batch(images, spec, p, 42).to_vector(), a) == 0.0);
  CHECK(test::max_abs_diff(augment_batch(images, spec, p, 43).to_vector(), a) > 0.1);
  p.dtype = DType::bf16;
  p.layout = Layout::nhwc;
  const Tensor half = augment_batch(images, spec, p, 42);
  CHECK(half.shape() == Shape({4, 3, 16, 16}));
  CHECK(half.dtype() == DType::bf16);
  CHECK(half.layout() == Layout::nhwc);
  const std::vector<double> back = half.to(DType::f32).to(Layout::nchw).to_vector();
  CHECK(test::max_abs_diff(back, a) < 1.0 / 64);  // bf16 keeps 8 bits of mantissa; values are in [0, 1]
}

TEST_CASE("augment: mix_batch targets sum to 1 and match the masks") {
  const Tensor images = augment_batch(random_images(6, 3, 8, 8, 6), AugmentSpec{}, unit_params(8, 3), 0);
  const Tensor labels = from_vector({0, 1, 2, 3, 4, 0}, {6}, {DType::i64});
  MixSpec spec;
  spec.mixup_alpha = 0.4f;
  spec.cutmix_alpha = 1.f;
  const MixResult mixed = mix_batch(images, labels, 5, spec, 9);
  CHECK(mixed.targets.shape() == Shape({6, 5}));
  const std::vector<double> t = mixed.targets.to_vector();
  const std::vector<double> x = images.to_vector(), m = mixed.images.to_vector();
  for (int n = 0; n < 6; ++n) {
    double row = 0;
    for (int k = 0; k < 5; ++k) row += t[n * 5 + k];
    CHECK(row == doctest::Approx(1.0));
    CHECK(mixed.lambda[n] >= 0.f);
    CHECK(mixed.lambda[n] <= 1.f);
    // Each mixed pixel lies between the image's own pixel and its partner's.
    const int64_t partner = mixed.partner[n];
    for (int i = 0; i < 3 * 64; ++i) {
      const double own = x[n * 192 + i], other = x[partner * 192 + i], v = m[n * 192 + i];
      CHECK(v >= std::min(own, other) - 1e-6);
      CHECK(v <= std::max(own, other) + 1e-6);
    }
  }
  const MixResult off = mix_batch(images, labels, 5, MixSpec{}, 9);
  CHECK(off.images.same_storage(images));
  CHECK(off.targets.to_vector()[5 * 5 + 0] == 1.0);
}

TEST_CASE("augment: soft_cross_entropy matches a hand-computed value and one-hot cross entropy") {
  // Row 1: logits (1, 2, 3), targets (0.25, 0, 0.75); row 2: logits (0, 0, 0), targets (0, 1, 0).
  const Tensor logits = from_vector({1, 2, 3, 0, 0, 0}, {2, 3});
  const Tensor targets = from_vector({0.25, 0, 0.75, 0, 1, 0}, {2, 3});
  const double lse = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  const double row1 = -(0.25 * (1 - lse) + 0.75 * (3 - lse)), row2 = std::log(3.0);
  CHECK(soft_cross_entropy(logits, targets).item() == doctest::Approx((row1 + row2) / 2).epsilon(1e-6));
  test::expect_error_containing([&] { soft_cross_entropy(logits, from_vector({1, 0}, {2})); }, {"soft_cross_entropy"});
}

TEST_CASE("augment: the fused CUDA kernel matches the CPU reference" * doctest::test_suite("gpu")) {
  if (test::skip_without_gpu("augment_batch parity")) return;
  const Tensor images = random_images(16, 3, 40, 56, 8);
  const AugmentSpec spec = parse_augment_spec(kFullSpec);
  for (Layout layout : {Layout::nchw, Layout::nhwc}) {
    AugmentParams p;
    p.out_size = 32;
    p.mean = {0.485, 0.456, 0.406};
    p.std = {0.229, 0.224, 0.225};
    p.layout = layout;
    const std::vector<double> want = augment_batch(images, spec, p, 123).to(Layout::nchw).to_vector();
    const Tensor gpu = augment_batch(images.to(Device::cuda(0)), spec, p, 123);
    const std::vector<double> got = gpu.to(Device::cpu()).to(Layout::nchw).to_vector();
    INFO("layout " << layout_name(layout));
    CHECK(test::max_abs_diff(got, want) < 1e-4);
    p.dtype = DType::bf16;
    const std::vector<double> half =
        augment_batch(images.to(Device::cuda(0)), spec, p, 123).to(Device::cpu()).to(DType::f32).to(Layout::nchw).to_vector();
    CHECK(test::max_abs_diff(half, want) < 0.05);  // bf16 rounding of values up to ~2.6
  }
}
