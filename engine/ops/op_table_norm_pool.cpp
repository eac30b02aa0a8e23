// Op-table rows for norm.h and pool.h (see op_table.h).
//
// Tolerances. Gradcheck keeps the default 1e-6: every op here is smooth where its
// inputs are drawn (batch norm is smooth everywhere with var + eps > 0; pooling is
// linear once the max-pool argmax is fixed). Parity keeps the defaults (f32 1e-4,
// f16/bf16 2e-2) except batch norm in half: its input gradient subtracts the
// channel means of dy and dy*xhat from dy, a cancellation that turns bf16's
// 2^-9 relative rounding of dy (and of the output) into ~3x larger relative error
// in what is left; 3e-2 covers that with margin, a wrong formula is off by O(1).
// The max-abs bounds (op_table.h) follow for the same reason: f16 1e-2 and bf16 5e-2
// of max(1, max |want|), where the parity test measured at most 1.5e-3 (f16, the (6, 4)
// input: 6 values per channel, so the means cancel most) and 7.5e-3 (bf16); f32 keeps
// the default 1e-5 (measured 2.3e-7).
// batch_norm_act (batch norm + relu/relu6 in one op) keeps the same tolerances: its
// inputs are built so that no pre-activation value is near a kink (see
// batch_norm_act_inputs), so f' is the same at every point the checks evaluate.
#include <algorithm>
#include <cmath>

#include "engine/ops/norm.h"
#include "engine/ops/op_table.h"
#include "engine/ops/pool.h"
#include "engine/tensor/factory.h"

