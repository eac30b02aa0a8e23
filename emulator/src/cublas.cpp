// The emulated cuBLAS and cuBLASLt handles, and the GEMMs (see emulator/include/cublas_v2.h
// for the contract and how it differs from NVIDIA's library).
//
//   C_b = alpha * op(A_b) * op(B_b) + beta * C_b,   b = 0 .. batchCount-1
//   column-major; X_b starts strideX elements after X_{b-1}; op(X) = X or X^T
//
// The arguments are checked when the call is made (that is when cuBLAS returns its
// status); the arithmetic is put on the handle's stream with enqueue(), so it runs in
// stream order like the GPU kernel would. Everything the work needs is copied into
// it: the caller may change the handle, or its host scalars, as soon as the call returns.
// The products use Eigen's blocked GEMM on maps of the caller's memory (no copy for
// f32/f64 data); half data, and f32 data rounded for a "fast" compute type, are
// converted into packed float matrices first.
#include <cublasLt.h>
#include <cublas_v2.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_set>

#include "emulated_numerics.h"
#include "runtime_internal.h"

struct cublasContext {
  cudaStream_t stream = nullptr;
  cublasMath_t math_mode = CUBLAS_DEFAULT_MATH;
  cublasPointerMode_t pointer_mode = CUBLAS_POINTER_MODE_HOST;
};

struct cublasLtContext {
  int unused = 0;
};

