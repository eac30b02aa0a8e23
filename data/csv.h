// RFC 4180 CSV, read and written: the format of the course's label files
// (`ImageID,Labels,Captions`), where a caption may hold commas, double quotes and
// line breaks.
//
//   field    = plain text without , " CR LF  |  "..." where "" stands for one "
//   record   = field *("," field), ended by LF or CRLF (a break inside quotes is data)
//
// parse_csv keeps, for every record, the line it starts on, so that errors can name
// "row 7 (line 9)" when captions span lines. csv_field quotes a field only when it
// must (a comma, a quote, a CR or LF, or leading/trailing spaces), as Python's csv
// module does with QUOTE_MINIMAL.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace kiln::data {

struct CsvRecord {
  std::vector<std::string> cells;
  int64_t line = 0;  // 1-based line of the file where the record starts
};

// Parses the whole text. Blank lines (no characters at all) are left out. Throws
// kiln::Error naming `source` and the line of an unterminated quote, or of a quote
// that opens in the middle of a field or is followed by text after it closes.
std::vector<CsvRecord> parse_csv(const std::string& text, const std::string& source);
std::vector<CsvRecord> read_csv_file(const std::string& path);  // throws naming the path

// One field as it must be written; csv_row joins fields with commas (no line end).
std::string csv_field(const std::string& text);
std::string csv_row(const std::vector<std::string>& fields);

}  // namespace kiln::data
