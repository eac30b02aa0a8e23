#include "weights/safetensors.h"

#include <cstring>
#include <tuple>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/core/checked_math.h"
#include "engine/core/json_parse.h"
#include "engine/tensor/factory.h"
#include "weights/atomic_file.h"

namespace kiln {

namespace {

// safetensors dtype names <-> kiln dtypes.
const std::pair<const char*, DType> kDTypes[] = {{"F32", DType::f32}, {"F64", DType::f64}, {"F16", DType::f16},
                                                 {"BF16", DType::bf16}, {"U8", DType::u8},   {"I32", DType::i32},
                                                 {"I64", DType::i64}};

DType dtype_from_name(const std::string& name, const std::string& path, const std::string& key) {
  for (const auto& [text, dtype] : kDTypes)
    if (name == text) return dtype;
  KILN_FAIL("safetensors '", path, "': tensor '", key, "' has dtype ", name,
            ", which kiln does not read (F32, F64, F16, BF16, U8, I32, I64)");
}

const char* name_of(DType dtype) {
  for (const auto& [text, d] : kDTypes)
    if (d == dtype) return text;
  return "?";
}

}  // namespace

const Tensor& SafeTensors::at(const std::string& name) const {
  auto found = tensors.find(name);
  if (found != tensors.end()) return found->second;
  std::string known;
  for (const auto& entry : tensors) known += (known.empty() ? "" : ", ") + entry.first;
  KILN_FAIL("safetensors: no tensor named '", name, "' (the file has: ", known, ")");
}

SafeTensors load_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  KILN_CHECK(in.good(), "cannot open safetensors file '", path, "': ", std::strerror(errno));
  in.seekg(0, std::ios::end);
  const int64_t file_size = in.tellg();
  KILN_CHECK(file_size >= 0, "safetensors '", path, "': cannot read its size (not a regular file?)");
  in.seekg(0);
  uint64_t header_size = 0;
  KILN_CHECK(file_size >= 8 && in.read(reinterpret_cast<char*>(&header_size), 8), "safetensors '", path,
             "': file is shorter than its 8-byte header length");
  KILN_CHECK(header_size <= static_cast<uint64_t>(file_size - 8), "safetensors '", path, "': header length ",
             header_size, " (bytes 0-7) exceeds the file size ", file_size, " (truncated or not a safetensors file)");
  KILN_CHECK(header_size <= static_cast<uint64_t>(kMaxSafetensorsHeaderBytes), "safetensors '", path,
             "': header length ", header_size, " (bytes 0-7) exceeds the format's limit of ",
             kMaxSafetensorsHeaderBytes, " bytes");
  std::string header(header_size, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_size));
  KILN_CHECK(in.good(), "safetensors '", path, "': reading its ", header_size, "-byte header failed");
  const nlohmann::json json = parse_json_limited(header, "safetensors '" + path + "': header (bytes 8-" +
                                                             std::to_string(8 + header_size) + ")");
  KILN_CHECK(json.is_object(), "safetensors '", path, "': header is JSON but not an object of tensors");
  const int64_t data_start = 8 + static_cast<int64_t>(header_size);
  const int64_t data_size = file_size - data_start;

  SafeTensors out;
  for (const auto& item : json.items()) {
    const std::string& key = item.key();
    const nlohmann::json& entry = item.value();
    const std::string where = "safetensors '" + path + "': tensor '" + key + "'";
    if (key == "__metadata__") {
      KILN_CHECK(entry.is_object(), "safetensors '", path, "': __metadata__ is not an object");
      for (auto& [mk, mv] : entry.items()) out.metadata[mk] = mv.is_string() ? mv.get<std::string>() : mv.dump();
      continue;
    }
    KILN_CHECK(entry.is_object(), where, ": entry is not an object with dtype, shape and data_offsets");
    const auto [dtype_text, dims, offsets] = read_json_fields(where, [&] {
      return std::tuple(entry.at("dtype").get<std::string>(), json_int64s(entry.at("shape"), where, "shape"),
                        json_int64s(entry.at("data_offsets"), where, "data_offsets"));
    });
    const DType dtype = dtype_from_name(dtype_text, path, key);
    KILN_CHECK(static_cast<int64_t>(dims.size()) <= kMaxTensorRank, where, ": shape has ", dims.size(),
               " dimensions, kiln reads at most ", kMaxTensorRank);
    // Checked: shape [2^62 + 4] of F32 needs 4 * (2^62 + 4) bytes, which wraps to 16.
    int64_t need = 0;
    KILN_CHECK(checked_bytes(dims, size_of(dtype), need), where, ": shape ", Shape(dims), " of ", dtype_text,
               " has a negative dimension or a byte size beyond int64");
    KILN_CHECK(offsets.size() == 2 && offsets[0] >= 0 && offsets[1] <= data_size && offsets[0] <= offsets[1],
               where, ": data_offsets lie outside the file's ", data_size, " data bytes (starting at byte ",
               data_start, ")");
    KILN_CHECK(offsets[1] - offsets[0] == need, where, ": data_offsets [", offsets[0], ", ", offsets[1],
               ") hold ", offsets[1] - offsets[0], " bytes, but shape ", Shape(dims), " of ", dtype_text, " needs ",
               need);
    Tensor t = empty(Shape(dims), {dtype});
    in.seekg(data_start + offsets[0]);
    in.read(static_cast<char*>(t.raw_data()), need);
    KILN_CHECK(in.good(), where, ": reading ", need, " bytes at file offset ", data_start + offsets[0], " failed");
    out.tensors.emplace(key, t);
  }
  return out;
}

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  nlohmann::json header;
  std::vector<Tensor> host;
  int64_t offset = 0;
  for (const auto& [key, t] : tensors) {
    Tensor h = t.to(Device::cpu()).contiguous().detach();
    header[key] = {{"dtype", name_of(h.dtype())}, {"shape", h.shape().dims()}, {"data_offsets", {offset, offset + h.nbytes()}}};
    offset += h.nbytes();
    host.push_back(h);
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string text = header.dump();
  while ((text.size() + 8) % 8) text += ' ';  // keep the data 8-byte aligned, as the reference writer does
  write_file_atomically(path, [&](std::ostream& out) {
    const uint64_t size = text.size();
    out.write(reinterpret_cast<const char*>(&size), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const Tensor& h : host) out.write(static_cast<const char*>(h.raw_data()), h.nbytes());
  });
}

}  // namespace kiln
