// The protobuf wire-format reader behind read_onnx (see onnx_reader.h for the format).
// Each message has one parse function that loops over its records and keeps the
// fields it knows; everything else is skipped by wire type. Every read is bounds-
// checked against the enclosing message, so a truncated or corrupt file produces
// an error with the byte offset instead of reading past the buffer.
#include "weights/onnx_reader.h"

#include <cstring>
#include <fstream>
#include <string_view>

#include "engine/core/checked_math.h"
#include "engine/tensor/factory.h"

namespace kiln::onnx {
namespace {

enum WireType { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

// A window [pos, end) into the file's bytes; `what` names the message for errors
// ("NodeProto"), and `base` lets errors give offsets from the start of the file.
class Wire {
 public:
  Wire(const uint8_t* pos, const uint8_t* end, const uint8_t* base, const std::string* path, const char* what)
      : pos_(pos), end_(end), base_(base), path_(path), what_(what) {}

  bool done() const { return pos_ >= end_; }
  int64_t offset() const { return pos_ - base_; }  // from the start of the file

  // Reads the next key; the field number and wire type come out of one varint.
  void key(int& field, int& wire_type) {
    const uint64_t k = varint();
    field = static_cast<int>(k >> 3);
    wire_type = static_cast<int>(k & 7);
    if (field == 0) fail("field number 0");
  }

  uint64_t varint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= end_) fail("truncated varint");
      const uint8_t byte = *pos_++;
      value |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return value;
    }
    fail("varint longer than 10 bytes");
  }

