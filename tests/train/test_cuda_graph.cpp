// --cuda-graph on the emulated GPU (engine/train/cuda_graph_step.h): a run whose
// steps are replays of a captured graph equals the same run stepped eagerly, bit for
// bit — the same kernels, in the same order, on the same arguments, so any state the
// step changed on the host instead of on the device (an lr, a counter, a tensor
// re-allocated instead of updated in place) shows up as a difference. Also: a new
// input shape gets its own graph; a host read or an allocation the warm-up did not
// make inside the captured step is named in the error; options that need the host
// every step are refused by name. The emulator's capture rules themselves are tested
// in tests/emulator/test_emulated_graphs.cpp.
#include <doctest/doctest.h>

#include <cstdlib>
#include <map>

#include "engine/autograd/grad_mode.h"
#include "engine/metrics/running_totals.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/loss.h"
#include "engine/optim/adam.h"
#include "engine/optim/lr_schedule.h"
#include "engine/tensor/factory.h"
#include "engine/train/cuda_graph_step.h"
#include "engine/train/trainer.h"
#include "test_util.h"
#include "train/toy_task.h"

using namespace kiln;

namespace {

// The toy net without its dropout (a captured step cannot draw dropout masks).
std::shared_ptr<nn::Sequential> graph_model() {
  nn::init::manual_seed(5);
  auto net = std::make_shared<nn::Sequential>();
  net->add(std::make_shared<nn::Conv2d>(3, 8, 3, 1, 1))
      .add(std::make_shared<nn::BatchNorm>(8))
      .add(std::make_shared<nn::ActivationLayer>(Activation::relu))
      .add(std::make_shared<nn::MaxPool2d>(Pool2dParams{}))
      .add(std::make_shared<nn::Flatten>())
      .add(std::make_shared<nn::Linear>(8 * 6 * 6, 3));
  return net;
}

std::map<std::string, std::vector<double>> host_state(nn::Module& model) {
  std::map<std::string, std::vector<double>> state;
  for (auto& [name, t] : model.state_dict()) state[name] = t.to(Device::cpu()).to(DType::f64).to_vector();
  return state;
}

// Images [first, first + n) of a u8 (N, 3, 12, 12) set, cropped to size x size from
// the top left and scaled to [0, 1] f32, on the host.
Tensor top_left_crop(const Tensor& images_u8, int64_t first, int64_t n, int64_t size) {
  Tensor out = empty({n, 3, size, size}, {DType::f32});
  const uint8_t* in = images_u8.data<uint8_t>();
  float* o = out.data<float>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t y = 0; y < size; ++y)
        for (int64_t x = 0; x < size; ++x)
          o[((i * 3 + c) * size + y) * size + x] = in[(((first + i) * 3 + c) * 12 + y) * 12 + x] / 255.0f;
  return out;
}

enum class Opt { sgd_cyclic, adamw_cosine };

struct RunResult {
  std::map<std::string, std::vector<double>> state;
  std::vector<train::EpochStats> epochs;
  int64_t optimizer_steps = 0;
  double last_lr = 0;
};

RunResult train_toy(Opt opt, train::Precision precision, bool cuda_graph, int epochs, double clip = 0) {
  const data::Dataset train_set = test::toy::dataset(1), val_set = test::toy::dataset(2);
  auto model = graph_model();
  model->to(Device::cuda(0));
  std::unique_ptr<optim::Optimizer> optimizer;
  std::unique_ptr<optim::LrSchedule> schedule;
  if (opt == Opt::sgd_cyclic) {
    optimizer = std::make_unique<optim::SGD>(model->parameters(), test::toy::sgd_options());
    schedule = optim::make_lr_schedule("cyclic:base_lr=0.005,max_lr=0.05,step_size_up=3", {0.05, 6 * epochs});
  } else {
    optim::AdamOptions adam;
    adam.variant = optim::AdamVariant::adamw;
    optimizer = std::make_unique<optim::AdamFamily>(
        std::vector<optim::ParamGroup>{optim::ParamGroup{model->parameters(), 3e-3, 1e-2, "all"}}, adam);
    schedule = optim::make_lr_schedule("cosine:warmup=2", {3e-3, 6 * epochs});
  }
  train::TrainSetup setup = test::toy::setup("", epochs);
  setup.device = Device::cuda(0);
  setup.precision = precision;
  setup.deterministic = true;
  setup.cuda_graph = cuda_graph;
  setup.clip_grad_norm = clip;  // the norm and the factor stay on the device
  setup.log_interval = 4;
  const optim::LrSchedule* s = schedule.get();
  train::Trainer trainer(*model, *optimizer, [s](int64_t step) { return s->lr_factor(step); }, setup);
  optimizer->set_lr_schedule(schedule->params(), 0);
  RunResult result;
  result.epochs = trainer.fit(train_set, val_set);
  result.state = host_state(*model);
  result.optimizer_steps = optimizer->step_count();
  result.last_lr = optimizer->groups().front().lr;
  return result;
}

