// Hostile weight files: sizes that wrap around int64, shapes that claim terabytes,
// JSON nested a million deep, external data outside the model's folder. Each must
// end in a kiln::Error naming the file and the field, never in a crash, an
// out-of-bounds read or an allocation the size the file claims.
#include <cstring>
#include <string>

#include "data/pack_set.h"
#include "engine/core/checked_math.h"
#include "engine/core/json_parse.h"
#include "engine/tensor/factory.h"
#include "models/cnn5.h"
#include "models/registry.h"
#include "tests/data/image_fixtures.h"
#include "tests/test_util.h"
#include "weights/checkpoint.h"
#include "weights/onnx_import.h"
#include "weights/onnx_reader.h"
#include "weights/safetensors.h"

using namespace kiln;

namespace {

// A safetensors file from a header text and a payload, as an attacker would write it.
std::string safetensors_bytes(const std::string& header, const std::string& payload) {
  const uint64_t size = header.size();
  std::string out(reinterpret_cast<const char*>(&size), 8);
  return out + header + payload;
}

void write_bytes(const std::string& path, const std::string& bytes) { test::write_text(path, bytes); }

// Protobuf wire encoding, enough to hand-craft ModelProtos (onnx_reader.h explains it).
std::string varint(uint64_t v) {
  std::string out;
  do {
    out += static_cast<char>((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    v >>= 7;
  } while (v);
  return out;
}
std::string field_varint(int field, uint64_t v) { return varint(static_cast<uint64_t>(field) << 3) + varint(v); }
std::string field_bytes(int field, const std::string& bytes) {
  return varint(static_cast<uint64_t>(field) << 3 | 2) + varint(bytes.size()) + bytes;
}
// ModelProto { graph { initializer { tensor } } }
std::string model_with_initializer(const std::string& tensor) {
  return field_varint(1, 7) + field_bytes(7, field_bytes(5, tensor));
}

}  // namespace

TEST_CASE("checked math: products and sums that leave int64 or use negative operands are refused") {
  int64_t out = -7;
  CHECK(checked_mul(int64_t{1} << 31, int64_t{1} << 31, out));
  CHECK(out == int64_t{1} << 62);
  CHECK_FALSE(checked_mul((int64_t{1} << 62) + 4, 4, out));  // would wrap to 16
  CHECK(out == int64_t{1} << 62);                            // untouched on failure
  CHECK_FALSE(checked_mul(-1, 4, out));
  CHECK_FALSE(checked_add(INT64_MAX, 1, out));
  CHECK_FALSE(checked_add(-3, 1, out));
  CHECK(checked_numel({}, out));
  CHECK(out == 1);
  CHECK(checked_numel({2, 0, 5}, out));
  CHECK(out == 0);
  CHECK_FALSE(checked_numel({1 << 30, 1 << 30, 1 << 30}, out));
  CHECK_FALSE(checked_numel({4, -1}, out));
  CHECK(checked_bytes({3, 5}, 4, out));
  CHECK(out == 60);
  CHECK_FALSE(checked_bytes({(int64_t{1} << 62) + 4}, 4, out));
  // Shape::numel is the safety net for every shape built anywhere.
  test::expect_error_containing([] { (void)Shape({int64_t{1} << 40, int64_t{1} << 40}).numel(); },
                                {"overflows int64"});
}

TEST_CASE("untrusted safetensors: shape (2^62 + 4) of F32 with 16 data bytes is refused by its byte size") {
  test::TempDir dir("untrusted_st");
  // 4 * (2^62 + 4) wraps to exactly 16: plain arithmetic would accept this tensor.
  const std::string header =
      R"({"x":{"dtype":"F32","shape":[4611686018427387908],"data_offsets":[0,16]}})";
  write_bytes(dir / "wrap.safetensors", safetensors_bytes(header, std::string(16, '\0')));
  test::expect_error_containing([&] { load_safetensors(dir / "wrap.safetensors"); },
                                {"wrap.safetensors", "tensor 'x'", "byte size beyond int64"});
}

TEST_CASE("untrusted safetensors: negative dims, missing fields, wrong types and huge headers name the field") {
  test::TempDir dir("untrusted_st2");
  const auto expect = [&](const std::string& name, const std::string& bytes, std::vector<std::string> fragments) {
    write_bytes(dir / name, bytes);
    fragments.insert(fragments.begin(), name);
    test::expect_error_containing([&] { load_safetensors(dir / name); }, fragments);
  };
  expect("negative.safetensors",
         safetensors_bytes(R"({"x":{"dtype":"F32","shape":[-4,-1],"data_offsets":[0,16]}})", std::string(16, '\0')),
         {"tensor 'x'", "negative dimension"});
  expect("nodtype.safetensors", safetensors_bytes(R"({"x":{"shape":[1],"data_offsets":[0,4]}})", std::string(4, '\0')),
         {"tensor 'x'", "missing or has the wrong type"});
  expect("shape_string.safetensors",
         safetensors_bytes(R"({"x":{"dtype":"F32","shape":"big","data_offsets":[0,4]}})", std::string(4, '\0')),
         {"tensor 'x'", "wrong type"});
  expect("not_object.safetensors", safetensors_bytes(R"([1,2,3])", ""), {"not an object"});
  expect("entry_number.safetensors", safetensors_bytes(R"({"x":5})", ""), {"tensor 'x'", "not an object"});
  expect("offsets.safetensors",
         safetensors_bytes(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[-8,-4]}})", std::string(4, '\0')),
         {"tensor 'x'", "data_offsets"});
  expect("deep.safetensors", safetensors_bytes(std::string(100000, '[') + std::string(100000, ']'), ""),
         {"nested deeper than"});
  // A header length of 2^63 must not become a 2^63-byte allocation.
  std::string huge(8, '\0');
  huge[7] = static_cast<char>(0x80);
  expect("huge_header.safetensors", huge + "{}", {"header length", "exceeds the file size"});
  expect("short.safetensors", "abc", {"shorter than its 8-byte header"});
}

