// Hard examples (report/hard_examples.h): the images ranked by their cross-entropy,
// hardest first, the per-class table, and the files written into a run folder.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "engine/tensor/factory.h"
#include "report/hard_examples.h"

using namespace kiln;

namespace {

// Four 8x8 RGB images of classes a, b, a, b.
data::Dataset four_images() {
  data::Dataset d;
  d.images = full({4, 3, 8, 8}, 100, {DType::u8});
  d.labels = from_vector({0, 1, 0, 1}, {4}, {DType::i64});
  d.class_names = {"a", "b"};
  d.file_names = {"a/0.png", "b/1.png", "a/2.png", "b,3.png"};
  d.source = "four";
  return d;
}

}  // namespace

TEST_CASE("hard examples: ranked by cross-entropy, hardest first, with the per-class table") {
  const data::Dataset d = four_images();
  // Image 0: confidently right; 1: confidently wrong (the hardest); 2: hesitant but
  // right; 3: a little wrong.
  const Tensor logits = from_vector({4, 0, /**/ 3, -1, /**/ 0.2, 0, /**/ 0.5, 0}, {4, 2});
  const report::HardExamples hard = report::hardest_examples(logits, d, 3);
  REQUIRE(hard.examples.size() == 3);
  CHECK(hard.examples[0].index == 1);
  CHECK(hard.examples[1].index == 3);
  CHECK(hard.examples[2].index == 2);
  // -log softmax of the true class: log(e^3 + e^-1) - (-1) for image 1.
  CHECK(hard.examples[0].loss == doctest::Approx(std::log(std::exp(3.0) + std::exp(-1.0)) + 1.0));
  CHECK(hard.examples[0].predicted == 0);
  CHECK(hard.examples[0].probability == doctest::Approx(std::exp(3.0) / (std::exp(3.0) + std::exp(-1.0))));
  CHECK(hard.examples[0].file == "b/1.png");
  CHECK(hard.examples[2].predicted == 0);  // right, but only at p = 0.55
  REQUIRE(hard.classes.size() == 2);
  CHECK(hard.classes[0].count == 1);   // image 2
  CHECK(hard.classes[1].count == 2);   // images 1 and 3
  CHECK(hard.classes[1].images == 2);
  CHECK(hard.classes[1].mean_loss == doctest::Approx((hard.examples[0].loss + hard.examples[1].loss) / 2));
  const std::string table = hard.to_table(d.class_names, 10);
  CHECK(table.find("b/1.png") != std::string::npos);
  CHECK(report::hardest_examples(logits, d, 10).examples.size() == 4);  // no more than there are
  CHECK_THROWS_WITH(report::hardest_examples(logits, d, 0), doctest::Contains("--hardest must be at least 1"));
}

TEST_CASE("hard examples: hardest.csv, hardest.json and the grid are written into the run folder") {
  const data::Dataset d = four_images();
  const std::string dir = "/tmp/kiln_test_hard_examples";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const Tensor logits = from_vector({4, 0, 3, -1, 0.2, 0, 0.5, 0}, {4, 2});
  report::write_hard_examples(dir, report::hardest_examples(logits, d, 2), d, {{"subset", "val"}});
  std::ifstream csv(dir + "/hardest.csv");
  std::string header, first, second;
  std::getline(csv, header);
  std::getline(csv, first);
  std::getline(csv, second);
  CHECK(header == "rank,file,true,predicted,probability,loss");
  CHECK(first.rfind("1,b/1.png,b,a,", 0) == 0);
  CHECK(second.rfind("2,\"b,3.png\",b,a,", 0) == 0);  // a comma in the name is quoted
  std::ifstream json(dir + "/hardest.json");
  const nlohmann::json j = nlohmann::json::parse(json);
  CHECK(j["about"]["subset"] == "val");
  CHECK(j["examples"].size() == 2);
  CHECK(j["classes"][1]["hardest"] == 2);
  CHECK(std::filesystem::file_size(dir + "/figures/hardest.png") > 100);
}

TEST_CASE("hard examples: the grid captions the classes by their display names when given") {
  const data::Dataset d = four_images();
  const Tensor logits = from_vector({4, 0, 3, -1, 0.2, 0, 0.5, 0}, {4, 2});
  const report::HardExamples hard = report::hardest_examples(logits, d, 2);
  const std::string plain = report::hard_examples_grid(hard, d).to_svg();
  CHECK(plain.find("true: b") != std::string::npos);
  CHECK(plain.find("#1 loss 4.02") != std::string::npos);
  const std::string named = report::hard_examples_grid(hard, d, 100, {"apple", "banana"}).to_svg();
  CHECK(named.find("true: banana") != std::string::npos);
  CHECK(named.find("pred: apple 0.98") != std::string::npos);
}
