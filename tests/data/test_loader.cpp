#include <algorithm>
#include <atomic>

#include "data/loader.h"
#include "engine/tensor/factory.h"
#include "tests/test_util.h"

using namespace kiln;

namespace {

// n images of (1, 2, 2) whose pixels all hold the row number (mod 256).
data::Dataset numbered(int64_t n) {
  data::Dataset dataset;
  dataset.images = empty({n, 1, 2, 2}, {DType::u8});
  dataset.labels = empty({n}, {DType::i64});
  for (int64_t i = 0; i < n; ++i) {
    for (int j = 0; j < 4; ++j) dataset.images.data<uint8_t>()[i * 4 + j] = static_cast<uint8_t>(i);
    dataset.labels.data<int64_t>()[i] = i % 3;
  }
  dataset.class_names = {"a", "b", "c"};
  return dataset;
}

std::vector<int64_t> one_epoch(data::Loader& loader, int64_t epoch, const data::Dataset& dataset) {
  loader.start_epoch(epoch);
  std::vector<int64_t> seen;
  data::Batch batch;
  while (loader.next(batch)) {
    for (size_t i = 0; i < batch.indices.size(); ++i) {
      const int64_t row = batch.indices[i];
      CHECK(batch.images_u8.data<uint8_t>()[i * 4 + 3] == static_cast<uint8_t>(row));
      CHECK(batch.labels.data<int64_t>()[i] == row % 3);
    }
    seen.insert(seen.end(), batch.indices.begin(), batch.indices.end());
  }
  return seen;
}

}  // namespace

TEST_CASE("data loader: every index once per epoch, seeded order, epochs differ") {
  const data::Dataset dataset = numbered(103);
  data::LoaderConfig config;
  config.batch_size = 10;
  config.workers = 3;
  config.prefetch = 2;
  config.seed = 5;
  data::Loader loader(dataset, config);
  CHECK(loader.batches_per_epoch() == 11);
  const std::vector<int64_t> epoch0 = one_epoch(loader, 0, dataset);
  const std::vector<int64_t> epoch1 = one_epoch(loader, 1, dataset);
  CHECK(epoch0 == data::epoch_order(103, 5, 0));
  CHECK(epoch1 != epoch0);
  std::vector<int64_t> sorted = epoch1;
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted == data::epoch_order(103, 5, 0, false));
  CHECK(one_epoch(loader, 0, dataset) == epoch0);  // replayable
  data::Loader other(dataset, config);
  CHECK(one_epoch(other, 0, dataset) == epoch0);  // same seed, another loader
}

TEST_CASE("data loader: drop_last, restart mid-epoch, host buffer hook, throughput") {
  const data::Dataset dataset = numbered(25);
  data::LoaderConfig config;
  config.batch_size = 8;
  config.drop_last = true;
  std::atomic<int> buffers{0};
  config.host_buffer = [&](const Shape& shape, DType dtype) {
    ++buffers;
    return data::cpu_host_buffer(shape, dtype);
  };
  data::Loader loader(dataset, config);
  CHECK(loader.batches_per_epoch() == 3);
  loader.start_epoch(0);
  data::Batch batch;
  REQUIRE(loader.next(batch));  // then abandon the epoch
  CHECK(one_epoch(loader, 2, dataset).size() == 24);
  CHECK(buffers.load() >= 2 * 3);
  const data::LoaderThroughput throughput = data::measure_loader_throughput(dataset, config);
  CHECK(throughput.images == 24);
  CHECK(throughput.images_per_second > 0);
}
