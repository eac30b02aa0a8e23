// conv2d on oneDNN: forward, backward-data and backward-weights (f32, any groups
// including depthwise, stride, padding, dilation, bias), declared in conv.h under
// `namespace onednn`. conv.cpp sends a CPU f32 convolution here when
// cpu_conv_path() is onednn; the Eigen reference (cpu/conv_cpu.cpp) is what this is
// tested against (tests/ops/test_conv_onednn.cpp).
//
// The math is conv.h's. What this file adds is the plumbing oneDNN wants:
//   - Formats. kiln's arrays are plain nchw or nhwc ("user" memory, no copy). For
//     nchw data and for every weight the primitive is created with format_tag::any,
//     so oneDNN picks the blocked layout its JIT kernel runs fastest on (e.g.
//     nChw16c: 16 channels contiguous, one AVX-512 register); as_format() reorders an
//     input into it, and the output is reordered back, only where the chosen format
//     differs from kiln's. nhwc data is used as it is (oneDNN's kernels read it).
//   - Creation cost. Making a primitive descriptor walks the library's kernel list
//     and JIT-compiles one (~0.1-10 ms); a training step runs each shape thrice. So
//     each (direction, geometry, layouts, bias) is created once and kept in a map.
//   - Scratchpad in user mode: a primitive's temporary memory comes from kiln's
//     caching allocator per call, so one primitive may run on several threads.
//   - Padding. oneDNN takes the left/top and right/bottom padding apart; kiln's is
//     symmetric with the output size floored, so the right/bottom padding is what
//     the last output pixel actually reaches: (Ho - 1)*sh + (R - 1)*dh + 1 - H - ph,
//     which is ph or less (oneDNN accepts it smaller, the extra input row unread).
//   - Dilation. oneDNN counts the gaps between taps: dilation - 1.
//
// Bytes moved per call: the input, weight and output once each for the convolution,
// plus one extra read and write of each array that needs a reorder.
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "engine/ops/conv.h"
#include "engine/ops/onednn/onednn.h"

