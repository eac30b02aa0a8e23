// THE op table: one row ("case") per op and option set, as plain data.
//
// A row says what an op is called, which dtypes each backend supports, how to make
// valid random inputs for it (shapes, and values away from its kinks), which of
// those inputs are differentiable, and how to call it. From that one row,
// tests/ops/test_op_table.cpp derives the float64 finite-difference gradient check
// and the CPU-vs-CUDA parity test (forward and backward), `kiln ops` lists it, and
// check_dtype_supported() reads it for its error messages. Adding an op adds rows;
// nothing else registers anything (docs/adding_an_op.md).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "engine/core/rng.h"
#include "engine/tensor/tensor.h"

namespace kiln {

struct OpCase {
  std::string name;    // "conv2d[stride=2,pad=1]": the op's name, then the options in brackets
  std::string family;  // "conv": the header / docs page it belongs to
  DTypeSet cpu_dtypes;
  DTypeSet cuda_dtypes;
  // Random CPU inputs in `dtype` (floating inputs; labels stay i64).
  std::function<std::vector<Tensor>(Rng& rng, DType dtype)> make_inputs;
  std::vector<bool> differentiable;  // per input: is its gradient checked?
  std::function<Tensor(const std::vector<Tensor>& inputs)> run;
  double gradcheck_tolerance = 1e-6;  // max |analytic - numeric| / (|numeric| + 1e-3)... see gradcheck.h
  double parity_tolerance_f32 = 1e-4;  // relative L2 error, CUDA vs CPU
  double parity_tolerance_half = 2e-2;  // for f16/bf16

  std::string op() const { return name.substr(0, name.find('[')); }
};

const std::vector<OpCase>& op_table();
// The first row of `op` (for its dtype lists); throws listing known ops if none.
const OpCase& op_case(const std::string& op);

// Per-family row lists, concatenated by op_table() (engine/ops/op_table.cpp).
std::vector<OpCase> elementwise_cases();
std::vector<OpCase> reduce_cases();
std::vector<OpCase> shape_cases();
std::vector<OpCase> activation_cases();
std::vector<OpCase> softmax_loss_cases();
std::vector<OpCase> dropout_cases();
std::vector<OpCase> conv_cases();
std::vector<OpCase> linear_cases();
std::vector<OpCase> norm_cases();
std::vector<OpCase> pool_cases();

// Helpers for writing rows.
extern const DTypeSet kCpuFloat;   // {f32, f64}
extern const DTypeSet kCudaFloat;  // {f32, f16, bf16}
extern const DTypeSet kCudaF32;    // {f32}
// Uniform values in [lo, hi] that stay at least `margin` away from every kink.
Tensor uniform_avoiding(const Shape& shape, double lo, double hi, const std::vector<double>& kinks,
                        double margin, Rng& rng, DType dtype);

}  // namespace kiln
