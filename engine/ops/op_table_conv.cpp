// Op-table rows for conv.h and linear.h (see op_table.h).
//
// Shapes are small so that the float64 finite-difference check (two forward passes
// per input element) stays fast: x (2, 4, 6, 6) has 288 elements, weight (6, 4, 3, 3) 216.
//
// Parity tolerances (relative L2, CUDA vs the CPU f32 reference on the same rounded
// inputs): f32 with FMA math (no TF32) differs only in summation order, ~1e-6, so
// the default 1e-4 holds. In f16/bf16 every output is a sum of C/G*R*S (conv) or
// `in` (linear) products accumulated in f32 but stored in 16 bits, and the
// backward reads a 16-bit grad_output: bf16's 8-bit mantissa (relative step 2^-8)
// gives errors of a few 1e-3, so 2e-2 leaves room without hiding a wrong index.
// Max-abs (op_table.h): conv rows allow 1e-4 of max(1, max |want|) in f32 instead of
// 1e-5: on a GPU cuDNN may choose an FFT or Winograd algorithm, whose transforms
// round more than a direct sum (~1e-5 of the largest value); the emulated GPU
// measured at most 1.6e-7. The half defaults hold (measured <= 5.4e-4 f16, 4.4e-3 bf16).
#include "engine/ops/conv.h"
#include "engine/ops/linear.h"
#include "engine/ops/op_table.h"
#include "engine/tensor/factory.h"

namespace kiln {

namespace {

constexpr double kHalfTolerance = 2e-2;

// One conv2d row: x (2, C, HW, HW) (HW = 6 unless given), weight (K, C/groups, R, S), bias (K) unless no_bias.
OpCase conv_row(const std::string& name, int64_t C, int64_t K, int64_t R, int64_t S, Conv2dParams params,
                bool with_bias = true, int64_t HW = 6) {
  const int64_t C_per_group = C / params.groups;
  OpCase row{name, "conv", kCpuFloat, kCudaFloat,
             [=](Rng& rng, DType dt) {
               std::vector<Tensor> inputs{uniform({2, C, HW, HW}, -1, 1, rng, {dt}),
                                          uniform({K, C_per_group, R, S}, -0.5, 0.5, rng, {dt})};
               if (with_bias) inputs.push_back(uniform({K}, -0.5, 0.5, rng, {dt}));
               return inputs;
             },
             std::vector<bool>(with_bias ? 3 : 2, true),
             [=](const std::vector<Tensor>& in) {
               return conv2d(in[0], in[1], with_bias ? in[2] : Tensor(), params);
             }};
  row.parity_tolerance_half = kHalfTolerance;
  row.parity_max_abs_f32 = 1e-4;  // see the file header
  return row;
}

Conv2dParams make_params(std::array<int, 2> stride, std::array<int, 2> padding, std::array<int, 2> dilation = {1, 1},
                         int groups = 1) {
  Conv2dParams p;
  p.stride = stride;
  p.padding = padding;
  p.dilation = dilation;
  p.groups = groups;
  return p;
}

}  // namespace

// ---------------------------------------------------------------- conv.h
std::vector<OpCase> conv_cases() {
  return {
      conv_row("conv2d", 4, 6, 3, 3, make_params({1, 1}, {1, 1})),  // the common 3x3 "same" conv
      conv_row("conv2d[stride=2,pad=1]", 4, 6, 3, 3, make_params({2, 2}, {1, 1})),
      conv_row("conv2d[dilation=2,pad=2]", 4, 6, 3, 3, make_params({1, 1}, {2, 2}, {2, 2})),
      conv_row("conv2d[groups=2]", 4, 6, 3, 3, make_params({1, 1}, {1, 1}, {1, 1}, 2)),
      // Depthwise (groups = C) runs the direct kernels (engine/ops/cpu/depthwise_conv_cpu.cpp).
      conv_row("conv2d[depthwise]", 4, 4, 3, 3, make_params({1, 1}, {1, 1}, {1, 1}, 4)),  // groups = C = K
      conv_row("conv2d[depthwise,stride=2]", 4, 4, 3, 3, make_params({2, 2}, {1, 1}, {1, 1}, 4)),
      conv_row("conv2d[depthwise,5x5,dilation=(2,1)]", 4, 4, 5, 5, make_params({1, 1}, {2, 1}, {2, 1}, 4)),
      conv_row("conv2d[depthwise,multiplier=2,no_bias]", 3, 6, 3, 3, make_params({1, 2}, {0, 1}, {1, 1}, 3),
               /*with_bias=*/false),
      conv_row("conv2d[1x1]", 4, 6, 1, 1, make_params({1, 1}, {0, 0})),
      // N*Ho*Wo = 288 pixels per channel: more than one 256-thread pass of the channel
      // bias backward (kernels/channel_bias.cu), in both layouts.
      conv_row("conv2d[1x1,bias,(2,4,12,12)]", 4, 6, 1, 1, make_params({1, 1}, {0, 0}), /*with_bias=*/true, 12),
      conv_row("conv2d[no_bias]", 4, 6, 3, 3, make_params({1, 1}, {1, 1}), /*with_bias=*/false),
      // A non-square kernel with a different stride per axis catches swapped h/w indices.
      conv_row("conv2d[kernel=3x1,stride=(2,1)]", 4, 6, 3, 1, make_params({2, 1}, {1, 0})),
  };
}

// ---------------------------------------------------------------- linear.h
std::vector<OpCase> linear_cases() {
  std::vector<OpCase> rows;
  rows.push_back({"linear", "linear", kCpuFloat, kCudaFloat,
                  [](Rng& rng, DType dt) {
                    return std::vector<Tensor>{uniform({5, 7}, -1, 1, rng, {dt}), uniform({3, 7}, -0.5, 0.5, rng, {dt}),
                                               uniform({3}, -0.5, 0.5, rng, {dt})};
                  },
                  {true, true, true}, [](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); }});
  rows.push_back({"linear[no_bias]", "linear", kCpuFloat, kCudaFloat,
                  [](Rng& rng, DType dt) {
                    return std::vector<Tensor>{uniform({5, 7}, -1, 1, rng, {dt}), uniform({3, 7}, -0.5, 0.5, rng, {dt})};
                  },
                  {true, true}, [](const std::vector<Tensor>& in) { return linear(in[0], in[1], Tensor()); }});
  rows.push_back({"matmul", "linear", kCpuFloat, kCudaFloat,
                  [](Rng& rng, DType dt) {
                    return std::vector<Tensor>{uniform({4, 5}, -1, 1, rng, {dt}), uniform({5, 3}, -1, 1, rng, {dt})};
                  },
                  {true, true}, [](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); }});
  rows.push_back({"matmul[batched]", "linear", kCpuFloat, kCudaFloat,
                  [](Rng& rng, DType dt) {
                    return std::vector<Tensor>{uniform({2, 4, 5}, -1, 1, rng, {dt}),
                                               uniform({2, 5, 3}, -1, 1, rng, {dt})};
                  },
                  {true, true}, [](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); }});
  for (OpCase& row : rows) row.parity_tolerance_half = kHalfTolerance;
  return rows;
}

}  // namespace kiln
