// The pieces of kiln's HTML reports (report.html of a run, compare.html of several):
// one self-contained page with its CSS inline and every figure inside it (an inline
// <svg> or an <img> with a PNG data URI), so it opens from disk in any browser
// without a network.
//
// A page ends with a small script that counts its figures once the page has loaded:
// a figure counts as loaded when all its <img> are complete with naturalWidth > 0,
// or, without images, its inline <svg> has a non-empty bounding box. It writes the
// counts on <body> as data-figures-loaded="loaded/total" and
// data-images-loaded="loaded/total" (every <img> of the page), which the end-to-end test reads from Chromium's
// DOM dump (tests/report/chromium_report_test.sh).
#pragma once
#include <string>
#include <vector>

#include "report/charts.h"
#include "report/figure.h"

namespace kiln::report {

// "&amp;", "&lt;", "&gt;", "&quot;", "&apos;" for HTML text and attribute values.
std::string html_escape(const std::string& text);  // xml_escape: the same five entities
// "0.873" for (0.873, 3); "n/a" for NaN and infinities (an undefined AUC, say).
std::string format_fixed(double value, int decimals);

// How a figure goes into the page.
enum class FigureEmbed {
  svg,  // inline <svg> (vector, sharp at any zoom): charts
  png,  // <img src="data:image/png;base64,..."> of the rasterised figure: photo grids
};

// A <figure class="figure"> holding the picture and an optional caption under it.
// `max_width` (pixels, 0: the figure's own width) caps how wide the page shows it.
std::string figure_html(const Figure& figure, FigureEmbed embed, const std::string& caption = "",
                        int max_width = 0);

// A grid of captioned images as HTML (one <img> with a PNG data URI per image, the
// captions as text under it, in their colours), inside one <figure class="figure">:
// the browser's fonts and layout, the same content as image_grid()'s picture.
// `pixelated` enlarges small images without smoothing.
std::string image_grid_html(const std::string& title, const std::vector<CaptionedImage>& images,
                            int thumbnail_size, bool pixelated);

// A table: `header` cells in <thead>, `rows` in <tbody>; every cell is escaped
// unless `raw_html` is set (for cells that already hold markup). `css_class` styles it
// ("kv" for two-column key/value tables, "numbers" for right-aligned numeric columns).
std::string table_html(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
                       const std::string& css_class = "", bool raw_html = false);

// <!DOCTYPE html> ... <body> with the stylesheet, a header bar with `title` and
// `subtitle`, and a navigation line linking the section ids: (id, title) pairs.
std::string page_start(const std::string& title, const std::string& subtitle,
                       const std::vector<std::pair<std::string, std::string>>& sections);
// <section id=...><h2>title</h2> ... and its closing tag.
std::string section_start(const std::string& id, const std::string& title);
std::string section_end();
// The footer line, the figure-counting script, </body></html>.
std::string page_end(const std::string& footer);

}  // namespace kiln::report