namespace kiln::onednn {

namespace {

using dnnl::memory;
using Tag = memory::format_tag;
constexpr memory::data_type kF32 = memory::data_type::f32;

enum class Direction { forward, backward_data, backward_weights };

// Everything that makes two convolutions the same primitive.
using Key = std::tuple<int, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                       int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool, bool>;

Key key_of(Direction d, const Conv2dGeometry& g, bool src_nhwc, bool dst_nhwc, bool bias) {
  return Key{static_cast<int>(d), g.N, g.C, g.H, g.W, g.K, g.R, g.S, g.groups, g.stride_h, g.stride_w, g.pad_h,
             g.pad_w, g.dilation_h, g.dilation_w, src_nhwc, dst_nhwc, bias};
}

// The shapes and params in words, for error messages.
std::string describe(const Conv2dGeometry& g) {
  return str("x (", g.N, ", ", g.C, ", ", g.H, ", ", g.W, "), weight (", g.K, ", ", g.C_per_group(), ", ", g.R, ", ",
             g.S, "), stride (", g.stride_h, ", ", g.stride_w, "), padding (", g.pad_h, ", ", g.pad_w,
             "), dilation (", g.dilation_h, ", ", g.dilation_w, "), groups ", g.groups);
}

// The sizes oneDNN's descriptors take, derived from kiln's geometry.
struct Problem {
  memory::dims src, weights, bias, dst, strides, dilates, padding_l, padding_r;
};

Problem problem_of(const Conv2dGeometry& g) {
  Problem p;
  p.src = {g.N, g.C, g.H, g.W};
  // A grouped weight is 5-D for oneDNN: (G, K/G, C/G, R, S), the same bytes as kiln's (K, C/G, R, S).
  p.weights = g.groups > 1 ? memory::dims{g.groups, g.K_per_group(), g.C_per_group(), g.R, g.S}
                           : memory::dims{g.K, g.C, g.R, g.S};
  p.bias = {g.K};
  p.dst = {g.N, g.K, g.Ho, g.Wo};
  p.strides = {g.stride_h, g.stride_w};
  p.dilates = {g.dilation_h - 1, g.dilation_w - 1};
  p.padding_l = {g.pad_h, g.pad_w};
  p.padding_r = {(g.Ho - 1) * g.stride_h + (g.R - 1) * g.dilation_h + 1 - g.H - g.pad_h,
                 (g.Wo - 1) * g.stride_w + (g.S - 1) * g.dilation_w + 1 - g.W - g.pad_w};
  return p;
}

memory::desc any_desc(const memory::dims& dims) { return memory::desc(dims, kF32, Tag::any); }
memory::desc data_desc(const memory::dims& dims, bool nhwc) {
  return memory::desc(dims, kF32, nhwc ? Tag::nhwc : Tag::nchw);
}
memory::desc weights_desc(const Conv2dGeometry& g, const Problem& p) {
  return memory::desc(p.weights, kF32, g.groups > 1 ? Tag::goihw : Tag::oihw);
}

dnnl::primitive_attr user_scratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

// The format a primitive may use for a data array: its own choice (any) for nchw
// tensors, nhwc itself for channels-last ones, which oneDNN's kernels run directly.
memory::desc primitive_desc_for(const memory::dims& dims, bool nhwc) {
  return nhwc ? data_desc(dims, true) : any_desc(dims);
}

// The forward primitive descriptor; backward ones take it as their "hint".
dnnl::convolution_forward::primitive_desc forward_pd(const Problem& p, const memory::desc& src,
                                                     const memory::desc& dst, bool bias) {
  const auto prop = dnnl::prop_kind::forward_training;
  const auto algorithm = dnnl::algorithm::convolution_direct;
  const auto desc = bias ? dnnl::convolution_forward::desc(prop, algorithm, src, any_desc(p.weights),
                                                           any_desc(p.bias), dst, p.strides, p.dilates,
                                                           p.padding_l, p.padding_r)
                         : dnnl::convolution_forward::desc(prop, algorithm, src, any_desc(p.weights), dst,
                                                           p.strides, p.dilates, p.padding_l, p.padding_r);
  return dnnl::convolution_forward::primitive_desc(desc, user_scratchpad(), cpu_engine());
}

// One cached primitive with the formats it chose.
struct Cached {
  dnnl::primitive primitive;
  memory::desc src, weights, dst, scratchpad;  // per direction: its two inputs and its output
};

std::mutex cache_mutex;
std::map<Key, std::unique_ptr<Cached>> cache;  // never shrinks: a program runs a handful of shapes

// Creates (once per key) and returns the primitive for one direction.
const Cached& primitive_for(Direction d, const Conv2dGeometry& g, bool src_nhwc, bool dst_nhwc, bool bias) {
  const Key key = key_of(d, g, src_nhwc, dst_nhwc, bias);
  std::lock_guard<std::mutex> lock(cache_mutex);
  auto found = cache.find(key);
  if (found != cache.end()) return *found->second;

  const Problem p = problem_of(g);
  auto made = std::make_unique<Cached>();
  const memory::desc src = primitive_desc_for(p.src, src_nhwc), dst = primitive_desc_for(p.dst, dst_nhwc);
  const auto forward = forward_pd(p, src, dst, bias && d == Direction::forward);
  switch (d) {
    case Direction::forward:
      *made = {dnnl::convolution_forward(forward), forward.src_desc(), forward.weights_desc(), forward.dst_desc(),
               forward.scratchpad_desc()};
      break;
    case Direction::backward_data: {
      const dnnl::convolution_backward_data::desc desc(dnnl::algorithm::convolution_direct, src, any_desc(p.weights),
                                                       dst, p.strides, p.dilates, p.padding_l, p.padding_r);
      const dnnl::convolution_backward_data::primitive_desc pd(desc, user_scratchpad(), cpu_engine(), forward);
      // Inputs: diff_dst (kept in `src`) and weights; output: diff_src (kept in `dst`).
      *made = {dnnl::convolution_backward_data(pd), pd.diff_dst_desc(), pd.weights_desc(), pd.diff_src_desc(),
               pd.scratchpad_desc()};
      break;
    }
    case Direction::backward_weights: {
      const dnnl::convolution_backward_weights::desc desc(dnnl::algorithm::convolution_direct, src,
                                                          any_desc(p.weights), dst, p.strides, p.dilates,
                                                          p.padding_l, p.padding_r);
      const dnnl::convolution_backward_weights::primitive_desc pd(desc, user_scratchpad(), cpu_engine(), forward);
      // Inputs: src and diff_dst (kept in `weights`); output: diff_weights (kept in `dst`).
      *made = {dnnl::convolution_backward_weights(pd), pd.src_desc(), pd.diff_dst_desc(), pd.diff_weights_desc(),
               pd.scratchpad_desc()};
      break;
    }
  }
  return *cache.emplace(key, std::move(made)).first->second;
}

bool is_nhwc(const Tensor& t) { return t.layout() == Layout::nhwc; }

// Runs `c` with its two inputs and writes its output into `out_user`, reordering
// where the primitive's formats differ from kiln's.
// (dnnl::memory is a handle: taken by value, as the library's reorder wants it mutable.)
void run(const Cached& c, int in0_arg, memory in0_user, int in1_arg, memory in1_user, int out_arg, memory out_user,
         const Tensor* bias) {
  Tensor keep_in0, keep_in1, keep_out;
  const memory in0 = as_format(in0_user, c.src, keep_in0);
  const memory in1 = as_format(in1_user, c.weights, keep_in1);
  const bool out_direct = out_user.get_desc() == c.dst;
  if (!out_direct) keep_out = scratch_buffer(c.dst.get_size());
  memory out = out_direct ? out_user : memory(c.dst, cpu_engine(), keep_out.raw_data());
  const Tensor scratch = scratch_buffer(c.scratchpad.get_size());
  std::unordered_map<int, memory> args{{in0_arg, in0}, {in1_arg, in1}, {out_arg, out},
                                       {DNNL_ARG_SCRATCHPAD, memory(c.scratchpad, cpu_engine(), scratch.raw_data())}};
  if (bias) args.emplace(DNNL_ARG_BIAS, memory(memory::desc({bias->numel()}, kF32, Tag::x), cpu_engine(),
                                               bias->raw_data()));
  dnnl::stream& stream = thread_stream();
  c.primitive.execute(stream, args);
  if (!out_direct) dnnl::reorder(out, out_user).execute(stream, out, out_user);
  stream.wait();
}

}  // namespace

size_t conv_primitives_created() {
  std::lock_guard<std::mutex> lock(cache_mutex);
  return cache.size();
}

void conv2d_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& y,
                    const Conv2dGeometry& g) {
  checked("conv2d", describe(g), [&] {
    const Problem p = problem_of(g);
    const Cached& c = primitive_for(Direction::forward, g, is_nhwc(x), is_nhwc(y), bias.defined());
    run(c, DNNL_ARG_SRC, memory(data_desc(p.src, is_nhwc(x)), cpu_engine(), x.raw_data()), DNNL_ARG_WEIGHTS,
        memory(weights_desc(g, p), cpu_engine(), weight.raw_data()), DNNL_ARG_DST,
        memory(data_desc(p.dst, is_nhwc(y)), cpu_engine(), y.raw_data()), bias.defined() ? &bias : nullptr);
  });
}