namespace {

using kiln::emulator::numerics::InputRounding;
namespace numerics = kiln::emulator::numerics;

// Live handles: a destroyed or never-created handle is refused as NOT_INITIALIZED
// instead of being read.
std::mutex handles_mutex;
std::unordered_set<const void*>& live_handles() {
  static std::unordered_set<const void*> handles;
  return handles;
}
bool is_live(const void* handle) {
  if (!handle) return false;
  std::lock_guard<std::mutex> lock(handles_mutex);
  return live_handles().count(handle) != 0;
}

size_t element_size(cudaDataType type) {
  switch (type) {
    case CUDA_R_32F: return 4;
    case CUDA_R_64F: return 8;
    case CUDA_R_16F:
    case CUDA_R_16BF: return 2;
    default: return 0;
  }
}

bool is_known_data_type(int type) { return (type >= 0 && type <= 33); }

bool is_known_compute_type(int type) {
  switch (type) {
    case CUBLAS_COMPUTE_16F: case CUBLAS_COMPUTE_16F_PEDANTIC: case CUBLAS_COMPUTE_32F:
    case CUBLAS_COMPUTE_32F_PEDANTIC: case CUBLAS_COMPUTE_32F_FAST_16F: case CUBLAS_COMPUTE_32F_FAST_16BF:
    case CUBLAS_COMPUTE_32F_FAST_TF32: case CUBLAS_COMPUTE_32F_EMULATED_16BFX9: case CUBLAS_COMPUTE_64F:
    case CUBLAS_COMPUTE_64F_PEDANTIC: case CUBLAS_COMPUTE_64F_EMULATED_FIXEDPOINT: case CUBLAS_COMPUTE_32I:
    case CUBLAS_COMPUTE_32I_PEDANTIC: return true;
    default: return false;
  }
}

bool is_known_algo(int algo) { return (algo >= -1 && algo <= 23) || (algo >= 99 && algo <= 115) || algo == 999; }

// NVIDIA_TF32_OVERRIDE=0 turns TF32 off process-wide on a real GPU; the emulator honours it.
bool tf32_overridden_off() {
  const char* v = std::getenv("NVIDIA_TF32_OVERRIDE");
  return v && std::string(v) == "0";
}

// How one supported (compute type, A/B type, C type) row of cuBLAS's table computes.
struct GemmKind {
  bool supported = false;
  bool double_precision = false;  // accumulate (and read alpha/beta) as double
  bool half_scalars = false;      // COMPUTE_16F: alpha/beta are __half
  InputRounding rounding = InputRounding::none;
};

GemmKind classify(cublasComputeType_t compute, cublasMath_t math_mode, cudaDataType ab, cudaDataType c) {
  GemmKind kind;
  const bool tf32_mode = (math_mode & 0xf) == CUBLAS_TF32_TENSOR_OP_MATH;
  const bool pedantic_mode = (math_mode & 0xf) == CUBLAS_PEDANTIC_MATH;
  switch (compute) {
    case CUBLAS_COMPUTE_16F:
    case CUBLAS_COMPUTE_16F_PEDANTIC:
      kind.supported = ab == CUDA_R_16F && c == CUDA_R_16F;
      kind.half_scalars = true;
      return kind;
    case CUBLAS_COMPUTE_32F:
    case CUBLAS_COMPUTE_32F_PEDANTIC:
      kind.supported = (ab == CUDA_R_32F && c == CUDA_R_32F) ||
                       (ab == CUDA_R_16F && (c == CUDA_R_16F || c == CUDA_R_32F)) ||
                       (ab == CUDA_R_16BF && (c == CUDA_R_16BF || c == CUDA_R_32F));
      // The handle's TF32 math mode lets CUBLAS_COMPUTE_32F use TF32 tensor cores for
      // f32 data; the _PEDANTIC compute type (and CUBLAS_PEDANTIC_MATH) never does.
      if (compute == CUBLAS_COMPUTE_32F && ab == CUDA_R_32F && tf32_mode && !pedantic_mode)
        kind.rounding = InputRounding::tf32;
      return kind;
    case CUBLAS_COMPUTE_32F_FAST_16F:
    case CUBLAS_COMPUTE_32F_FAST_16BF:
    case CUBLAS_COMPUTE_32F_FAST_TF32:
      kind.supported = ab == CUDA_R_32F && c == CUDA_R_32F;
      kind.rounding = compute == CUBLAS_COMPUTE_32F_FAST_16F    ? InputRounding::half
                      : compute == CUBLAS_COMPUTE_32F_FAST_16BF ? InputRounding::bfloat16
                                                                : InputRounding::tf32;
      if (pedantic_mode) kind.rounding = InputRounding::none;
      return kind;
    case CUBLAS_COMPUTE_64F:
    case CUBLAS_COMPUTE_64F_PEDANTIC:
      kind.supported = ab == CUDA_R_64F && c == CUDA_R_64F;
      kind.double_precision = true;
      return kind;
    default:  // emulated BF16x9 / fixed point and the integer types: not emulated
      return kind;
  }
}

double read_scalar(const void* p, const GemmKind& kind) {
  if (kind.double_precision) return *static_cast<const double*>(p);
  if (kind.half_scalars) {
    uint16_t bits;
    std::memcpy(&bits, p, sizeof bits);
    return numerics::half_to_float(bits);
  }
  return *static_cast<const float*>(p);
}

size_t scalar_size(const GemmKind& kind) { return kind.double_precision ? 8 : kind.half_scalars ? 2 : 4; }

// The bytes [first, last) one operand touches over the batch: `rows` x `cols` stored
// column-major with leading dimension ld, batch copies stride elements apart.
struct Extent {
  long long first = 0, last = 0;  // in elements, relative to the pointer
};
Extent operand_extent(long long rows, long long cols, long long ld, long long stride, long long batch) {
  Extent e;
  if (rows == 0 || cols == 0 || batch == 0) return e;
  const long long span = (cols - 1) * ld + rows;
  const long long last_start = (batch - 1) * stride;
  e.first = std::min(0LL, last_start);
  e.last = std::max(0LL, last_start) + span;
  return e;
}

template <class Acc>
using ColMatrix = Eigen::Matrix<Acc, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
template <class Acc>
using ConstStridedMap = Eigen::Map<const ColMatrix<Acc>, 0, Eigen::OuterStride<>>;
template <class Acc>
using StridedMap = Eigen::Map<ColMatrix<Acc>, 0, Eigen::OuterStride<>>;

template <class Acc>
Acc load_element(const char* base, cudaDataType type, long long index) {
  switch (type) {
    case CUDA_R_32F: return static_cast<Acc>(reinterpret_cast<const float*>(base)[index]);
    case CUDA_R_64F: return static_cast<Acc>(reinterpret_cast<const double*>(base)[index]);
    case CUDA_R_16F: {
      uint16_t bits;
      std::memcpy(&bits, base + 2 * index, 2);
      return static_cast<Acc>(numerics::half_to_float(bits));
    }
    case CUDA_R_16BF: {
      uint16_t bits;
      std::memcpy(&bits, base + 2 * index, 2);
      return static_cast<Acc>(numerics::bfloat16_to_float(bits));
    }
    default: return Acc(0);
  }
}

template <class Acc>
void store_element(char* base, cudaDataType type, long long index, Acc value) {
  switch (type) {
    case CUDA_R_32F: reinterpret_cast<float*>(base)[index] = static_cast<float>(value); break;
    case CUDA_R_64F: reinterpret_cast<double*>(base)[index] = static_cast<double>(value); break;
    case CUDA_R_16F: {
      const uint16_t bits = numerics::float_to_half(static_cast<float>(value));
      std::memcpy(base + 2 * index, &bits, 2);
      break;
    }
    case CUDA_R_16BF: {
      const uint16_t bits = numerics::float_to_bfloat16(static_cast<float>(value));
      std::memcpy(base + 2 * index, &bits, 2);
      break;
    }
    default: break;
  }
}

// One operand of one batch entry as a packed column-major Acc matrix (rows x cols of
// its storage, before op()), converted and rounded as the compute kind says.
template <class Acc>
void load_operand(const char* base, cudaDataType type, long long rows, long long cols, long long ld,
                  InputRounding rounding, ColMatrix<Acc>& out) {
  out.resize(rows, cols);
  for (long long j = 0; j < cols; ++j)
    for (long long i = 0; i < rows; ++i) {
      Acc v = load_element<Acc>(base, type, j * ld + i);
      if constexpr (std::is_same_v<Acc, float>) v = numerics::round_input(v, rounding);
      out(i, j) = v;
    }
}

struct GemmWork {
  bool trans_a, trans_b;
  long long m, n, k;
  const char* A;
  cudaDataType a_type;
  long long lda, stride_a;
  const char* B;
  cudaDataType b_type;
  long long ldb, stride_b;
  char* C;
  cudaDataType c_type;
  long long ldc, stride_c;
  long long batch;
  GemmKind kind;
  bool device_scalars;
  double alpha, beta;              // host pointer mode: read at call time
  const void* alpha_ptr;           // device pointer mode: read when the work runs
  const void* beta_ptr;
};

template <class Acc>
void run_gemm(const GemmWork& w) {
  const double alpha_d = w.device_scalars ? read_scalar(w.alpha_ptr, w.kind) : w.alpha;
  const double beta_d = w.device_scalars ? read_scalar(w.beta_ptr, w.kind) : w.beta;
  const Acc alpha = static_cast<Acc>(alpha_d), beta = static_cast<Acc>(beta_d);
  const long long a_rows = w.trans_a ? w.k : w.m, a_cols = w.trans_a ? w.m : w.k;
  const long long b_rows = w.trans_b ? w.n : w.k, b_cols = w.trans_b ? w.k : w.n;
  const size_t a_es = element_size(w.a_type), b_es = element_size(w.b_type), c_es = element_size(w.c_type);
  constexpr cudaDataType acc_type = std::is_same_v<Acc, double> ? CUDA_R_64F : CUDA_R_32F;
  const bool direct_a = w.a_type == acc_type && w.kind.rounding == InputRounding::none;
  const bool direct_b = w.b_type == acc_type && w.kind.rounding == InputRounding::none;
  const bool direct_c = w.c_type == acc_type;
  ColMatrix<Acc> a_copy, b_copy, product;

  for (long long b = 0; b < w.batch; ++b) {
    const char* a_base = w.A + b * w.stride_a * static_cast<long long>(a_es);
    const char* b_base = w.B + b * w.stride_b * static_cast<long long>(b_es);
    char* c_base = w.C + b * w.stride_c * static_cast<long long>(c_es);
    // Views of A and B: maps of the caller's memory, or packed converted copies.
    const Acc* a_data;
    long long a_ld;
    if (direct_a) {
      a_data = reinterpret_cast<const Acc*>(a_base);
      a_ld = w.lda;
    } else {
      load_operand<Acc>(a_base, w.a_type, a_rows, a_cols, w.lda, w.kind.rounding, a_copy);
      a_data = a_copy.data();
      a_ld = std::max<long long>(a_rows, 1);
    }
    const Acc* b_data;
    long long b_ld;
    if (direct_b) {
      b_data = reinterpret_cast<const Acc*>(b_base);
      b_ld = w.ldb;
    } else {
      load_operand<Acc>(b_base, w.b_type, b_rows, b_cols, w.ldb, w.kind.rounding, b_copy);
      b_data = b_copy.data();
      b_ld = std::max<long long>(b_rows, 1);
    }
    const ConstStridedMap<Acc> a_map(a_data, a_rows, a_cols, Eigen::OuterStride<>(a_ld));
    const ConstStridedMap<Acc> b_map(b_data, b_rows, b_cols, Eigen::OuterStride<>(b_ld));

    auto product_into = [&](auto& dst) {  // dst = op(A) * op(B), without reading dst
      if (!w.trans_a && !w.trans_b) dst.noalias() = a_map * b_map;
      else if (w.trans_a && !w.trans_b) dst.noalias() = a_map.transpose() * b_map;
      else if (!w.trans_a && w.trans_b) dst.noalias() = a_map * b_map.transpose();
      else dst.noalias() = a_map.transpose() * b_map.transpose();
    };

    if (direct_c && beta == Acc(0)) {
      // Written without being read: C may hold garbage (NaN) when beta is 0.
      StridedMap<Acc> c_map(reinterpret_cast<Acc*>(c_base), w.m, w.n, Eigen::OuterStride<>(w.ldc));
      product_into(c_map);
      if (alpha != Acc(1)) c_map *= alpha;
      continue;
    }
    product.resize(w.m, w.n);
    product_into(product);
    for (long long j = 0; j < w.n; ++j)
      for (long long i = 0; i < w.m; ++i) {
        const long long index = j * w.ldc + i;
        Acc value = alpha * product(i, j);
        if (beta != Acc(0)) value += beta * load_element<Acc>(c_base, w.c_type, index);
        store_element<Acc>(c_base, w.c_type, index, value);
      }
  }
}

const char* status_name(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}

const char* status_string(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "an absent device architectural feature is required";
    case CUBLAS_STATUS_MAPPING_ERROR: return "an access to GPU memory space failed";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    case CUBLAS_STATUS_LICENSE_ERROR: return "error detected trying to check the license";
  }
  return "unknown error";
}

