#include "data/csv.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "engine/core/check.h"

namespace kiln::data {

std::vector<CsvRecord> parse_csv(const std::string& text, const std::string& source) {
  std::vector<CsvRecord> records;
  CsvRecord record;
  std::string field;
  int64_t line = 1;
  bool in_record = false;  // any character seen since the last record ended
  // A field is "fresh" until its first character: only then may a quote open it.
  bool fresh = true, quoted = false, closed = false;
  const auto end_field = [&] {
    record.cells.push_back(field);
    field.clear();
    fresh = true, quoted = false, closed = false;
  };
  const auto end_record = [&] {
    end_field();
    records.push_back(std::move(record));
    record = CsvRecord();
    in_record = false;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    if (!in_record) {
      if (ch == '\n' || (ch == '\r' && i + 1 < text.size() && text[i + 1] == '\n')) {  // a blank line
        if (ch == '\n') ++line;
        continue;
      }
      in_record = true;
      record.line = line;
    }
    if (quoted) {
      if (ch == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (ch == '"') {
        quoted = false, closed = true;
      } else {
        if (ch == '\n') ++line;
        field += ch;
      }
      continue;
    }
    if (ch == ',') {
      end_field();
    } else if (ch == '\n' || ch == '\r') {
      if (ch == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      end_record();
      ++line;
    } else if (ch == '"') {
      KILN_CHECK(fresh, "CSV '", source, "' line ", line, ": a double quote inside an unquoted field (",
                 "a field with quotes must be quoted whole, with \"\" for each quote, as RFC 4180 says)");
      quoted = true, fresh = false;
    } else {
      KILN_CHECK(!closed, "CSV '", source, "' line ", line, ": text after the closing quote of a field");
      field += ch;
      fresh = false;
    }
  }
  KILN_CHECK(!quoted, "CSV '", source, "' line ", record.line, ": a quoted field is never closed (missing \")");
  if (in_record) end_record();
  return records;
}

std::vector<CsvRecord> read_csv_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  KILN_CHECK(in.good(), "cannot open CSV '", path, "': ", std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  std::string bytes = text.str();
  if (bytes.rfind("\xEF\xBB\xBF", 0) == 0) bytes.erase(0, 3);  // a UTF-8 byte-order mark (Excel writes one)
  return parse_csv(bytes, path);
}

std::string csv_field(const std::string& text) {
  const bool must_quote = text.find_first_of(",\"\r\n") != std::string::npos ||
                          (!text.empty() && (text.front() == ' ' || text.back() == ' '));
  if (!must_quote) return text;
  std::string out = "\"";
  for (char ch : text) {
    if (ch == '"') out += '"';
    out += ch;
  }
  return out + "\"";
}

std::string csv_row(const std::vector<std::string>& fields) {
  std::string out;
  for (size_t i = 0; i < fields.size(); ++i) out += (i ? "," : "") + csv_field(fields[i]);
  return out;
}

}  // namespace kiln::data
