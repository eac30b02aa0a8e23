#include "data/loader.h"

#include <chrono>
#include <cstring>

#include "engine/core/rng.h"
#include "engine/tensor/factory.h"

namespace kiln::data {

Tensor cpu_host_buffer(const Shape& shape, DType dtype) { return empty(shape, {dtype}); }

std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch, bool shuffle) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  if (!shuffle) return order;
  // One stream per (seed, epoch); mixing both through splitmix64 keeps nearby seeds
  // and epochs from giving related streams.
  Rng rng(splitmix64(seed ^ splitmix64(static_cast<uint64_t>(epoch) + 1)));
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.next_u64() % i]);
  return order;
}

Loader::Loader(const Dataset& dataset, LoaderConfig config) : dataset_(dataset), config_(std::move(config)) {
  KILN_CHECK(config_.batch_size > 0, "loader: batch_size must be positive, got ", config_.batch_size);
  KILN_CHECK(config_.workers > 0 && config_.prefetch > 0, "loader: workers (", config_.workers, ") and prefetch (",
             config_.prefetch, ") must be positive");
  KILN_CHECK(dataset_.images.defined() && dataset_.images.dim() == 4 && dataset_.images.dtype() == DType::u8 &&
                 dataset_.images.device().is_cpu() && dataset_.images.layout() == Layout::nchw,
             "loader: dataset '", dataset_.source, "' images must be u8 (N, C, H, W) nchw on the cpu");
  for (int i = 0; i < config_.workers; ++i) workers_.emplace_back([this] { work(); });
}

Loader::~Loader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

std::vector<int64_t> loader_epoch_order(const Dataset& dataset, const LoaderConfig& config, int64_t epoch) {
  return config.sampler.kind == SamplerKind::balanced ? balanced_epoch_order(dataset, config.sampler, config.seed, epoch)
                                                      : epoch_order(dataset.size(), config.seed, epoch, config.shuffle);
}

int64_t Loader::batches_per_epoch() const {
  const int64_t n = dataset_.size(), b = config_.batch_size;
  return config_.drop_last ? n / b : (n + b - 1) / b;
}

void Loader::start_epoch(int64_t epoch) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++generation_;
    order_ = loader_epoch_order(dataset_, config_, epoch);
    num_batches_ = batches_per_epoch();
    next_to_fill_ = next_to_return_ = 0;
    ready_.clear();
    failed_.clear();
  }
  changed_.notify_all();
}

bool Loader::next(Batch& batch) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (next_to_return_ >= num_batches_) return false;
  const int64_t wanted = next_to_return_;
  changed_.wait(lock, [&] { return ready_.count(wanted) || failed_.count(wanted); });
  if (failed_.count(wanted)) std::rethrow_exception(failed_[wanted]);
  batch = std::move(ready_[wanted]);
  ready_.erase(wanted);
  ++next_to_return_;
  lock.unlock();
  changed_.notify_all();  // a prefetch slot is free
  return true;
}

void Loader::work() {
  while (true) {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] {
      return stop_ || (next_to_fill_ < num_batches_ && next_to_fill_ < next_to_return_ + config_.prefetch);
    });
    if (stop_) return;
    const int64_t generation = generation_, number = next_to_fill_++;
    const int64_t begin = number * config_.batch_size;
    const int64_t end = std::min<int64_t>(begin + config_.batch_size, static_cast<int64_t>(order_.size()));
    const std::vector<int64_t> indices(order_.begin() + begin, order_.begin() + end);
    lock.unlock();  // copy without the lock: this is the work that runs in parallel

    Batch batch;
    std::exception_ptr error;
    try {
      batch = fill(indices);
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    if (generation != generation_) continue;  // the epoch was restarted meanwhile
    if (error)
      failed_[number] = error;
    else
      ready_[number] = std::move(batch);
    lock.unlock();
    changed_.notify_all();
  }
}

Batch Loader::fill(const std::vector<int64_t>& indices) const {
  const Shape& shape = dataset_.images.shape();
  const int64_t b = static_cast<int64_t>(indices.size()), image_bytes = shape[1] * shape[2] * shape[3];
  Batch batch;
  batch.indices = indices;
  batch.images_u8 = config_.host_buffer({b, shape[1], shape[2], shape[3]}, DType::u8);
  batch.labels = config_.host_buffer({b}, DType::i64);
  const int64_t num_classes = dataset_.targets.defined() ? dataset_.targets.shape()[1] : 0;
  if (dataset_.targets.defined()) batch.targets = config_.host_buffer({b, num_classes}, DType::f32);
  const uint8_t* images = dataset_.images.data<uint8_t>();
  for (int64_t i = 0; i < b; ++i) {
    const int64_t row = indices[static_cast<size_t>(i)];
    std::memcpy(batch.images_u8.data<uint8_t>() + i * image_bytes, images + row * image_bytes,
                static_cast<size_t>(image_bytes));
    batch.labels.data<int64_t>()[i] = dataset_.labels.data<int64_t>()[row];
    if (num_classes)
      std::memcpy(batch.targets.data<float>() + i * num_classes, dataset_.targets.data<float>() + row * num_classes,
                  static_cast<size_t>(num_classes) * sizeof(float));
  }
  return batch;
}

LoaderThroughput measure_loader_throughput(const Dataset& dataset, const LoaderConfig& config,
                                           const LoaderConsumer& consumer, int64_t epoch) {
  Loader loader(dataset, config);
  const auto start = std::chrono::steady_clock::now();
  loader.start_epoch(epoch);
  LoaderThroughput result;
  Batch batch;
  while (loader.next(batch)) {
    if (consumer.consume) consumer.consume(batch);
    result.images += static_cast<int64_t>(batch.indices.size());
  }
  if (consumer.finish) consumer.finish();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.images_per_second = result.seconds > 0 ? static_cast<double>(result.images) / result.seconds : 0;
  return result;
}

}  // namespace kiln::data
