// The emulated cuDNN's bookkeeping: handles, tensor/filter/convolution descriptors,
// status strings and the checks that turn three descriptors into a convolution
// Problem. The algorithm table and the heuristic queries are in cudnn_algorithms.cpp,
// the arithmetic in cudnn_conv.cpp; cudnn.h's header comment states the contract.
#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <sstream>
#include <string>
#include <unordered_set>

#include "cudnn_internal.h"

#include "cudnn_internal.h"

namespace kiln::emulator::dnn {

namespace {

thread_local std::string last_error;

std::mutex handles_mutex;
std::unordered_set<const void*>& live_handles() {
  static std::unordered_set<const void*> handles;
  return handles;
}
bool is_live_handle(cudnnHandle_t handle) {
  if (!handle) return false;
  std::lock_guard<std::mutex> lock(handles_mutex);
  return live_handles().count(handle) != 0;
}

bool valid_data_type(int t) { return t >= CUDNN_DATA_FLOAT && t <= CUDNN_DATA_COMPLEX_FP64; }

size_t data_type_bytes(cudnnDataType_t t) {
  switch (t) {
    case CUDNN_DATA_DOUBLE: case CUDNN_DATA_INT64: return 8;
    case CUDNN_DATA_HALF: case CUDNN_DATA_BFLOAT16: return 2;
    case CUDNN_DATA_INT8: case CUDNN_DATA_UINT8: case CUDNN_DATA_BOOLEAN: return 1;
    default: return 4;
  }
}

std::string describe(const cudnnTensorStruct& t) {
  std::ostringstream s;
  s << "(" << t.n << ", " << t.c << ", " << t.h << ", " << t.w << ") strides (" << t.n_stride << ", " << t.c_stride
    << ", " << t.h_stride << ", " << t.w_stride << ") " << data_type_name(t.type);
  return s.str();
}

int64_t output_size(int in, int pad, int kernel, int dilation, int stride) {
  const int64_t span = int64_t{dilation} * (kernel - 1) + 1;
  const int64_t room = int64_t{in} + 2 * int64_t{pad} - span;
  return room < 0 ? 0 : room / stride + 1;
}

cudnnStatus_t set_tensor(cudnnTensorDescriptor_t desc, cudnnDataType_t type, int n, int c, int h, int w, int ns,
                         int cs, int hs, int ws) {
  if (!desc) return fail(CUDNN_STATUS_BAD_PARAM, "tensorDesc is NULL");
  if (!valid_data_type(type)) return fail(CUDNN_STATUS_BAD_PARAM, "dataType is not a cudnnDataType_t");
  if (n <= 0 || c <= 0 || h <= 0 || w <= 0)
    return fail(CUDNN_STATUS_BAD_PARAM, "the sizes n, c, h, w must be positive");
  if (ns <= 0 || cs <= 0 || hs <= 0 || ws <= 0) return fail(CUDNN_STATUS_BAD_PARAM, "the strides must be positive");
  const int64_t extent = int64_t{n - 1} * ns + int64_t{c - 1} * cs + int64_t{h - 1} * hs + int64_t{w - 1} * ws + 1;
  if (int64_t{n} * c * h * w > INT_MAX || extent > INT_MAX)
    return fail(CUDNN_STATUS_NOT_SUPPORTED, "the tensor exceeds 2 Giga-elements");
  desc->type = type;
  desc->n = n, desc->c = c, desc->h = h, desc->w = w;
  desc->n_stride = ns, desc->c_stride = cs, desc->h_stride = hs, desc->w_stride = ws;
  desc->set = true;
  return CUDNN_STATUS_SUCCESS;
}

}  // namespace

bool handle_is_live(cudnnHandle_t handle) { return is_live_handle(handle); }

const char* data_type_name(cudnnDataType_t t) {
  switch (t) {
    case CUDNN_DATA_FLOAT: return "CUDNN_DATA_FLOAT";
    case CUDNN_DATA_DOUBLE: return "CUDNN_DATA_DOUBLE";
    case CUDNN_DATA_HALF: return "CUDNN_DATA_HALF";
    case CUDNN_DATA_BFLOAT16: return "CUDNN_DATA_BFLOAT16";
    case CUDNN_DATA_INT8: return "CUDNN_DATA_INT8";
    case CUDNN_DATA_INT32: return "CUDNN_DATA_INT32";
    case CUDNN_DATA_UINT8: return "CUDNN_DATA_UINT8";
    case CUDNN_DATA_INT64: return "CUDNN_DATA_INT64";
    default: return "another cudnnDataType_t";
  }
}

void set_last_error(const std::string& message) { last_error = message; }

size_t Problem::element_bytes() const { return data_type_bytes(x.type); }

const char* math_type_name(cudnnMathType_t math) {
  switch (math) {
    case CUDNN_DEFAULT_MATH: return "CUDNN_DEFAULT_MATH";
    case CUDNN_TENSOR_OP_MATH: return "CUDNN_TENSOR_OP_MATH";
    case CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION: return "CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION";
    case CUDNN_FMA_MATH: return "CUDNN_FMA_MATH";
  }
  return "?";
}

cudnnStatus_t make_problem(Direction direction, cudnnHandle_t handle, const cudnnTensorStruct* x,
                           const cudnnFilterStruct* w, const cudnnConvolutionStruct* conv, const cudnnTensorStruct* y,
                           Problem* out) {
  const char* x_name = direction == Direction::backward_data ? "dxDesc" : "xDesc";
  const char* y_name = direction == Direction::forward ? "yDesc" : "dyDesc";
  const char* w_name = direction == Direction::backward_filter ? "dwDesc" : "wDesc";
  if (!is_live_handle(handle)) return fail(CUDNN_STATUS_BAD_PARAM, "handle is NULL or destroyed");
  if (!x || !w || !conv || !y) return fail(CUDNN_STATUS_BAD_PARAM, "a descriptor is NULL");
  if (!x->set) return fail(CUDNN_STATUS_BAD_PARAM, std::string(x_name) + " was never set");
  if (!y->set) return fail(CUDNN_STATUS_BAD_PARAM, std::string(y_name) + " was never set");
  if (!w->set) return fail(CUDNN_STATUS_BAD_PARAM, std::string(w_name) + " was never set");
  if (!conv->set) return fail(CUDNN_STATUS_BAD_PARAM, "convDesc was never set (cudnnSetConvolution2dDescriptor)");
  if (x->type != y->type || x->type != w->type)
    return fail(CUDNN_STATUS_BAD_PARAM, std::string("data types differ: ") + x_name + " " + data_type_name(x->type) +
                                            ", " + w_name + " " + data_type_name(w->type) + ", " + y_name + " " +
                                            data_type_name(y->type));
  Problem p;
  p.direction = direction;
  p.x = *x, p.y = *y, p.w = *w, p.conv = *conv;
  p.N = x->n, p.C = x->c, p.H = x->h, p.W = x->w;
  p.K = w->k, p.R = w->r, p.S = w->s;
  p.groups = conv->groups;
  if (p.C != w->c * p.groups)
    return fail(CUDNN_STATUS_BAD_PARAM, std::string(x_name) + " has C = " + std::to_string(p.C) + " but " + w_name +
                                            " has c = " + std::to_string(w->c) + " per group and the group count is " +
                                            std::to_string(p.groups));
  if (p.K % p.groups != 0)
    return fail(CUDNN_STATUS_BAD_PARAM, std::string(w_name) + " has K = " + std::to_string(p.K) +
                                            ", not a multiple of the group count " + std::to_string(p.groups));
  p.Cg = w->c;
  p.Kg = p.K / p.groups;
  if (y->n != p.N || y->c != p.K)
    return fail(CUDNN_STATUS_BAD_PARAM, std::string(y_name) + " " + describe(*y) + " does not match N = " +
                                            std::to_string(p.N) + " and K = " + std::to_string(p.K));
  const int64_t span_h = int64_t{conv->dilation_h} * (p.R - 1) + 1, span_w = int64_t{conv->dilation_w} * (p.S - 1) + 1;
  if (span_h > p.H + 2 * int64_t{conv->pad_h} || span_w > p.W + 2 * int64_t{conv->pad_w})
    return fail(CUDNN_STATUS_BAD_PARAM, "the dilated filter is larger than the padded input");
  const int64_t ho = output_size(p.H, conv->pad_h, p.R, conv->dilation_h, conv->stride_h);
  const int64_t wo = output_size(p.W, conv->pad_w, p.S, conv->dilation_w, conv->stride_w);
  if (y->h != ho || y->w != wo) {
    const std::string message = std::string(y_name) + " is " + std::to_string(y->h) + "x" + std::to_string(y->w) +
                                " but the convolution's output is " + std::to_string(ho) + "x" + std::to_string(wo);
    // The API reference lists this under NOT_SUPPORTED for the forward call and
    // under BAD_PARAM for the two backward calls.
    return fail(direction == Direction::forward ? CUDNN_STATUS_NOT_SUPPORTED : CUDNN_STATUS_BAD_PARAM, message);
  }
  p.Ho = static_cast<int>(ho), p.Wo = static_cast<int>(wo);
  *out = p;
  return CUDNN_STATUS_SUCCESS;
}

}  // namespace kiln::emulator::dnn

