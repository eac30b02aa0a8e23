// Reading ONNX files without protobuf: a wire-format reader for the few messages kiln needs.
//
// An .onnx file is one serialized ModelProto (onnx/onnx.proto). The protobuf wire
// format is a flat list of (key, value) records; key = varint(field_number << 3 |
// wire_type), and the wire type says how long the value is:
//   0 varint            int32/int64/enum/bool, 7 bits per byte, high bit = "more"
//   1 fixed64           8 little-endian bytes (double)
//   2 length-delimited  varint length, then that many bytes (string, bytes,
//                       sub-message, or a "packed" run of repeated numbers)
//   5 fixed32           4 little-endian bytes (float)
// Fields kiln does not use are skipped by their wire type, which is what makes an
// old reader accept newer files. docs/onnx.md walks through a real example.
//
// Only what the importer needs is kept (field numbers from onnx.proto):
//   ModelProto      ir_version 1, graph 7, opset_import 8 (domain 1, version 2)
//   GraphProto      node 1, name 2, initializer 5, input 11, output 12, value_info 13
//   NodeProto       input 1, output 2, name 3, op_type 4, attribute 5, domain 7
//   AttributeProto  name 1, f 2, i 3, s 4, t 5, floats 7, ints 8, type 20
//   TensorProto     dims 1, data_type 2, float_data 4, int32_data 5, int64_data 7,
//                   name 8, raw_data 9, double_data 10, external_data 13, data_location 14
//   ValueInfoProto  name 1
// Tensors become kiln Tensors on the CPU: FLOAT -> f32, FLOAT16 -> f32 (converted,
// kiln computes in f32 on the CPU), DOUBLE -> f64, INT64 -> i64, INT32 -> i32.
// Any malformed input throws kiln::Error naming the file and what was wrong.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/tensor/tensor.h"

namespace kiln::onnx {

// AttributeProto.type values (onnx.proto AttributeType).
enum class AttributeType : int { undefined = 0, f = 1, i = 2, s = 3, t = 4, g = 5, floats = 6, ints = 7, strings = 8 };

struct Attribute {
  std::string name;
  AttributeType type = AttributeType::undefined;
  float f = 0;
  int64_t i = 0;
  std::string s;
  Tensor t;                     // undefined unless type == t
  std::vector<float> floats;
  std::vector<int64_t> ints;
};

struct Node {
  std::string name, op_type, domain;
  std::vector<std::string> inputs, outputs;  // "" marks an omitted optional input
  std::vector<Attribute> attributes;

  const Attribute* find(const std::string& attribute) const;  // nullptr when absent
  int64_t get_int(const std::string& attribute, int64_t fallback) const;
  float get_float(const std::string& attribute, float fallback) const;
  std::vector<int64_t> get_ints(const std::string& attribute, std::vector<int64_t> fallback) const;
  std::string describe() const;  // "Conv node '/layer1/conv1/Conv'" for error messages
};

struct Graph {
  std::string name;
  std::vector<Node> nodes;                    // in file order (topological, by the ONNX rules)
  std::map<std::string, Tensor> initializers;  // by name
  std::vector<std::string> initializer_order;  // names in file order
  std::vector<std::string> inputs, outputs, value_infos;  // value names only
};

struct Model {
  std::string path;  // for error messages
  int64_t ir_version = 0;
  std::map<std::string, int64_t> opsets;  // domain ("" = ai.onnx) -> version
  Graph graph;
};

// Reads an .onnx file. External-data locations are relative to the file's folder.
Model read_onnx(const std::string& path);
// Parses a serialized ModelProto held in memory; `path` names it in errors and
// locates external data (its folder).
Model parse_onnx(const std::string& bytes, const std::string& path);

const char* onnx_data_type_name(int data_type);  // 1 -> "FLOAT", unknown -> "UNKNOWN"

}  // namespace kiln::onnx
