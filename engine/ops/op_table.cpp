// THE op table (see op_table.h). Each family's rows sit in their own function
// below, in the order of the families' headers; op_table() joins them.
#include "engine/ops/op_table.h"

#include <algorithm>

#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "engine/ops/shape_ops.h"
#include "engine/tensor/factory.h"

namespace kiln {

const DTypeSet kCpuFloat{DType::f32, DType::f64};
const DTypeSet kCudaFloat{DType::f32, DType::f16, DType::bf16};
const DTypeSet kCudaF32{DType::f32};

Tensor uniform_avoiding(const Shape& shape, double lo, double hi, const std::vector<double>& kinks, double margin,
                        Rng& rng, DType dtype) {
  std::vector<double> values(static_cast<size_t>(shape.numel()));
  for (double& v : values) {
    bool near_kink = true;
    while (near_kink) {  // rejection sampling; the margins are small, so this ends fast
      v = rng.uniform(lo, hi);
      near_kink = std::any_of(kinks.begin(), kinks.end(), [&](double k) { return std::abs(v - k) < margin; });
    }
  }
  return from_vector(values, shape, {dtype});
}

namespace {
// Inputs drawn from [-2, 2], away from 0 (so that division and powers stay smooth).
Tensor smooth(const Shape& shape, Rng& rng, DType dtype) { return uniform_avoiding(shape, -2, 2, {0.0}, 0.25, rng, dtype); }
Tensor positive(const Shape& shape, Rng& rng, DType dtype) { return uniform_avoiding(shape, 0.5, 2, {}, 0, rng, dtype); }
}  // namespace

// ---------------------------------------------------------------- elementwise.h
std::vector<OpCase> elementwise_cases() {
  std::vector<OpCase> rows;
  for (BinaryOp op : {BinaryOp::add, BinaryOp::sub, BinaryOp::mul, BinaryOp::div}) {
    const std::string name = binary_op_name(op);
    rows.push_back({name, "elementwise", kCpuFloat, kCudaFloat,
                    [](Rng& rng, DType dt) { return std::vector<Tensor>{smooth({2, 3, 4, 5}, rng, dt), smooth({2, 3, 4, 5}, rng, dt)}; },
                    {true, true}, [op](const std::vector<Tensor>& in) { return binary(op, in[0], in[1]); }});
    // Broadcasting a per-channel (C, 1, 1) tensor over (N, C, H, W), as a bias or a BN scale does.
    rows.push_back({name + "[broadcast=(3,1,1)]", "elementwise", kCpuFloat, kCudaFloat,
                    [](Rng& rng, DType dt) { return std::vector<Tensor>{smooth({2, 3, 4, 5}, rng, dt), smooth({3, 1, 1}, rng, dt)}; },
                    {true, true}, [op](const std::vector<Tensor>& in) { return binary(op, in[0], in[1]); }});
    // 4-D operands on both sides, so the parity test also runs them channels-last: a
    // per-channel (1, C, 1, 1) factor (stride 0 on N, H, W; in nhwc its C stride is 1)
    // and a per-pixel (N, 1, H, W) one (stride 0 on C, the innermost axis in nhwc).
    rows.push_back({name + "[broadcast=(1,3,1,1)]", "elementwise", kCpuFloat, kCudaFloat,
                    [](Rng& rng, DType dt) { return std::vector<Tensor>{smooth({2, 3, 4, 5}, rng, dt), smooth({1, 3, 1, 1}, rng, dt)}; },
                    {true, true}, [op](const std::vector<Tensor>& in) { return binary(op, in[0], in[1]); }});
    rows.push_back({name + "[broadcast=(2,1,4,5)]", "elementwise", kCpuFloat, kCudaFloat,
                    [](Rng& rng, DType dt) { return std::vector<Tensor>{smooth({2, 1, 4, 5}, rng, dt), smooth({2, 3, 4, 5}, rng, dt)}; },
                    {true, true}, [op](const std::vector<Tensor>& in) { return binary(op, in[0], in[1]); }});
  }
  rows.push_back({"affine_scalar", "elementwise", kCpuFloat, kCudaFloat,
                  [](Rng& rng, DType dt) { return std::vector<Tensor>{smooth({3, 7}, rng, dt)}; }, {true},
                  [](const std::vector<Tensor>& in) { return affine_scalar(in[0], -1.5, 0.25); }});
  rows.push_back({"pow_scalar", "elementwise", kCpuFloat, kCudaFloat,
                  [](Rng& rng, DType dt) { return std::vector<Tensor>{positive({3, 7}, rng, dt)}; }, {true},
                  [](const std::vector<Tensor>& in) { return pow_scalar(in[0], 2.5); }});
  return rows;
}

// ---------------------------------------------------------------- reduce.h
std::vector<OpCase> reduce_cases() {
  std::vector<OpCase> rows;
  auto input = [](Rng& rng, DType dt) { return std::vector<Tensor>{smooth({2, 3, 4, 5}, rng, dt)}; };
  rows.push_back({"sum", "reduce", kCpuFloat, kCudaFloat, input, {true},
                  [](const std::vector<Tensor>& in) { return sum(in[0]); }});
  rows.push_back({"sum[dims=(0,2,3),keepdim]", "reduce", kCpuFloat, kCudaFloat, input, {true},
                  [](const std::vector<Tensor>& in) { return sum(in[0], {0, 2, 3}, true); }});
  rows.push_back({"mean[dims=(1)]", "reduce", kCpuFloat, kCudaFloat, input, {true},
                  [](const std::vector<Tensor>& in) { return mean(in[0], {1}); }});
  rows.push_back({"broadcast_to", "reduce", kCpuFloat, kCudaFloat,
                  [](Rng& rng, DType dt) { return std::vector<Tensor>{smooth({3, 1, 5}, rng, dt)}; }, {true},
                  [](const std::vector<Tensor>& in) { return broadcast_to(in[0], Shape{2, 3, 4, 5}); }});
  return rows;
}

// ---------------------------------------------------------------- shape_ops.h
std::vector<OpCase> shape_cases() {
  std::vector<OpCase> rows;
  auto input = [](Rng& rng, DType dt) { return std::vector<Tensor>{smooth({2, 3, 4, 5}, rng, dt)}; };
  // Views work on any dtype: they only re-read the same bytes.
  const DTypeSet any_float{DType::f32, DType::f64, DType::f16, DType::bf16};
  rows.push_back({"reshape", "shape", any_float, any_float, input, {true},
                  [](const std::vector<Tensor>& in) { return reshape(in[0], Shape{6, -1}); }});
  rows.push_back({"flatten", "shape", any_float, any_float, input, {true},
                  [](const std::vector<Tensor>& in) { return flatten(in[0], 1); }});
  rows.push_back({"permute", "shape", kCpuFloat, kCudaFloat, input, {true},
                  [](const std::vector<Tensor>& in) { return permute(in[0], {0, 2, 3, 1}); }});
  rows.push_back({"transpose", "shape", kCpuFloat, kCudaFloat, input, {true},
                  [](const std::vector<Tensor>& in) { return transpose(in[0], 1, 3); }});
  rows.push_back({"concat", "shape", kCpuFloat, kCudaFloat,
                  [](Rng& rng, DType dt) {
                    return std::vector<Tensor>{smooth({2, 3, 4, 5}, rng, dt), smooth({2, 2, 4, 5}, rng, dt)};
                  },
                  {true, true}, [](const std::vector<Tensor>& in) { return concat({in[0], in[1]}, 1); }});
  rows.push_back({"slice", "shape", kCpuFloat, kCudaFloat, input, {true},
                  [](const std::vector<Tensor>& in) { return slice(in[0], 3, 1, 3); }});
  return rows;
}

// The families below are filled in by their own files' authors; each returns its rows.
// ---------------------------------------------------------------- activation.h
// (activation_cases, softmax_loss_cases, dropout_cases: engine/ops/op_table_activation.cpp)
// ---------------------------------------------------------------- conv.h / linear.h
// (conv_cases, linear_cases: engine/ops/op_table_conv.cpp)
// ---------------------------------------------------------------- norm.h / pool.h
// (norm_cases, pool_cases: engine/ops/op_table_norm_pool.cpp)

const std::vector<OpCase>& op_table() {
  static const std::vector<OpCase> table = [] {
    std::vector<OpCase> all;
    for (auto family : {elementwise_cases, reduce_cases, shape_cases, activation_cases, softmax_loss_cases,
                        dropout_cases, conv_cases, linear_cases, norm_cases, pool_cases}) {
      std::vector<OpCase> rows = family();
      all.insert(all.end(), rows.begin(), rows.end());
    }
    return all;
  }();
  return table;
}

const OpCase& op_case(const std::string& op) {
  for (const OpCase& row : op_table())
    if (row.op() == op) return row;
  std::string known;
  for (const OpCase& row : op_table())
    if (known.find(row.op() + ",") == std::string::npos) known += row.op() + ", ";
  KILN_FAIL("unknown op '", op, "'; the op table has: ", known);
}

}  // namespace kiln
