// Checks that throw kiln::Error with a message naming what was expected.
//
//   KILN_CHECK(x.dim() == 4, "conv2d: input must be 4-D (N, C, H, W), got ", x.shape());
//
// The CUDA, cuBLAS and cuDNN status checks live in engine/cuda/cuda_check.h and are
// built from the same throw_error() so that every failure reads the same way.
#pragma once
#include "engine/core/error.h"

#define KILN_CHECK(cond, ...)                                                    \
  do {                                                                           \
    if (!(cond)) ::kiln::throw_error(::kiln::str(__VA_ARGS__), __FILE__, __LINE__); \
  } while (0)

#define KILN_FAIL(...) ::kiln::throw_error(::kiln::str(__VA_ARGS__), __FILE__, __LINE__)
