// How many threads the CPU backend computes with: the OpenMP parallel loops of kiln's
// cpu kernels (`#pragma omp parallel for` in engine/ops/cpu, engine/optim), Eigen's
// GEMM and oneDNN's primitives (engine/ops/onednn), which parallelise over OpenMP as well. `kiln --threads N` (or OMP_NUM_THREADS) sets
// it; the default is OpenMP's, one thread per core.
//
// Why one per core and not more: the data loader's worker threads run beside a step,
// but they only copy a few hundred KiB per batch, so the cores belong to the compute
// threads; OpenMP threads beyond the cores wait at each loop's barrier for the one
// that was descheduled.
#pragma once

namespace kiln {

// Sets the compute threads (>= 1) for OpenMP and Eigen; throws naming the option otherwise.
void set_cpu_threads(int threads);
// The compute threads in use now.
int cpu_threads();

}  // namespace kiln
