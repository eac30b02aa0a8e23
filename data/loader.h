// The batch loader: worker threads copy the rows of upcoming batches out of a Dataset
// (for a pack that is where the pages are read from disk) while the trainer works on
// the current one, like PyTorch's DataLoader with num_workers and prefetch_factor.
//
//   Loader loader(dataset, config);
//   for (int64_t epoch = 0; epoch < epochs; ++epoch) {
//     loader.start_epoch(epoch);
//     Batch batch;
//     while (loader.next(batch)) train_step(batch.images_u8, batch.labels);
//   }
//
// Order: epoch_order(n, seed, epoch) is a seeded Fisher-Yates shuffle, a pure function
// of (seed, epoch): every epoch visits each sample once, epochs differ, and a resumed
// run replays the same order. With config.sampler balanced the order is
// balanced_epoch_order (data/sampler.h): N draws, rare classes more often, also a
// pure function of (seed, epoch). Batches come out in that order whatever the worker
// timing. At most `prefetch` batches are filled ahead of the consumer, which bounds
// the host memory to prefetch * batch bytes.
//
// Host buffers come from `host_buffer` (default: plain CPU `empty`). A CUDA trainer
// passes a factory that returns pinned (page-locked) tensors, so that the copy to the
// GPU can be asynchronous; that needs the CUDA context, which data/ does not link.
#pragma once
#include <condition_variable>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "data/dataset.h"
#include "data/sampler.h"

namespace kiln::data {

struct Batch {
  Tensor images_u8;              // u8 (B, C, H, W), from host_buffer
  Tensor labels;                 // i64 (B)
  Tensor targets;                // f32 (B, K) multi-hot; undefined unless multi-label
  std::vector<int64_t> indices;  // (B) rows of the dataset
};

using HostBufferFactory = std::function<Tensor(const Shape& shape, DType dtype)>;
Tensor cpu_host_buffer(const Shape& shape, DType dtype);  // the default: empty(shape, {dtype})

struct LoaderConfig {
  int64_t batch_size = 64;
  bool shuffle = true;
  bool drop_last = false;  // drop a last batch smaller than batch_size
  uint64_t seed = 0;
  int workers = 2;
  int prefetch = 4;        // batches filled ahead of the consumer
  HostBufferFactory host_buffer = cpu_host_buffer;
  SamplerConfig sampler;   // balanced: data/sampler.h decides each epoch's N draws (shuffle ignored)
};

// The sample order of one epoch: 0..n-1 shuffled by (seed, epoch), or in order.
std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch, bool shuffle = true);
// The order a Loader with `config` visits `dataset` in epoch `epoch` (the sampler's
// draws, or epoch_order): whoever replays the loader's batches (the feature cache) uses it.
std::vector<int64_t> loader_epoch_order(const Dataset& dataset, const LoaderConfig& config, int64_t epoch);

class Loader {
 public:
  // Keeps a handle to dataset's tensors (a pack's mapping stays open while loading).
  Loader(const Dataset& dataset, LoaderConfig config);
  ~Loader();  // stops and joins the workers, even mid-epoch
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  void start_epoch(int64_t epoch);
  // The next batch of the epoch, false when the epoch is over. Rethrows a worker's error.
  bool next(Batch& batch);
  int64_t batches_per_epoch() const;

 private:
  void work();
  Batch fill(const std::vector<int64_t>& indices) const;

  Dataset dataset_;
  LoaderConfig config_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable changed_;
  // Guarded by mutex_. `generation` counts start_epoch calls, so that a batch a worker
  // finishes after the epoch was restarted is thrown away.
  bool stop_ = false;
  int64_t generation_ = 0;
  std::vector<int64_t> order_;
  int64_t num_batches_ = 0, next_to_fill_ = 0, next_to_return_ = 0;
  std::map<int64_t, Batch> ready_;
  std::map<int64_t, std::exception_ptr> failed_;
};

struct LoaderThroughput {
  int64_t images = 0;
  double seconds = 0;
  double images_per_second = 0;  // images / seconds: the whole epoch, the workers' start included
};

// What the consumer does with each batch (`kiln bench loader --device`: copy to the
// GPU and augment there), and a last call before the clock stops (waiting for the
// device). Both optional: without them only the loading is timed.
struct LoaderConsumer {
  std::function<void(const Batch& batch)> consume;
  std::function<void()> finish;
};

// Runs one epoch of `config` over `dataset` (the order of `epoch`) and times it.
LoaderThroughput measure_loader_throughput(const Dataset& dataset, const LoaderConfig& config,
                                           const LoaderConsumer& consumer = {}, int64_t epoch = 0);

}  // namespace kiln::data