void check_same_run(const RunResult& graphed, const RunResult& eager) {
  REQUIRE(graphed.epochs.size() == eager.epochs.size());
  for (size_t e = 0; e < eager.epochs.size(); ++e) {
    CAPTURE(e);
    CHECK(graphed.epochs[e].train_loss == eager.epochs[e].train_loss);
    CHECK(graphed.epochs[e].train_accuracy == eager.epochs[e].train_accuracy);
    CHECK(graphed.epochs[e].val_loss == eager.epochs[e].val_loss);
    CHECK(graphed.epochs[e].val_accuracy == eager.epochs[e].val_accuracy);
    CHECK(graphed.epochs[e].lr == eager.epochs[e].lr);
    CHECK(graphed.epochs[e].host_reads == eager.epochs[e].host_reads);
    CHECK(eager.epochs[e].graph_replays == 0);
  }
  CHECK(graphed.optimizer_steps == eager.optimizer_steps);
  CHECK(graphed.last_lr == eager.last_lr);
  REQUIRE(graphed.state.size() == eager.state.size());
  for (const auto& [name, values] : eager.state) {
    CAPTURE(name);
    CHECK(graphed.state.at(name) == values);  // parameters and batch-norm statistics, bit for bit
  }
}

}  // namespace

TEST_CASE("cuda graph: a trainer run of replayed steps equals the eager run bit for bit" * doctest::test_suite("gpu")) {
  if (test::skip_without_gpu("cuda graph training")) return;
  // 96 images, batches of 16: 6 steps an epoch, 12 in all: 2 warm-up steps, 1 captured, 9 replays.
  struct Case {
    const char* name;
    Opt opt;
    train::Precision precision;
    double clip = 0;
  };
  for (const Case& c : {Case{"sgd cyclic f32", Opt::sgd_cyclic, train::Precision::f32},
                        Case{"adamw cosine f32", Opt::adamw_cosine, train::Precision::f32},
                        Case{"sgd cyclic bf16", Opt::sgd_cyclic, train::Precision::bf16},
                        Case{"adamw cosine f16 (loss scaling)", Opt::adamw_cosine, train::Precision::f16},
                        Case{"sgd cyclic f32, gradients clipped", Opt::sgd_cyclic, train::Precision::f32, 0.5},
                        Case{"adamw cosine f16, gradients clipped", Opt::adamw_cosine, train::Precision::f16, 0.5}}) {
    CAPTURE(c.name);
    const RunResult eager = train_toy(c.opt, c.precision, false, 2, c.clip);
    const RunResult graphed = train_toy(c.opt, c.precision, true, 2, c.clip);
    CHECK(graphed.epochs[0].graph_replays == 3);  // steps 4-6 (3 is the capture)
    CHECK(graphed.epochs[1].graph_replays == 6);
    check_same_run(graphed, eager);
  }
}

TEST_CASE("cuda graph: replays queued far ahead of the device (deferred emulated streams) equal the eager run" *
          doctest::test_suite("gpu")) {
  if (test::skip_without_gpu("cuda graph, deferred streams")) return;
  // KILN_EMULATE_STREAMS=deferred runs queued work only at synchronisation points, the
  // way a GPU runs far behind the host: a fixed input buffer refilled before the
  // previous replay read it, or a pool block handed out while a replay still uses
  // it, would change the numbers. (On a real GPU the variable changes nothing.)
  const RunResult eager = train_toy(Opt::sgd_cyclic, train::Precision::f32, false, 2);
  setenv("KILN_EMULATE_STREAMS", "deferred", 1);
  RunResult graphed;
  try {
    graphed = train_toy(Opt::sgd_cyclic, train::Precision::f32, true, 2);
  } catch (...) {
    unsetenv("KILN_EMULATE_STREAMS");
    throw;
  }
  unsetenv("KILN_EMULATE_STREAMS");
  CHECK(graphed.epochs[1].graph_replays == 6);
  check_same_run(graphed, eager);
}

