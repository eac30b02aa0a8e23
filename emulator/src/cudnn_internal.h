// What the parts of the emulated cuDNN share: the descriptor structs behind cuDNN's
// opaque handles and the validated convolution problem (cudnn_descriptors.cpp), the
// algorithm table and the test knobs (cudnn_algorithms.cpp), and the arithmetic
// (cudnn_conv.cpp).
// Not part of the cuDNN API: only the emulator's own sources include it.
#pragma once
#include <cudnn.h>

#include <cstddef>
#include <string>
#include <vector>

struct cudnnContext {
  cudaStream_t stream = nullptr;
};

struct cudnnTensorStruct {
  bool set = false;  // false until a cudnnSetTensor4dDescriptor* call succeeds
  cudnnDataType_t type = CUDNN_DATA_FLOAT;
  int n = 0, c = 0, h = 0, w = 0;
  int n_stride = 0, c_stride = 0, h_stride = 0, w_stride = 0;  // in elements
};

struct cudnnFilterStruct {
  bool set = false;
  cudnnDataType_t type = CUDNN_DATA_FLOAT;
  cudnnTensorFormat_t format = CUDNN_TENSOR_NCHW;  // NCHW: KCRS order, NHWC: KRSC order
  int k = 0, c = 0, r = 0, s = 0;                  // c: input channels per group
};

struct cudnnConvolutionStruct {
  bool set = false;  // cudnnSetConvolution2dDescriptor called
  int pad_h = 0, pad_w = 0, stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  cudnnDataType_t compute = CUDNN_DATA_FLOAT;
  int groups = 1;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
};

namespace kiln::emulator::dnn {

enum class Direction { forward, backward_data, backward_filter };
const char* direction_knob_name(Direction d);  // "fwd", "bwd_data", "bwd_filter"

bool handle_is_live(cudnnHandle_t handle);  // created by cudnnCreate and not destroyed
const char* data_type_name(cudnnDataType_t t);  // "CUDNN_DATA_FLOAT"

// Dense in NCHW (or NHWC) order; a dimension of size 1 may have any stride.
inline bool packed_nchw(const cudnnTensorStruct& t) {
  return (t.w == 1 || t.w_stride == 1) && (t.h == 1 || t.h_stride == t.w) && (t.c == 1 || t.c_stride == t.h * t.w) &&
         (t.n == 1 || t.n_stride == t.c * t.h * t.w);
}
inline bool packed_nhwc(const cudnnTensorStruct& t) {
  return (t.c == 1 || t.c_stride == 1) && (t.w == 1 || t.w_stride == t.c) && (t.h == 1 || t.h_stride == t.w * t.c) &&
         (t.n == 1 || t.n_stride == t.h * t.w * t.c);
}

// cudnnGetLastErrorString's text: why the calling thread's last call failed.
void set_last_error(const std::string& message);
inline cudnnStatus_t fail(cudnnStatus_t status, const std::string& message) {
  set_last_error(message);
  return status;
}

// One convolution, with copies of its descriptors (the caller may change or destroy
// them once the call returns) and the sizes derived from them. x and y are the
// forward input and output whatever the direction: backward data reads dy (y) and
// writes dx (x), backward filter reads x and dy (y) and writes dw (w).
struct Problem {
  Direction direction = Direction::forward;
  cudnnTensorStruct x, y;
  cudnnFilterStruct w;
  cudnnConvolutionStruct conv;
  int N = 0, C = 0, H = 0, W = 0;  // x
  int K = 0, R = 0, S = 0;         // filter
  int Ho = 0, Wo = 0;              // y
  int groups = 1, Cg = 0, Kg = 0;  // channels per group
  size_t element_bytes() const;    // of the data type
};

// Checks the handle and descriptors as cuDNN's convolution calls do and fills *out:
// CUDNN_STATUS_BAD_PARAM (null or unset descriptors, mismatched types or channel
// counts, a filter larger than the padded input, wrong dy sizes for the backward
// directions) or CUDNN_STATUS_NOT_SUPPORTED (a forward y of the wrong spatial size).
cudnnStatus_t make_problem(Direction direction, cudnnHandle_t handle, const cudnnTensorStruct* x,
                           const cudnnFilterStruct* w, const cudnnConvolutionStruct* conv, const cudnnTensorStruct* y,
                           Problem* out);

// The algorithm table (cudnn_algorithms.cpp; cudnn.h's header comment has it in words).
int algorithm_count(Direction d);  // CUDNN_CONVOLUTION_*_ALGO_COUNT
const char* algorithm_name(Direction d, int algo);
// SUCCESS, or NOT_SUPPORTED with the reason (data/compute types, layout, restrictions).
cudnnStatus_t algorithm_support(Direction d, int algo, const Problem& p, std::string* why);
size_t workspace_bytes(Direction d, int algo, const Problem& p);  // knob KILN_EMULATE_CUDNN_WORKSPACE included
cudnnDeterminism_t algorithm_determinism(Direction d, int algo);
// The math type the heuristics report for `algo` when the descriptor says `descriptor_math`.
cudnnMathType_t reported_math_type(Direction d, int algo, const Problem& p, cudnnMathType_t descriptor_math);
// Whether f32 data runs in TF32 for this algorithm and descriptor math type.
bool runs_tf32(Direction d, int algo, const Problem& p, cudnnMathType_t descriptor_math);
std::vector<int> heuristic_order(Direction d);  // knob KILN_EMULATE_CUDNN_RANK included

// The test knobs that act at execution.
bool knob_rejects(Direction d, int algo);  // KILN_EMULATE_CUDNN_REJECT
bool knob_strict_math();                   // KILN_EMULATE_CUDNN_STRICT_MATH
void knob_log(const std::string& line);    // KILN_EMULATE_CUDNN_LOG (no-op when unset)

const char* math_type_name(cudnnMathType_t math);

// The arithmetic (cudnn_conv.cpp). `input_a`/`input_b`: forward x, w; backward data
// dy, w; backward filter x, dy. `output`: y, dx or dw. Runs on the calling thread:
// the API functions hand it to enqueue().
struct Execution {
  Problem problem;
  int algo = 0;
  bool tf32 = false;
  bool nondeterministic = false;
  double alpha = 1, beta = 0;
  const void* input_a = nullptr;
  const void* input_b = nullptr;
  void* output = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;  // what the algorithm uses of it
};
void run_convolution(const Execution& e);

}  // namespace kiln::emulator::dnn