  template <class T> T fixed() {  // fixed32 or fixed64, little-endian on disk and (kiln assumes) in memory
    need(sizeof(T), "fixed-size value");
    T value;
    std::memcpy(&value, pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }

  // The payload of a length-delimited record, as a nested window.
  Wire sub(const char* what) {
    const uint64_t length = varint();
    need(length, "length-delimited field");
    Wire inner(pos_, pos_ + length, base_, path_, what);
    pos_ += length;
    return inner;
  }

  std::string bytes() { return std::string(bytes_view()); }
  // The same bytes without copying them: a view into the file's buffer, which
  // outlives the parse (raw_data runs to hundreds of MB in VGG).
  std::string_view bytes_view() {
    Wire inner = sub(what_);
    return std::string_view(reinterpret_cast<const char*>(inner.pos_), static_cast<size_t>(inner.end_ - inner.pos_));
  }

  void skip(int wire_type) {
    switch (wire_type) {
      case kVarint: varint(); return;
      case kFixed64: fixed<uint64_t>(); return;
      case kLengthDelimited: sub(what_); return;
      case kFixed32: fixed<uint32_t>(); return;
      default: fail(str("bad wire type ", wire_type, " (groups 3/4 are not used by ONNX; 6/7 do not exist)"));
    }
  }

  void expect(int wire_type, int want, int field) {
    if (wire_type != want) fail(str("field ", field, " has wire type ", wire_type, ", expected ", want));
  }

  // A repeated number field, packed (one length-delimited run) or not (one record each).
  template <class T, class Read> void repeated(int wire_type, std::vector<T>& out, Read read_one) {
    if (wire_type == kLengthDelimited) {
      Wire run = sub(what_);
      while (!run.done()) out.push_back(read_one(run));
    } else {
      out.push_back(read_one(*this));
    }
  }

  [[noreturn]] void fail(const std::string& what) const {
    KILN_FAIL("onnx: ", *path_, ": ", what, " in ", what_, " at byte ", pos_ - base_,
              " (the file is truncated or not an ONNX model)");
  }
  const std::string& path() const { return *path_; }

 private:
  void need(uint64_t count, const char* what) {
    if (count > static_cast<uint64_t>(end_ - pos_))
      fail(str(what, " of ", count, " bytes overruns its message (", end_ - pos_, " bytes left)"));
  }

  const uint8_t* pos_;
  const uint8_t* end_;
  const uint8_t* base_;
  const std::string* path_;
  const char* what_;
};

int64_t read_int(Wire& w) { return static_cast<int64_t>(w.varint()); }
float read_float(Wire& w) { return w.fixed<float>(); }
double read_double(Wire& w) { return w.fixed<double>(); }

std::string folder_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

// TensorProto as stored; to_tensor() turns it into a kiln Tensor.
struct TensorRecord {
  std::vector<int64_t> dims, int64_data;
  int data_type = 0;
  std::vector<float> float_data;
  std::vector<int64_t> int32_data;  // int32 values, or f16 bits in the low 16 bits
  std::vector<double> double_data;
  std::string name;
  std::string_view raw_data;  // points into the file's bytes (see Wire::bytes_view)
  std::map<std::string, std::string> external;  // location, offset, length
  bool is_external = false;                     // data_location == EXTERNAL (1)
  int64_t offset = 0;                           // where the TensorProto starts in the file, for errors
};

TensorRecord parse_tensor(Wire w) {
  TensorRecord t;
  t.offset = w.offset();
  while (!w.done()) {
    int field, wire_type;
    w.key(field, wire_type);
    switch (field) {
      case 1: w.repeated(wire_type, t.dims, read_int); break;
      case 2: w.expect(wire_type, kVarint, field); t.data_type = static_cast<int>(w.varint()); break;
      case 4: w.repeated(wire_type, t.float_data, read_float); break;
      case 5: w.repeated(wire_type, t.int32_data, read_int); break;
      case 7: w.repeated(wire_type, t.int64_data, read_int); break;
      case 8: w.expect(wire_type, kLengthDelimited, field); t.name = w.bytes(); break;
      case 9: w.expect(wire_type, kLengthDelimited, field); t.raw_data = w.bytes_view(); break;
      case 10: w.repeated(wire_type, t.double_data, read_double); break;
      case 13: {
        w.expect(wire_type, kLengthDelimited, field);
        Wire entry = w.sub("StringStringEntryProto");
        std::string key, value;
        while (!entry.done()) {
          int f, wt;
          entry.key(f, wt);
          if (f == 1 && wt == kLengthDelimited) key = entry.bytes();
          else if (f == 2 && wt == kLengthDelimited) value = entry.bytes();
          else entry.skip(wt);
        }
        t.external[key] = value;
        break;
      }
      case 14: w.expect(wire_type, kVarint, field); t.is_external = w.varint() == 1; break;
      default: w.skip(wire_type);
    }
  }
  return t;
}

// The external file's bytes [offset, offset + length) for an EXTERNAL tensor.
std::string read_external(const TensorRecord& t, int64_t want_bytes, const std::string& model_path) {
  const auto get = [&](const char* key) { auto it = t.external.find(key); return it == t.external.end() ? "" : it->second; };
  const std::string location = get("location");
  KILN_CHECK(!location.empty(), "onnx: ", model_path, ": initializer '", t.name, "' is external but names no location");
  const std::string file = folder_of(model_path) + "/" + location;
  // The location is relative to the model's folder and must stay inside it: a file
  // from elsewhere must not make kiln read /etc/shadow or ../../secrets into a tensor.
  KILN_CHECK(location[0] != '/' && location.find("..") == std::string::npos, "onnx: ", model_path,
             ": initializer '", t.name, "' names external data '", location,
             "' outside the model's folder (absolute or with '..')");
  const auto number = [&](const char* key, int64_t fallback) {
    const std::string text = get(key);
    if (text.empty()) return fallback;
    size_t used = 0;
    int64_t value = -1;
    try {
      value = std::stoll(text, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    KILN_CHECK(used == text.size() && value >= 0, "onnx: ", model_path, ": initializer '", t.name,
               "' has external data ", key, " '", text, "', expected a byte count >= 0");
    return value;
  };
  const int64_t offset = number("offset", 0);
  const int64_t length = number("length", want_bytes);
  KILN_CHECK(length == want_bytes, "onnx: ", model_path, ": initializer '", t.name, "' external length ", length,
             " bytes, but its dims need ", want_bytes);
  std::ifstream in(file, std::ios::binary | std::ios::ate);
  KILN_CHECK(in.good(), "onnx: ", model_path, ": cannot open external data file ", file, " of initializer '", t.name, "'");
  // Compared with the file's size before the buffer is allocated (offset + length may not even fit int64).
  const int64_t file_bytes = in.tellg();
  int64_t end = 0;
  KILN_CHECK(checked_add(offset, length, end) && end <= file_bytes, "onnx: ", model_path, ": external data file ",
             file, " has ", file_bytes, " bytes, initializer '", t.name, "' reads [", offset, ", +", length, ")");
  in.seekg(offset);
  std::string data(static_cast<size_t>(length), '\0');
  in.read(data.data(), length);
  KILN_CHECK(in.gcount() == length, "onnx: ", model_path, ": external data file ", file, " ends before byte ",
             offset + length, " of initializer '", t.name, "'");
  return data;
}

Tensor to_tensor(const TensorRecord& t, const std::string& path) {
  const auto where = [&] {
    return str("onnx: ", path, ": initializer '", t.name, "' (TensorProto at byte ", t.offset, ") ",
               onnx_data_type_name(t.data_type));
  };
  KILN_CHECK(static_cast<int64_t>(t.dims.size()) <= kMaxTensorRank, where(), " has ", t.dims.size(),
             " dims, kiln reads at most ", kMaxTensorRank);
  // Checked before anything is allocated: the dims are the file's word, and their
  // product (times the widest element, 8 bytes) is what the data fields are compared with.
  int64_t n = 0, widest_bytes = 0;
  KILN_CHECK(checked_numel(t.dims, n) && checked_mul(n, 8, widest_bytes), where(), " dims ", Shape(t.dims),
             " have a negative entry or a byte size beyond int64");
  const Shape shape(t.dims);
  int64_t element_bytes = 0;
  DType dtype = DType::f32;
  switch (t.data_type) {
    case 1: element_bytes = 4; dtype = DType::f32; break;   // FLOAT
    case 10: element_bytes = 2; dtype = DType::f32; break;  // FLOAT16, widened
    case 11: element_bytes = 8; dtype = DType::f64; break;  // DOUBLE
    case 7: element_bytes = 8; dtype = DType::i64; break;   // INT64
    case 6: element_bytes = 4; dtype = DType::i32; break;   // INT32
    default:
      KILN_FAIL("onnx: ", path, ": initializer '", t.name, "' has data type ", t.data_type, " (",
                onnx_data_type_name(t.data_type), "), which kiln does not read (FLOAT, FLOAT16, DOUBLE, INT64, INT32)");
  }
  const int64_t n_bytes = n * element_bytes;  // n * 8 fits (checked above), so this does too
  const std::string external = t.is_external ? read_external(t, n_bytes, path) : std::string();
  const std::string_view raw = t.is_external ? std::string_view(external) : t.raw_data;
  if (t.is_external || !raw.empty()) {
    KILN_CHECK(static_cast<int64_t>(raw.size()) == n_bytes, where(), " ", shape, ": raw_data holds ", raw.size(),
               " bytes, its dims need ", n_bytes);
    Tensor out = empty(shape, {dtype});
    if (t.data_type == 10) {
      float* dst = out.data<float>();
      for (int64_t i = 0; i < n; ++i) {
        uint16_t bits;
        std::memcpy(&bits, raw.data() + 2 * i, 2);
        dst[i] = f16_bits_to_float(bits);
      }
    } else if (n > 0) {
      std::memcpy(out.raw_data(), raw.data(), raw.size());
    }
    return out;
  }
  // Typed fields: which one holds the values depends on the data type (onnx.proto).
  // The count is compared before the tensor is allocated, so dims of 2^40 with no
  // data cost an error, not 4 TB.
  const auto [count, field] = t.data_type == 1    ? std::pair(t.float_data.size(), "float_data")
                              : t.data_type == 11 ? std::pair(t.double_data.size(), "double_data")
                              : t.data_type == 7  ? std::pair(t.int64_data.size(), "int64_data")
                                                  : std::pair(t.int32_data.size(), "int32_data");  // 6 and 10
  KILN_CHECK(static_cast<int64_t>(count) == n, where(), " ", shape, ": ", field, " holds ", count,
             " values, its dims need ", n);
  Tensor out = empty(shape, {dtype});
  // A dim of 0 is a valid empty tensor; its empty field's data() may be null, and
  // memcpy from null is undefined even for 0 bytes (found by fuzz_onnx, UBSan).
  if (n == 0) return out;
  switch (t.data_type) {
    case 1: std::memcpy(out.raw_data(), t.float_data.data(), 4 * n); break;
    case 10:
      for (int64_t i = 0; i < n; ++i) out.data<float>()[i] = f16_bits_to_float(static_cast<uint16_t>(t.int32_data[i]));
      break;
    case 11: std::memcpy(out.raw_data(), t.double_data.data(), 8 * n); break;
    case 7: std::memcpy(out.raw_data(), t.int64_data.data(), 8 * n); break;
    case 6:
      for (int64_t i = 0; i < n; ++i) out.data<int32_t>()[i] = static_cast<int32_t>(t.int32_data[i]);
      break;
  }
  return out;
}

Attribute parse_attribute(Wire w) {
  Attribute a;
  while (!w.done()) {
    int field, wire_type;
    w.key(field, wire_type);
    switch (field) {
      case 1: w.expect(wire_type, kLengthDelimited, field); a.name = w.bytes(); break;
      case 2: w.expect(wire_type, kFixed32, field); a.f = w.fixed<float>(); break;
      case 3: w.expect(wire_type, kVarint, field); a.i = static_cast<int64_t>(w.varint()); break;
      case 4: w.expect(wire_type, kLengthDelimited, field); a.s = w.bytes(); break;
      case 5: w.expect(wire_type, kLengthDelimited, field); a.t = to_tensor(parse_tensor(w.sub("TensorProto")), w.path()); break;
      case 7: w.repeated(wire_type, a.floats, read_float); break;
      case 8: w.repeated(wire_type, a.ints, read_int); break;
      case 20: w.expect(wire_type, kVarint, field); a.type = static_cast<AttributeType>(w.varint()); break;
      default: w.skip(wire_type);
    }
  }
  return a;
}

Node parse_node(Wire w) {
  Node n;
  while (!w.done()) {
    int field, wire_type;
    w.key(field, wire_type);
    if (field == 1 || field == 2 || field == 3 || field == 4 || field == 7) w.expect(wire_type, kLengthDelimited, field);
    switch (field) {
      case 1: n.inputs.push_back(w.bytes()); break;
      case 2: n.outputs.push_back(w.bytes()); break;
      case 3: n.name = w.bytes(); break;
      case 4: n.op_type = w.bytes(); break;
      case 5: w.expect(wire_type, kLengthDelimited, field); n.attributes.push_back(parse_attribute(w.sub("AttributeProto"))); break;
      case 7: n.domain = w.bytes(); break;
      default: w.skip(wire_type);
    }
  }
  return n;
}

std::string parse_value_info_name(Wire w) {
  std::string name;
  while (!w.done()) {
    int field, wire_type;
    w.key(field, wire_type);
    if (field == 1 && wire_type == kLengthDelimited) name = w.bytes();
    else w.skip(wire_type);
  }
  return name;
}

Graph parse_graph(Wire w) {
  Graph g;
  while (!w.done()) {
    int field, wire_type;
    w.key(field, wire_type);
    if (field == 1 || field == 2 || field == 5 || field == 11 || field == 12 || field == 13)
      w.expect(wire_type, kLengthDelimited, field);
    switch (field) {
      case 1: g.nodes.push_back(parse_node(w.sub("NodeProto"))); break;
      case 2: g.name = w.bytes(); break;
      case 5: {
        const TensorRecord record = parse_tensor(w.sub("TensorProto"));
        KILN_CHECK(!g.initializers.count(record.name), "onnx: ", w.path(), ": initializer '", record.name, "' appears twice");
        g.initializers[record.name] = to_tensor(record, w.path());
        g.initializer_order.push_back(record.name);
        break;
      }
      case 11: g.inputs.push_back(parse_value_info_name(w.sub("ValueInfoProto"))); break;
      case 12: g.outputs.push_back(parse_value_info_name(w.sub("ValueInfoProto"))); break;
      case 13: g.value_infos.push_back(parse_value_info_name(w.sub("ValueInfoProto"))); break;
      default: w.skip(wire_type);
    }
  }
  return g;
}

}  // namespace

Model parse_onnx(const std::string& bytes, const std::string& path) {
  Model m;
  m.path = path;
  const auto* base = reinterpret_cast<const uint8_t*>(bytes.data());
  Wire w(base, base + bytes.size(), base, &m.path, "ModelProto");
  bool has_graph = false;
  while (!w.done()) {
    int field, wire_type;
    w.key(field, wire_type);
    if (field == 1) {
      w.expect(wire_type, kVarint, field);
      m.ir_version = static_cast<int64_t>(w.varint());
    } else if (field == 7) {
      w.expect(wire_type, kLengthDelimited, field);
      m.graph = parse_graph(w.sub("GraphProto"));
      has_graph = true;
    } else if (field == 8) {
      w.expect(wire_type, kLengthDelimited, field);
      Wire opset = w.sub("OperatorSetIdProto");
      std::string domain;
      int64_t version = 0;
      while (!opset.done()) {
        int f, wt;
        opset.key(f, wt);
        if (f == 1 && wt == kLengthDelimited) domain = opset.bytes();
        else if (f == 2 && wt == kVarint) version = static_cast<int64_t>(opset.varint());
        else opset.skip(wt);
      }
      m.opsets[domain == "ai.onnx" ? "" : domain] = version;
    } else {
      w.skip(wire_type);
    }
  }
  KILN_CHECK(has_graph, "onnx: ", path, ": no graph (field 7) in the ModelProto: not an ONNX model");
  return m;
}

Model read_onnx(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  KILN_CHECK(in.good(), "onnx: cannot open ", path);
  // One read into a buffer of the file's size: a VGG-16 file is 528 MB.
  const std::streamoff size = in.tellg();
  KILN_CHECK(size >= 0, "onnx: cannot read ", path, " (not a regular file?)");
  std::string bytes(static_cast<size_t>(size), '\0');
  in.seekg(0);
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  KILN_CHECK(in.gcount() == static_cast<std::streamsize>(bytes.size()), "onnx: ", path, ": could read only ",
             in.gcount(), " of its ", bytes.size(), " bytes");
  return parse_onnx(bytes, path);
}

const Attribute* Node::find(const std::string& attribute) const {
  for (const Attribute& a : attributes)
    if (a.name == attribute) return &a;
  return nullptr;
}

int64_t Node::get_int(const std::string& attribute, int64_t fallback) const {
  const Attribute* a = find(attribute);
  return a ? a->i : fallback;
}

float Node::get_float(const std::string& attribute, float fallback) const {
  const Attribute* a = find(attribute);
  return a ? a->f : fallback;
}

std::vector<int64_t> Node::get_ints(const std::string& attribute, std::vector<int64_t> fallback) const {
  const Attribute* a = find(attribute);
  return a ? a->ints : fallback;
}

std::string Node::describe() const { return str(op_type, " node '", name, "'"); }

const char* onnx_data_type_name(int data_type) {
  // TensorProto.DataType, onnx.proto
  static const char* names[] = {"UNDEFINED", "FLOAT",  "UINT8",  "INT8",   "UINT16",    "INT16",      "INT32",
                                "INT64",     "STRING", "BOOL",   "FLOAT16", "DOUBLE",   "UINT32",     "UINT64",
                                "COMPLEX64", "COMPLEX128", "BFLOAT16"};
  return data_type >= 0 && data_type < 17 ? names[data_type] : "UNKNOWN";
}

}  // namespace kiln::onnx