namespace kiln {

namespace {

// weight and bias as the op wants them: f32 for an f16/bf16 x (the parity harness
// converts every differentiable input to the dtype under test; this converts back,
// through a recorded to_dtype, so the gradient still reaches the half leaf).
Tensor as_parameter(const Tensor& t, const Tensor& x) {
  return t.defined() ? t.to(batch_norm_parameter_dtype(x.dtype())) : t;
}

// Inputs: x, weight (around 1), bias, running_mean, running_var (positive).
std::vector<Tensor> batch_norm_inputs(const Shape& x_shape, Rng& rng, DType dtype) {
  const int64_t channels = x_shape[1];
  return {uniform(x_shape, -2, 2, rng, {dtype}), uniform({channels}, 0.5, 1.5, rng, {dtype}),
          uniform({channels}, -0.5, 0.5, rng, {dtype}), uniform({channels}, -0.5, 0.5, rng, {dtype}),
          uniform({channels}, 0.5, 2.0, rng, {dtype})};
}

// Inputs for batch_norm_act whose pre-activation z = batch_norm(x) stays far from
// the kinks at z = 0 and z = 6. Batch norm rescales x per channel, so the kinks
// cannot be avoided by drawing x alone; instead x is drawn in [-2.5, 3.5] at least
// 0.3 away from 0 and 2, and weight and bias are then set per channel from the
// statistics the op will use (the batch's in training, the running ones in eval):
//     weight = s / invstd,  bias = s * mean   =>   z = (x - mean) * invstd * weight + bias = s x
// with s in [2.9, 3.1], so z's kinks 0 and 6 fall at x = 0 and x = 6 / s in [1.93, 2.07],
// inside the gaps: every z is at least 0.6 from a kink (gradcheck moves z by ~1e-6;
// rounding to bf16 moves it by < 0.05). relu6 clips z above 6, so both its flat
// pieces and its slope are exercised.
// "(3,4,5,5)": a shape as the row names write it.
std::string compact(const Shape& shape) {
  std::string text = shape.to_string();
  text.erase(std::remove(text.begin(), text.end(), ' '), text.end());
  return text;
}

std::vector<Tensor> batch_norm_act_inputs(const Shape& x_shape, bool training, Rng& rng, DType dtype) {
  const int64_t channels = x_shape[1];
  const int64_t per_image = x_shape.numel() / x_shape[0], spatial = per_image / channels;
  const Tensor x = uniform_avoiding(x_shape, -2.5, 3.5, {0.0, 2.0}, 0.3, rng, DType::f64);
  const std::vector<double> values = x.to_vector();  // (n, c, l) row-major
  const std::vector<double> running_mean = uniform({channels}, -0.5, 0.5, rng, {DType::f64}).to_vector();
  const std::vector<double> running_var = uniform({channels}, 0.5, 2.0, rng, {DType::f64}).to_vector();
  const double eps = BatchNormOptions{}.eps;
  std::vector<double> weight(static_cast<size_t>(channels)), bias(static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) {
    double mean = running_mean[c], var = running_var[c];
    if (training) {
      double sum = 0, squares = 0, count = 0;
      for (size_t k = static_cast<size_t>(c * spatial); k < values.size(); k += static_cast<size_t>(per_image))
        for (int64_t l = 0; l < spatial; ++l, ++count) sum += values[k + l];
      mean = sum / count;
      for (size_t k = static_cast<size_t>(c * spatial); k < values.size(); k += static_cast<size_t>(per_image))
        for (int64_t l = 0; l < spatial; ++l) squares += (values[k + l] - mean) * (values[k + l] - mean);
      var = squares / count;  // biased, as batch norm normalises with
    }
    const double s = rng.uniform(2.9, 3.1);
    weight[c] = s * std::sqrt(var + eps);
    bias[c] = s * mean;
  }
  return {x.to(dtype), from_vector(weight, {channels}, {dtype}), from_vector(bias, {channels}, {dtype}),
          from_vector(running_mean, {channels}, {dtype}), from_vector(running_var, {channels}, {dtype})};
}

// The values 0.05 * (k - numel/2) for k = 0 .. numel-1, shuffled: all distinct, and
// 0.05 apart, far more than gradcheck's 1e-6 step, so no max-pool argmax can flip.
Tensor distinct_grid(const Shape& shape, Rng& rng, DType dtype) {
  const int64_t count = shape.numel();
  std::vector<double> values(static_cast<size_t>(count));
  for (int64_t k = 0; k < count; ++k) values[k] = 0.05 * static_cast<double>(k - count / 2);
  for (int64_t k = count - 1; k > 0; --k)  // Fisher-Yates with the seeded stream
    std::swap(values[k], values[static_cast<int64_t>(rng.next_u64() % static_cast<uint64_t>(k + 1))]);
  return from_vector(values, shape, {dtype});
}

}  // namespace

// ---------------------------------------------------------------- norm.h
std::vector<OpCase> norm_cases() {
  std::vector<OpCase> rows;
  // Running stats are buffers, not differentiable. In training the output does not
  // read them (batch statistics), so gradcheck re-running the op, which updates
  // them in place each time, sees the same function.
  const std::vector<bool> x_weight_bias{true, true, true, false, false};
  auto run = [](bool training) {
    return [training](const std::vector<Tensor>& in) {
      BatchNormOptions options;
      options.training = training;
      return batch_norm(in[0], as_parameter(in[1], in[0]), as_parameter(in[2], in[0]), in[3], in[4], options);
    };
  };
  const double half_tolerance = 3e-2;  // see the file header
  rows.push_back({"batch_norm[training,(3,4,5,5)]", "norm", kCpuFloat, kCudaFloat,
                  [](Rng& rng, DType dt) { return batch_norm_inputs({3, 4, 5, 5}, rng, dt); }, x_weight_bias,
                  run(true), 1e-6, 1e-4, half_tolerance});
  rows.push_back({"batch_norm[training,(6,4)]", "norm", kCpuFloat, kCudaFloat,
                  [](Rng& rng, DType dt) { return batch_norm_inputs({6, 4}, rng, dt); }, x_weight_bias, run(true),
                  1e-6, 1e-4, half_tolerance});
  rows.push_back({"batch_norm[eval,(3,4,5,5)]", "norm", kCpuFloat, kCudaFloat,
                  [](Rng& rng, DType dt) { return batch_norm_inputs({3, 4, 5, 5}, rng, dt); }, x_weight_bias,
                  run(false), 1e-6, 1e-4, half_tolerance});
  rows.push_back({"batch_norm[training,no_affine,no_running_stats]", "norm", kCpuFloat, kCudaFloat,
                  [](Rng& rng, DType dt) { return std::vector<Tensor>{uniform({3, 4, 5, 5}, -2, 2, rng, {dt})}; },
                  {true},
                  [](const std::vector<Tensor>& in) {
                    return batch_norm(in[0], Tensor(), Tensor(), Tensor(), Tensor(), BatchNormOptions{});
                  },
                  1e-6, 1e-4, half_tolerance});

  // batch_norm_act: both activations, both modes, 4-D shapes with different channel
  // strides (H*W = 25, 24, 21 in nchw; the harness adds nhwc) and a 2-D (N, C) input.
  struct FusedRow {
    Activation activation;
    bool training;
    Shape shape;
  };
  const FusedRow fused_rows[] = {
      {Activation::relu, true, {3, 4, 5, 5}},  {Activation::relu6, true, {3, 4, 5, 5}},
      {Activation::relu, false, {2, 3, 4, 6}}, {Activation::relu6, false, {2, 3, 4, 6}},
      {Activation::relu6, true, {2, 5, 3, 7}}, {Activation::relu, true, {8, 3}},
  };
  for (const FusedRow& r : fused_rows) {
    const Shape shape = r.shape;
    const bool training = r.training;
    const Activation activation = r.activation;
    rows.push_back({str("batch_norm_act[", activation_name(activation), training ? ",training," : ",eval,",
                        compact(shape), "]"),
                    "norm", kCpuFloat, kCudaFloat,
                    [shape, training](Rng& rng, DType dt) { return batch_norm_act_inputs(shape, training, rng, dt); },
                    x_weight_bias,
                    [training, activation](const std::vector<Tensor>& in) {
                      BatchNormOptions options;
                      options.training = training;
                      return batch_norm_act(in[0], as_parameter(in[1], in[0]), as_parameter(in[2], in[0]), in[3],
                                            in[4], options, activation);
                    },
                    1e-6, 1e-4, half_tolerance});
  }
  for (OpCase& row : rows) {  // see the file header
    row.parity_max_abs_f16 = 1e-2;
    row.parity_max_abs_bf16 = 5e-2;
  }
  return rows;
}

// ---------------------------------------------------------------- pool.h
std::vector<OpCase> pool_cases() {
  std::vector<OpCase> rows;
  auto grid = [](Shape shape) {
    return [shape](Rng& rng, DType dt) { return std::vector<Tensor>{distinct_grid(shape, rng, dt)}; };
  };
  auto max_pool = [](Pool2dParams p) {
    return [p](const std::vector<Tensor>& in) { return max_pool2d(in[0], p); };
  };
  auto avg_pool = [](Pool2dParams p, bool count_include_pad) {
    return [p, count_include_pad](const std::vector<Tensor>& in) { return avg_pool2d(in[0], p, count_include_pad); };
  };
  const Pool2dParams two_by_two = Pool2dParams::square(2, 2);
  const Pool2dParams resnet_stem = Pool2dParams::square(3, 2, 1);  // ResNet's max pool after the 7x7 conv
  const Pool2dParams ceil_3x3 = Pool2dParams::square(3, 2, 0, true);      // 6x6 -> 3x3 (floor mode gives 2x2)
  const Pool2dParams ceil_padded = Pool2dParams::square(3, 2, 1, true);   // 6x6 -> 4x4, last window clipped at H + p
  rows.push_back({"max_pool2d[" + two_by_two.to_string() + "]", "pool", kCpuFloat, kCudaFloat, grid({2, 3, 6, 6}),
                  {true}, max_pool(two_by_two)});
  rows.push_back({"max_pool2d[" + resnet_stem.to_string() + "]", "pool", kCpuFloat, kCudaFloat, grid({2, 3, 7, 7}),
                  {true}, max_pool(resnet_stem)});
  rows.push_back({"max_pool2d[" + ceil_3x3.to_string() + "]", "pool", kCpuFloat, kCudaFloat, grid({2, 3, 6, 6}),
                  {true}, max_pool(ceil_3x3)});
  rows.push_back({"avg_pool2d[" + resnet_stem.to_string() + ",count_include_pad]", "pool", kCpuFloat, kCudaFloat,
                  grid({2, 3, 7, 7}), {true}, avg_pool(resnet_stem, true)});
  rows.push_back({"avg_pool2d[" + resnet_stem.to_string() + "]", "pool", kCpuFloat, kCudaFloat, grid({2, 3, 7, 7}),
                  {true}, avg_pool(resnet_stem, false)});
  rows.push_back({"avg_pool2d[" + ceil_padded.to_string() + ",count_include_pad]", "pool", kCpuFloat, kCudaFloat,
                  grid({2, 3, 6, 6}), {true}, avg_pool(ceil_padded, true)});
  rows.push_back({"adaptive_avg_pool2d[(7,5)->(3,2)]", "pool", kCpuFloat, kCudaFloat, grid({2, 3, 7, 5}), {true},
                  [](const std::vector<Tensor>& in) { return adaptive_avg_pool2d(in[0], 3, 2); }});
  rows.push_back({"global_avg_pool2d", "pool", kCpuFloat, kCudaFloat, grid({2, 3, 5, 4}), {true},
                  [](const std::vector<Tensor>& in) { return global_avg_pool2d(in[0]); }});
  return rows;
}

}  // namespace kiln
