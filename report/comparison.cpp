#include "report/comparison.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "engine/train/progress.h"
#include "report/run_folder.h"
#include "weights/atomic_file.h"

namespace kiln::report {

namespace {

std::string format(const char* pattern, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, pattern, value);
  return buffer;
}

// "%.10g": ten significant digits, read back exactly enough by any CSV reader.
std::string full_precision(double value) { return format("%.10g", value); }

const char* const kMissing = "—";  // a number a row does not have (it did not run)

// The display cells of one row, in the order of kHeaders (shared by Markdown and terminal).
const std::vector<std::string> kHeaders = {"model",       "test acc",          "macro P",    "macro R",
                                           "macro F1",    "training time",     "images/s",   "peak memory (MiB)",
                                           "parameters",  "trainable",         "epochs",     "size"};

std::vector<std::string> display_cells(const ComparisonRow& r) {
  if (!r.ran()) {
    std::vector<std::string> cells(kHeaders.size(), kMissing);
    cells[0] = r.name;
    return cells;
  }
  return {r.name,
          format("%.2f%%", 100.0 * r.test_accuracy),
          format("%.4f", r.macro_precision),
          format("%.4f", r.macro_recall),
          format("%.4f", r.macro_f1),
          format_duration(r.training_seconds),
          format(r.images_per_second < 100 ? "%.1f" : "%.0f", r.images_per_second),  // CPU runs are slow
          format("%.0f", r.peak_memory_mb),
          format_count(r.parameters),
          format_count(r.trainable_parameters),
          std::to_string(r.epochs),
          std::to_string(r.image_size)};
}

// A Markdown cell: '|' would end the cell, a line break the row.
std::string markdown_cell(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '|') out += "\\|";
    else if (c == '\n' || c == '\r') out += ' ';
    else out += c;
  }
  return out;
}

}  // namespace

std::string csv_escape(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string Comparison::to_markdown() const {
  std::ostringstream out;
  out << "# kiln compare\n\n"
      << "- data: `" << data << "`\n- split: " << split << "\n- device: " << device << "\n\n";
  out << "|";
  for (const std::string& h : kHeaders) out << ' ' << h << " |";
  out << "\n|";
  for (size_t i = 0; i < kHeaders.size(); ++i) out << (i == 0 ? " --- |" : " ---: |");
  out << '\n';
  for (const ComparisonRow& r : rows) {
    out << "|";
    for (const std::string& cell : display_cells(r)) out << ' ' << markdown_cell(cell) << " |";
    out << '\n';
  }
  out << "\nRecipes and run folders:\n\n";
  for (const ComparisonRow& r : rows) {
    out << "- **" << markdown_cell(r.name) << "**: ";
    if (r.ran())
      out << markdown_cell(r.recipe) << " (`" << r.run_dir << "`)\n";
    else
      out << markdown_cell(r.status) << '\n';
  }
  return out.str();
}

std::string Comparison::to_csv() const {
  std::ostringstream out;
  out << "model,status,test_accuracy,macro_precision,macro_recall,macro_f1,training_seconds,images_per_second,"
         "peak_memory_mb,parameters,trainable_parameters,epochs,image_size,recipe,run_dir\n";
  for (const ComparisonRow& r : rows) {
    out << csv_escape(r.name) << ',' << csv_escape(r.status);
    if (r.ran())
      out << ',' << full_precision(r.test_accuracy) << ',' << full_precision(r.macro_precision) << ','
          << full_precision(r.macro_recall) << ',' << full_precision(r.macro_f1) << ','
          << full_precision(r.training_seconds) << ',' << full_precision(r.images_per_second) << ','
          << full_precision(r.peak_memory_mb) << ',' << r.parameters << ',' << r.trainable_parameters << ','
          << r.epochs << ',' << r.image_size;
    else
      out << ",,,,,,,,,,,";
    out << ',' << csv_escape(r.recipe) << ',' << csv_escape(r.run_dir) << '\n';
  }
  return out.str();
}

nlohmann::json Comparison::to_json() const {
  nlohmann::json out = {{"data", data}, {"split", split}, {"device", device}, {"rows", nlohmann::json::array()}};
  for (const ComparisonRow& r : rows) {
    nlohmann::json row = {{"model", r.name}, {"status", r.status}, {"recipe", r.recipe}, {"run_dir", r.run_dir}};
    const char* numbers[] = {"test_accuracy", "macro_precision",  "macro_recall", "macro_f1",   "training_seconds",
                             "images_per_second", "peak_memory_mb", "parameters", "trainable_parameters",
                             "epochs",            "image_size"};
    if (r.ran()) {
      row.update({{"test_accuracy", r.test_accuracy}, {"macro_precision", r.macro_precision},
                  {"macro_recall", r.macro_recall}, {"macro_f1", r.macro_f1},
                  {"training_seconds", r.training_seconds}, {"images_per_second", r.images_per_second},
                  {"peak_memory_mb", r.peak_memory_mb}, {"parameters", r.parameters},
                  {"trainable_parameters", r.trainable_parameters}, {"epochs", r.epochs},
                  {"image_size", r.image_size}});
    } else {
      for (const char* key : numbers) row[key] = nullptr;
    }
    out["rows"].push_back(row);
  }
  return out;
}

std::string Comparison::to_table() const {
  std::vector<std::vector<std::string>> cells = {kHeaders};
  for (const ComparisonRow& r : rows) cells.push_back(display_cells(r));
  // Column widths in characters; "—" is three bytes but one column wide.
  auto width_of = [](const std::string& s) { return s == kMissing ? size_t{1} : s.size(); };
  std::vector<size_t> widths(kHeaders.size(), 0);
  for (const auto& line : cells)
    for (size_t i = 0; i < line.size(); ++i) widths[i] = std::max(widths[i], width_of(line[i]));
  std::ostringstream out;
  for (size_t l = 0; l < cells.size(); ++l) {
    for (size_t i = 0; i < cells[l].size(); ++i) {
      const std::string pad(widths[i] - width_of(cells[l][i]), ' ');
      out << (i == 0 ? cells[l][i] + pad : "  " + pad + cells[l][i]);  // names left, numbers right
    }
    out << '\n';
  }
  for (const ComparisonRow& r : rows)
    if (!r.ran()) out << r.name << ": " << r.status << '\n';
  return out.str();
}

void Comparison::write(const std::string& dir) const {
  std::filesystem::create_directories(dir);
  write_file_atomically(dir + "/comparison.md", [&](std::ostream& out) { out << to_markdown(); });
  write_file_atomically(dir + "/comparison.csv", [&](std::ostream& out) { out << to_csv(); });
  write_file_atomically(dir + "/comparison.json", [&](std::ostream& out) { out << to_json().dump(2) << "\n"; });
}

}  // namespace kiln::report