TEST_CASE("cuda graph: each input shape gets its own graph, and shapes may alternate (a short last batch, a resize)" *
          doctest::test_suite("gpu")) {
  if (test::skip_without_gpu("cuda graph shapes")) return;
  const data::Dataset images = test::toy::dataset(1);
  // Batch sizes 16, 7 (a short last batch) and 16 at another image size (a progressive-resize switch).
  const std::vector<std::pair<int64_t, int64_t>> steps = {{16, 12}, {16, 12}, {7, 12}, {16, 12}, {16, 12}, {7, 12},
                                                          {16, 8},  {16, 12}, {7, 12}, {16, 8},  {16, 8},  {16, 12},
                                                          {7, 12},  {16, 8},  {16, 12}};
  const auto run = [&](bool graphed) {
    // A global pool makes the classifier size-independent: conv -> bn -> relu -> mean over H, W.
    nn::init::manual_seed(9);
    auto net = std::make_shared<nn::Sequential>();
    net->add(std::make_shared<nn::Conv2d>(3, 8, 3, 1, 1))
        .add(std::make_shared<nn::BatchNorm>(8))
        .add(std::make_shared<nn::ActivationLayer>(Activation::relu))
        .add(std::make_shared<nn::AdaptiveAvgPool2d>(1, 1))
        .add(std::make_shared<nn::Flatten>())
        .add(std::make_shared<nn::Linear>(8, 3));
    net->to(Device::cuda(0));
    optim::SGD sgd(net->parameters(), test::toy::sgd_options());
    sgd.set_lr_schedule(optim::make_lr_schedule("onecycle:max_lr=0.1", {0.05, 15})->params(), 0);
    std::unique_ptr<train::CudaGraphStep> graph_step;
    // Two warm-up steps per shape: after the first, the gradients exist and backward
    // accumulates through temporaries the first step did not need.
    if (graphed) graph_step = std::make_unique<train::CudaGraphStep>(Device::cuda(0), 2);
    Tensor totals = zeros({2}, {DType::f64, Device::cuda(0)});  // summed in place, like the trainer's totals
    const auto step = [&](const std::vector<Tensor>& in) {
      sgd.zero_grad();
      const Tensor logits = net->forward(in[0]);
      const Tensor loss = cross_entropy(logits, in[1]);
      loss.backward();
      sgd.step();
      NoGradGuard no_grad;
      metrics::accumulate_loss_and_correct(totals, loss.detach(), logits.detach(), in[1]);
    };
    for (size_t i = 0; i < steps.size(); ++i) {
      const auto [n, size] = steps[i];
      const int64_t first = static_cast<int64_t>(i % 5);
      std::vector<Tensor> inputs = {top_left_crop(images.images, first, n, size).to(Device::cuda(0)),
                                    images.labels.narrow0(first, n).to(Device::cuda(0))};
      if (graph_step) {
        if (graph_step->run(inputs, step)) sgd.count_replayed_step();
      } else {
        step(inputs);
      }
    }
    if (graph_step) {
      CHECK(graph_step->graphs() == 3);
      CHECK(graph_step->eager_steps() == 6);  // two warm-up steps per shape
      CHECK(graph_step->captures() == 3);
      CHECK(graph_step->replays() == static_cast<int64_t>(steps.size()) - 9);
    }
    std::map<std::string, std::vector<double>> state = host_state(*net);
    state["totals"] = totals.to(Device::cpu()).to(DType::f64).to_vector();
    state["lr"] = {sgd.groups().front().lr};
    return state;
  };
  const auto eager = run(false), graphed = run(true);
  for (const auto& [name, values] : eager) {
    CAPTURE(name);
    CHECK(graphed.at(name) == values);
  }
}

TEST_CASE("cuda graph: a host read or an unplanned allocation inside the captured step is named" *
          doctest::test_suite("gpu")) {
  if (test::skip_without_gpu("cuda graph errors")) return;
  const Device gpu = Device::cuda(0);
  const Tensor x = full({4, 3}, 0.5, {DType::f32, gpu});
  SUBCASE("loss.item() on the host") {
    train::CudaGraphStep graph_step(gpu, 1);
    const auto step = [&](const std::vector<Tensor>& in) {
      const Tensor y = in[0] * 2.0;
      (void)y.to(Device::cpu()).to_vector();  // a host read: fine eagerly, illegal in a capture
    };
    graph_step.run({x}, step);  // the warm-up runs eagerly
    CHECK_THROWS_WITH_AS(graph_step.run({x}, step), doctest::Contains("CUDA graph capture on cuda:0 failed"), Error);
    CHECK_THROWS_WITH_AS(graph_step.run({x}, step), doctest::Contains("cudaMemcpy"), Error);
  }
  SUBCASE("an allocation the warm-up step did not make") {
    train::CudaGraphStep graph_step(gpu, 1);
    int calls = 0;
    const auto step = [&](const std::vector<Tensor>& in) {
      const int64_t rows = ++calls == 1 ? 4 : 4096;  // the captured call asks for more than the warm-up did
      const Tensor y = full({rows, 3}, 1.0, {DType::f32, gpu}) * 2.0;
      const Tensor z = in[0] * 2.0;
    };
    graph_step.run({x}, step);
    CHECK_THROWS_WITH_AS(graph_step.run({x}, step), doctest::Contains("not in a steady state"), Error);
  }
  // The stream works again after a failed capture.
  CHECK((x * 3.0).to(Device::cpu()).to_vector()[0] == 1.5);
}