void conv2d_backward_input(const Tensor& grad_output, const Tensor& weight, const Tensor& grad_input,
                           const Conv2dGeometry& g) {
  checked("conv2d_backward_input", describe(g), [&] {
    const Problem p = problem_of(g);
    const Cached& c =
        primitive_for(Direction::backward_data, g, is_nhwc(grad_input), is_nhwc(grad_output), /*bias=*/false);
    run(c, DNNL_ARG_DIFF_DST, memory(data_desc(p.dst, is_nhwc(grad_output)), cpu_engine(), grad_output.raw_data()),
        DNNL_ARG_WEIGHTS, memory(weights_desc(g, p), cpu_engine(), weight.raw_data()), DNNL_ARG_DIFF_SRC,
        memory(data_desc(p.src, is_nhwc(grad_input)), cpu_engine(), grad_input.raw_data()), nullptr);
  });
}

void conv2d_backward_weight(const Tensor& grad_output, const Tensor& x, const Tensor& grad_weight,
                            const Conv2dGeometry& g) {
  checked("conv2d_backward_weight", describe(g), [&] {
    const Problem p = problem_of(g);
    const Cached& c = primitive_for(Direction::backward_weights, g, is_nhwc(x), is_nhwc(grad_output), false);
    run(c, DNNL_ARG_SRC, memory(data_desc(p.src, is_nhwc(x)), cpu_engine(), x.raw_data()), DNNL_ARG_DIFF_DST,
        memory(data_desc(p.dst, is_nhwc(grad_output)), cpu_engine(), grad_output.raw_data()),
        DNNL_ARG_DIFF_WEIGHTS, memory(weights_desc(g, p), cpu_engine(), grad_weight.raw_data()), nullptr);
  });
}

}  // namespace kiln::onednn
