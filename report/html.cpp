// HTML pieces of the reports (report/html.h): escaping, figures, tables, the page
// frame with its stylesheet and the figure-counting script.
#include "report/html.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "engine/core/check.h"

namespace kiln::report {
namespace {

// One stylesheet for every report: a readable column, light tables, figures in a
// wrapping row. No web fonts, nothing fetched.
const char* const kStyle = R"CSS(
:root { --ink: #1f2933; --muted: #5f6c7b; --line: #d9dee4; --accent: #1f77b4; --paper: #ffffff; --band: #f4f6f8; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--band); color: var(--ink);
       font: 15px/1.5 -apple-system, "Segoe UI", "Helvetica Neue", Arial, "DejaVu Sans", sans-serif; }
header.top { background: #16324f; color: #fff; padding: 22px 32px 16px; }
header.top h1 { margin: 0; font-size: 26px; font-weight: 600; letter-spacing: 0.2px; }
header.top p { margin: 4px 0 0; color: #c9d6e3; font-size: 14px; }
nav { background: #fff; border-bottom: 1px solid var(--line); padding: 8px 32px; position: sticky; top: 0; z-index: 1; }
nav a { color: var(--accent); text-decoration: none; margin-right: 18px; font-size: 14px; white-space: nowrap; }
nav a:hover { text-decoration: underline; }
main { max-width: 1320px; margin: 0 auto; padding: 8px 24px 24px; }
section { background: var(--paper); border: 1px solid var(--line); border-radius: 8px; margin: 18px 0; padding: 8px 24px 20px; }
section h2 { font-size: 19px; font-weight: 600; margin: 12px 0 10px; padding-bottom: 6px; border-bottom: 2px solid var(--band); }
section h3 { font-size: 16px; font-weight: 600; margin: 16px 0 6px; }
p.note { color: var(--muted); font-size: 13.5px; margin: 6px 0 10px; max-width: 920px; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 14px; }
th, td { padding: 5px 12px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
thead th { background: var(--band); font-weight: 600; border-bottom: 2px solid var(--line); }
tbody tr:nth-child(even) td { background: #fafbfc; }
table.kv th { width: 270px; font-weight: 600; color: var(--muted); background: transparent; border-bottom: 1px solid var(--line); }
table.numbers td:not(:first-child), table.numbers th:not(:first-child) { text-align: right; font-variant-numeric: tabular-nums; }
table.numbers td:first-child { white-space: nowrap; }
table.numbers th { vertical-align: bottom; }
tr.average td { font-weight: 600; background: var(--band) !important; }
code, pre { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 13px; }
pre { background: #0f1c2a; color: #e3ebf3; padding: 12px 14px; border-radius: 6px; overflow-x: auto; white-space: pre-wrap; word-break: break-all; }
.figures { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
figure.figure { margin: 0; }
figure.figure svg, figure.figure img { display: block; max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; background: #fff; }
figure.figure figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; max-width: 640px; }
figure.grid { border: 1px solid var(--line); border-radius: 4px; padding: 10px 12px; margin: 10px 0; }
figure.grid figcaption.title { color: var(--ink); font-weight: 600; font-size: 15px; margin: 0 0 8px; }
figure.grid .cells { display: flex; flex-wrap: wrap; gap: 10px 6px; }
figure.grid .cell { text-align: center; font-size: 12px; line-height: 1.35; }
figure.grid .cell img { display: block; margin: 0 auto 3px; border: none; border-radius: 2px; background: #000; }
figure.grid .cell .caption { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
img.pixelated { image-rendering: pixelated; }
.big { font-size: 22px; font-weight: 600; }
.tiles { display: flex; flex-wrap: wrap; gap: 12px; margin: 6px 0 4px; }
.tile { background: var(--band); border-radius: 6px; padding: 8px 16px; min-width: 150px; }
.tile .label { color: var(--muted); font-size: 12.5px; text-transform: uppercase; letter-spacing: 0.4px; }
footer { color: var(--muted); font-size: 13px; text-align: center; padding: 8px 0 28px; }
)CSS";

// Counts figures once everything has loaded and writes "loaded/total" on <body>.
const char* const kFigureCheckScript = R"JS(
<script>
window.addEventListener("load", function () {
  function loaded(img) { return img.complete && img.naturalWidth > 0; }
  var figures = document.querySelectorAll("figure.figure"), figures_loaded = 0;
  figures.forEach(function (f) {
    var imgs = Array.prototype.slice.call(f.querySelectorAll("img")), svg = f.querySelector("svg");
    if (imgs.length > 0) { if (imgs.every(loaded)) figures_loaded++; }
    else if (svg) { var box = svg.getBoundingClientRect(); if (box.width > 0 && box.height > 0) figures_loaded++; }
  });
  var imgs = Array.prototype.slice.call(document.querySelectorAll("img"));
  document.body.setAttribute("data-figures-loaded", figures_loaded + "/" + figures.length);
  document.body.setAttribute("data-images-loaded", imgs.filter(loaded).length + "/" + imgs.length);
});
</script>
)JS";

// Figure::to_svg() writes a standalone document; inside HTML the <svg> element is
// enough, and a viewBox lets CSS scale it down on narrow screens.
std::string inline_svg(const Figure& figure) {
  std::string svg = figure.to_svg();
  const size_t start = svg.find("<svg");
  KILN_CHECK(start != std::string::npos, "report: Figure::to_svg() returned no <svg> element");
  svg = svg.substr(start);
  const size_t tag_end = svg.find('>');
  if (svg.substr(0, tag_end).find("viewBox") == std::string::npos)
    svg.insert(4, " viewBox=\"0 0 " + std::to_string(figure.width()) + " " + std::to_string(figure.height()) + "\"");
  return svg;
}

}  // namespace

std::string html_escape(const std::string& text) { return xml_escape(text); }

std::string format_fixed(double value, int decimals) {
  if (!std::isfinite(value)) return "n/a";
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.*f", decimals, value);
  return buffer;
}

std::string figure_html(const Figure& figure, FigureEmbed embed, const std::string& caption, int max_width) {
  const int width = max_width > 0 ? std::min(max_width, figure.width()) : figure.width();
  std::string out = "<figure class=\"figure\" style=\"max-width:" + std::to_string(width) + "px\">\n";
  if (embed == FigureEmbed::svg) {
    out += inline_svg(figure);
  } else {
    out += "<img alt=\"" + html_escape(caption) + "\" width=\"" + std::to_string(figure.width()) + "\" height=\"" +
           std::to_string(figure.height()) + "\" src=\"" + png_data_uri(figure.rasterize()) + "\">";
  }
  if (!caption.empty()) out += "\n<figcaption>" + html_escape(caption) + "</figcaption>";
  return out + "\n</figure>\n";
}

std::string image_grid_html(const std::string& title, const std::vector<CaptionedImage>& images,
                            int thumbnail_size, bool pixelated) {
  std::string out = "<figure class=\"figure grid\">\n";
  if (!title.empty()) out += "<figcaption class=\"title\">" + html_escape(title) + "</figcaption>\n";
  out += "<div class=\"cells\">\n";
  for (const CaptionedImage& item : images) {
    // The longer side fills the thumbnail box; the other keeps the aspect ratio.
    const int longer = std::max(item.image.width, item.image.height);
    const int w = longer > 0 ? thumbnail_size * item.image.width / longer : thumbnail_size;
    const int h = longer > 0 ? thumbnail_size * item.image.height / longer : thumbnail_size;
    out += "<div class=\"cell\" style=\"width:" + std::to_string(thumbnail_size + 16) + "px\"><img width=\"" +
           std::to_string(w) + "\" height=\"" + std::to_string(h) + "\"" + (pixelated ? " class=\"pixelated\"" : "") +
           " alt=\"" + html_escape(item.captions.empty() ? "" : item.captions.front().text) + "\" src=\"" +
           png_data_uri(item.image) + "\">";
    for (const Caption& c : item.captions) {
      char color[8];
      std::snprintf(color, sizeof(color), "#%02x%02x%02x", c.color.r, c.color.g, c.color.b);
      out += "<div class=\"caption\" style=\"color:" + std::string(color) + "\">" + html_escape(c.text) + "</div>";
    }
    out += "</div>\n";
  }
  return out + "</div>\n</figure>\n";
}

std::string table_html(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
                       const std::string& css_class, bool raw_html) {
  auto cell = [&](const std::string& text) { return raw_html ? text : html_escape(text); };
  // Wide tables (a comparison of many runs) scroll sideways inside their section.
  std::string out = css_class.empty() ? "<div class=\"table-wrap\"><table>\n"
                                      : "<div class=\"table-wrap\"><table class=\"" + css_class + "\">\n";
  if (!header.empty()) {
    out += "<thead><tr>";
    for (const std::string& h : header) out += "<th>" + cell(h) + "</th>";
    out += "</tr></thead>\n";
  }
  out += "<tbody>\n";
  for (const auto& row : rows) {
    out += "<tr>";
    // A key/value table heads each row with its key.
    for (size_t i = 0; i < row.size(); ++i)
      out += (css_class == "kv" && i == 0) ? "<th>" + cell(row[i]) + "</th>" : "<td>" + cell(row[i]) + "</td>";
    out += "</tr>\n";
  }
  return out + "</tbody></table></div>\n";
}

std::string page_start(const std::string& title, const std::string& subtitle,
                       const std::vector<std::pair<std::string, std::string>>& sections) {
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  out += "<title>" + html_escape(title) + "</title>\n<style>" + std::string(kStyle) + "</style>\n</head>\n";
  out += "<body data-figures-loaded=\"pending\">\n<header class=\"top\"><h1>" + html_escape(title) + "</h1><p>" +
         html_escape(subtitle) + "</p></header>\n<nav>";
  for (const auto& [id, name] : sections) out += "<a href=\"#" + html_escape(id) + "\">" + html_escape(name) + "</a>";
  return out + "</nav>\n<main>\n";
}

std::string section_start(const std::string& id, const std::string& title) {
  return "<section id=\"" + html_escape(id) + "\">\n<h2>" + html_escape(title) + "</h2>\n";
}

std::string section_end() { return "</section>\n"; }

std::string page_end(const std::string& footer) {
  return "</main>\n<footer>" + html_escape(footer) + "</footer>\n" + kFigureCheckScript + "</body>\n</html>\n";
}

}  // namespace kiln::report
