// KILN_LAUNCH(grid, block, shared_bytes, stream, kernel)(args...): the one way kiln
// launches a kernel.
//
// Under nvcc it is CUDA's own launch, kernel<<<grid, block, shared_bytes, stream>>>(args...).
// kiln's emulated GPU (emulator/, KILN_CUDA=EMULATE) compiles the same kernels with
// the host compiler, which has no <<<...>>> syntax; its cuda_runtime.h defines
// KILN_LAUNCH to run the grid on the CPU instead. The kernel comes last because a
// template kernel's arguments contain commas (kernel<scalar_t, true, Index>).
// Follow every launch with KILN_CHECK_LAUNCH(op): a bad configuration, or an error
// the emulator finds inside the kernel, is reported there.
#pragma once
#include <cuda_runtime.h>

#ifndef KILN_LAUNCH
#define KILN_LAUNCH(grid, block, shared_bytes, stream, ...) __VA_ARGS__<<<grid, block, shared_bytes, stream>>>
#endif
