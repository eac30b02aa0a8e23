// The protobuf wire-format writer behind serialize_onnx (see onnx_writer.h).
// One encode_* function per message, each written against an Encoder that either
// counts bytes or emits them; Encoder::message() runs a body twice to learn the
// length that must precede it. Field numbers are named in the enums below, one
// per message, with the numbers of onnx.proto.
#include "weights/onnx_writer.h"

#include <cstring>
#include <functional>
#include <ostream>

#include "weights/atomic_file.h"

namespace kiln::onnx {
namespace {

enum WireType { kVarint = 0, kLengthDelimited = 2, kFixed32 = 5 };

enum ModelField { kModelIrVersion = 1, kModelProducerName = 2, kModelProducerVersion = 3, kModelDocString = 6,
                  kModelGraph = 7, kModelOpsetImport = 8, kModelMetadataProps = 14 };
enum OpsetField { kOpsetDomain = 1, kOpsetVersion = 2 };
enum GraphField { kGraphNode = 1, kGraphName = 2, kGraphInitializer = 5, kGraphInput = 11, kGraphOutput = 12 };
enum NodeField { kNodeInput = 1, kNodeOutput = 2, kNodeName = 3, kNodeOpType = 4, kNodeAttribute = 5, kNodeDomain = 7 };
enum AttributeField { kAttrName = 1, kAttrF = 2, kAttrI = 3, kAttrS = 4, kAttrFloats = 7, kAttrInts = 8, kAttrType = 20 };
enum TensorField { kTensorDims = 1, kTensorDataType = 2, kTensorName = 8, kTensorRawData = 9 };
enum ValueInfoField { kValueInfoName = 1, kValueInfoType = 2 };
enum TypeField { kTypeTensorType = 1 };                      // TypeProto
enum TensorTypeField { kTensorTypeElemType = 1, kTensorTypeShape = 2 };  // TypeProto.Tensor
enum ShapeField { kShapeDim = 1 };                           // TensorShapeProto
enum DimensionField { kDimValue = 1, kDimParam = 2 };        // TensorShapeProto.Dimension
enum EntryField { kEntryKey = 1, kEntryValue = 2 };          // StringStringEntryProto

// TensorProto.DataType of a kiln dtype; f16/bf16 are widened to f32 when written.
int onnx_data_type(DType dtype) {
  switch (dtype) {
    case DType::f32: case DType::f16: case DType::bf16: return 1;  // FLOAT
    case DType::u8: return 2;    // UINT8
    case DType::i32: return 6;   // INT32
    case DType::i64: return 7;   // INT64
    case DType::f64: return 11;  // DOUBLE
  }
  return 0;
}

DType written_dtype(DType dtype) { return dtype == DType::f16 || dtype == DType::bf16 ? DType::f32 : dtype; }

// Counts bytes, and appends them to a string or a stream when given one.
class Encoder {
 public:
  Encoder(std::string* text, std::ostream* stream) : text_(text), stream_(stream) {}
  uint64_t size() const { return size_; }

  void bytes(const void* data, size_t count) {
    size_ += count;
    if (text_) text_->append(static_cast<const char*>(data), count);
    if (stream_) stream_->write(static_cast<const char*>(data), static_cast<std::streamsize>(count));
  }
  void varint(uint64_t value) {
    uint8_t buffer[10];
    size_t n = 0;
    do {
      buffer[n] = static_cast<uint8_t>(value & 0x7f);
      value >>= 7;
      if (value) buffer[n] |= 0x80;  // "another byte follows"
      ++n;
    } while (value);
    bytes(buffer, n);
  }
  void key(int field, WireType type) { varint(static_cast<uint64_t>(field) << 3 | type); }

  // int64 fields are written as their two's-complement uint64 (ten bytes when negative).
  void int_field(int field, int64_t value) {
    key(field, kVarint);
    varint(static_cast<uint64_t>(value));
  }
  void float_field(int field, float value) {
    key(field, kFixed32);
    bytes(&value, 4);  // little-endian on every machine kiln runs on
  }
  void string_field(int field, const std::string& value) {
    key(field, kLengthDelimited);
    varint(value.size());
    bytes(value.data(), value.size());
  }
  // A sub-message: its length first (from a counting run of `body`), then its bytes.
  void message(int field, const std::function<void(Encoder&)>& body) {
    Encoder counter(nullptr, nullptr);
    body(counter);
    key(field, kLengthDelimited);
    varint(counter.size());
    body(*this);
  }
  bool counting() const { return !text_ && !stream_; }

