#include "weights/safetensors.h"

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

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
  in.seekg(0);
  uint64_t header_size = 0;
  KILN_CHECK(file_size >= 8 && in.read(reinterpret_cast<char*>(&header_size), 8), "safetensors '", path,
             "': file is shorter than its 8-byte header length");
  KILN_CHECK(header_size <= static_cast<uint64_t>(file_size - 8), "safetensors '", path, "': header length ",
             header_size, " exceeds the file size ", file_size, " (truncated or not a safetensors file)");
  std::string header(header_size, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_size));
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(header);
  } catch (const std::exception& e) {
    KILN_FAIL("safetensors '", path, "': header is not valid JSON: ", e.what());
  }
  const int64_t data_start = 8 + static_cast<int64_t>(header_size);
  const int64_t data_size = file_size - data_start;

  SafeTensors out;
  for (auto& [key, entry] : json.items()) {
    if (key == "__metadata__") {
      for (auto& [mk, mv] : entry.items()) out.metadata[mk] = mv.is_string() ? mv.get<std::string>() : mv.dump();
      continue;
    }
    const DType dtype = dtype_from_name(entry.at("dtype").get<std::string>(), path, key);
    const Shape shape(entry.at("shape").get<std::vector<int64_t>>());
    const auto offsets = entry.at("data_offsets").get<std::vector<int64_t>>();
    KILN_CHECK(offsets.size() == 2 && offsets[0] >= 0 && offsets[1] <= data_size && offsets[0] <= offsets[1],
               "safetensors '", path, "': tensor '", key, "' has data offsets outside the file's ", data_size,
               " data bytes");
    KILN_CHECK(offsets[1] - offsets[0] == shape.numel() * size_of(dtype), "safetensors '", path, "': tensor '", key,
               "' has ", offsets[1] - offsets[0], " bytes, but shape ", shape, " of ", dtype_name(dtype), " needs ",
               shape.numel() * size_of(dtype));
    Tensor t = empty(shape, {dtype});
    in.seekg(data_start + offsets[0]);
    in.read(static_cast<char*>(t.raw_data()), offsets[1] - offsets[0]);
    KILN_CHECK(in.good(), "safetensors '", path, "': reading tensor '", key, "' failed");
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