using namespace kiln::emulator::dnn;

extern "C" {

// ---------------------------------------------------------------- library and handle
size_t cudnnGetVersion(void) { return CUDNN_VERSION; }

cudnnStatus_t cudnnGetProperty(libraryPropertyType type, int* value) {
  if (!value) return fail(CUDNN_STATUS_BAD_PARAM, "value is NULL");
  switch (type) {
    case MAJOR_VERSION: *value = CUDNN_MAJOR; return CUDNN_STATUS_SUCCESS;
    case MINOR_VERSION: *value = CUDNN_MINOR; return CUDNN_STATUS_SUCCESS;
    case PATCH_LEVEL: *value = CUDNN_PATCHLEVEL; return CUDNN_STATUS_SUCCESS;
  }
  return fail(CUDNN_STATUS_BAD_PARAM, "type is not a libraryPropertyType");
}

const char* cudnnGetErrorString(cudnnStatus_t status) {
  switch (status) {
#define KILN_NAME(x) \
  case x: return #x;
    KILN_NAME(CUDNN_STATUS_SUCCESS)
    KILN_NAME(CUDNN_STATUS_NOT_INITIALIZED)
    KILN_NAME(CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH)
    KILN_NAME(CUDNN_STATUS_SERIALIZATION_VERSION_MISMATCH)
    KILN_NAME(CUDNN_STATUS_DEPRECATED)
    KILN_NAME(CUDNN_STATUS_LICENSE_ERROR)
    KILN_NAME(CUDNN_STATUS_RUNTIME_IN_PROGRESS)
    KILN_NAME(CUDNN_STATUS_RUNTIME_FP_OVERFLOW)
    KILN_NAME(CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED)
    KILN_NAME(CUDNN_STATUS_BAD_PARAM)
    KILN_NAME(CUDNN_STATUS_INVALID_VALUE)
    KILN_NAME(CUDNN_STATUS_BAD_PARAM_NULL_POINTER)
    KILN_NAME(CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER)
    KILN_NAME(CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED)
    KILN_NAME(CUDNN_STATUS_BAD_PARAM_OUT_OF_BOUND)
    KILN_NAME(CUDNN_STATUS_BAD_PARAM_SIZE_INSUFFICIENT)
    KILN_NAME(CUDNN_STATUS_BAD_PARAM_STREAM_MISMATCH)
    KILN_NAME(CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH)
    KILN_NAME(CUDNN_STATUS_BAD_PARAM_DUPLICATED_ENTRIES)
    KILN_NAME(CUDNN_STATUS_BAD_PARAM_ATTRIBUTE_TYPE)
    KILN_NAME(CUDNN_STATUS_BAD_PARAM_CUDA_GRAPH_MISMATCH)
    KILN_NAME(CUDNN_STATUS_BAD_PARAM_DESCRIPTOR_TYPE)
    KILN_NAME(CUDNN_STATUS_NOT_SUPPORTED)
    KILN_NAME(CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN)
    KILN_NAME(CUDNN_STATUS_NOT_SUPPORTED_SHAPE)
    KILN_NAME(CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE)
    KILN_NAME(CUDNN_STATUS_NOT_SUPPORTED_LAYOUT)
    KILN_NAME(CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDA_DRIVER)
    KILN_NAME(CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDART)
    KILN_NAME(CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH)
    KILN_NAME(CUDNN_STATUS_NOT_SUPPORTED_RUNTIME_PREREQUISITE_MISSING)
    KILN_NAME(CUDNN_STATUS_NOT_SUPPORTED_SUBLIBRARY_UNAVAILABLE)
    KILN_NAME(CUDNN_STATUS_NOT_SUPPORTED_SHARED_MEMORY_INSUFFICIENT)
    KILN_NAME(CUDNN_STATUS_NOT_SUPPORTED_PADDING)
    KILN_NAME(CUDNN_STATUS_NOT_SUPPORTED_BAD_LAUNCH_PARAM)
    KILN_NAME(CUDNN_STATUS_NOT_SUPPORTED_CUDA_GRAPH_NATIVE_API)
    KILN_NAME(CUDNN_STATUS_NOT_SUPPORTED_INVALID_DYNAMIC_SHAPE)
    KILN_NAME(CUDNN_STATUS_INTERNAL_ERROR)
    KILN_NAME(CUDNN_STATUS_INTERNAL_ERROR_COMPILATION_FAILED)
    KILN_NAME(CUDNN_STATUS_INTERNAL_ERROR_UNEXPECTED_VALUE)
    KILN_NAME(CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED)
    KILN_NAME(CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED)
    KILN_NAME(CUDNN_STATUS_INTERNAL_ERROR_BAD_LAUNCH_PARAM)
    KILN_NAME(CUDNN_STATUS_INTERNAL_ERROR_TEXTURE_CREATION_FAILED)
    KILN_NAME(CUDNN_STATUS_EXECUTION_FAILED)
    KILN_NAME(CUDNN_STATUS_EXECUTION_FAILED_CUDA_DRIVER)
    KILN_NAME(CUDNN_STATUS_EXECUTION_FAILED_CUBLAS)
    KILN_NAME(CUDNN_STATUS_EXECUTION_FAILED_CUDART)
    KILN_NAME(CUDNN_STATUS_EXECUTION_FAILED_CURAND)
#undef KILN_NAME
  }
  return "CUDNN_UNKNOWN_STATUS";
}

void cudnnGetLastErrorString(char* message, size_t max_size) {
  if (!message || max_size == 0) return;
  std::snprintf(message, max_size, "%s", last_error.c_str());
}

cudnnStatus_t cudnnCreate(cudnnHandle_t* handle) {
  if (!handle) return fail(CUDNN_STATUS_BAD_PARAM, "handle is NULL");
  cudnnContext* context = new cudnnContext();
  {
    std::lock_guard<std::mutex> lock(handles_mutex);
    live_handles().insert(context);
  }
  *handle = context;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroy(cudnnHandle_t handle) {
  {
    std::lock_guard<std::mutex> lock(handles_mutex);
    if (!handle || live_handles().erase(handle) == 0)
      return fail(CUDNN_STATUS_BAD_PARAM, "handle is NULL or already destroyed");
  }
  delete handle;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetStream(cudnnHandle_t handle, cudaStream_t stream) {
  if (!is_live_handle(handle)) return fail(CUDNN_STATUS_BAD_PARAM, "handle is NULL or destroyed");
  handle->stream = stream;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetStream(cudnnHandle_t handle, cudaStream_t* stream) {
  if (!is_live_handle(handle) || !stream) return fail(CUDNN_STATUS_BAD_PARAM, "handle or streamId is NULL");
  *stream = handle->stream;
  return CUDNN_STATUS_SUCCESS;
}

// ---------------------------------------------------------------- tensor descriptors
cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t* desc) {
  if (!desc) return fail(CUDNN_STATUS_BAD_PARAM, "tensorDesc is NULL");
  *desc = new cudnnTensorStruct();
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t desc, cudnnTensorFormat_t format,
                                         cudnnDataType_t type, int n, int c, int h, int w) {
  if ((format == CUDNN_TENSOR_NCHW || format == CUDNN_TENSOR_NHWC) && n > 0 && c > 0 && h > 0 && w > 0 &&
      int64_t{c} * h * w > INT_MAX)
    return fail(CUDNN_STATUS_NOT_SUPPORTED, "the tensor exceeds 2 Giga-elements");
  if (format == CUDNN_TENSOR_NCHW) return set_tensor(desc, type, n, c, h, w, c * h * w, h * w, w, 1);
  if (format == CUDNN_TENSOR_NHWC) return set_tensor(desc, type, n, c, h, w, h * w * c, 1, w * c, c);
  if (format == CUDNN_TENSOR_NCHW_VECT_C)
    return fail(CUDNN_STATUS_NOT_SUPPORTED, "CUDNN_TENSOR_NCHW_VECT_C is not emulated");
  return fail(CUDNN_STATUS_BAD_PARAM, "format is not a cudnnTensorFormat_t");
}

cudnnStatus_t cudnnSetTensor4dDescriptorEx(cudnnTensorDescriptor_t desc, cudnnDataType_t type, int n, int c, int h,
                                           int w, int ns, int cs, int hs, int ws) {
  return set_tensor(desc, type, n, c, h, w, ns, cs, hs, ws);
}

cudnnStatus_t cudnnGetTensor4dDescriptor(const cudnnTensorDescriptor_t desc, cudnnDataType_t* type, int* n, int* c,
                                         int* h, int* w, int* ns, int* cs, int* hs, int* ws) {
  if (!desc || !desc->set) return fail(CUDNN_STATUS_BAD_PARAM, "tensorDesc is NULL or was never set");
  if (type) *type = desc->type;
  if (n) *n = desc->n;
  if (c) *c = desc->c;
  if (h) *h = desc->h;
  if (w) *w = desc->w;
  if (ns) *ns = desc->n_stride;
  if (cs) *cs = desc->c_stride;
  if (hs) *hs = desc->h_stride;
  if (ws) *ws = desc->w_stride;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetTensorSizeInBytes(const cudnnTensorDescriptor_t desc, size_t* size) {
  if (!desc || !desc->set || !size) return fail(CUDNN_STATUS_BAD_PARAM, "tensorDesc or size is NULL, or unset");
  const int64_t extent = int64_t{desc->n - 1} * desc->n_stride + int64_t{desc->c - 1} * desc->c_stride +
                         int64_t{desc->h - 1} * desc->h_stride + int64_t{desc->w - 1} * desc->w_stride + 1;
  *size = static_cast<size_t>(extent) * data_type_bytes(desc->type);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t desc) {
  delete desc;  // NULL is allowed, as in cuDNN
  return CUDNN_STATUS_SUCCESS;
}

// ---------------------------------------------------------------- filter descriptors
cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t* desc) {
  if (!desc) return fail(CUDNN_STATUS_BAD_PARAM, "filterDesc is NULL");
  *desc = new cudnnFilterStruct();
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t desc, cudnnDataType_t type,
                                         cudnnTensorFormat_t format, int k, int c, int h, int w) {
  if (!desc) return fail(CUDNN_STATUS_BAD_PARAM, "filterDesc is NULL");
  if (!valid_data_type(type)) return fail(CUDNN_STATUS_BAD_PARAM, "dataType is not a cudnnDataType_t");
  if (format == CUDNN_TENSOR_NCHW_VECT_C)
    return fail(CUDNN_STATUS_NOT_SUPPORTED, "CUDNN_TENSOR_NCHW_VECT_C is not emulated");
  if (format != CUDNN_TENSOR_NCHW && format != CUDNN_TENSOR_NHWC)
    return fail(CUDNN_STATUS_BAD_PARAM, "format is not a cudnnTensorFormat_t");
  if (k <= 0 || c <= 0 || h <= 0 || w <= 0)
    return fail(CUDNN_STATUS_BAD_PARAM, "the sizes k, c, h, w must be positive");
  if (int64_t{k} * c * h * w > INT_MAX) return fail(CUDNN_STATUS_NOT_SUPPORTED, "the filter exceeds 2 Giga-elements");
  desc->type = type;
  desc->format = format;
  desc->k = k, desc->c = c, desc->r = h, desc->s = w;
  desc->set = true;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetFilter4dDescriptor(const cudnnFilterDescriptor_t desc, cudnnDataType_t* type,
                                         cudnnTensorFormat_t* format, int* k, int* c, int* h, int* w) {
  if (!desc || !desc->set) return fail(CUDNN_STATUS_BAD_PARAM, "filterDesc is NULL or was never set");
  if (type) *type = desc->type;
  if (format) *format = desc->format;
  if (k) *k = desc->k;
  if (c) *c = desc->c;
  if (h) *h = desc->r;
  if (w) *w = desc->s;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetFilterSizeInBytes(const cudnnFilterDescriptor_t desc, size_t* size) {
  if (!desc || !desc->set || !size) return fail(CUDNN_STATUS_BAD_PARAM, "filterDesc or size is NULL, or unset");
  *size = static_cast<size_t>(desc->k) * desc->c * desc->r * desc->s * data_type_bytes(desc->type);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t desc) {
  delete desc;
  return CUDNN_STATUS_SUCCESS;
}

// ---------------------------------------------------------------- convolution descriptors
cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t* desc) {
  if (!desc) return fail(CUDNN_STATUS_BAD_PARAM, "convDesc is NULL");
  *desc = new cudnnConvolutionStruct();
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t desc) {
  delete desc;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t desc, cudnnMathType_t math) {
  if (!desc) return fail(CUDNN_STATUS_BAD_PARAM, "convDesc is NULL");
  if (math < CUDNN_DEFAULT_MATH || math > CUDNN_FMA_MATH)
    return fail(CUDNN_STATUS_BAD_PARAM, "mathType is not a cudnnMathType_t");
  desc->math = math;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionMathType(cudnnConvolutionDescriptor_t desc, cudnnMathType_t* math) {
  if (!desc || !math) return fail(CUDNN_STATUS_BAD_PARAM, "convDesc or mathType is NULL");
  *math = desc->math;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t desc, int groups) {
  if (!desc) return fail(CUDNN_STATUS_BAD_PARAM, "convDesc is NULL");
  if (groups < 1) return fail(CUDNN_STATUS_BAD_PARAM, "groupCount must be at least 1");
  desc->groups = groups;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionGroupCount(cudnnConvolutionDescriptor_t desc, int* groups) {
  if (!desc || !groups) return fail(CUDNN_STATUS_BAD_PARAM, "convDesc or groupCount is NULL");
  *groups = desc->groups;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t desc, int pad_h, int pad_w, int u, int v,
                                              int dilation_h, int dilation_w, cudnnConvolutionMode_t mode,
                                              cudnnDataType_t compute) {
  if (!desc) return fail(CUDNN_STATUS_BAD_PARAM, "convDesc is NULL");
  if (pad_h < 0 || pad_w < 0) return fail(CUDNN_STATUS_BAD_PARAM, "padding must not be negative");
  if (u <= 0 || v <= 0) return fail(CUDNN_STATUS_BAD_PARAM, "strides must be positive");
  if (dilation_h <= 0 || dilation_w <= 0) return fail(CUDNN_STATUS_BAD_PARAM, "dilations must be positive");
  if (mode != CUDNN_CONVOLUTION && mode != CUDNN_CROSS_CORRELATION)
    return fail(CUDNN_STATUS_BAD_PARAM, "mode is not a cudnnConvolutionMode_t");
  if (!valid_data_type(compute)) return fail(CUDNN_STATUS_BAD_PARAM, "computeType is not a cudnnDataType_t");
  desc->pad_h = pad_h, desc->pad_w = pad_w, desc->stride_h = u, desc->stride_w = v;
  desc->dilation_h = dilation_h, desc->dilation_w = dilation_w;
  desc->mode = mode;
  desc->compute = compute;
  desc->set = true;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolution2dDescriptor(const cudnnConvolutionDescriptor_t desc, int* pad_h, int* pad_w, int* u,
                                              int* v, int* dilation_h, int* dilation_w, cudnnConvolutionMode_t* mode,
                                              cudnnDataType_t* compute) {
  if (!desc || !desc->set) return fail(CUDNN_STATUS_BAD_PARAM, "convDesc is NULL or was never set");
  if (pad_h) *pad_h = desc->pad_h;
  if (pad_w) *pad_w = desc->pad_w;
  if (u) *u = desc->stride_h;
  if (v) *v = desc->stride_w;
  if (dilation_h) *dilation_h = desc->dilation_h;
  if (dilation_w) *dilation_w = desc->dilation_w;
  if (mode) *mode = desc->mode;
  if (compute) *compute = desc->compute;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolution2dForwardOutputDim(const cudnnConvolutionDescriptor_t conv,
                                                    const cudnnTensorDescriptor_t x, const cudnnFilterDescriptor_t w,
                                                    int* n, int* c, int* h, int* wo) {
  if (!conv || !x || !w || !n || !c || !h || !wo) return fail(CUDNN_STATUS_BAD_PARAM, "an argument is NULL");
  if (!conv->set || !x->set || !w->set) return fail(CUDNN_STATUS_BAD_PARAM, "a descriptor was never set");
  if (x->c != w->c * conv->groups)
    return fail(CUDNN_STATUS_BAD_PARAM, "the input's C is not the filter's c times the group count");
  if (w->k % conv->groups != 0) return fail(CUDNN_STATUS_BAD_PARAM, "the filter's K is not a multiple of the groups");
  const int64_t out_h = output_size(x->h, conv->pad_h, w->r, conv->dilation_h, conv->stride_h);
  const int64_t out_w = output_size(x->w, conv->pad_w, w->s, conv->dilation_w, conv->stride_w);
  if (out_h <= 0 || out_w <= 0)
    return fail(CUDNN_STATUS_BAD_PARAM, "the dilated filter is larger than the padded input");
  *n = x->n, *c = w->k, *h = static_cast<int>(out_h), *wo = static_cast<int>(out_w);
  return CUDNN_STATUS_SUCCESS;
}

}  // extern "C"
