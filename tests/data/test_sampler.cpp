// --sampler balanced (data/sampler.h): the mix of classes changes, the epoch length does not.
#include <cmath>
#include <set>

#include "data/loader.h"
#include "data/sampler.h"
#include "engine/core/rng.h"
#include "engine/tensor/factory.h"
#include "tests/test_util.h"

using namespace kiln;

namespace {

data::Dataset single_label(int64_t common, int64_t rare) {
  data::Dataset dataset;
  dataset.class_names = {"common", "rare"};
  std::vector<double> labels(static_cast<size_t>(common), 0.0);
  labels.insert(labels.end(), static_cast<size_t>(rare), 1.0);
  const int64_t n = common + rare;
  dataset.images = zeros({n, 1, 1, 1}, {DType::u8});
  dataset.labels = from_vector(labels, {n}, {DType::i64});
  dataset.source = "single";
  return dataset;
}

// 2000 images: class a on half, b on a quarter, "rare" on 2% (seeded), some images empty.
data::Dataset multi_label() {
  data::Dataset dataset;
  dataset.class_names = {"a", "b", "rare"};
  const int64_t n = 2000;
  std::vector<double> targets(static_cast<size_t>(n * 3), 0.0);
  Rng rng(4);
  for (int64_t i = 0; i < n; ++i) {
    targets[static_cast<size_t>(i * 3 + 0)] = rng.uniform() < 0.5f;
    targets[static_cast<size_t>(i * 3 + 1)] = rng.uniform() < 0.25f;
    targets[static_cast<size_t>(i * 3 + 2)] = i % 50 == 0;
  }
  dataset.images = zeros({n, 1, 1, 1}, {DType::u8});
  dataset.labels = zeros({n}, {DType::i64});
  dataset.targets = from_vector(targets, {n, 3}, {DType::f32});
  dataset.source = "multi";
  return dataset;
}

}  // namespace

TEST_CASE("data sampler: single-label balanced draws each class equally often, same epoch length") {
  const data::Dataset dataset = single_label(900, 100);
  const data::SamplerConfig config{data::SamplerKind::balanced, 0};
  int64_t rare = 0, total = 0;
  std::set<int64_t> rare_images_seen;
  for (int64_t epoch = 1; epoch <= 10; ++epoch) {
    const std::vector<int64_t> order = data::balanced_epoch_order(dataset, config, 3, epoch);
    REQUIRE(order.size() == 1000);
    for (int64_t i : order) {
      rare += i >= 900;
      if (i >= 900) rare_images_seen.insert(i);
    }
    total += static_cast<int64_t>(order.size());
  }
  // Without the sampler the rare class is 10% of the draws; balanced, 50% (binomial sd 0.5%).
  CHECK(static_cast<double>(rare) / static_cast<double>(total) == doctest::Approx(0.5).epsilon(0.04));
  CHECK(rare_images_seen.size() == 100);  // every rare image is drawn
  CHECK(data::balanced_epoch_order(dataset, config, 3, 2) == data::balanced_epoch_order(dataset, config, 3, 2));
  CHECK(data::balanced_epoch_order(dataset, config, 3, 2) != data::balanced_epoch_order(dataset, config, 3, 3));
  CHECK(data::balanced_epoch_order(dataset, config, 3, 2) != data::balanced_epoch_order(dataset, config, 4, 2));
  test::expect_error_containing([] { data::parse_sampler("weighted"); }, {"--sampler", "weighted", "none or balanced"});
}

TEST_CASE("data sampler: multi-label repeat-factor sampling raises the rare class to its expected share") {
  const data::Dataset dataset = multi_label();
  const std::vector<double> factors = data::repeat_factors(dataset, 0);
  // t = f(a) ~ 0.5, f(rare) = 0.02: r = sqrt(0.5 / 0.02) ~ 5 on every rare image.
  const float* targets = dataset.targets.data<float>();
  double f_a = 0;
  for (int64_t i = 0; i < 2000; ++i) f_a += targets[i * 3] > 0.5f;
  f_a /= 2000;
  CHECK(factors[0] == doctest::Approx(std::sqrt(f_a / 0.02)));
  double rare_weight = 0, all_weight = 0;
  for (int64_t i = 0; i < 2000; ++i) {
    all_weight += factors[static_cast<size_t>(i)];
    if (targets[i * 3 + 2] > 0.5f) rare_weight += factors[static_cast<size_t>(i)];
    if (targets[i * 3 + 2] < 0.5f) CHECK(factors[static_cast<size_t>(i)] < 1.5);  // sqrt(f_a / f_b) ~ 1.41
  }
  const double expected = rare_weight / all_weight;  // ~ 0.02 * 5 / 1.1 ~ 0.09
  CHECK(expected > 0.07);

  const data::SamplerConfig config{data::SamplerKind::balanced, 0};
  int64_t rare = 0, total = 0;
  for (int64_t epoch = 1; epoch <= 20; ++epoch) {
    const std::vector<int64_t> order = data::balanced_epoch_order(dataset, config, 9, epoch);
    REQUIRE(order.size() == 2000);
    for (int64_t i : order) rare += targets[i * 3 + 2] > 0.5f;
    total += 2000;
  }
  const double share = static_cast<double>(rare) / static_cast<double>(total);
  INFO("rare share " << share << ", expected " << expected << ", without the sampler 0.02");
  CHECK(std::abs(share - expected) < 0.01);
  CHECK(data::balanced_epoch_order(dataset, config, 9, 5) == data::balanced_epoch_order(dataset, config, 9, 5));
  CHECK(data::balanced_epoch_order(dataset, {data::SamplerKind::balanced, 0.001}, 9, 5).size() == 2000);
}

TEST_CASE("data sampler: the loader's batches follow the balanced order with worker threads, epoch after epoch") {
  const data::Dataset dataset = single_label(180, 20);
  data::LoaderConfig config;
  config.batch_size = 16;
  config.workers = 3;
  config.seed = 5;
  config.sampler = {data::SamplerKind::balanced, 0};
  data::Loader loader(dataset, config);
  for (int64_t epoch : {1, 2, 1}) {  // a restart of epoch 1 (a resume) replays it
    loader.start_epoch(epoch);
    std::vector<int64_t> seen;
    data::Batch batch;
    while (loader.next(batch)) seen.insert(seen.end(), batch.indices.begin(), batch.indices.end());
    CHECK(seen == data::balanced_epoch_order(dataset, config.sampler, 5, epoch));
    CHECK(loader.batches_per_epoch() == 13);
  }
}
