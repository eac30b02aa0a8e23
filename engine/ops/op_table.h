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

// Both parity bounds of one row for one CUDA dtype (the parity test checks the
// output and every input gradient against them).
struct ParityTolerance {
  double rel_l2;   // relative L2 error
  double max_abs;  // max-abs error, in units of max(1, max |want|)
};

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
  // Max-abs error, CUDA vs CPU, per dtype: the worst single element, which relative L2
  // can average away (one wrong border pixel among hundreds). The bound is absolute for
  // values up to 1 and grows with the reference's largest magnitude above that:
  //     max |got - want| <= parity_max_abs * max(1, max |want|)
  // so it reads as "this much of the tensor's own scale" (a rounding error grows with
  // the value rounded). The defaults, for the harness's inputs (values of order 1,
  // gradients of sum(y * w) with w in [0.5, 1.5]); the worst measured over every row,
  // both layouts, output and gradients (emulated GPU, KILN_PARITY_REPORT=1) in brackets:
  //   f32   1e-5 [2.7e-7]: only the summation order differs; a sum of n terms is off
  //         by ~n * 2^-24 of its terms' size, and no row sums more than a few hundred.
  //   f16   4e-3 [7.0e-4 outside batch norm]: the CUDA side stores outputs and
  //         gradients in f16 (relative step 2^-11 = 4.9e-4, half of it per rounding) and
  //         reads f16 grad_output and saved tensors in backward: a few roundings chained.
  //   bf16  3e-2 [5.8e-3 outside batch norm]: the same chain with bf16's 2^-8 = 3.9e-3.
  // A wrong index or a missed term is off by a whole term, 0.05..1 here: far above all
  // three. Rows override them where their arithmetic amplifies rounding (batch norm's
  // cancellation) or a GPU library may compute differently (cuDNN's FFT and Winograd
  // convolutions); their files say why.
  double parity_max_abs_f32 = 1e-5;
  double parity_max_abs_f16 = 4e-3;
  double parity_max_abs_bf16 = 3e-2;

  std::string op() const { return name.substr(0, name.find('[')); }
  ParityTolerance parity_tolerance(DType dtype) const;  // the bounds for one CUDA dtype
};

inline ParityTolerance OpCase::parity_tolerance(DType dtype) const {
  switch (dtype) {
    case DType::f32: return {parity_tolerance_f32, parity_max_abs_f32};
    case DType::f16: return {parity_tolerance_half, parity_max_abs_f16};
    default: return {parity_tolerance_half, parity_max_abs_bf16};
  }
}

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
