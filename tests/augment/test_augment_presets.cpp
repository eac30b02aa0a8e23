// Augmentation presets (engine/augment/augment.h): `--augment tiny` names at least
// ten transforms, later tokens override its entries, and it runs on a 64 px batch
// with finite values that differ from the eval transform.
#include <doctest/doctest.h>

#include <cmath>

#include "engine/augment/augment.h"
#include "engine/core/rng.h"
#include "engine/tensor/factory.h"
#include "test_util.h"

using namespace kiln;

TEST_CASE("augment presets: tiny names at least ten transforms and later tokens override it") {
  const augment::AugmentSpec tiny = augment::parse_augment_spec("tiny");
  const std::string text = augment::augment_spec_to_string(tiny);
  int transforms = 1;
  for (char c : text) transforms += c == ',' ? 1 : 0;
  CAPTURE(text);
  CHECK(transforms >= 10);
  CHECK(tiny.hflip == 0.5f);
  CHECK(tiny.crop);
  CHECK(tiny.mix.mixup_alpha == doctest::Approx(0.2));
  const augment::AugmentSpec without_mixup = augment::parse_augment_spec("tiny,mixup:0,rotate:5");
  CHECK(without_mixup.mix.mixup_alpha == 0);
  CHECK(without_mixup.rotate_degrees == 5);
  CHECK(without_mixup.hflip == 0.5f);
  test::expect_error_containing([] { augment::parse_augment_spec("tinyy"); }, {"unknown transform 'tinyy'", "preset tiny"});
}

TEST_CASE("augment presets: tiny augments a 64 px batch to finite values unlike the eval transform") {
  Rng rng(7);
  const Tensor images = uniform({4, 3, 64, 64}, 0, 255, rng).to(DType::u8);
  augment::AugmentParams params;
  params.out_size = 64;
  params.mean = {0.5, 0.5, 0.5};
  params.std = {0.25, 0.25, 0.25};
  const Tensor augmented = augment::augment_batch(images, augment::parse_augment_spec("tiny"), params, 11);
  const Tensor eval = augment::augment_batch(images, augment::parse_augment_spec("none"), params, 11);
  REQUIRE(augmented.shape() == Shape({4, 3, 64, 64}));
  const std::vector<double> a = augmented.to_vector(), e = eval.to_vector();
  double differing = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    REQUIRE(std::isfinite(a[i]));
    differing += std::abs(a[i] - e[i]) > 1e-3 ? 1 : 0;
  }
  CHECK(differing / static_cast<double>(a.size()) > 0.5);
}
