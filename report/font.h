// The bitmap font behind Figure::rasterize(): kiln's own 5x7 font for printable
// ASCII (' ' to '~'), drawn as data in report/font.cpp. Each glyph is 5 columns
// by 9 rows: rows 0-6 stand on the baseline (capitals and digits fill them,
// lowercase letters rows 2-6), rows 7-8 hold descenders (g j p q y , ;).
// The advance is 6 columns (one column of spacing). Drawn at font size S, one
// font pixel is S / 10 image pixels, so capitals are 0.7 * S tall and a
// character advances 0.6 * S (the metrics report/figure.h promises).
#pragma once

namespace kiln::report::font {

inline constexpr int glyph_columns = 5;
inline constexpr int glyph_rows = 9;      // 7 above the baseline + 2 descender rows
inline constexpr int ascent_rows = 7;     // rows above the baseline
inline constexpr int advance_columns = 6; // glyph + one column of spacing
inline constexpr int em_rows = 10;        // font size S <-> S / em_rows pixels per font pixel

// Whether font pixel (column, row) of `c` is ink. Characters outside ' '..'~'
// are drawn as '?'; (column, row) outside the glyph is never ink.
bool glyph_pixel(char c, int column, int row);

}  // namespace kiln::report::font
