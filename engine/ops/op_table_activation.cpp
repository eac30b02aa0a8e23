// Op-table rows for activation.h, softmax.h / loss.h and dropout.h (see op_table.h).
#include <cmath>

#include "engine/ops/activation.h"
#include "engine/ops/dropout.h"
#include "engine/ops/loss.h"
#include "engine/ops/op_table.h"
#include "engine/ops/softmax.h"
#include "engine/tensor/factory.h"

namespace kiln {

namespace {

using Inputs = std::vector<Tensor>;

// [-5, 7] covers every kink of the family (relu 0, relu6 0 and 6, hardswish +-3,
// elu 0), and the margin keeps the finite differences on one side of each.
Tensor activation_input(Rng& rng, DType dtype) {
  return uniform_avoiding({2, 3, 4, 5}, -5, 7, {-3.0, 0.0, 3.0, 6.0}, 0.1, rng, dtype);
}

// Class indices in [0, K): data, always i64, never converted by the harness.
Tensor labels(int64_t N, int64_t K, Rng& rng) {
  std::vector<double> values(static_cast<size_t>(N));
  for (double& v : values) v = std::floor(rng.uniform(0.0, static_cast<double>(K) - 1e-9));
  return from_vector(values, {N}, {DType::i64});
}

}  // namespace

// ---------------------------------------------------------------- activation.h
std::vector<OpCase> activation_cases() {
  std::vector<OpCase> rows;
  for (int i = 0; i < kActivationCount; ++i) {
    const Activation a = static_cast<Activation>(i);
    rows.push_back({activation_name(a), "activation", kCpuFloat, kCudaFloat,
                    [](Rng& rng, DType dt) { return Inputs{activation_input(rng, dt)}; }, {true},
                    [a](const Inputs& in) { return activate(in[0], a); }});
  }
  // add_relu (fused relu(a + b)): a stays 0.3 away from 0 and |b| <= 0.1, so a + b
  // stays 0.2 away from relu's kink, also after rounding to f16/bf16.
  auto add_relu_inputs = [](Shape shape) {
    return [shape](Rng& rng, DType dt) {
      return Inputs{uniform_avoiding(shape, -2, 2, {0.0}, 0.3, rng, dt), uniform(shape, -0.1, 0.1, rng, {dt})};
    };
  };
  auto run_add_relu = [](const Inputs& in) { return add_relu(in[0], in[1]); };
  rows.push_back({"add_relu[(2,3,4,5)]", "activation", kCpuFloat, kCudaFloat, add_relu_inputs({2, 3, 4, 5}),
                  {true, true}, run_add_relu});
  rows.push_back({"add_relu[(6,7)]", "activation", kCpuFloat, kCudaFloat, add_relu_inputs({6, 7}), {true, true},
                  run_add_relu});
  rows.push_back({"leaky_relu[negative_slope=0.2]", "activation", kCpuFloat, kCudaFloat,
                  [](Rng& rng, DType dt) { return Inputs{activation_input(rng, dt)}; }, {true},
                  [](const Inputs& in) { return leaky_relu(in[0], 0.2); }});
  rows.push_back({"elu[alpha=0.5]", "activation", kCpuFloat, kCudaFloat,
                  [](Rng& rng, DType dt) { return Inputs{activation_input(rng, dt)}; }, {true},
                  [](const Inputs& in) { return elu(in[0], 0.5); }});
  return rows;
}

// ---------------------------------------------------------------- softmax.h / loss.h
std::vector<OpCase> softmax_loss_cases() {
  std::vector<OpCase> rows;
  auto matrix = [](Rng& rng, DType dt) { return Inputs{uniform({6, 5}, -3, 3, rng, {dt})}; };
  auto image = [](Rng& rng, DType dt) { return Inputs{uniform({2, 3, 4, 5}, -3, 3, rng, {dt})}; };
  // Half tolerance 5e-2 for softmax rows: the CUDA backward reads the saved output
  // y in f16/bf16 (bf16 keeps 8 bits, a relative error of ~4e-3 per element), and
  // g - sum(g y) cancels part of the magnitude, which amplifies that error ~2-4x.
  for (bool log : {false, true}) {
    const std::string name = log ? "log_softmax" : "softmax";
    OpCase last_dim{name, "softmax", kCpuFloat, kCudaFloat, matrix, {true},
                    [log](const Inputs& in) { return log ? log_softmax(in[0]) : softmax(in[0]); }};
    last_dim.parity_tolerance_half = 5e-2;
    rows.push_back(last_dim);
    // Over the channels of an image: strided rows in nchw, contiguous rows in nhwc.
    OpCase channels{name + "[dim=1]", "softmax", kCpuFloat, kCudaFloat, image, {true},
                    [log](const Inputs& in) { return log ? log_softmax(in[0], 1) : softmax(in[0], 1); }};
    channels.parity_tolerance_half = 5e-2;
    rows.push_back(channels);
    // Over W, the last dim of an image: contiguous rows in nchw, rows C apart in nhwc.
    OpCase width{name + "[dim=3]", "softmax", kCpuFloat, kCudaFloat, image, {true},
                 [log](const Inputs& in) { return log ? log_softmax(in[0], 3) : softmax(in[0], 3); }};
    width.parity_tolerance_half = 5e-2;
    rows.push_back(width);
    // Rows wider than a warp (300 -> 256 threads, 8 warps): the CUDA block reductions
    // then combine warps through shared memory, and a missing barrier there shows
    // (scripts/plant_bugs.sh found that the narrow rows above never exercise it).
    OpCase wide{name + "[wide rows]", "softmax", kCpuFloat, kCudaFloat,
                [](Rng& rng, DType dt) { return Inputs{uniform({3, 300}, -3, 3, rng, {dt})}; }, {true},
                [log](const Inputs& in) { return log ? log_softmax(in[0]) : softmax(in[0]); }};
    wide.parity_tolerance_half = 5e-2;
    // The finite differences of a 300-wide log_softmax lose more to truncation:
    // 1.0e-5 measured (analytic 0.489739, numeric 0.489729), far below a real error.
    wide.gradcheck_tolerance = 5e-5;
    rows.push_back(wide);
  }

  // cross_entropy: logits (6, 5), labels (6); class weights (5) are data like the labels.
  auto logits_labels = [](Rng& rng, DType dt) { return Inputs{uniform({6, 5}, -3, 3, rng, {dt}), labels(6, 5, rng)}; };
  auto logits_labels_weights = [](Rng& rng, DType dt) {
    return Inputs{uniform({6, 5}, -3, 3, rng, {dt}), labels(6, 5, rng), uniform({5}, 0.5, 2.0, rng, {dt})};
  };
  auto cross_entropy_row = [&](const std::string& name, bool weighted, double smoothing, Reduction reduction) {
    return OpCase{name, "loss", kCpuFloat, kCudaFloat,
                  weighted ? std::function<Inputs(Rng&, DType)>(logits_labels_weights) : logits_labels,
                  weighted ? std::vector<bool>{true, false, false} : std::vector<bool>{true, false},
                  [weighted, smoothing, reduction](const Inputs& in) {
                    CrossEntropyOptions options;
                    options.label_smoothing = smoothing;
                    options.reduction = reduction;
                    if (weighted) options.class_weights = in[2];
                    return cross_entropy(in[0], in[1], options);
                  }};
  };
  rows.push_back(cross_entropy_row("cross_entropy", false, 0.0, Reduction::mean));
  // 300 classes: a block of 256 threads (8 warps) per row, as for ImageNet's 1000.
  rows.push_back(OpCase{"cross_entropy[300 classes]", "loss", kCpuFloat, kCudaFloat,
                        [](Rng& rng, DType dt) { return Inputs{uniform({4, 300}, -3, 3, rng, {dt}), labels(4, 300, rng)}; },
                        {true, false}, [](const Inputs& in) { return cross_entropy(in[0], in[1]); }});
  rows.push_back(cross_entropy_row("cross_entropy[label_smoothing=0.1]", false, 0.1, Reduction::mean));
  rows.push_back(cross_entropy_row("cross_entropy[class_weights]", true, 0.0, Reduction::mean));
  rows.push_back(cross_entropy_row("cross_entropy[class_weights,label_smoothing=0.1]", true, 0.1, Reduction::mean));
  rows.push_back(cross_entropy_row("cross_entropy[reduction=sum]", false, 0.0, Reduction::sum));
  rows.push_back(cross_entropy_row("cross_entropy[reduction=none,label_smoothing=0.1]", false, 0.1, Reduction::none));
  rows.push_back(
      cross_entropy_row("cross_entropy[class_weights,reduction=sum]", true, 0.0, Reduction::sum));

  // BCE on a 4-D tensor, so the harness also checks the nhwc path; targets in [0, 1]
  // are data. pos_weight (5) runs along the last dim (W), as torch broadcasts it.
  auto bce_inputs = [](Rng& rng, DType dt) {
    return Inputs{uniform({2, 3, 4, 5}, -4, 4, rng, {dt}), uniform({2, 3, 4, 5}, 0, 1, rng, {dt})};
  };
  rows.push_back({"binary_cross_entropy_with_logits", "loss", kCpuFloat, kCudaFloat, bce_inputs, {true, false},
                  [](const Inputs& in) { return binary_cross_entropy_with_logits(in[0], in[1]); }});
  rows.push_back({"binary_cross_entropy_with_logits[pos_weight,reduction=sum]", "loss", kCpuFloat, kCudaFloat,
                  [bce_inputs](Rng& rng, DType dt) {
                    Inputs in = bce_inputs(rng, dt);
                    in.push_back(uniform({5}, 0.5, 3.0, rng, {dt}));
                    return in;
                  },
                  {true, false, false},
                  [](const Inputs& in) {
                    BceOptions options;
                    options.pos_weight = in[2];
                    options.reduction = Reduction::sum;
                    return binary_cross_entropy_with_logits(in[0], in[1], options);
                  }});
  rows.push_back({"binary_cross_entropy_with_logits[reduction=none]", "loss", kCpuFloat, kCudaFloat, bce_inputs,
                  {true, false}, [](const Inputs& in) {
                    BceOptions options;
                    options.reduction = Reduction::none;
                    return binary_cross_entropy_with_logits(in[0], in[1], options);
                  }});
  // sigmoid_focal_loss: torchvision's defaults, then gamma = 0.5 (m^(gamma-1) grows
  // near m = 0, where the [0, 1] targets and |x| <= 4 keep m above ~0.02), and no alpha.
  auto focal_row = [&](const std::string& name, double gamma, double alpha, Reduction reduction) {
    return OpCase{name, "loss", kCpuFloat, kCudaFloat, bce_inputs, {true, false},
                  [gamma, alpha, reduction](const Inputs& in) {
                    FocalOptions options;
                    options.gamma = gamma;
                    options.alpha = alpha;
                    options.reduction = reduction;
                    return sigmoid_focal_loss(in[0], in[1], options);
                  }};
  };
  rows.push_back(focal_row("sigmoid_focal_loss[gamma=2,alpha=0.25]", 2.0, 0.25, Reduction::mean));
  rows.push_back(focal_row("sigmoid_focal_loss[gamma=0.5,alpha=none,reduction=none]", 0.5, -1.0, Reduction::none));
  return rows;
}

// ---------------------------------------------------------------- dropout.h
std::vector<OpCase> dropout_cases() {
  std::vector<OpCase> rows;
  rows.push_back({"dropout[p=0.3,training,seed=1234]", "dropout", kCpuFloat, kCudaFloat,
                  [](Rng& rng, DType dt) { return Inputs{uniform({2, 3, 4, 5}, -2, 2, rng, {dt})}; }, {true},
                  [](const Inputs& in) { return dropout(in[0], 0.3, true, 1234); }});
  return rows;
}

}  // namespace kiln
