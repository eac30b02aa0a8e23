// `kiln bench`: speed measurements, each with a PyTorch twin in benchmarks/.
//
//   kiln bench ops    forward + backward time of every distinct convolution of
//                     ResNet-18 (torchvision's shapes at the given batch and size), in
//                     the chosen dtype and layout; twin: benchmarks/torch_bench_ops.py,
//                     both run by benchmarks/bench_ops.sh
//   kiln bench ops --convs mobilenet_v2_depthwise
//                     forward and backward time of MobileNetV2's depthwise 3x3
//                     convolutions, once per implementation: kiln's kernel and cuDNN
//                     on a GPU, the direct kernel and grouped im2col + GEMM on the CPU
//   kiln bench train  images/s of a whole training step (forward, f32 loss, backward,
//   kiln bench infer  SGD momentum) or of inference; tools/model_bench.h says what is
//                     timed; twin: benchmarks/torch_bench.py, both run by
//                     benchmarks/bench_compare.sh
//   kiln bench loader DATA   images/s the data loader delivers (worker threads copying
//                     batches out of a pack); with --device also the copy to that device
//                     (pinned and asynchronous on a GPU) and the fused augmentation
//                     there, the number to hold against `kiln bench train` images/s
//                     (docs/benchmarks.md, "Loader throughput")
//
// Output: a table or a summary line, and with --json FILE the same numbers as JSON
// (one object per line) for the comparison scripts.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <ostream>
#include <vector>

#include "data/loader.h"
#include "engine/augment/augment.h"
#include "engine/core/backend_info.h"
#include "engine/core/cpu_threads.h"
#include "engine/core/step_timer.h"
#include "engine/ops/conv.h"
#include "engine/tensor/async_upload.h"
#include "engine/tensor/factory.h"
#include "tools/commands.h"
#include "tools/data_options.h"
#include "tools/model_bench.h"
#include "tools/model_options.h"
#include "weights/atomic_file.h"

