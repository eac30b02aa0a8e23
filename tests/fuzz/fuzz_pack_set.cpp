// Pack sets: read_pack_set_index on arbitrary bytes (data/pack_set.cpp), then, when
// they parse, open_pack_set on the members they name (next to the input, so usually
// missing: the error path), and parse_pack_sizes on the same bytes as a --size list.
// A member name that climbs out of the folder, a size list that overflows, or JSON of
// the wrong types must each end in a kiln::Error, never a crash.
#include <cstdint>
#include <string>

#include "data/pack_set.h"
#include "engine/core/error.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = kiln::fuzz::write_input("input.kpacks", data, size);
  try {
    const kiln::data::PackSetIndex index = kiln::data::read_pack_set_index(path);
    if (index.sizes.size() != index.members.size()) __builtin_trap();  // the reader promises one member per size
    kiln::data::open_pack_set(index);
  } catch (const kiln::Error&) {
  }
  try {
    kiln::data::parse_pack_sizes(std::string(reinterpret_cast<const char*>(data), size));
  } catch (const kiln::Error&) {
  }
  return 0;
}