cublasStatus_t library_property(libraryPropertyType type, int* value) {
  if (!value) return CUBLAS_STATUS_INVALID_VALUE;
  switch (type) {
    case MAJOR_VERSION: *value = CUBLAS_VER_MAJOR; return CUBLAS_STATUS_SUCCESS;
    case MINOR_VERSION: *value = CUBLAS_VER_MINOR; return CUBLAS_STATUS_SUCCESS;
    case PATCH_LEVEL: *value = CUBLAS_VER_PATCH; return CUBLAS_STATUS_SUCCESS;
  }
  return CUBLAS_STATUS_INVALID_VALUE;
}

// A pointer outside every cudaMalloc allocation faults on a GPU when the kernel
// reads it: the launch succeeds and the error surfaces at the next synchronisation.
cublasStatus_t enqueue_illegal_address(cudaStream_t stream, const std::string& what) {
  const std::string message = "cublasGemmStridedBatchedEx: " + what +
                              " is not device memory (not inside any cudaMalloc allocation): an illegal address";
  const cudaError_t queued = kiln::emulator::enqueue(stream, "cublasGemmStridedBatchedEx", [message] {
    kiln::emulator::set_error_detail(cudaErrorIllegalAddress, message);
    return cudaErrorIllegalAddress;
  });
  return queued == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}

}  // namespace

