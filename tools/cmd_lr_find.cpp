// `kiln lr-find DATA --model cnn5 ... -o lr.svg`: the learning-rate range test.
// Trains a fresh model for --steps steps while the lr grows exponentially from
// --start-lr to --end-lr, plots the smoothed loss against the lr (SVG, log-x), and
// prints the lr where the loss falls fastest: a good --lr (or max_lr for one-cycle)
// for `kiln train` with the same flags.
#include <cstdio>

#include "data/loader.h"
#include "engine/augment/augment.h"
#include "engine/nn/init.h"
#include "engine/ops/loss.h"
#include "engine/optim/lr_finder.h"
#include "engine/optim/optimizer.h"
#include "tools/commands.h"
#include "tools/data_options.h"
#include "tools/model_options.h"
#include "weights/atomic_file.h"

namespace kiln::tools {
namespace {

struct LrFindOptions {
  DataOptions data;
  ModelOptions model;
  std::string optimizer = "adamw";
  double weight_decay = 5e-4, momentum = 0.9;
  int64_t batch_size = 64;
  optim::LrFinderOptions sweep;
  std::string augment;
  std::string device = "auto";
  std::string output = "lr_find.svg";
} options;

int run_lr_find() {
  LrFindOptions& o = options;
  augment::AugmentSpec spec = augment::parse_augment_spec(o.augment);
  const Device device = resolve_device(o.device);
  const PreparedData data = prepare_data(o.data, "");
  nn::init::manual_seed(o.data.seed);
  BuiltModel built = build_model(o.model, data.train);
  built.module->to(device);
  built.module->train();
  optim::OptimizerOptions optimizer_options;
  optimizer_options.momentum = o.momentum;
  auto optimizer = optim::make_optimizer(
      o.optimizer, optim::param_groups_no_decay_on_norms_and_biases(*built.module, o.sweep.start_lr, o.weight_decay),
      optimizer_options);

  data::LoaderConfig loader_config;
  loader_config.batch_size = o.batch_size;
  loader_config.seed = o.data.seed;
  loader_config.drop_last = true;
  data::Loader loader(data.train, loader_config);
  int64_t epoch = 0, step = 0;
  loader.start_epoch(epoch);
  // One training step at `lr`; the loader wraps around into a new epoch when needed.
  auto train_step = [&](double lr) {
    data::Batch batch;
    if (!loader.next(batch)) {
      loader.start_epoch(++epoch);
      KILN_CHECK(loader.next(batch), "lr-find: the training set has fewer images than one batch");
    }
    for (auto& group : optimizer->groups()) group.lr = lr;
    const Tensor x = augment::augment_batch(batch.images_u8.to(device), spec, built.image, static_cast<uint64_t>(step++));
    optimizer->zero_grad();
    const Tensor loss = cross_entropy(built.module->forward(x), batch.labels.to(device));
    loss.backward();
    optimizer->step();
    return loss.to(Device::cpu()).item();
  };
  std::printf("lr-find: %s, %s, lr %.1e -> %.1e over %lld steps of %lld images\n", built.description.c_str(),
              o.optimizer.c_str(), o.sweep.start_lr, o.sweep.end_lr, static_cast<long long>(o.sweep.steps),
              static_cast<long long>(o.batch_size));
  const optim::LrFinderResult result = optim::run_lr_finder(train_step, o.sweep);
  write_file_atomically(o.output, [&](std::ostream& out) { out << optim::lr_finder_svg(result); });
  std::printf("%s after %zu steps; suggested lr %.3g (steepest descent of the smoothed loss); plot: %s\n",
              result.diverged ? "loss diverged" : "sweep finished", result.lrs.size(), result.suggested_lr,
              o.output.c_str());
  return 0;
}

const bool registered = register_command({
    "lr-find",
    [](CLI::App& app) {
      CLI::App* cmd = app.add_subcommand("lr-find", "learning-rate range test: plot loss against lr, suggest an lr");
      LrFindOptions& o = options;
      add_data_options(cmd, o.data);
      add_model_options(cmd, o.model);
      cmd->add_option("--optimizer", o.optimizer, "sgd, adam, adamw, nadam or radam")->capture_default_str();
      cmd->add_option("--weight-decay", o.weight_decay, "weight decay (not on biases and norms)")->capture_default_str();
      cmd->add_option("--momentum", o.momentum, "SGD momentum")->capture_default_str();
      cmd->add_option("--batch-size", o.batch_size, "images per step")->capture_default_str()->check(CLI::PositiveNumber);
      cmd->add_option("--start-lr", o.sweep.start_lr, "first lr of the sweep")->capture_default_str();
      cmd->add_option("--end-lr", o.sweep.end_lr, "last lr of the sweep")->capture_default_str();
      cmd->add_option("--steps", o.sweep.steps, "steps of the sweep")->capture_default_str();
      cmd->add_option("--augment", o.augment, "training augmentation, as for kiln train");
      cmd->add_option("--device", o.device, "auto, cpu or cuda:N")->capture_default_str();
      cmd->add_option("-o,--output", o.output, "the SVG plot to write")->capture_default_str();
    },
    run_lr_find,
});

}  // namespace
}  // namespace kiln::tools