TEST_CASE("untrusted checkpoint: metadata that is not JSON or has the wrong types names the key") {
  test::TempDir dir("untrusted_ckpt");
  save_safetensors(dir / "a.safetensors", {{"model.w", zeros({2}, {DType::f32})}},
                   {{"kiln.format", "checkpoint-1"}, {"kiln.progress", "{not json"}});
  test::expect_error_containing([&] { load_checkpoint(dir / "a.safetensors"); },
                                {"a.safetensors", "kiln.progress", "not valid JSON"});
  save_safetensors(dir / "b.safetensors", {{"model.w", zeros({2}, {DType::f32})}},
                   {{"kiln.format", "checkpoint-1"}, {"kiln.classes", "[1, 2]"}});
  test::expect_error_containing([&] { load_checkpoint(dir / "b.safetensors"); },
                                {"b.safetensors", "kiln.classes", "wrong type"});
  save_safetensors(dir / "c.safetensors", {}, {{"kiln.format", "checkpoint-1"}, {"kiln.config", std::string(200, '[')}});
  test::expect_error_containing([&] { load_checkpoint(dir / "c.safetensors"); }, {"c.safetensors", "kiln.config"});
}

TEST_CASE("untrusted onnx: an initializer with a zero dim is an empty tensor, for every data type") {
  // Found by tests/fuzz/fuzz_onnx.cpp (UBSan, regression file
  // tests/fuzz/corpus/onnx/regression_empty_float_data.onnx): dims (3, 0) with an empty
  // float_data made the reader memcpy from the empty field's null data().
  for (const uint64_t data_type : {1, 6, 7, 10, 11}) {
    CAPTURE(data_type);
    const std::string tensor = field_varint(1, 3) + field_varint(1, 0) + field_varint(2, data_type) + field_bytes(8, "w");
    const onnx::Model model = onnx::parse_onnx(model_with_initializer(tensor), "empty.onnx");
    REQUIRE(model.graph.initializers.count("w") == 1);
    CHECK(model.graph.initializers.at("w").shape() == Shape({3, 0}));
    CHECK(model.graph.initializers.at("w").numel() == 0);
  }
}

