// Exhaustive check of kiln's 16-bit float conversions against NVIDIA's, run by hand
// with scripts/check_half_conversions.sh (needs the CUDA toolkit's headers, not a GPU).
//
// Three implementations are compared on every input:
//   NVIDIA   - the host code path of /usr/local/cuda/include/cuda_fp16.h, cuda_bf16.h
//              (what __float2half_rn & co. compute when compiled by g++), the reference;
//   emulator - kiln's emulator/include/cuda_fp16.h, cuda_bf16.h, which stand in for
//              NVIDIA's in the KILN_CUDA=EMULATE build;
//   kiln CPU - float_to_f16_bits & co. of engine/core/dtype.h / dtype.cpp.
// float -> half and float -> bf16 on all 2^32 float bit patterns; half -> float and
// bf16 -> float on all 2^16 patterns, comparing bits (so NaN payloads count). Prints
// the mismatch counts and the first few mismatches; exits 1 on any.
//
// Both headers define the global types __half and __nv_bfloat16, so kiln's are
// included inside `namespace emu` (the namespace trick): their standard includes
// come first, so the include guards keep <cstdint>/<cstring> out of the namespace.
#include <cstdint>
#include <cstdio>
#include <cstring>

#include <chrono>
#include <initializer_list>

#include <cuda_bf16.h>  // NVIDIA's: the script compiles with -I/usr/local/cuda/include
#include <cuda_fp16.h>
namespace emu {
#include "../emulator/include/cuda_bf16.h"  // includes kiln's cuda_fp16.h too
}  // namespace emu
#include "engine/core/dtype.h"

namespace {

uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Counts mismatches of one implementation against NVIDIA's and shows the first few.
struct Tally {
  const char* what;
  uint64_t mismatches = 0;
  void add(uint32_t input, uint32_t want, uint32_t got) {
    if (want == got) return;
    if (++mismatches <= 5)
      std::printf("  MISMATCH %s: input 0x%08x: NVIDIA 0x%08x, got 0x%08x\n", what, input, want, got);
  }
  bool report(uint64_t inputs) const {
    std::printf("%-36s %10llu inputs, %llu mismatches\n", what, static_cast<unsigned long long>(inputs),
                static_cast<unsigned long long>(mismatches));
    return mismatches == 0;
  }
};

}  // namespace

int main() {
  const auto start = std::chrono::steady_clock::now();
  Tally f2h_emu{"__float2half_rn, emulator"}, f2h_ctor{"__half(float), emulator"};
  Tally f2h_cpu{"float_to_f16_bits, kiln CPU"};
  Tally f2b_emu{"__float2bfloat16_rn, emulator"}, f2b_ctor{"__nv_bfloat16(float), emulator"};
  Tally f2b_cpu{"float_to_bf16_bits, kiln CPU"};
  // All 2^32 floats, in 2^16 blocks shared by the threads; a block's mismatches are
  // counted locally, then replayed serially (rare: only when something is wrong).
  const int64_t blocks = int64_t{1} << 16;
#pragma omp parallel for schedule(dynamic, 16)
  for (int64_t block = 0; block < blocks; ++block) {
    bool clean = true;
    for (uint32_t low = 0; low < 0x10000u && clean; ++low) {
      const float f = bits_float(static_cast<uint32_t>(block) << 16 | low);
      const uint16_t h = __half_as_ushort(__float2half_rn(f)), b = __bfloat16_as_ushort(__float2bfloat16_rn(f));
      clean = h == emu::__half_as_ushort(emu::__float2half_rn(f)) && h == kiln::float_to_f16_bits(f) &&
              h == emu::__half_as_ushort(emu::__half(f)) && b == emu::__bfloat16_as_ushort(emu::__float2bfloat16_rn(f)) &&
              b == kiln::float_to_bf16_bits(f) && b == emu::__bfloat16_as_ushort(emu::__nv_bfloat16(f));
    }
    if (clean) continue;
#pragma omp critical
    for (uint32_t low = 0; low < 0x10000u; ++low) {
      const uint32_t x = static_cast<uint32_t>(block) << 16 | low;
      const float f = bits_float(x);
      const uint16_t h = __half_as_ushort(__float2half_rn(f)), b = __bfloat16_as_ushort(__float2bfloat16_rn(f));
      f2h_emu.add(x, h, emu::__half_as_ushort(emu::__float2half_rn(f)));
      f2h_ctor.add(x, h, emu::__half_as_ushort(emu::__half(f)));
      f2h_cpu.add(x, h, kiln::float_to_f16_bits(f));
      f2b_emu.add(x, b, emu::__bfloat16_as_ushort(emu::__float2bfloat16_rn(f)));
      f2b_ctor.add(x, b, emu::__bfloat16_as_ushort(emu::__nv_bfloat16(f)));
      f2b_cpu.add(x, b, kiln::float_to_bf16_bits(f));
    }
  }

  Tally h2f_emu{"__half2float, emulator"}, h2f_op{"__half::operator float, emulator"};
  Tally h2f_cpu{"f16_bits_to_float, kiln CPU"};
  Tally b2f_emu{"__bfloat162float, emulator"}, b2f_op{"__nv_bfloat16::operator float, emu"};
  Tally b2f_cpu{"bf16_bits_to_float, kiln CPU"};
  for (uint32_t x = 0; x < 0x10000u; ++x) {
    const uint16_t bits = static_cast<uint16_t>(x);
    const uint32_t h = float_bits(__half2float(__ushort_as_half(bits)));
    h2f_emu.add(x, h, float_bits(emu::__half2float(emu::__ushort_as_half(bits))));
    h2f_op.add(x, h, float_bits(static_cast<float>(emu::__ushort_as_half(bits))));
    h2f_cpu.add(x, h, float_bits(kiln::f16_bits_to_float(bits)));
    const uint32_t b = float_bits(__bfloat162float(__ushort_as_bfloat16(bits)));
    b2f_emu.add(x, b, float_bits(emu::__bfloat162float(emu::__ushort_as_bfloat16(bits))));
    b2f_op.add(x, b, float_bits(static_cast<float>(emu::__ushort_as_bfloat16(bits))));
    b2f_cpu.add(x, b, float_bits(kiln::bf16_bits_to_float(bits)));
  }

  const uint64_t all_floats = uint64_t{1} << 32;
  bool ok = true;
  for (const Tally* t : {&f2h_emu, &f2h_ctor, &f2h_cpu, &f2b_emu, &f2b_ctor, &f2b_cpu}) ok &= t->report(all_floats);
  for (const Tally* t : {&h2f_emu, &h2f_op, &h2f_cpu, &b2f_emu, &b2f_op, &b2f_cpu}) ok &= t->report(0x10000);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%s in %.1f s\n", ok ? "all equal to NVIDIA's host code" : "MISMATCHES", seconds);
  return ok ? 0 : 1;
}
