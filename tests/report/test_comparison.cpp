// report/comparison: the three table formats of `kiln compare` — values formatted for
// reading (percent, four decimals, thousands separators), CSV fields quoted exactly
// when they must be, skipped rows kept with their reason and without numbers.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "report/comparison.h"

using namespace kiln::report;

namespace {

Comparison sample() {
  Comparison c;
  c.data = "imagenette_96";
  c.split = "300/75/75 per class";
  c.device = "cpu";
  ComparisonRow ran;
  ran.name = "cnn5";
  ran.recipe = "sgd lr 0.05, onecycle, augment crop:0.35-1,hflip:0.5";  // commas: must be quoted in CSV
  ran.run_dir = "out/cnn5";
  ran.epochs = 30;
  ran.image_size = 96;
  ran.test_accuracy = 0.853333;
  ran.macro_precision = 0.86;
  ran.macro_recall = 0.853333;
  ran.macro_f1 = 0.85126;
  ran.training_seconds = 125;
  ran.images_per_second = 1234.56;
  ran.peak_memory_mb = 511.7;
  ran.parameters = 11181642;
  ran.trainable_parameters = 5130;
  ComparisonRow skipped;
  skipped.name = "resnet18:head";
  skipped.status = "skipped: no --resnet18 ONNX given";
  skipped.recipe = "adamw \"head\" lr 0.001 | cosine";
  c.rows = {ran, skipped};
  return c;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace

TEST_CASE("report comparison: CSV fields are quoted only when they hold a comma, a quote or a line break") {
  CHECK(csv_escape("resnet18:head") == "resnet18:head");
  CHECK(csv_escape("a,b") == "\"a,b\"");
  CHECK(csv_escape("say \"hi\"") == "\"say \"\"hi\"\"\"");
  CHECK(csv_escape("two\nlines") == "\"two\nlines\"");
  CHECK(csv_escape("") == "");
}

TEST_CASE("report comparison: CSV has one line per row, full-precision numbers and empty cells for a skipped row") {
  const std::vector<std::string> lines = lines_of(sample().to_csv());
  REQUIRE(lines.size() == 3);
  CHECK(lines[0] ==
        "model,status,test_accuracy,macro_precision,macro_recall,macro_f1,training_seconds,images_per_second,"
        "peak_memory_mb,parameters,trainable_parameters,epochs,image_size,recipe,run_dir");
  CHECK(lines[1] ==
        "cnn5,ok,0.853333,0.86,0.853333,0.85126,125,1234.56,511.7,11181642,5130,30,96,"
        "\"sgd lr 0.05, onecycle, augment crop:0.35-1,hflip:0.5\",out/cnn5");
  CHECK(lines[2] == "resnet18:head,skipped: no --resnet18 ONNX given,,,,,,,,,,,,\"adamw \"\"head\"\" lr 0.001 | cosine\",");
}

TEST_CASE("report comparison: Markdown formats the numbers for reading and explains a skipped row") {
  const std::string md = sample().to_markdown();
  CHECK(md.find("| cnn5 | 85.33% | 0.8600 | 0.8533 | 0.8513 | 2:05 | 1235 | 512 | 11,181,642 | 5,130 | 30 | 96 |") !=
        std::string::npos);
  CHECK(md.find("| resnet18:head | — | — |") != std::string::npos);
  CHECK(md.find("- **resnet18:head**: skipped: no --resnet18 ONNX given") != std::string::npos);
  CHECK(md.find("- **cnn5**: sgd lr 0.05") != std::string::npos);
  // Every table line has the same number of cells as the header.
  size_t table_lines = 0;
  for (const std::string& line : lines_of(md))
    if (!line.empty() && line[0] == '|') {
      ++table_lines;
      CHECK(std::count(line.begin(), line.end(), '|') == 13);
    }
  CHECK(table_lines == 4);  // header, separator, two rows
}

TEST_CASE("report comparison: a '|' inside a Markdown cell is escaped") {
  Comparison c = sample();
  c.rows[0].name = "a|b";
  CHECK(c.to_markdown().find("| a\\|b | 85.33%") != std::string::npos);
}

TEST_CASE("report comparison: JSON keeps numbers for rows that ran and null for skipped ones") {
  const nlohmann::json j = sample().to_json();
  REQUIRE(j["rows"].size() == 2);
  CHECK(j["rows"][0]["model"] == "cnn5");
  CHECK(j["rows"][0]["test_accuracy"].get<double>() == doctest::Approx(0.853333));
  CHECK(j["rows"][0]["parameters"].get<int64_t>() == 11181642);
  CHECK(j["rows"][1]["status"] == "skipped: no --resnet18 ONNX given");
  CHECK(j["rows"][1]["test_accuracy"].is_null());
  CHECK(j["device"] == "cpu");
}

TEST_CASE("report comparison: the terminal table aligns its columns and lists why rows were skipped") {
  const std::vector<std::string> lines = lines_of(sample().to_table());
  REQUIRE(lines.size() == 4);
  CHECK(lines[0].rfind("model", 0) == 0);
  CHECK(lines[1].rfind("cnn5", 0) == 0);
  CHECK(lines[1].find("85.33%") != std::string::npos);
  CHECK(lines[3] == "resnet18:head: skipped: no --resnet18 ONNX given");
  // Right-aligned numbers: the header and the row end at the same column.
  CHECK(lines[0].size() == lines[1].size());
}

TEST_CASE("report comparison: write() leaves the three files and no temporaries") {
  const std::string dir = (std::filesystem::temp_directory_path() / "kiln_test_comparison").string();
  std::filesystem::remove_all(dir);
  sample().write(dir);
  for (const char* name : {"comparison.md", "comparison.csv", "comparison.json"})
    CHECK(std::filesystem::exists(dir + "/" + name));
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) files += entry.is_regular_file();
  CHECK(files == 3);
  std::ifstream csv(dir + "/comparison.csv");
  std::string header;
  std::getline(csv, header);
  CHECK(header.rfind("model,status,", 0) == 0);
  std::filesystem::remove_all(dir);
}