TEST_CASE("cuda graph: options that need the host every step are refused by name") {
  auto model = graph_model();
  optim::SGD sgd(model->parameters(), test::toy::sgd_options());
  train::TrainSetup setup = test::toy::setup("", 1);
  setup.device = Device::cuda(0);
  CHECK_THROWS_WITH_AS(train::check_cuda_graph_setup(setup, *model, sgd), doctest::Contains("set_lr_schedule"), Error);
  sgd.set_lr_schedule(optim::make_lr_schedule("constant", {0.05, 10})->params(), 0);
  train::check_cuda_graph_setup(setup, *model, sgd);  // everything else allowed
  train::TrainSetup skip = setup;
  skip.skip_nan = true;
  CHECK_THROWS_WITH_AS(train::check_cuda_graph_setup(skip, *model, sgd), doctest::Contains("--on-nan skip"), Error);
  train::TrainSetup mix = setup;
  mix.augment = augment::parse_augment_spec("mixup:0.2");
  CHECK_THROWS_WITH_AS(train::check_cuda_graph_setup(mix, *model, sgd), doctest::Contains("mixup"), Error);
  train::TrainSetup cpu = setup;
  cpu.device = Device::cpu();
  CHECK_THROWS_WITH_AS(train::check_cuda_graph_setup(cpu, *model, sgd), doctest::Contains("--device cuda"), Error);
  auto with_dropout = test::toy::model();  // its module 5 is Dropout(0.2)
  optim::SGD sgd2(with_dropout->parameters(), test::toy::sgd_options());
  sgd2.set_lr_schedule(optim::make_lr_schedule("constant", {0.05, 10})->params(), 0);
  CHECK_THROWS_WITH_AS(train::check_cuda_graph_setup(setup, *with_dropout, sgd2), doctest::Contains("dropout"), Error);
  CHECK_THROWS_WITH_AS(train::check_cuda_graph_setup(setup, *with_dropout, sgd2), doctest::Contains("module 5"), Error);
}

TEST_CASE("cuda graph: a set smaller than one batch is one short batch per epoch, captured at the third epoch" *
          doctest::test_suite("gpu")) {
  if (test::skip_without_gpu("cuda graph short batch")) return;
  // 12 images, batches of 16: the loader keeps the short batch (a set of one batch is
  // not dropped), so each epoch is one step of 12: epochs 1-2 warm up, 3 is captured, 4 replays.
  const data::Dataset full_set = test::toy::dataset(1), val_set = test::toy::dataset(2);
  std::vector<int64_t> first_twelve(12);
  for (int64_t i = 0; i < 12; ++i) first_twelve[static_cast<size_t>(i)] = i;
  const data::Dataset train_set = data::subset(full_set, first_twelve);
  const auto run = [&](bool graphed) {
    auto model = graph_model();
    model->to(Device::cuda(0));
    optim::SGD sgd(model->parameters(), test::toy::sgd_options());
    const auto schedule = optim::make_lr_schedule("cyclic:base_lr=0.005,max_lr=0.05,step_size_up=2", {0.05, 4});
    train::TrainSetup setup = test::toy::setup("", 4);
    setup.device = Device::cuda(0);
    setup.deterministic = true;
    setup.cuda_graph = graphed;
    const optim::LrSchedule* s = schedule.get();
    train::Trainer trainer(*model, sgd, [s](int64_t step) { return s->lr_factor(step); }, setup);
    sgd.set_lr_schedule(schedule->params(), 0);
    RunResult result;
    result.epochs = trainer.fit(train_set, val_set);
    result.state = host_state(*model);
    result.optimizer_steps = sgd.step_count();
    result.last_lr = sgd.groups().front().lr;
    return result;
  };
  const RunResult eager = run(false), graphed = run(true);
  REQUIRE(graphed.epochs.size() == 4);
  CHECK(graphed.epochs[0].steps == 1);
  CHECK(graphed.epochs[2].graph_replays == 0);  // the capture
  CHECK(graphed.epochs[3].graph_replays == 1);
  check_same_run(graphed, eager);
}
