// The whole-model benchmark of `kiln bench train|infer` (see model_bench.h).
#include "tools/model_bench.h"

#include "engine/autograd/autocast.h"
#include "engine/autograd/grad_mode.h"
#include "engine/core/backend_info.h"
#include "engine/core/check.h"
#include "engine/core/step_timer.h"
#include "engine/memory/allocator.h"
#include "engine/ops/loss.h"
#include "engine/optim/loss_scaler.h"
#include "engine/optim/optimizer.h"
#include "engine/tensor/factory.h"
#include "engine/optim/lr_schedule.h"
#include "engine/train/cuda_graph_step.h"
#include "engine/train/precision.h"
#include "engine/train/trainer.h"
#include "models/cnn5.h"
#include "models/registry.h"

namespace kiln::tools {
namespace {

std::shared_ptr<nn::Module> build(const ModelBenchConfig& config, int64_t classes) {
  if (config.model != "cnn5") return models::make_model(config.model, classes);  // names the valid ones
  models::Cnn5Config cnn5;  // the defaults: 32-64-128-256-512 filters, batch norm, dense 256
  cnn5.num_classes = classes;
  cnn5.input_size = config.size;
  return models::make_cnn5(cnn5);
}

}  // namespace

ModelBenchResult run_model_bench(const ModelBenchConfig& config) {
  KILN_CHECK(config.mode == "train" || config.mode == "infer", "bench: unknown benchmark '", config.mode,
             "' (known: ops, train, infer)");
  KILN_CHECK(config.iterations > 0 && config.warmup >= 0, "bench: --iterations must be > 0 and --warmup >= 0, got ",
             config.iterations, " and ", config.warmup);
  const train::Precision precision = train::parse_precision(config.precision);
  train::set_math_mode(precision, config.device);
  const std::optional<DType> low = train::autocast_dtype_of(precision);
  ModelBenchResult result;
  result.classes = config.classes > 0 ? config.classes : (config.model == "cnn5" ? 10 : 1000);
  std::shared_ptr<nn::Module> model = build(config, result.classes);
  model->to(config.device);
  if (config.layout == Layout::nhwc) model->to(Layout::nhwc);
  result.parameters = model->parameter_count();

  Rng rng(config.seed);
  const Tensor images =
      randn({config.batch, 3, config.size, config.size}, rng, {DType::f32, config.device, config.layout});
  std::vector<double> classes(static_cast<size_t>(config.batch));
  for (size_t i = 0; i < classes.size(); ++i) classes[i] = static_cast<double>(rng.next_u64() % result.classes);
  const Tensor labels = from_vector(classes, {config.batch}, {DType::i64}).to(config.device);

  optim::SgdOptions sgd;
  sgd.lr = config.lr;
  sgd.momentum = config.momentum;
  optim::SGD optimizer(model->trainable_parameters(), sgd);
  optim::LossScaler scaler;  // used for f16 only
  const bool train = config.mode == "train";
  model->train(train);

  std::unique_ptr<train::CudaGraphStep> graph_step;
  if (config.cuda_graph) {
    KILN_CHECK(train, "bench: --cuda-graph times training steps (bench train), not ", config.mode);
    KILN_CHECK(config.warmup >= 3,
               "bench: --cuda-graph needs --warmup 3 or more (2 eager steps, then the capture), got ", config.warmup);
    optimizer.set_lr_schedule(optim::ConstantLr().params(), 0);  // the lr read on the device: no host argument
    train::TrainSetup setup;  // what kiln train would refuse is refused here too (dropout, a CPU device)
    setup.device = config.device;
    train::check_cuda_graph_setup(setup, *model, optimizer);
    graph_step = std::make_unique<train::CudaGraphStep>(config.device, 2);
  }
  auto eager_step = [&](const Tensor& batch_images, const Tensor& batch_labels) {
    if (train) {
      optimizer.zero_grad();
      Tensor loss;
      {
        AutocastGuard autocast(low);  // the forward and the loss; backward follows the recorded dtypes
        loss = cross_entropy(model->forward(batch_images).to(DType::f32), batch_labels);
      }
      if (train::needs_loss_scaling(precision)) {
        scaler.scale(loss).backward();
        scaler.step(optimizer);
      } else {
        loss.backward();
        optimizer.step();
      }
    } else {
      NoGradGuard no_grad;
      AutocastGuard autocast(low);
      model->forward(batch_images);
    }
  };
  auto step = [&] {
    if (!graph_step) return eager_step(images, labels);
    const bool replayed =
        graph_step->run({images, labels}, [&](const std::vector<Tensor>& fixed) { eager_step(fixed[0], fixed[1]); });
    if (replayed) optimizer.count_replayed_step();
  };

  for (int i = 0; i < config.warmup; ++i) step();
  synchronize(config.device);
  Allocator& allocator = allocator_for(config.device);
  allocator.reset_peak();
  StepTimer timer(config.device);
  for (int i = 0; i < config.iterations; ++i) {
    timer.start();
    step();
    timer.stop();
  }
  result.median_ms = median(timer.elapsed_ms());
  result.images_per_second = static_cast<double>(config.batch) / (result.median_ms / 1e3);
  result.peak_memory_mb = static_cast<double>(allocator.stats().peak_bytes_in_use) / (1 << 20);
  result.skipped_steps = scaler.skipped_steps();
  result.loss_scale = train::needs_loss_scaling(precision) && train ? scaler.current_scale() : 0;
  return result;
}

}  // namespace kiln::tools
