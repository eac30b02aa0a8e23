// The emulated cuDNN's algorithms: what each supports, its workspace, determinism and
// math type (the table of cudnn.h's header comment), the heuristic queries
// (cudnnGet*Algorithm_v7, MaxCount, WorkspaceSize) and the emulator's test knobs.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "cudnn_internal.h"

namespace kiln::emulator::dnn {

namespace {

// ---- test knobs: "fwd:1,6;bwd_filter:1" -> the items listed for one direction
std::vector<std::string> knob_items(const char* variable, Direction d) {
  std::vector<std::string> items;
  const char* value = std::getenv(variable);
  if (!value) return items;
  std::stringstream groups(value);
  std::string group;
  while (std::getline(groups, group, ';')) {
    const size_t colon = group.find(':');
    if (colon == std::string::npos || group.substr(0, colon) != direction_knob_name(d)) continue;
    std::stringstream list(group.substr(colon + 1));
    std::string item;
    while (std::getline(list, item, ',')) {
      item.erase(std::remove(item.begin(), item.end(), ' '), item.end());
      if (!item.empty()) items.push_back(item);
    }
  }
  return items;
}

size_t parse_bytes(const std::string& text) {
  char* end = nullptr;
  const unsigned long long number = std::strtoull(text.c_str(), &end, 10);
  int shift = 0;
  if (end && *end) {
    switch (*end) {
      case 'K': shift = 10; break;
      case 'M': shift = 20; break;
      case 'G': shift = 30; break;
      case 'T': shift = 40; break;
      case 'P': shift = 50; break;
      default: break;
    }
  }
  return static_cast<size_t>(number) << shift;
}

// size_t arithmetic that saturates instead of wrapping on absurd shapes.
size_t mul(std::initializer_list<double> factors) {
  double product = 1;
  for (double f : factors) product *= f;
  return product >= 1.8e19 ? SIZE_MAX : static_cast<size_t>(product);
}

size_t next_power_of_two(size_t v) {
  size_t p = 1;
  while (p < v) p <<= 1;
  return p;
}

size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }

bool tf32_overridden_off() {
  const char* v = std::getenv("NVIDIA_TF32_OVERRIDE");
  return v && std::string(v) == "0";
}

// Which algorithms have tensor-core kernels in the emulator's model.
bool tensor_core_algorithm(Direction d, int algo) {
  switch (d) {
    case Direction::forward:
      return algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM ||
             algo == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
    case Direction::backward_data:
      return algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_1 || algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED;
    case Direction::backward_filter:
      return algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1 ||
             algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED;
  }
  return false;
}

// The families the restrictions and workspaces are written for.
enum class Family { implicit, precomp, gemm, direct, fft, fft_tiling, winograd, winograd_nonfused, never };

Family family_of(Direction d, int algo) {
  switch (d) {
    case Direction::forward:
      switch (algo) {
        case 0: return Family::implicit;
        case 1: return Family::precomp;
        case 2: return Family::gemm;
        case 3: return Family::never;  // DIRECT: cuDNN supports no problem with it
        case 4: return Family::fft;
        case 5: return Family::fft_tiling;
        case 6: return Family::winograd;
        case 7: return Family::winograd_nonfused;
      }
      break;
    case Direction::backward_data:
      switch (algo) {
        case 0: case 1: return Family::implicit;
        case 2: return Family::fft;
        case 3: return Family::fft_tiling;
        case 4: return Family::winograd;
        case 5: return Family::winograd_nonfused;
      }
      break;
    case Direction::backward_filter:
      switch (algo) {
        case 0: return Family::implicit;
        case 1: return Family::implicit;
        case 2: return Family::fft;
        case 3: return Family::precomp;
        case 4: return Family::never;  // WINOGRAD: cuDNN supports no problem with it
        case 5: return Family::winograd_nonfused;
        case 6: return Family::fft_tiling;
      }
      break;
  }
  return Family::never;
}

size_t base_workspace(Direction d, int algo, const Problem& p) {
  const double compute_bytes = p.conv.compute == CUDNN_DATA_DOUBLE ? 8 : 4;
  const double N = p.N, C = p.C, K = p.K, Cg = p.Cg, R = p.R, S = p.S, Ho = p.Ho, Wo = p.Wo;
  if (d == Direction::backward_filter && algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1)
    return mul({4, K, Cg, R, S});  // f32 partial sums of the filter gradient
  switch (family_of(d, algo)) {
    case Family::implicit:
    case Family::direct:
    case Family::never: return 0;
    case Family::precomp: return mul({8, Cg, R, S}) + 256;  // precomputed offsets
    case Family::gemm: return mul({compute_bytes, C, R, S, Ho, Wo});  // one image's im2col
    case Family::fft: {
      const double fh = static_cast<double>(next_power_of_two(static_cast<size_t>(p.H + 2 * p.conv.pad_h)));
      const double fw = static_cast<double>(next_power_of_two(static_cast<size_t>(p.W + 2 * p.conv.pad_w)));
      return mul({8, fh, fw / 2 + 1, N * C + K * Cg + N * K});
    }
    case Family::fft_tiling: {
      const double tiles = static_cast<double>(ceil_div(p.H + 2 * p.conv.pad_h, 32) *
                                               ceil_div(p.W + 2 * p.conv.pad_w, 32));
      return mul({8, 32, 17, N * C * tiles + K * Cg + N * K * tiles});
    }
    case Family::winograd: return mul({compute_bytes, 16, K, Cg});  // transformed filters
    case Family::winograd_nonfused: {
      const double tiles = static_cast<double>(ceil_div(p.Ho, 4) * ceil_div(p.Wo, 4));
      return mul({compute_bytes, 36, N * C * tiles + K * Cg + N * K * tiles});
    }
  }
  return 0;
}

// The heuristics: every algorithm, supported ones first in the preference order.
template <class Perf, class Algo>
cudnnStatus_t heuristics(Direction d, const Problem& p, int requested, int* returned, Perf* results) {
  if (requested <= 0) return fail(CUDNN_STATUS_BAD_PARAM, "requestedAlgoCount must be positive");
  if (!returned || !results) return fail(CUDNN_STATUS_BAD_PARAM, "returnedAlgoCount or perfResults is NULL");
  std::vector<Perf> supported, unsupported;
  for (int algo : heuristic_order(d)) {
    Perf perf;
    std::memset(&perf, 0, sizeof perf);
    perf.algo = static_cast<Algo>(algo);
    perf.status = algorithm_support(d, algo, p, nullptr);
    perf.time = -1.0f;
    perf.memory = perf.status == CUDNN_STATUS_SUCCESS ? workspace_bytes(d, algo, p) : 0;
    perf.determinism = algorithm_determinism(d, algo);
    perf.mathType = reported_math_type(d, algo, p, p.conv.math);
    (perf.status == CUDNN_STATUS_SUCCESS ? supported : unsupported).push_back(perf);
  }
  supported.insert(supported.end(), unsupported.begin(), unsupported.end());
  const int count = std::min(requested, static_cast<int>(supported.size()));
  std::copy(supported.begin(), supported.begin() + count, results);
  *returned = count;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t workspace_query(Direction d, const Problem& p, int algo, size_t* size) {
  if (!size) return fail(CUDNN_STATUS_BAD_PARAM, "sizeInBytes is NULL");
  if (algo < 0 || algo >= algorithm_count(d)) return fail(CUDNN_STATUS_BAD_PARAM, "algo is out of range");
  std::string why;
  if (algorithm_support(d, algo, p, &why) != CUDNN_STATUS_SUCCESS) return fail(CUDNN_STATUS_NOT_SUPPORTED, why);
  *size = workspace_bytes(d, algo, p);
  return CUDNN_STATUS_SUCCESS;
}

}  // namespace

const char* direction_knob_name(Direction d) {
  switch (d) {
    case Direction::forward: return "fwd";
    case Direction::backward_data: return "bwd_data";
    case Direction::backward_filter: return "bwd_filter";
  }
  return "?";
}

int algorithm_count(Direction d) {
  switch (d) {
    case Direction::forward: return CUDNN_CONVOLUTION_FWD_ALGO_COUNT;
    case Direction::backward_data: return CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT;
    case Direction::backward_filter: return CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT;
  }
  return 0;
}

const char* algorithm_name(Direction d, int algo) {
  static const char* const forward[] = {"IMPLICIT_GEMM", "IMPLICIT_PRECOMP_GEMM", "GEMM", "DIRECT",
                                        "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"};
  static const char* const data[] = {"ALGO_0", "ALGO_1", "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"};
  static const char* const filter[] = {"ALGO_0", "ALGO_1", "FFT", "ALGO_3", "WINOGRAD", "WINOGRAD_NONFUSED",
                                       "FFT_TILING"};
  if (algo < 0 || algo >= algorithm_count(d)) return "?";
  switch (d) {
    case Direction::forward: return forward[algo];
    case Direction::backward_data: return data[algo];
    case Direction::backward_filter: return filter[algo];
  }
  return "?";
}

cudnnStatus_t algorithm_support(Direction d, int algo, const Problem& p, std::string* why) {
  auto no = [&](const std::string& reason) {
    if (why) *why = std::string(algorithm_name(d, algo)) + ": " + reason;
    return CUDNN_STATUS_NOT_SUPPORTED;
  };
  // The data type configurations of cuDNN's tables.
  const cudnnDataType_t data = p.x.type, compute = p.conv.compute;
  const bool config = (data == CUDNN_DATA_FLOAT && compute == CUDNN_DATA_FLOAT) ||
                      (data == CUDNN_DATA_DOUBLE && compute == CUDNN_DATA_DOUBLE) ||
                      (data == CUDNN_DATA_HALF && (compute == CUDNN_DATA_FLOAT || compute == CUDNN_DATA_HALF)) ||
                      (data == CUDNN_DATA_BFLOAT16 && compute == CUDNN_DATA_FLOAT);
  if (!config)
    return no(std::string("data type ") + data_type_name(data) + " with compute type " + data_type_name(compute) +
              " is not a supported configuration");
  // Layouts: a KRSC (NHWC) filter only goes with NHWC tensors.
  const bool nchw = packed_nchw(p.x) && packed_nchw(p.y) && p.w.format == CUDNN_TENSOR_NCHW;
  if (p.w.format == CUDNN_TENSOR_NHWC && !(packed_nhwc(p.x) && packed_nhwc(p.y)))
    return no("an NHWC filter needs NHWC-packed x and y");
  const bool unit_stride = p.conv.stride_h == 1 && p.conv.stride_w == 1;
  const bool unit_dilation = p.conv.dilation_h == 1 && p.conv.dilation_w == 1;
  const bool float_or_half = data == CUDNN_DATA_FLOAT || data == CUDNN_DATA_HALF;
  switch (family_of(d, algo)) {
    case Family::implicit:
    case Family::precomp: return CUDNN_STATUS_SUCCESS;
    case Family::direct:
    case Family::never: return no("cuDNN supports no problem with this algorithm");
    case Family::gemm:
      if (!nchw) return no("needs NCHW-packed x and y and an NCHW filter");
      if (!unit_dilation) return no("needs dilation 1");
      return CUDNN_STATUS_SUCCESS;
    case Family::fft:
      if (!nchw) return no("needs NCHW-packed x and y and an NCHW filter");
      if (!unit_stride || !unit_dilation) return no("needs stride 1 and dilation 1");
      if (p.H + 2 * p.conv.pad_h > 256 || p.W + 2 * p.conv.pad_w > 256) return no("needs padded H and W <= 256");
      if (p.R <= p.conv.pad_h || p.S <= p.conv.pad_w) return no("needs a filter larger than the padding");
      if (!float_or_half) return no("needs FLOAT or HALF data");
      return CUDNN_STATUS_SUCCESS;
    case Family::fft_tiling:
      if (!nchw) return no("needs NCHW-packed x and y and an NCHW filter");
      if (!unit_stride || !unit_dilation) return no("needs stride 1 and dilation 1");
      if (p.R > 32 || p.S > 32) return no("needs a filter of at most 32x32");
      if (p.R <= p.conv.pad_h || p.S <= p.conv.pad_w) return no("needs a filter larger than the padding");
      if (!float_or_half && data != CUDNN_DATA_DOUBLE) return no("needs FLOAT, HALF or DOUBLE data");
      return CUDNN_STATUS_SUCCESS;
    case Family::winograd:
      if (!nchw) return no("needs NCHW-packed x and y and an NCHW filter");
      if (p.R != 3 || p.S != 3 || !unit_stride || !unit_dilation) return no("needs a 3x3 filter, stride 1, dilation 1");
      if (!float_or_half) return no("needs FLOAT or HALF data");
      return CUDNN_STATUS_SUCCESS;
    case Family::winograd_nonfused:
      if (!nchw) return no("needs NCHW-packed x and y and an NCHW filter");
      if (!((p.R == 3 && p.S == 3) || (p.R == 5 && p.S == 5)) || !unit_stride || !unit_dilation)
        return no("needs a 3x3 or 5x5 filter, stride 1, dilation 1");
      if (!float_or_half) return no("needs FLOAT or HALF data");
      return CUDNN_STATUS_SUCCESS;
  }
  return no("unknown algorithm");
}

size_t workspace_bytes(Direction d, int algo, const Problem& p) {
  for (const std::string& item : knob_items("KILN_EMULATE_CUDNN_WORKSPACE", d)) {
    const size_t equals = item.find('=');
    if (equals != std::string::npos && std::atoi(item.substr(0, equals).c_str()) == algo)
      return parse_bytes(item.substr(equals + 1));
  }
  return base_workspace(d, algo, p);
}

cudnnDeterminism_t algorithm_determinism(Direction d, int algo) {
  if (d == Direction::backward_data && algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_0) return CUDNN_NON_DETERMINISTIC;
  if (d == Direction::backward_filter &&
      (algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 || algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3))
    return CUDNN_NON_DETERMINISTIC;
  return CUDNN_DETERMINISTIC;
}

cudnnMathType_t reported_math_type(Direction d, int algo, const Problem& p, cudnnMathType_t descriptor_math) {
  if (descriptor_math == CUDNN_FMA_MATH) return CUDNN_FMA_MATH;
  if (p.x.type == CUDNN_DATA_DOUBLE || !tensor_core_algorithm(d, algo)) return CUDNN_DEFAULT_MATH;
  const bool half_data = p.x.type == CUDNN_DATA_HALF || p.x.type == CUDNN_DATA_BFLOAT16;
  if (descriptor_math == CUDNN_TENSOR_OP_MATH || descriptor_math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION ||
      (descriptor_math == CUDNN_DEFAULT_MATH && half_data))
    return CUDNN_TENSOR_OP_MATH;
  return CUDNN_DEFAULT_MATH;
}

bool runs_tf32(Direction d, int algo, const Problem& p, cudnnMathType_t descriptor_math) {
  return p.x.type == CUDNN_DATA_FLOAT && descriptor_math != CUDNN_FMA_MATH && tensor_core_algorithm(d, algo) &&
         !tf32_overridden_off();
}

std::vector<int> heuristic_order(Direction d) {
  std::vector<int> order;
  switch (d) {
    case Direction::forward: order = {1, 0, 6, 7, 2, 5, 4, 3}; break;
    case Direction::backward_data: order = {1, 0, 4, 5, 3, 2}; break;
    case Direction::backward_filter: order = {1, 0, 3, 5, 6, 2, 4}; break;
  }
  std::vector<int> first;
  for (const std::string& item : knob_items("KILN_EMULATE_CUDNN_RANK", d)) {
    const int algo = std::atoi(item.c_str());
    if (std::find(order.begin(), order.end(), algo) != order.end() &&
        std::find(first.begin(), first.end(), algo) == first.end())
      first.push_back(algo);
  }
  for (int algo : order)
    if (std::find(first.begin(), first.end(), algo) == first.end()) first.push_back(algo);
  return first;
}

bool knob_rejects(Direction d, int algo) {
  for (const std::string& item : knob_items("KILN_EMULATE_CUDNN_REJECT", d))
    if (std::atoi(item.c_str()) == algo) return true;
  return false;
}

bool knob_strict_math() {
  const char* v = std::getenv("KILN_EMULATE_CUDNN_STRICT_MATH");
  return v && *v && std::string(v) != "0";
}

void knob_log(const std::string& line) {
  const char* path = std::getenv("KILN_EMULATE_CUDNN_LOG");
  if (!path || !*path) return;
  static std::mutex log_mutex;
  std::lock_guard<std::mutex> lock(log_mutex);
  if (FILE* f = std::fopen(path, "a")) {
    std::fprintf(f, "%s\n", line.c_str());
    std::fclose(f);
  }
}

}  // namespace kiln::emulator::dnn

