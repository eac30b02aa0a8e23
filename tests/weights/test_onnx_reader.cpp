// The ONNX wire-format reader: every tensor encoding and attribute kind, on a file
// written by the onnx Python package (tests/fixtures/onnx_fixtures.py), errors on
// malformed bytes, and the real MobileNetV2 file's inventory (shared/assets/MANIFEST.md).
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include "test_util.h"
#include "weights/onnx_reader.h"

using namespace kiln;

namespace {

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "missing fixture ", path, "; regenerate with /usr/bin/python3 tests/fixtures/onnx_fixtures.py");
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void check_tensor(const onnx::Model& m, const std::string& name, DType dtype, const Shape& shape,
                  const std::vector<double>& values) {
  CAPTURE(name);
  REQUIRE(m.graph.initializers.count(name) == 1);
  const Tensor& t = m.graph.initializers.at(name);
  CHECK(t.dtype() == dtype);
  CHECK(t.shape() == shape);
  const std::vector<double> got = t.to_vector();
  REQUIRE(got.size() == values.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(values[i]).epsilon(1e-12));
}

}  // namespace

TEST_CASE("onnx reader: initializers in every encoding, raw, typed, f16 and external") {
  const onnx::Model m = onnx::read_onnx(test::fixture_dir() + "/onnx_reader_tiny.onnx");
  CHECK(m.ir_version == 7);
  CHECK(m.opsets.at("") == 13);
  CHECK(m.opsets.at("kiln.test") == 1);
  CHECK(m.graph.name == "tiny");
  CHECK(m.graph.inputs == std::vector<std::string>{"x"});
  CHECK(m.graph.outputs == std::vector<std::string>{"y"});
  CHECK(m.graph.value_infos == std::vector<std::string>{"unused"});
  CHECK(m.graph.initializer_order.size() == 8);
  CHECK(m.graph.initializer_order.front() == "raw_f32");
  check_tensor(m, "raw_f32", DType::f32, {2, 3}, {0, 0.5, 1, 1.5, 2, 2.5});
  check_tensor(m, "typed_f32", DType::f32, {3}, {1, -2, 3.5});
  check_tensor(m, "raw_f16", DType::f32, {2, 2}, {1.5, -2, 0.25, 65504});
  check_tensor(m, "typed_f16", DType::f32, {2}, {0.5, -1});
  check_tensor(m, "typed_f64", DType::f64, {2}, {0.1, -0.2});
  check_tensor(m, "typed_i64", DType::i64, {3}, {1, -2, 3000000000.0});
  check_tensor(m, "raw_i32", DType::i32, {2}, {7, -8});
  check_tensor(m, "external_f32", DType::f32, {4}, {10, 20, 30, 40});
}

TEST_CASE("onnx reader: a node with one attribute of each kind") {
  const onnx::Model m = onnx::read_onnx(test::fixture_dir() + "/onnx_reader_tiny.onnx");
  REQUIRE(m.graph.nodes.size() == 1);
  const onnx::Node& n = m.graph.nodes[0];
  CHECK(n.name == "attrs_node");
  CHECK(n.op_type == "AllAttributes");
  CHECK(n.domain == "kiln.test");
  CHECK(n.inputs == std::vector<std::string>{"x", "raw_f32"});
  CHECK(n.outputs == std::vector<std::string>{"y"});
  CHECK(n.describe() == "AllAttributes node 'attrs_node'");
  REQUIRE(n.find("alpha"));
  CHECK(n.find("alpha")->type == onnx::AttributeType::f);
  CHECK(n.get_float("alpha", 0) == 0.25f);
  CHECK(n.find("axis")->type == onnx::AttributeType::i);
  CHECK(n.get_int("axis", 0) == -3);
  CHECK(n.find("mode")->type == onnx::AttributeType::s);
  CHECK(n.find("mode")->s == "nearest");
  CHECK(n.find("value")->type == onnx::AttributeType::t);
  CHECK(n.find("value")->t.to_vector() == std::vector<double>{1, 2});
  CHECK(n.find("scales")->type == onnx::AttributeType::floats);
  CHECK(n.find("scales")->floats == std::vector<float>{0.5f, 1.5f});
  CHECK(n.find("pads")->type == onnx::AttributeType::ints);
  CHECK(n.get_ints("pads", {}) == std::vector<int64_t>{1, 2, 3});
  CHECK(n.find("absent") == nullptr);
  CHECK(n.get_int("absent", 42) == 42);
}