extern "C" {

cublasStatus_t cublasCreate_v2(cublasHandle_t* handle) {
  if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
  cublasContext* context = new cublasContext();
  {
    std::lock_guard<std::mutex> lock(handles_mutex);
    live_handles().insert(context);
  }
  *handle = context;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) {
  {
    std::lock_guard<std::mutex> lock(handles_mutex);
    if (!handle || live_handles().erase(handle) == 0) return CUBLAS_STATUS_NOT_INITIALIZED;
  }
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetVersion_v2(cublasHandle_t handle, int* version) {
  if (!is_live(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!version) return CUBLAS_STATUS_INVALID_VALUE;
  *version = CUBLAS_VERSION;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetProperty(libraryPropertyType type, int* value) { return library_property(type, value); }

cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t stream) {
  if (!is_live(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->stream = stream;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetStream_v2(cublasHandle_t handle, cudaStream_t* stream) {
  if (!is_live(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!stream) return CUBLAS_STATUS_INVALID_VALUE;
  *stream = handle->stream;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetPointerMode_v2(cublasHandle_t handle, cublasPointerMode_t* mode) {
  if (!is_live(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!mode) return CUBLAS_STATUS_INVALID_VALUE;
  *mode = handle->pointer_mode;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetPointerMode_v2(cublasHandle_t handle, cublasPointerMode_t mode) {
  if (!is_live(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (mode != CUBLAS_POINTER_MODE_HOST && mode != CUBLAS_POINTER_MODE_DEVICE) return CUBLAS_STATUS_INVALID_VALUE;
  handle->pointer_mode = mode;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t* mode) {
  if (!is_live(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!mode) return CUBLAS_STATUS_INVALID_VALUE;
  *mode = handle->math_mode;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  if (!is_live(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  const int base = mode & ~CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION;
  if (base != 0 && base != 1 && base != 2 && base != 3 && base != 4 && base != 8) return CUBLAS_STATUS_INVALID_VALUE;
  handle->math_mode = mode;
  return CUBLAS_STATUS_SUCCESS;
}

const char* cublasGetStatusName(cublasStatus_t status) { return status_name(status); }
const char* cublasGetStatusString(cublasStatus_t status) { return status_string(status); }

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                          int m, int n, int k, const void* alpha, const void* A, cudaDataType Atype,
                                          int lda, long long int strideA, const void* B, cudaDataType Btype, int ldb,
                                          long long int strideB, const void* beta, void* C, cudaDataType Ctype,
                                          int ldc, long long int strideC, int batchCount,
                                          cublasComputeType_t computeType, cublasGemmAlgo_t algo) {
  if (!is_live(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  // CUBLAS_STATUS_INVALID_VALUE, in the order cuBLAS's documentation lists them.
  if (m < 0 || n < 0 || k < 0 || batchCount < 0) return CUBLAS_STATUS_INVALID_VALUE;
  auto valid_op = [](cublasOperation_t op) { return op == CUBLAS_OP_N || op == CUBLAS_OP_T || op == CUBLAS_OP_C; };
  if (!valid_op(transa) || !valid_op(transb)) return CUBLAS_STATUS_INVALID_VALUE;
  const bool trans_a = transa != CUBLAS_OP_N, trans_b = transb != CUBLAS_OP_N;  // C == T for real types
  if (lda < std::max(1, trans_a ? k : m)) return CUBLAS_STATUS_INVALID_VALUE;
  if (ldb < std::max(1, trans_b ? n : k)) return CUBLAS_STATUS_INVALID_VALUE;
  if (ldc < std::max(1, m)) return CUBLAS_STATUS_INVALID_VALUE;
  if (!alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
  if (!is_known_data_type(Atype) || !is_known_data_type(Btype) || !is_known_data_type(Ctype) ||
      !is_known_compute_type(computeType) || !is_known_algo(algo))
    return CUBLAS_STATUS_INVALID_VALUE;
  // CUBLAS_STATUS_NOT_SUPPORTED: a combination outside the table.
  if (Atype != Btype) return CUBLAS_STATUS_NOT_SUPPORTED;
  GemmKind kind = classify(computeType, handle->math_mode, Atype, Ctype);
  if (!kind.supported) return CUBLAS_STATUS_NOT_SUPPORTED;
  if (kind.rounding == InputRounding::tf32 && tf32_overridden_off()) kind.rounding = InputRounding::none;

  if (m == 0 || n == 0 || batchCount == 0) return CUBLAS_STATUS_SUCCESS;  // nothing to write

  GemmWork work{};
  work.trans_a = trans_a;
  work.trans_b = trans_b;
  work.m = m, work.n = n, work.k = k;
  work.A = static_cast<const char*>(A), work.a_type = Atype, work.lda = lda, work.stride_a = strideA;
  work.B = static_cast<const char*>(B), work.b_type = Btype, work.ldb = ldb, work.stride_b = strideB;
  work.C = static_cast<char*>(C), work.c_type = Ctype, work.ldc = ldc, work.stride_c = strideC;
  work.batch = batchCount;
  work.kind = kind;
  work.device_scalars = handle->pointer_mode == CUBLAS_POINTER_MODE_DEVICE;
  work.alpha_ptr = alpha;
  work.beta_ptr = beta;
  if (!work.device_scalars) {
    work.alpha = read_scalar(alpha, kind);
    work.beta = read_scalar(beta, kind);
  }

  // Device memory checks: what the kernel would read (A, B; C only when beta may be
  // non-zero, but it is always written) and, in device pointer mode, the scalars.
  struct Operand {
    const char* name;
    const void* pointer;
    Extent extent;
    size_t element;
  };
  const Operand operands[] = {
      {"A", A, operand_extent(trans_a ? k : m, trans_a ? m : k, lda, strideA, batchCount), element_size(Atype)},
      {"B", B, operand_extent(trans_b ? n : k, trans_b ? k : n, ldb, strideB, batchCount), element_size(Btype)},
      {"C", C, operand_extent(m, n, ldc, strideC, batchCount), element_size(Ctype)},
  };
  for (const Operand& operand : operands) {
    if (operand.extent.last == operand.extent.first) continue;  // touches nothing (k == 0)
    const char* start = static_cast<const char*>(operand.pointer) + operand.extent.first * (long long)operand.element;
    const size_t bytes = static_cast<size_t>(operand.extent.last - operand.extent.first) * operand.element;
    if (!operand.pointer || !kiln::emulator::is_device_range(start, bytes))
      return enqueue_illegal_address(handle->stream, std::string("matrix ") + operand.name + " (" +
                                                         std::to_string(bytes) + " bytes from " +
                                                         std::to_string(reinterpret_cast<uintptr_t>(start)) + ")");
  }
  if (work.device_scalars && (!kiln::emulator::is_device_range(alpha, scalar_size(kind)) ||
                              !kiln::emulator::is_device_range(beta, scalar_size(kind))))
    return enqueue_illegal_address(handle->stream, "alpha or beta (CUBLAS_POINTER_MODE_DEVICE)");

  const cudaError_t queued = kiln::emulator::enqueue(handle->stream, "cublasGemmStridedBatchedEx", [work] {
    if (work.kind.double_precision) run_gemm<double>(work);
    else run_gemm<float>(work);
    return cudaSuccess;
  });
  return queued == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}

cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                            int k, const void* alpha, const void* A, cudaDataType Atype, int lda, const void* B,
                            cudaDataType Btype, int ldb, const void* beta, void* C, cudaDataType Ctype, int ldc,
                            cublasComputeType_t computeType, cublasGemmAlgo_t algo) {
  return cublasGemmStridedBatchedEx(handle, transa, transb, m, n, k, alpha, A, Atype, lda, 0, B, Btype, ldb, 0, beta,
                                    C, Ctype, ldc, 0, 1, computeType, algo);
}

// ---------------------------------------------------------------- cuBLASLt
cublasStatus_t cublasLtCreate(cublasLtHandle_t* handle) {
  if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
  cublasLtContext* context = new cublasLtContext();
  {
    std::lock_guard<std::mutex> lock(handles_mutex);
    live_handles().insert(context);
  }
  *handle = context;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtDestroy(cublasLtHandle_t handle) {
  {
    std::lock_guard<std::mutex> lock(handles_mutex);
    if (!handle || live_handles().erase(handle) == 0) return CUBLAS_STATUS_NOT_INITIALIZED;
  }
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

size_t cublasLtGetVersion(void) { return CUBLAS_VERSION; }
cublasStatus_t cublasLtGetProperty(libraryPropertyType type, int* value) { return library_property(type, value); }
const char* cublasLtGetStatusName(cublasStatus_t status) { return status_name(status); }
const char* cublasLtGetStatusString(cublasStatus_t status) { return status_string(status); }

}  // extern "C"
