// kpack: open_pack on arbitrary bytes (data/pack.cpp), mmap included, then every
// byte of every block the pack hands out is read, so a view past the mapping or a
// label outside the classes shows up under ASan here rather than in a training run.
#include <cstdint>

#include "data/pack.h"
#include "engine/core/error.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = kiln::fuzz::write_input("input.kpack", data, size);
  try {
    const kiln::data::Dataset d = kiln::data::open_pack(path);
    uint64_t sum = 0;
    const auto* pixels = static_cast<const uint8_t*>(d.images.raw_data());
    for (int64_t i = 0; i < d.images.nbytes(); ++i) sum += pixels[i];
    for (int64_t i = 0; i < d.size(); ++i) sum += static_cast<uint64_t>(d.class_names.at(d.labels.data<int64_t>()[i]).size());
    if (d.targets.defined())
      for (int64_t i = 0; i < d.targets.numel(); ++i) sum += d.targets.data<float>()[i] > 0;
    if (sum == 0xdeadbeef) return 1;  // keeps the reads
  } catch (const kiln::Error&) {
  }
  return 0;
}
