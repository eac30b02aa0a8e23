// The oneDNN context (engine/ops/onednn/onednn.h).
#include "engine/ops/onednn/onednn.h"

#include "engine/core/check.h"
#include "engine/tensor/factory.h"

namespace kiln::onednn {

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::stream& thread_stream() {
  thread_local dnnl::stream stream(cpu_engine());
  return stream;
}

static const char* isa_name(dnnl::cpu_isa isa) {
  switch (isa) {
    case dnnl::cpu_isa::sse41: return "sse41";
    case dnnl::cpu_isa::avx: return "avx";
    case dnnl::cpu_isa::avx2: return "avx2";
    case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
    case dnnl::cpu_isa::avx512_mic: return "avx512_mic";
    case dnnl::cpu_isa::avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl::cpu_isa::avx512_core: return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
    case dnnl::cpu_isa::all: return "all";
  }
  return "unknown";
}

std::string description() {
  const dnnl::version_t* v = dnnl::version();
  return str("oneDNN ", v->major, ".", v->minor, ".", v->patch, " (", isa_name(dnnl::get_effective_cpu_isa()), ")");
}

Tensor scratch_buffer(size_t bytes) {
  // f32 elements, rounded up: the allocator hands out 64-byte aligned blocks, which
  // is what oneDNN's vector loads want.
  return empty({static_cast<int64_t>((bytes + sizeof(float) - 1) / sizeof(float))}, {DType::f32});
}

dnnl::memory as_format(dnnl::memory user, const dnnl::memory::desc& wanted, Tensor& keep) {
  if (user.get_desc() == wanted) return user;
  keep = scratch_buffer(wanted.get_size());
  dnnl::memory converted(wanted, cpu_engine(), keep.raw_data());
  dnnl::reorder(user, converted).execute(thread_stream(), user, converted);
  return converted;
}

void fail(const char* op, const std::string& what, const dnnl::error& e, const char* fallback) {
  KILN_FAIL(op, " (", description(), "): the library failed with status ", static_cast<int>(e.status), " (",
            e.what(), ") for ", what, "; ", fallback, " runs the Eigen reference instead");
}

}  // namespace kiln::onednn