using namespace kiln::emulator::dnn;

extern "C" {

// ---------------------------------------------------------------- heuristics
cudnnStatus_t cudnnGetConvolutionForwardAlgorithmMaxCount(cudnnHandle_t handle, int* count) {
  if (!handle_is_live(handle) || !count) return fail(CUDNN_STATUS_BAD_PARAM, "handle or count is NULL");
  *count = CUDNN_CONVOLUTION_FWD_ALGO_COUNT;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithmMaxCount(cudnnHandle_t handle, int* count) {
  if (!handle_is_live(handle) || !count) return fail(CUDNN_STATUS_BAD_PARAM, "handle or count is NULL");
  *count = CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(cudnnHandle_t handle, int* count) {
  if (!handle_is_live(handle) || !count) return fail(CUDNN_STATUS_BAD_PARAM, "handle or count is NULL");
  *count = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t handle, const cudnnTensorDescriptor_t x,
                                                     const cudnnFilterDescriptor_t w,
                                                     const cudnnConvolutionDescriptor_t conv,
                                                     const cudnnTensorDescriptor_t y, const int requested,
                                                     int* returned, cudnnConvolutionFwdAlgoPerf_t* results) {
  Problem p;
  if (cudnnStatus_t s = make_problem(Direction::forward, handle, x, w, conv, y, &p)) return s;
  return heuristics<cudnnConvolutionFwdAlgoPerf_t, cudnnConvolutionFwdAlgo_t>(Direction::forward, p, requested,
                                                                              returned, results);
}

cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnnHandle_t handle, const cudnnFilterDescriptor_t w,
                                                          const cudnnTensorDescriptor_t dy,
                                                          const cudnnConvolutionDescriptor_t conv,
                                                          const cudnnTensorDescriptor_t dx, const int requested,
                                                          int* returned, cudnnConvolutionBwdDataAlgoPerf_t* results) {
  Problem p;
  if (cudnnStatus_t s = make_problem(Direction::backward_data, handle, dx, w, conv, dy, &p)) return s;
  return heuristics<cudnnConvolutionBwdDataAlgoPerf_t, cudnnConvolutionBwdDataAlgo_t>(Direction::backward_data, p,
                                                                                      requested, returned, results);
}

cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnnHandle_t handle, const cudnnTensorDescriptor_t x,
                                                            const cudnnTensorDescriptor_t dy,
                                                            const cudnnConvolutionDescriptor_t conv,
                                                            const cudnnFilterDescriptor_t dw, const int requested,
                                                            int* returned,
                                                            cudnnConvolutionBwdFilterAlgoPerf_t* results) {
  Problem p;
  if (cudnnStatus_t s = make_problem(Direction::backward_filter, handle, x, dw, conv, dy, &p)) return s;
  return heuristics<cudnnConvolutionBwdFilterAlgoPerf_t, cudnnConvolutionBwdFilterAlgo_t>(
      Direction::backward_filter, p, requested, returned, results);
}

cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t handle, const cudnnTensorDescriptor_t x,
                                                      const cudnnFilterDescriptor_t w,
                                                      const cudnnConvolutionDescriptor_t conv,
                                                      const cudnnTensorDescriptor_t y, cudnnConvolutionFwdAlgo_t algo,
                                                      size_t* size) {
  Problem p;
  if (cudnnStatus_t s = make_problem(Direction::forward, handle, x, w, conv, y, &p)) return s;
  return workspace_query(Direction::forward, p, algo, size);
}

cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(cudnnHandle_t handle, const cudnnFilterDescriptor_t w,
                                                           const cudnnTensorDescriptor_t dy,
                                                           const cudnnConvolutionDescriptor_t conv,
                                                           const cudnnTensorDescriptor_t dx,
                                                           cudnnConvolutionBwdDataAlgo_t algo, size_t* size) {
  Problem p;
  if (cudnnStatus_t s = make_problem(Direction::backward_data, handle, dx, w, conv, dy, &p)) return s;
  return workspace_query(Direction::backward_data, p, algo, size);
}

cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnnHandle_t handle, const cudnnTensorDescriptor_t x,
                                                             const cudnnTensorDescriptor_t dy,
                                                             const cudnnConvolutionDescriptor_t conv,
                                                             const cudnnFilterDescriptor_t dw,
                                                             cudnnConvolutionBwdFilterAlgo_t algo, size_t* size) {
  Problem p;
  if (cudnnStatus_t s = make_problem(Direction::backward_filter, handle, x, dw, conv, dy, &p)) return s;
  return workspace_query(Direction::backward_filter, p, algo, size);
}

}  // extern "C"
