// A counter-based random number generator: value i of stream `seed` is a pure
// function hash(seed, i). The CPU and the CUDA kernels call the same function, so a
// dropout mask or an augmentation draw is identical on both backends for the same
// seed and offset (the parity tests depend on this), and there is no hidden state
// to carry between threads. The mixer is SplitMix64 (Steele et al., 2014).
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define KILN_HOST_DEVICE __host__ __device__
#else
#define KILN_HOST_DEVICE
#endif

namespace kiln {

KILN_HOST_DEVICE inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Uniform in [0, 1) with 24 random bits (exactly representable in f32).
KILN_HOST_DEVICE inline float uniform01(uint64_t seed, uint64_t index) {
  const uint64_t bits = splitmix64(seed ^ splitmix64(index));
  return static_cast<float>(bits >> 40) * (1.0f / 16777216.0f);
}

// A seeded host-side stream for initialisers and tests: draw() advances a counter.
class Rng {
 public:
  explicit Rng(uint64_t seed = 0) : seed_(seed) {}
  float uniform() { return uniform01(seed_, counter_++); }             // [0, 1)
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  double normal();                                                      // N(0, 1), Box-Muller
  uint64_t next_u64() { return splitmix64(seed_ ^ splitmix64(counter_++)); }
  uint64_t seed() const { return seed_; }

 private:
  uint64_t seed_;
  uint64_t counter_ = 0;
};

}  // namespace kiln