TEST_CASE("onnx reader: malformed bytes are errors naming the file and the problem") {
  const std::string good = file_bytes(test::fixture_dir() + "/onnx_reader_tiny.onnx");
  test::expect_error_containing([&] { onnx::parse_onnx(good.substr(0, good.size() / 2), "cut.onnx"); },
                                {"cut.onnx", "overruns its message"});
  test::expect_error_containing([&] { onnx::parse_onnx(std::string("\x08\xff", 2), "varint.onnx"); },
                                {"varint.onnx", "truncated varint", "ModelProto"});
  // Field 99 with wire type 3 (a protobuf "start group", never used by ONNX): the skip path.
  test::expect_error_containing([&] { onnx::parse_onnx(std::string("\x9b\x06", 2), "group.onnx"); },
                                {"group.onnx", "bad wire type 3"});
  // ir_version (field 1) must be a varint, not a fixed32.
  test::expect_error_containing([&] { onnx::parse_onnx(std::string("\x0d\0\0\0\0", 5), "wt.onnx"); },
                                {"wt.onnx", "field 1 has wire type 5, expected 0"});
  // graph (field 7) claims 16 bytes but the file ends after 2.
  test::expect_error_containing([&] { onnx::parse_onnx(std::string("\x3a\x10" "ab", 4), "short.onnx"); },
                                {"short.onnx", "overruns its message"});
  test::expect_error_containing([&] { onnx::parse_onnx(std::string("\x08\x07", 2), "nograph.onnx"); },
                                {"nograph.onnx", "no graph"});
  // An initializer of type STRING (8): TensorProto{dims: 1, data_type: 8, name: "s"} in a graph in a model.
  const std::string tensor("\x08\x01\x10\x08\x42\x01s", 7);
  const std::string graph = std::string("\x2a\x07", 2) + tensor;
  test::expect_error_containing([&] { onnx::parse_onnx(std::string("\x3a\x09", 2) + graph, "string.onnx"); },
                                {"string.onnx", "initializer 's'", "data type 8 (STRING)"});
  test::expect_error_containing([&] { onnx::read_onnx("/nonexistent/model.onnx"); }, {"/nonexistent/model.onnx"});
}

TEST_CASE("onnx reader: the shared MobileNetV2 file has the inventory MANIFEST.md lists") {
  const std::string path = test::shared_assets_dir() + "/models/mobilenet_v2_imagenet_fp32.onnx";
  if (!std::ifstream(path).good()) {
    MESSAGE("SKIPPED: " << path << " is absent (shared assets not installed)");
    return;
  }
  const onnx::Model m = onnx::read_onnx(path);
  CHECK(m.ir_version == 7);
  CHECK(m.opsets.at("") == 13);
  CHECK(m.graph.initializers.size() == 106);
  int64_t elements = 0;
  for (auto& [name, t] : m.graph.initializers) {
    CHECK(t.dtype() == DType::f32);
    elements += t.numel();
  }
  CHECK(elements == 3487816);
  CHECK(m.graph.initializers.at("classifier.1.weight").shape() == Shape{1000, 1280});
  std::map<std::string, int> ops;
  for (const onnx::Node& n : m.graph.nodes) ops[n.op_type] += 1;
  CHECK(ops == std::map<std::string, int>{{"Conv", 52}, {"Clip", 35}, {"Add", 10}, {"GlobalAveragePool", 1},
                                          {"Flatten", 1}, {"Gemm", 1}, {"Constant", 70}});
  CHECK(m.graph.inputs.front() == "input");
  CHECK(m.graph.outputs.front() == "output");
}
