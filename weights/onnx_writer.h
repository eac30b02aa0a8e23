// Writing ONNX files without protobuf: the counterpart of onnx_reader.h.
//
// The same wire format (onnx_reader.h explains it): each field is a key
// varint(field_number << 3 | wire_type) and a value. The writer emits
//   0 varint            ints, enums
//   2 length-delimited  varint(length) + bytes: strings, raw tensor bytes, sub-messages
//   5 fixed32           floats (AttributeProto.f)
// A sub-message needs its length before its bytes, so every message is encoded by
// one function that runs twice: once counting bytes, once writing them. Nothing is
// buffered: a 500 MB VGG streams its weights straight from the tensors to the file.
// Repeated numbers are written unpacked, one record each (ONNX is proto2, where
// that is the default; the reader accepts both forms).
//
// Field numbers (onnx/onnx.proto), the reader's plus the fields only a writer needs:
//   ModelProto          ir_version 1, producer_name 2, producer_version 3, doc_string 6,
//                       graph 7, opset_import 8, metadata_props 14
//   OperatorSetIdProto  domain 1, version 2
//   GraphProto          node 1, name 2, initializer 5, doc_string 10, input 11, output 12
//   NodeProto           input 1, output 2, name 3, op_type 4, attribute 5, domain 7
//   AttributeProto      name 1, f 2, i 3, s 4, floats 7, ints 8, type 20
//   TensorProto         dims 1, data_type 2, name 8, raw_data 9
//   ValueInfoProto      name 1, type 2
//   TypeProto           tensor_type 1;  TypeProto.Tensor  elem_type 1, shape 2
//   TensorShapeProto    dim 1;  Dimension  dim_value 1, dim_param 2
//   StringStringEntryProto  key 1, value 2
// Nodes and attributes reuse the reader's structs (onnx::Node, onnx::Attribute), so
// parse_onnx(serialize_onnx(m)) gives back what was written.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "weights/onnx_reader.h"

namespace kiln::onnx {

// One dimension of a graph input or output: a number, or a name ("N") for a size
// chosen at run time (the batch).
struct Dimension {
  int64_t value = -1;  // used when param is empty
  std::string param;
};

// A graph input or output: a float tensor of the given dimensions.
struct ValueInfo {
  std::string name;
  std::vector<Dimension> dims;
  std::string to_string() const;  // "input: f32 (N, 3, 224, 224)"
};

// Everything written into one .onnx file.
struct ModelDraft {
  int64_t ir_version = 7;           // 7 is ONNX 1.8, the release that brought opset 13
  int64_t opset = 13;               // of the default domain ai.onnx
  std::string producer_name = "kiln", producer_version, doc_string;
  std::map<std::string, std::string> metadata;  // ModelProto.metadata_props

  std::string graph_name = "kiln";
  std::vector<Node> nodes;                                 // in a topological order
  std::vector<std::pair<std::string, Tensor>> initializers;  // f32, i64, f64 or i32, any device/layout
  std::vector<ValueInfo> inputs, outputs;
};

// The serialized ModelProto. Tensors are written row-major from a host copy.
std::string serialize_onnx(const ModelDraft& model);
// Writes the file atomically (weights/atomic_file.h).
void write_onnx(const std::string& path, const ModelDraft& model);

// Small helpers for building nodes.
Attribute int_attribute(const std::string& name, int64_t value);
Attribute float_attribute(const std::string& name, float value);
Attribute ints_attribute(const std::string& name, std::vector<int64_t> values);
Attribute string_attribute(const std::string& name, const std::string& value);

}  // namespace kiln::onnx