TEST_CASE("untrusted onnx: dims claiming terabytes, negative dims and overflowing dims are refused before allocating") {
  const auto tensor = [](std::vector<uint64_t> dims, const std::string& data) {
    std::string t;
    for (uint64_t d : dims) t += field_varint(1, d);
    return t + field_varint(2, 1) + field_bytes(8, "w") + data;  // FLOAT, named w
  };
  // 2^40 floats (4 TB) and no data: the count check comes before the allocation.
  test::expect_error_containing(
      [&] { onnx::parse_onnx(model_with_initializer(tensor({uint64_t{1} << 40}, "")), "tb.onnx"); },
      {"tb.onnx", "initializer 'w'", "TensorProto at byte", "float_data holds 0 values"});
  test::expect_error_containing(
      [&] { onnx::parse_onnx(model_with_initializer(tensor({static_cast<uint64_t>(-3)}, "")), "neg.onnx"); },
      {"neg.onnx", "initializer 'w'", "negative entry"});
  test::expect_error_containing(
      [&] {
        onnx::parse_onnx(model_with_initializer(tensor({uint64_t{1} << 62, 4}, field_bytes(9, std::string(16, 'x')))),
                         "wrap.onnx");
      },
      {"wrap.onnx", "byte size beyond int64"});
  test::expect_error_containing(
      [&] { onnx::parse_onnx(model_with_initializer(tensor({1, 1, 1, 1, 1, 1, 1, 1, 1}, "")), "rank.onnx"); },
      {"rank.onnx", "9 dims"});
}

TEST_CASE("untrusted onnx: external data must stay in the model's folder and its numbers must parse") {
  test::TempDir dir("untrusted_onnx_ext");
  const auto external = [](const std::string& location, const std::string& offset) {
    const auto entry = [](const std::string& k, const std::string& v) {
      return field_bytes(13, field_bytes(1, k) + field_bytes(2, v));
    };
    std::string t = field_varint(1, 2) + field_varint(2, 1) + field_bytes(8, "w") + entry("location", location);
    if (!offset.empty()) t += entry("offset", offset);
    return model_with_initializer(t + field_varint(14, 1));
  };
  test::write_text(dir / "w.bin", std::string(8, '\0'));
  CHECK(onnx::parse_onnx(external("w.bin", ""), dir / "m.onnx").graph.initializers.at("w").numel() == 2);
  test::expect_error_containing([&] { onnx::parse_onnx(external("../../etc/passwd", ""), dir / "m.onnx"); },
                                {"m.onnx", "outside the model's folder"});
  test::expect_error_containing([&] { onnx::parse_onnx(external("/etc/passwd", ""), dir / "m.onnx"); },
                                {"outside the model's folder"});
  test::expect_error_containing([&] { onnx::parse_onnx(external("w.bin", "12abc"), dir / "m.onnx"); },
                                {"external data offset '12abc'"});
  test::expect_error_containing([&] { onnx::parse_onnx(external("w.bin", "99999999999999999999999"), dir / "m.onnx"); },
                                {"external data offset"});
  test::expect_error_containing([&] { onnx::parse_onnx(external("w.bin", "4"), dir / "m.onnx"); },
                                {"w.bin has 8 bytes", "initializer 'w'"});
}

TEST_CASE("untrusted json: nesting beyond the limit is an error naming the source, not a stack overflow") {
  CHECK(parse_json_limited(std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']'), "ok").is_array());
  test::expect_error_containing(
      [] { parse_json_limited(std::string(1000000, '['), "config.json"); }, {"config.json", "nested deeper than"});
  test::expect_error_containing([] { parse_json_limited("{\"a\": tru", "config.json"); },
                                {"config.json", "not valid JSON"});
}

