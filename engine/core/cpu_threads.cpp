// The CPU backend's thread count (engine/core/cpu_threads.h).
#include "engine/core/cpu_threads.h"

#include <Eigen/Core>
#include <omp.h>

#include "engine/core/check.h"

namespace kiln {

void set_cpu_threads(int threads) {
  KILN_CHECK(threads >= 1, "--threads must be at least 1, got ", threads);
  omp_set_num_threads(threads);
  Eigen::setNbThreads(threads);
}

int cpu_threads() { return omp_get_max_threads(); }

}  // namespace kiln
