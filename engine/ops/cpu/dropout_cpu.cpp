// CPU reference for dropout: the same (seed, logical index) -> keep decision as the
// CUDA kernel, so both backends drop exactly the same elements.
#include "engine/ops/dropout.h"

namespace kiln::cpu {

template <class T>
void dropout_forward(const T* x, T* y, int64_t n, float p, double scale, uint64_t seed, DropoutIndexing indexing) {
  const T keep_scale = static_cast<T>(scale);
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    // The comparison is in f32 on both backends: uniform01 returns an f32.
    const bool keep = uniform01(seed, static_cast<uint64_t>(indexing.logical_index(i))) >= p;
    y[i] = keep ? x[i] * keep_scale : T(0);
  }
}

template void dropout_forward<float>(const float*, float*, int64_t, float, double, uint64_t, DropoutIndexing);
template void dropout_forward<double>(const double*, double*, int64_t, float, double, uint64_t, DropoutIndexing);

}  // namespace kiln::cpu