 private:
  std::string* text_;
  std::ostream* stream_;
  uint64_t size_ = 0;
};

void encode_tensor(Encoder& e, const std::string& name, const Tensor& tensor) {
  for (int64_t d : tensor.shape().dims()) e.int_field(kTensorDims, d);
  e.int_field(kTensorDataType, onnx_data_type(tensor.dtype()));
  e.string_field(kTensorName, name);
  const DType dtype = written_dtype(tensor.dtype());
  const uint64_t length = static_cast<uint64_t>(tensor.numel()) * size_of(dtype);
  e.key(kTensorRawData, kLengthDelimited);
  e.varint(length);
  if (e.counting()) {
    e.bytes(nullptr, length);  // counts only; the host copy is made when writing
  } else {
    const Tensor host = tensor.to(Device::cpu()).to(dtype).contiguous();
    e.bytes(host.raw_data(), length);
  }
}

void encode_attribute(Encoder& e, const Attribute& a) {
  e.string_field(kAttrName, a.name);
  switch (a.type) {
    case AttributeType::f: e.float_field(kAttrF, a.f); break;
    case AttributeType::i: e.int_field(kAttrI, a.i); break;
    case AttributeType::s: e.string_field(kAttrS, a.s); break;
    case AttributeType::floats: for (float f : a.floats) e.float_field(kAttrFloats, f); break;
    case AttributeType::ints: for (int64_t i : a.ints) e.int_field(kAttrInts, i); break;
    default: KILN_FAIL("onnx writer: attribute '", a.name, "' has type ", static_cast<int>(a.type),
                       "; kiln writes f, i, s, floats and ints");
  }
  e.int_field(kAttrType, static_cast<int>(a.type));
}

void encode_node(Encoder& e, const Node& n) {
  for (const std::string& input : n.inputs) e.string_field(kNodeInput, input);
  for (const std::string& output : n.outputs) e.string_field(kNodeOutput, output);
  e.string_field(kNodeName, n.name);
  e.string_field(kNodeOpType, n.op_type);
  for (const Attribute& a : n.attributes) e.message(kNodeAttribute, [&](Encoder& m) { encode_attribute(m, a); });
  if (!n.domain.empty()) e.string_field(kNodeDomain, n.domain);
}

void encode_value_info(Encoder& e, const ValueInfo& v) {
  e.string_field(kValueInfoName, v.name);
  e.message(kValueInfoType, [&](Encoder& type) {
    type.message(kTypeTensorType, [&](Encoder& tensor_type) {
      tensor_type.int_field(kTensorTypeElemType, 1);  // FLOAT
      tensor_type.message(kTensorTypeShape, [&](Encoder& shape) {
        for (const Dimension& d : v.dims)
          shape.message(kShapeDim, [&](Encoder& dim) {
            d.param.empty() ? dim.int_field(kDimValue, d.value) : dim.string_field(kDimParam, d.param);
          });
      });
    });
  });
}

void encode_graph(Encoder& e, const ModelDraft& m) {
  for (const Node& n : m.nodes) e.message(kGraphNode, [&](Encoder& node) { encode_node(node, n); });
  e.string_field(kGraphName, m.graph_name);
  for (const auto& initializer : m.initializers)  // (not a structured binding: clang's C++17 cannot capture one)
    e.message(kGraphInitializer, [&](Encoder& t) { encode_tensor(t, initializer.first, initializer.second); });
  for (const ValueInfo& v : m.inputs) e.message(kGraphInput, [&](Encoder& info) { encode_value_info(info, v); });
  for (const ValueInfo& v : m.outputs) e.message(kGraphOutput, [&](Encoder& info) { encode_value_info(info, v); });
}

void encode_model(Encoder& e, const ModelDraft& m) {
  e.int_field(kModelIrVersion, m.ir_version);
  e.string_field(kModelProducerName, m.producer_name);
  if (!m.producer_version.empty()) e.string_field(kModelProducerVersion, m.producer_version);
  if (!m.doc_string.empty()) e.string_field(kModelDocString, m.doc_string);
  e.message(kModelGraph, [&](Encoder& g) { encode_graph(g, m); });
  e.message(kModelOpsetImport, [&](Encoder& opset) {
    opset.string_field(kOpsetDomain, "");  // "" is the default domain, ai.onnx
    opset.int_field(kOpsetVersion, m.opset);
  });
  for (const auto& property : m.metadata)
    e.message(kModelMetadataProps, [&](Encoder& entry) {
      entry.string_field(kEntryKey, property.first);
      entry.string_field(kEntryValue, property.second);
    });
}

}  // namespace

std::string serialize_onnx(const ModelDraft& model) {
  Encoder counter(nullptr, nullptr);
  encode_model(counter, model);
  std::string bytes;
  bytes.reserve(counter.size());
  Encoder writer(&bytes, nullptr);
  encode_model(writer, model);
  return bytes;
}

void write_onnx(const std::string& path, const ModelDraft& model) {
  write_file_atomically(path, [&](std::ostream& out) {
    Encoder writer(nullptr, &out);
    encode_model(writer, model);
  });
}

std::string ValueInfo::to_string() const {
  std::string text = name + ": f32 (";
  for (size_t i = 0; i < dims.size(); ++i)
    text += (i ? ", " : "") + (dims[i].param.empty() ? std::to_string(dims[i].value) : dims[i].param);
  return text + ")";
}

Attribute int_attribute(const std::string& name, int64_t value) {
  Attribute a;
  a.name = name;
  a.type = AttributeType::i;
  a.i = value;
  return a;
}

Attribute float_attribute(const std::string& name, float value) {
  Attribute a;
  a.name = name;
  a.type = AttributeType::f;
  a.f = value;
  return a;
}

Attribute ints_attribute(const std::string& name, std::vector<int64_t> values) {
  Attribute a;
  a.name = name;
  a.type = AttributeType::ints;
  a.ints = std::move(values);
  return a;
}

Attribute string_attribute(const std::string& name, const std::string& value) {
  Attribute a;
  a.name = name;
  a.type = AttributeType::s;
  a.s = value;
  return a;
}

}  // namespace kiln::onnx
