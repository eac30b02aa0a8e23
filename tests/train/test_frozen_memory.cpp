// Frozen parts cost no backward work and no memory for it. One training step
// (forward, cross-entropy, backward, AdamW step) of MobileNetV2 and ResNet-18 with
// `--finetune head` (models::apply_finetune, as `kiln train` applies it) against
// `--finetune all`:
//   - the autograd graph behind the loss: with head it holds the classifier's
//     nodes only, no conv or batch-norm node of the frozen backbone;
//   - the CPU allocator's peak bytes during the step: with head the backbone's
//     activations are freed as soon as the next layer has read them, because no
//     node saved them for a backward pass, so the peak is a fraction of all's.
// The measured numbers are in docs/models.md ("Fine-tuning: what freezing saves").
#include <doctest/doctest.h>

#include <functional>
#include <map>
#include <set>

#include "engine/memory/allocator.h"
#include "engine/ops/loss.h"
#include "engine/optim/optimizer.h"
#include "engine/tensor/factory.h"
#include "models/registry.h"
#include "test_util.h"

using namespace kiln;

namespace {

struct StepMeasurement {
  double peak_mb = 0;       // peak bytes in use during the step, above what was in use before it
  double weights_mb = 0;    // the model's parameters and buffers
  std::map<std::string, int> nodes;  // op -> autograd nodes reachable from the loss
  int total_nodes() const {
    int n = 0;
    for (auto& [op, count] : nodes) n += count;
    return n;
  }
  std::string describe_nodes() const {
    std::string s;
    for (auto& [op, count] : nodes) s += (s.empty() ? "" : ", ") + op + " " + std::to_string(count);
    return s;
  }
};

// Every Node behind `loss`, counted by op.
std::map<std::string, int> autograd_nodes(const Tensor& loss) {
  std::map<std::string, int> ops;
  std::set<const Node*> seen;
  std::vector<std::shared_ptr<Node>> stack = {loss.grad_fn()};
  while (!stack.empty()) {
    std::shared_ptr<Node> node = stack.back();
    stack.pop_back();
    if (!node || !seen.insert(node.get()).second) continue;
    ops[node->op] += 1;
    for (const auto& input : node->inputs)
      if (input) stack.push_back(input->grad_fn);
  }
  return ops;
}

// One training step of `arch` (10 classes) on a batch of 8 random images of
// size x size under the fine-tuning `strategy`.
StepMeasurement measure_step(const std::string& arch, const std::string& strategy, int64_t size) {
  auto model = models::make_model(arch, 10);
  models::apply_finetune(*model, arch, strategy);
  model->train();
  auto optimizer = optim::make_optimizer("adamw", optim::param_groups_no_decay_on_norms_and_biases(*model, 1e-3, 1e-4),
                                         optim::OptimizerOptions{});
  Rng rng(7);
  const Tensor images = randn({8, 3, size, size}, rng);
  const Tensor labels = from_vector({0, 1, 2, 3, 4, 5, 6, 7}, {8}, {DType::i64});

  StepMeasurement m;
  for (auto& [name, t] : model->state_dict()) m.weights_mb += static_cast<double>(t.nbytes()) / (1 << 20);
  Allocator& allocator = cpu_allocator();
  const int64_t before = allocator.stats().bytes_in_use;
  allocator.reset_peak();
  {
    const Tensor loss = cross_entropy(model->forward(images), labels);
    m.nodes = autograd_nodes(loss);
    loss.backward();
  }
  optimizer->step();
  m.peak_mb = static_cast<double>(allocator.stats().peak_bytes_in_use - before) / (1 << 20);
  MESSAGE(arch << " at " << size << " px, batch 8, --finetune " << strategy << ": peak " << m.peak_mb
               << " MiB above the model's " << m.weights_mb << " MiB, " << m.total_nodes() << " autograd nodes (" << m.describe_nodes() << ")");
  return m;
}

void check_head_is_cheap(const std::string& arch, int64_t size, double max_ratio) {
  const StepMeasurement all = measure_step(arch, "all", size);
  const StepMeasurement head = measure_step(arch, "head", size);
  // Head: the frozen backbone recorded nothing. What is left is the classifier
  // (a linear layer, maybe its input's reshape) and the loss.
  CHECK(head.nodes.count("conv2d") == 0);
  CHECK(all.nodes.count("conv2d") > 0);
  for (auto& [op, count] : head.nodes) {
    CAPTURE(op);
    CHECK(op.find("norm") == std::string::npos);
    CHECK(op.find("conv") == std::string::npos);
  }
  CHECK(head.total_nodes() <= 5);
  CHECK(all.total_nodes() > 50);
  // And it kept no activations for a backward pass.
  CHECK(head.peak_mb < max_ratio * all.peak_mb);
}

}  // namespace

TEST_CASE("finetune memory: head-only MobileNetV2 records no backbone nodes and peaks far below all") {
  check_head_is_cheap("mobilenet_v2", 96, 0.25);
}

TEST_CASE("finetune memory: head-only ResNet-18 records no backbone nodes and peaks far below all") {
  check_head_is_cheap("resnet18", 96, 0.25);
}