TEST_CASE("untrusted configs: model sizes from a checkpoint's config are bounded before anything is built") {
  models::Cnn5Config config;
  config.filters = {8, 8, 8, 8, int64_t{1} << 30};
  test::expect_error_containing([&] { models::make_cnn5(config); }, {"cnn5: filters must be 1 to 16384", "block 5"});
  config.filters = {8, 8, 8, 8, 8};
  config.num_classes = -2;
  test::expect_error_containing([&] { models::make_cnn5(config); }, {"num_classes must be 1 to"});
  config.num_classes = 10;
  config.dense_units = 65536;
  config.input_size = 65536;
  config.filters = {16384, 16384, 16384, 16384, 16384};
  test::expect_error_containing([&] { models::make_cnn5(config); }, {"parameters is more than kiln builds"});
  test::expect_error_containing([] { models::make_model("resnet18", int64_t{1} << 40); },
                                {"resnet18: num_classes must be 1 to 100000"});
}

TEST_CASE("untrusted onnx: a node with fewer inputs than its op needs is an error naming it") {
  // Found by tests/fuzz/fuzz_onnx.cpp: an Add with one input made the importer read past its inputs.
  const std::string path = test::fixture_dir() + "/../fuzz/corpus/onnx/regression_add_with_one_input.onnx";
  const onnx::Model model = onnx::read_onnx(path);
  auto net = models::make_model("resnet18", 10);
  test::expect_error_containing([&] { import_onnx(model, *net); },
                                {"regression_add_with_one_input.onnx", "needs at least 2 inputs and one output"});
}

TEST_CASE("untrusted json: integer fields beyond their type's range are errors, not casts") {
  // Found by tests/fuzz/fuzz_pack_set.cpp: a pack set index whose "version" was 1.8e35
  // went through get<int>(), a float-to-int cast out of range (undefined behaviour).
  const nlohmann::json fields =
      parse_json_limited("{\"a\": 1e15, \"b\": 7, \"c\": [3, 5e9], \"d\": -9.3e18, \"e\": [1, 2e19], \"f\": 2.0, "
                         "\"loss\": 3e30}", "run.json");
  CHECK(fields.at("loss").get<double>() == 3e30);  // a float field may hold anything finite (a diverged loss)
  CHECK(json_int(fields.at("b"), "run.json", "b") == 7);
  CHECK(json_int64(fields.at("a"), "run.json", "a") == 1000000000000000);
  CHECK(json_int64(fields.at("f"), "run.json", "f") == 2);
  CHECK(json_int64_or(fields, "missing", -1, "run.json") == -1);
  CHECK(json_int64s(fields.at("c"), "run.json", "c") == std::vector<int64_t>{3, 5000000000});
  test::expect_error_containing([&] { json_int(fields.at("a"), "run.json", "a"); },
                                {"run.json", "\"a\" is 1e+15", "32-bit"});
  test::expect_error_containing([&] { json_ints(fields.at("c"), "run.json", "c"); },
                                {"run.json", "\"c\" is 5000000000", "32-bit"});
  CHECK(json_int_or(fields, "b", -1, "run.json") == 7);
  CHECK(json_int_or(fields, "missing", -1, "run.json") == -1);
  test::expect_error_containing([&] { json_int_or(fields, "a", 0, "run.json"); }, {"\"a\" is 1e+15", "32-bit"});
  test::expect_error_containing([&] { json_int64(fields.at("d"), "run.json", "d"); }, {"\"d\" is -9.3e+18", "64-bit"});
  test::expect_error_containing([&] { json_int64s(fields.at("e"), "run.json", "e"); }, {"\"e\" is 2e+19", "64-bit"});
  test::expect_error_containing([&] { json_int64_or(fields, "d", 0, "run.json"); }, {"\"d\""});
  const std::string path = test::fixture_dir() + "/../fuzz/corpus/pack_set/regression_float_version.kpacks";
  test::expect_error_containing([&] { data::read_pack_set_index(path); },
                                {"regression_float_version.kpacks", "\"version\" is 1.77777", "64-bit"});
}