namespace kiln::tools {
namespace {

struct ConvShape {
  const char* name;
  int64_t in_channels, out_channels;
  int kernel, stride, padding;
  int64_t input_size;  // at 224 px; scaled with --size
};

// The distinct convolutions of ResNet-18 at 224 px (torchvision layout).
const ConvShape kResnet18Convs[] = {
    {"conv1 7x7/2", 3, 64, 7, 2, 3, 224},          {"layer1 3x3", 64, 64, 3, 1, 1, 56},
    {"layer2.0 3x3/2", 64, 128, 3, 2, 1, 56},      {"layer2 3x3", 128, 128, 3, 1, 1, 28},
    {"layer2.ds 1x1/2", 64, 128, 1, 2, 0, 56},     {"layer3.0 3x3/2", 128, 256, 3, 2, 1, 28},
    {"layer3 3x3", 256, 256, 3, 1, 1, 14},         {"layer3.ds 1x1/2", 128, 256, 1, 2, 0, 28},
    {"layer4.0 3x3/2", 256, 512, 3, 2, 1, 14},     {"layer4 3x3", 512, 512, 3, 1, 1, 7},
    {"layer4.ds 1x1/2", 256, 512, 1, 2, 0, 14},
};

struct BenchOptions {
  std::string what = "ops";
  std::string model = "resnet18";
  int64_t classes = 0;
  int64_t batch = 256;
  int64_t size = 224;
  std::string dtype = "bf16";      // ops
  std::string precision = "bf16";  // train, infer: f32 | tf32 | bf16 | f16
  std::string layout;              // "": nhwc on a GPU, nchw on the CPU
  std::string device = "auto";
  int warmup = -1, iterations = -1;  // -1: 3 and 10 for ops, 10 and 50 for train/infer
  std::string json;                // file for JSON lines; "" = none
  std::string convs = "resnet18";  // ops: resnet18 | mobilenet_v2_depthwise
  bool cuda_graph = false;         // train on a GPU: replay the step as a captured CUDA graph
  // loader
  std::string data;                // DATA: a folder, CSV, .kpack or fashion-mnist
  int workers = 2;
  std::string augment;             // --device only: the training augmentation timed on the device
  std::string cache_dir = ".cache/kiln";
  bool on_device = false;          // --device given: time the copy and the augmentation too
} options;

// Writes the JSON lines to --json FILE (atomically), when one was given.
void write_json(const std::vector<nlohmann::json>& rows) {
  if (options.json.empty()) return;
  write_file_atomically(options.json, [&](std::ostream& out) {
    for (const nlohmann::json& row : rows) out << row.dump() << "\n";
  });
}

int run_ops(const Device& device, Layout layout) {
  const DType dtype = parse_dtype(options.dtype);
  if (options.warmup < 0) options.warmup = 3;
  if (options.iterations < 0) options.iterations = 10;
  std::vector<nlohmann::json> rows;
  std::printf("kiln bench ops: ResNet-18 convolutions, batch %lld, %lld px, %s %s on %s (median of %d)\n"
              "%-18s %12s %12s\n",
              static_cast<long long>(options.batch), static_cast<long long>(options.size), options.dtype.c_str(),
              layout == Layout::nhwc ? "nhwc" : "nchw", device.to_string().c_str(), options.iterations, "conv",
              "fwd+bwd ms", "TFLOP/s");
  Rng rng(0);
  for (const ConvShape& s : kResnet18Convs) {
    const int64_t h = std::max<int64_t>(1, s.input_size * options.size / 224);
    const TensorOptions where{dtype, device, layout};
    Tensor x = randn({options.batch, s.in_channels, h, h}, rng, where).set_requires_grad(true);
    Tensor w = randn({s.out_channels, s.in_channels, s.kernel, s.kernel}, rng, where).set_requires_grad(true);
    const Conv2dParams params{{s.stride, s.stride}, {s.padding, s.padding}, {1, 1}, 1};
    Tensor grad = Tensor();
    std::vector<double> times;
    for (int i = 0; i < options.warmup + options.iterations; ++i) {
      synchronize(device);
      const auto start = std::chrono::steady_clock::now();
      Tensor y = conv2d(x, w, Tensor(), params);
      if (!grad.defined()) grad = randn(y.shape(), rng, {dtype, device, y.layout()});
      y.backward(grad);
      synchronize(device);
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
      if (i >= options.warmup) times.push_back(ms);
      x.zero_grad();
      w.zero_grad();
    }
    const int64_t ho = (h + 2 * s.padding - s.kernel) / s.stride + 1;
    // forward, backward-input and backward-weight each cost 2*N*K*C*R*S*Ho*Wo flops
    // (backward-input skipped for conv1, whose input needs no gradient in a real net; kept here for symmetry).
    const double flops = 3.0 * 2.0 * static_cast<double>(options.batch * s.out_channels * s.in_channels) * s.kernel *
                         s.kernel * static_cast<double>(ho * ho);
    const double ms = median(times);
    std::printf("%-18s %12.3f %12.2f\n", s.name, ms, flops / ms / 1e9);
    rows.push_back({{"conv", s.name}, {"ms", ms}, {"tflops", flops / ms / 1e9}});
  }
  write_json(rows);
  return 0;
}

// The depthwise 3x3 convolutions of MobileNetV2 at 224 px (channels, input size, stride).
struct DepthwiseShape {
  const char* name;
  int64_t channels;
  int stride;
  int64_t input_size;  // at 224 px; scaled with --size
};
const DepthwiseShape kMobilenetV2Depthwise[] = {
    {"dw 32@112 s1", 32, 1, 112}, {"dw 96@112 s2", 96, 2, 112}, {"dw 144@56 s1", 144, 1, 56},
    {"dw 144@56 s2", 144, 2, 56}, {"dw 192@28 s1", 192, 1, 28}, {"dw 192@28 s2", 192, 2, 28},
    {"dw 384@14 s1", 384, 1, 14}, {"dw 576@14 s1", 576, 1, 14}, {"dw 576@14 s2", 576, 2, 14},
    {"dw 960@7 s1", 960, 1, 7},
};

// Forward and backward (input + weight gradients) timed apart, per implementation,
// with depthwise_conv_path() forced to each (engine/ops/conv.h).
int run_depthwise_ops(const Device& device, Layout layout) {
  const DType dtype = parse_dtype(options.dtype);
  if (options.warmup < 0) options.warmup = 3;
  if (options.iterations < 0) options.iterations = 10;
  const bool gpu = device.is_cuda();
  const std::pair<DepthwiseConvPath, const char*> paths[] = {
      {DepthwiseConvPath::custom, gpu ? "kiln" : "direct"}, {DepthwiseConvPath::library, gpu ? "cudnn" : "gemm"}};
  std::printf("kiln bench ops: MobileNetV2 depthwise 3x3 convolutions, batch %lld, %lld px, %s %s on %s "
              "(median of %d)\n%-14s %-7s %10s %10s %10s\n",
              static_cast<long long>(options.batch), static_cast<long long>(options.size), options.dtype.c_str(),
              layout == Layout::nhwc ? "nhwc" : "nchw", device.to_string().c_str(), options.iterations, "conv", "impl",
              "fwd ms", "bwd ms", "fwd GB/s");
  const DepthwiseConvPath saved = depthwise_conv_path();
  std::vector<nlohmann::json> rows;
  Rng rng(0);
  for (const DepthwiseShape& s : kMobilenetV2Depthwise) {
    const int64_t h = std::max<int64_t>(1, s.input_size * options.size / 224);
    const TensorOptions where{dtype, device, layout};
    Tensor x = randn({options.batch, s.channels, h, h}, rng, where).set_requires_grad(true);
    Tensor w = randn({s.channels, 1, 3, 3}, rng, where).set_requires_grad(true);
    const Conv2dParams params{{s.stride, s.stride}, {1, 1}, {1, 1}, static_cast<int>(s.channels)};
    Tensor grad;
    for (const auto& [path, impl] : paths) {
      set_depthwise_conv_path(path);
      std::vector<double> forward_ms, backward_ms;
      for (int i = 0; i < options.warmup + options.iterations; ++i) {
        synchronize(device);
        const auto start = std::chrono::steady_clock::now();
        Tensor y = conv2d(x, w, Tensor(), params);
        synchronize(device);
        const auto middle = std::chrono::steady_clock::now();
        if (!grad.defined()) grad = randn(y.shape(), rng, {dtype, device, y.layout()});
        y.backward(grad);
        synchronize(device);
        const auto end = std::chrono::steady_clock::now();
        if (i >= options.warmup) {
          forward_ms.push_back(std::chrono::duration<double, std::milli>(middle - start).count());
          backward_ms.push_back(std::chrono::duration<double, std::milli>(end - middle).count());
        }
        x.zero_grad();
        w.zero_grad();
      }
      // The forward reads x and writes y once at best: its bytes over its time.
      const double bytes = static_cast<double>(x.numel() + grad.numel()) * static_cast<double>(size_of(dtype));
      const double fwd = median(forward_ms), bwd = median(backward_ms);
      std::printf("%-14s %-7s %10.3f %10.3f %10.1f\n", s.name, impl, fwd, bwd, bytes / fwd / 1e6);
      rows.push_back({{"conv", s.name}, {"impl", impl}, {"fwd_ms", fwd}, {"bwd_ms", bwd}});
    }
  }
  set_depthwise_conv_path(saved);
  write_json(rows);
  return 0;
}

int run_model(const Device& device, Layout layout) {
  ModelBenchConfig config;
  config.mode = options.what;
  config.model = options.model;
  config.classes = options.classes;
  config.batch = options.batch;
  config.size = options.size;
  config.precision = options.precision;
  config.device = device;
  config.layout = layout;
  config.warmup = options.warmup < 0 ? 10 : options.warmup;
  config.iterations = options.iterations < 0 ? 50 : options.iterations;
  config.cuda_graph = options.cuda_graph;
  const ModelBenchResult r = run_model_bench(config);
  const char* layout_name = layout == Layout::nhwc ? "nhwc" : "nchw";
  std::printf("kiln bench %s: %s (%.2fM parameters, %lld classes), batch %lld, %lld px, %s, %s on %s, %d CPU threads%s\n",
              config.mode.c_str(), config.model.c_str(), static_cast<double>(r.parameters) / 1e6,
              static_cast<long long>(r.classes), static_cast<long long>(config.batch),
              static_cast<long long>(config.size), config.precision.c_str(), layout_name, device.to_string().c_str(),
              cpu_threads(), device.is_cpu() ? (", convolutions on " + cpu_conv_description()).c_str() : "");
  std::printf("  %.1f images/s   median step %.3f ms of %d (after %d warm-up)   peak memory %.1f MiB%s\n",
              r.images_per_second, r.median_ms, config.iterations, config.warmup, r.peak_memory_mb,
              config.cuda_graph ? "   (CUDA graph replays)" : "");
  if (r.loss_scale > 0)
    std::printf("  f16 loss scaling: %lld skipped steps, scale %g\n", static_cast<long long>(r.skipped_steps),
                r.loss_scale);
  write_json({{{"framework", "kiln"}, {"mode", config.mode}, {"model", config.model}, {"classes", r.classes},
               {"batch", config.batch}, {"size", config.size}, {"precision", config.precision},
               {"layout", layout_name}, {"device", device.to_string()}, {"threads", cpu_threads()},
               {"cpu_conv", cpu_conv_description()}, {"warmup", config.warmup}, {"cuda_graph", config.cuda_graph},
               {"iterations", config.iterations}, {"median_ms", r.median_ms},
               {"images_per_second", r.images_per_second}, {"peak_memory_mb", r.peak_memory_mb},
               {"skipped_steps", r.skipped_steps}}});
  return 0;
}

// Epochs through the loader; with --device, each batch is also copied to the device
// and augmented there, and an epoch's clock stops once the device has finished.
int run_loader(const Device& device, Layout layout) {
  KILN_CHECK(!options.data.empty(), "bench loader: give the DATA to load (a folder, CSV, .kpack or fashion-mnist)");
  DataOptions data_options;
  data_options.size = options.size;
  data_options.cache_dir = options.cache_dir;
  const data::Dataset dataset = load_data(data_options, options.data);  // a folder is packed on first use
  const augment::AugmentSpec spec = augment::parse_augment_spec(options.augment);
  augment::AugmentParams image;
  image.out_size = options.size;
  const size_t channels = static_cast<size_t>(dataset.images.shape()[1]);
  image.mean.assign(channels, 0.5);  // the values do not change the speed
  image.std.assign(channels, 0.5);
  image.layout = layout;
  data::LoaderConfig config;
  config.batch_size = options.batch;
  config.workers = options.workers;
  config.drop_last = dataset.size() > options.batch;
  data::LoaderConsumer consumer;
  AsyncUpload upload;  // as in the trainer: the previous batch's copy is held until the next one starts
  uint64_t step = 0;
  if (options.on_device) {
    if (device.is_cuda())
      config.host_buffer = [](const Shape& shape, DType dtype) { return empty_pinned(shape, dtype); };
    consumer.consume = [&](const data::Batch& batch) {
      upload = AsyncUpload({batch.images_u8, batch.labels}, device);
      augment::augment_batch(upload.device_tensor(0), spec, image, step++);
    };
    consumer.finish = [&] { synchronize(device); };
  }
  // --warmup untimed epochs (default 0), then --iterations timed ones (default 3),
  // each a new Loader (so its workers' start-up counts), in the orders of epochs 0, 1, ...
  const int warmup = options.warmup < 0 ? 0 : options.warmup, epochs = options.iterations < 0 ? 3 : options.iterations;
  KILN_CHECK(epochs >= 1, "bench loader: --iterations (timed epochs) must be at least 1, got ", epochs);
  for (int e = 0; e < warmup; ++e) data::measure_loader_throughput(dataset, config, consumer, e);
  std::vector<double> per_epoch;
  int64_t images = 0;
  double seconds = 0;
  for (int e = 0; e < epochs; ++e) {
    const data::LoaderThroughput r = data::measure_loader_throughput(dataset, config, consumer, warmup + e);
    per_epoch.push_back(r.images_per_second);
    images += r.images;
    seconds += r.seconds;
  }
  const double median_images_per_second = median(per_epoch);
  const double total_images_per_second = seconds > 0 ? static_cast<double>(images) / seconds : 0;
  const std::string where = options.on_device ? device.to_string() : "host";
  const std::string pipeline =
      options.on_device ? str("copied to ", where, " and augmented to ", options.size, " px (",
                              options.augment.empty() ? "resize only" : options.augment, ")")
                        : std::string("loading only (no --device)");
  std::printf("kiln bench loader: %s (%lld images %lldx%lld), batch %lld, %d workers, %s\n", options.data.c_str(),
              static_cast<long long>(dataset.size()), static_cast<long long>(dataset.images.shape()[2]),
              static_cast<long long>(dataset.images.shape()[3]), static_cast<long long>(options.batch),
              options.workers, pipeline.c_str());
  std::printf("  %.1f images/s median of %d epochs (after %d warm-up)   %.1f images/s total (%lld images in %.3f s)\n",
              median_images_per_second, epochs, warmup, total_images_per_second, static_cast<long long>(images),
              seconds);
  write_json({{{"framework", "kiln"}, {"mode", "loader"}, {"data", options.data}, {"batch", options.batch},
               {"size", options.size}, {"workers", options.workers}, {"augment", options.augment},
               {"device", where}, {"warmup", warmup}, {"iterations", epochs}, {"images", images},
               {"seconds", seconds}, {"median_images_per_second", median_images_per_second},
               {"images_per_second", total_images_per_second}}});
  return 0;
}

int run_bench() {
  KILN_CHECK(options.data.empty() || options.what == "loader", "bench ", options.what, ": DATA ('", options.data,
             "') is for `kiln bench loader` only");
  const Device device = resolve_device(options.device);
  const Layout layout = parse_layout(options.layout.empty() ? (device.is_cuda() ? "nhwc" : "nchw") : options.layout);
  if (options.what == "ops" && options.convs == "mobilenet_v2_depthwise") return run_depthwise_ops(device, layout);
  if (options.what == "ops") return run_ops(device, layout);
  if (options.what == "loader") return run_loader(device, layout);
  return run_model(device, layout);
}

const bool registered = register_command({
    "bench",
    [](CLI::App& app) {
      CLI::App* cmd = app.add_subcommand(
          "bench",
          "time kiln: ops (ResNet-18 convolutions), train or infer (images/s of a whole model), loader (images/s of "
          "the data pipeline)");
      cmd->add_option("what", options.what, "what to time: ops, train, infer or loader")
          ->required()
          ->check(CLI::IsMember({"ops", "train", "infer", "loader"}));
      cmd->add_option("data", options.data, "loader: DATA, a folder (packed at --size on first use), CSV, .kpack");
      cmd->add_option("--model", options.model, "train/infer: a model name (kiln models) or cnn5")
          ->capture_default_str();
      cmd->add_option("--classes", options.classes, "train/infer: output classes (default 1000, cnn5 10)");
      cmd->add_option("--batch", options.batch, "batch size")->check(CLI::PositiveNumber)->capture_default_str();
      cmd->add_option("--size", options.size, "input size in pixels (224 = ImageNet)")
          ->check(CLI::PositiveNumber)
          ->capture_default_str();
      cmd->add_option("--precision", options.precision,
                      "train/infer: f32, tf32 (TF32 tensor cores for f32 math), "
                      "bf16 or f16 (autocast, f32 master weights)")
          ->capture_default_str();
      cmd->add_option("--dtype", options.dtype, "ops: f32, bf16 or f16")->capture_default_str();
      cmd->add_option("--layout", options.layout,
                      "nhwc (channels-last) or nchw (default: nhwc on a GPU, nchw on the cpu)");
      cmd->add_option("--device", options.device,
                      "auto, cuda, cuda:N or cpu; loader: given, the batches are also copied there and augmented")
          ->capture_default_str()
          ->each([](const std::string&) { options.on_device = true; });
      cmd->add_option("--workers", options.workers, "loader: worker threads")
          ->check(CLI::PositiveNumber)
          ->capture_default_str();
      cmd->add_option("--augment", options.augment, "loader --device: the training augmentation (kiln train's syntax)");
      cmd->add_option("--cache-dir", options.cache_dir, "loader: where a folder's pack is kept")->capture_default_str();
      cmd->add_option("--warmup", options.warmup, "untimed steps first (default: ops 3, train/infer 10; loader 0 epochs)");
      cmd->add_option("--iterations", options.iterations,
                      "timed steps, the median is reported (default: ops 10, train/infer 50; loader 3 epochs)");
      cmd->add_option("--convs", options.convs,
                      "ops: which convolutions, resnet18 or mobilenet_v2_depthwise (kiln's kernel vs cuDNN, "
                      "or the direct kernel vs im2col + GEMM on the cpu)")
          ->check(CLI::IsMember({"resnet18", "mobilenet_v2_depthwise"}))
          ->capture_default_str();
      cmd->add_flag("--cuda-graph", options.cuda_graph,
                    "train on a GPU: capture the step as a CUDA graph during the warm-up and time its replays");
      cmd->add_option("--json", options.json, "also write the results to FILE as JSON lines");
    },
    run_bench,
});

}  // namespace
}  // namespace kiln::tools
