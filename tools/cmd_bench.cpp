// `kiln bench ops`: forward + backward time of every distinct convolution of
// ResNet-18 (the shapes of torchvision's resnet18 at the given batch and size), in
// the chosen dtype and layout. benchmarks/torch_bench_ops.py times the same shapes
// in PyTorch; benchmarks/bench_ops.sh runs both back to back and prints the ratio.
// Output: a table, and with --json one JSON object per shape (for the script).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "engine/core/backend_info.h"
#include "engine/ops/conv.h"
#include "engine/tensor/factory.h"
#include "tools/commands.h"

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
  int64_t batch = 256;
  int64_t size = 224;
  std::string dtype = "bf16";
  std::string layout = "nhwc";
  std::string device = "cuda";
  int warmup = 3, iterations = 10;
  bool json = false;
} options;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int run_bench() {
  KILN_CHECK(options.what == "ops", "bench: unknown benchmark '", options.what, "' (known: ops)");
  const Device device = Device::parse(options.device);
  const DType dtype = parse_dtype(options.dtype);
  const Layout layout = parse_layout(options.layout);
  if (!options.json)
    std::printf("kiln bench ops: ResNet-18 convolutions, batch %lld, %lld px, %s %s on %s (median of %d)\n%-18s %12s %12s\n",
                static_cast<long long>(options.batch), static_cast<long long>(options.size), options.dtype.c_str(),
                options.layout.c_str(), device.to_string().c_str(), options.iterations, "conv", "fwd+bwd ms",
                "TFLOP/s");
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
    if (options.json)
      std::printf("{\"conv\": \"%s\", \"ms\": %.4f, \"tflops\": %.3f}\n", s.name, ms, flops / ms / 1e9);
    else
      std::printf("%-18s %12.3f %12.2f\n", s.name, ms, flops / ms / 1e9);
  }
  return 0;
}

const bool registered = register_command({
    "bench",
    [](CLI::App& app) {
      CLI::App* cmd = app.add_subcommand("bench", "time kiln's kernels (bench ops: ResNet-18 convolutions)");
      cmd->add_option("what", options.what, "what to time: ops")->required();
      cmd->add_option("--batch", options.batch, "batch size")->check(CLI::PositiveNumber);
      cmd->add_option("--size", options.size, "input size in pixels (224 = ImageNet)")->check(CLI::PositiveNumber);
      cmd->add_option("--dtype", options.dtype, "f32, bf16 or f16");
      cmd->add_option("--layout", options.layout, "nhwc (channels-last) or nchw");
      cmd->add_option("--device", options.device, "cuda, cuda:N or cpu");
      cmd->add_option("--warmup", options.warmup, "untimed iterations first");
      cmd->add_option("--iterations", options.iterations, "timed iterations (the median is reported)");
      cmd->add_flag("--json", options.json, "one JSON object per shape instead of a table");
    },
    run_bench,
});

}  // namespace
}  // namespace kiln::tools
