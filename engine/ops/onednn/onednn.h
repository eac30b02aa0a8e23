// oneDNN (Intel's deep-learning primitives, Debian's libdnnl-dev), kiln's CPU fast path:
// the one CPU engine, a stream per thread, scratch buffers from kiln's allocator, and
// the conversion of every dnnl error into a kiln error. The primitives themselves live
// next to this file (conv_onednn.cpp); docs/cpu_fast_path.md explains the design.
//
// Threads: Debian builds oneDNN over OpenMP, so a primitive runs on the calling thread's
// OpenMP team, whose size is what `kiln --threads N` (engine/core/cpu_threads.h) set.
#pragma once
#include <oneapi/dnnl/dnnl.hpp>
#include <string>

#include "engine/tensor/tensor.h"

namespace kiln::onednn {

dnnl::engine& cpu_engine();
// Each thread executes on its own stream (a CPU stream is cheap; sharing one across
// threads would need a lock).
dnnl::stream& thread_stream();

// "oneDNN 2.6.3 (avx512_core_bf16)": the version and the instruction set its JIT
// kernels use on this machine (dnnl::get_effective_cpu_isa()).
std::string description();

// A CPU buffer of at least `bytes` from kiln's caching allocator (no page faults in
// a steady loop); the Tensor keeps it alive.
Tensor scratch_buffer(size_t bytes);

// `user` (memory over a kiln tensor) in the format `wanted` a primitive chose: `user`
// itself when the formats agree, otherwise a reordered copy in a buffer kept in `keep`.
dnnl::memory as_format(dnnl::memory user, const dnnl::memory::desc& wanted, Tensor& keep);

// Runs `body`; a dnnl::error becomes a kiln::Error naming `op`, `what` (the shapes and
// params), the library's status and the setting that selects the reference (`fallback`).
template <class Body>
auto checked(const char* op, const std::string& what, Body&& body) -> decltype(body());
[[noreturn]] void fail(const char* op, const std::string& what, const dnnl::error& e,
                       const char* fallback = "KILN_CPU_CONV=eigen");

template <class Body>
auto checked(const char* op, const std::string& what, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const dnnl::error& e) {
    fail(op, what, e);
  }
}

}  // namespace kiln::onednn
