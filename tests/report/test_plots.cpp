// report/figure and report/charts: nice ticks, the data-to-pixel transform, the
// rasteriser's pixel-exact cases, the SVG renderer, and the charts' geometry and
// text (every chart also round-trips through a PNG file).
#include <doctest/doctest.h>
#include <stb/stb_image.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "report/charts.h"
#include "report/figure.h"
#include "tests/test_util.h"

using namespace kiln::report;

namespace {

const Rgb white{255, 255, 255}, black{0, 0, 0}, red{255, 0, 0};

bool same(Rgb a, Rgb b) { return a.r == b.r && a.g == b.g && a.b == b.b; }

size_t count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) ++n;
  return n;
}

template <class T>
std::vector<T> primitives_of(const Figure& figure) {
  std::vector<T> out;
  for (const Primitive& p : figure.primitives())
    if (const T* t = std::get_if<T>(&p)) out.push_back(*t);
  return out;
}

std::vector<std::string> texts_of(const Figure& figure) {
  std::vector<std::string> out;
  for (const TextPrimitive& t : primitives_of<TextPrimitive>(figure)) out.push_back(t.text);
  return out;
}

bool has_text(const Figure& figure, const std::string& text) {
  const auto texts = texts_of(figure);
  return std::find(texts.begin(), texts.end(), text) != texts.end();
}

// The box {x0, y0, x1, y1} (inclusive) of the pixels that differ from the background; x0 = -1 when none do.
std::array<int, 4> ink_box(const RgbImage& image, Rgb background) {
  std::array<int, 4> box{-1, -1, -1, -1};
  for (int y = 0; y < image.height; ++y)
    for (int x = 0; x < image.width; ++x)
      if (!same(image.at(x, y), background)) {
        if (box[0] < 0) box = {x, y, x, y};
        box = {std::min(box[0], x), std::min(box[1], y), std::max(box[2], x), std::max(box[3], y)};
      }
  return box;
}

void check_near(double got, double want, double tolerance = 1e-9) {
  INFO("got " << got << ", want " << want);
  CHECK(std::abs(got - want) <= tolerance);
}

void check_ticks(const std::vector<double>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) check_near(got[i], want[i]);
}

}  // namespace

TEST_CASE("report plots: nice_scale picks 1-2-5 steps and widens the range to them") {
  NiceScale s = nice_scale(0, 1);
  check_near(s.step, 0.2);
  check_ticks(s.ticks, {0, 0.2, 0.4, 0.6, 0.8, 1.0});

  s = nice_scale(0.013, 0.91);
  check_near(s.lo, 0), check_near(s.hi, 1), check_near(s.step, 0.2);
  check_ticks(s.ticks, {0, 0.2, 0.4, 0.6, 0.8, 1.0});

  s = nice_scale(-3, -1);  // negative range
  check_near(s.step, 0.5);
  check_ticks(s.ticks, {-3, -2.5, -2, -1.5, -1});

  s = nice_scale(-7.3, 12.1);  // crossing zero: an exact 0 tick
  check_ticks(s.ticks, {-10, -5, 0, 5, 10, 15});
  CHECK(s.ticks[2] == 0.0);

  s = nice_scale(1, 20);  // epochs
  check_ticks(s.ticks, {0, 5, 10, 15, 20});

  s = nice_scale(0, 1234);
  check_near(s.step, 500);
  check_ticks(s.ticks, {0, 500, 1000, 1500});

  s = nice_scale(5, 5);  // a single value: a range around it
  CHECK(s.lo < 5);
  CHECK(s.hi > 5);
  CHECK(s.ticks.size() >= 2);
  s = nice_scale(0, 0);
  check_near(s.lo, -1), check_near(s.hi, 1);

  for (auto [lo, hi] : {std::pair{0.0, 1.0}, {0.013, 0.91}, {-3.0, 7.0}, {1e-5, 3e-5}, {2.0, 1e6}}) {
    const NiceScale n = nice_scale(lo, hi, 6);
    CHECK(n.ticks.size() <= 6);
    CHECK(n.lo <= lo);
    CHECK(n.hi >= hi);
    const double mantissa = n.step / std::pow(10.0, std::floor(std::log10(n.step) + 1e-9));
    CHECK((std::abs(mantissa - 1) < 1e-9 || std::abs(mantissa - 2) < 1e-9 || std::abs(mantissa - 5) < 1e-9));
  }
  kiln::test::expect_error_containing([] { nice_scale(0, NAN); }, {"nice_scale", "finite"});
}

TEST_CASE("report plots: log ticks and tick labels") {
  check_ticks(log_ticks(2e-4, 0.05), {1e-4, 1e-3, 1e-2, 1e-1});
  CHECK(log_ticks(1e-9, 1, 4).size() <= 4);
  check_ticks(log_ticks(0.01, 0.01), {1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 1e-1});  // one value: 2 and 5 between

  CHECK(format_tick(0.4, 0.2) == "0.4");
  CHECK(format_tick(1.0, 0.2) == "1.0");
  CHECK(format_tick(0.25, 0.05) == "0.25");
  CHECK(format_tick(1500, 500) == "1500");
  CHECK(format_tick(-1e-17, 0.2) == "0.0");  // rounding noise is not "-0.0", and 0 matches 0.2's decimals
  CHECK(format_tick(0, 5) == "0");
  CHECK(format_tick(-2.5, 0.5) == "-2.5");
  CHECK(format_tick(2e7, 1e7) == "2e7");
  CHECK(format_tick(1e-3, 0, true) == "1e-3");
  CHECK(format_tick(0.01, 0, true) == "0.01");
  CHECK(format_tick(100, 0, true) == "100");
  CHECK(format_tick_scientific(0.001) == "1e-3");
  CHECK(format_tick_scientific(2.5e-4) == "2.5e-4");
  CHECK(format_tick_scientific(100) == "1e2");
}

TEST_CASE("report plots: PlotArea maps data to pixels, y upwards") {
  PlotArea area;
  area.left = 50, area.top = 20, area.width = 200, area.height = 100;
  area.x_lo = 0, area.x_hi = 10, area.y_lo = 0, area.y_hi = 1;
  check_near(area.to_pixel(0, 0).x, 50), check_near(area.to_pixel(0, 0).y, 120);
  check_near(area.to_pixel(10, 1).x, 250), check_near(area.to_pixel(10, 1).y, 20);
  check_near(area.to_pixel(5, 0.25).x, 150), check_near(area.to_pixel(5, 0.25).y, 95);
  area.log_y = true, area.y_lo = 1e-3, area.y_hi = 1e-1;
  check_near(area.to_pixel_y(1e-2), 70);
}

TEST_CASE("report plots: the rasteriser draws lines and rects pixel-exactly") {
  Figure figure(64, 40);
  figure.line({10, 20.5}, {50, 20.5}, {black, 1});  // covers x in [10, 50), row 20
  figure.rect(5, 30, 10, 4, red);                   // covers x 5..14, y 30..33
  const RgbImage image = figure.rasterize();
  REQUIRE(image.width == 64);
  REQUIRE(image.height == 40);
  for (int y = 0; y < 40; ++y)
    for (int x = 0; x < 64; ++x) {
      const bool on_line = y == 20 && x >= 10 && x < 50, in_rect = y >= 30 && y < 34 && x >= 5 && x < 15;
      const Rgb want = on_line ? black : in_rect ? red : white;
      INFO("pixel (" << x << ", " << y << ")");
      CHECK(same(image.at(x, y), want));
    }

  // A dashed line leaves gaps; a wide diagonal line is anti-aliased (grey at its edges).
  Figure dashes(100, 10);
  dashes.line({0, 5.5}, {100, 5.5}, {black, 1, true});
  const RgbImage dashed = dashes.rasterize();
  int inked = 0;
  for (int x = 0; x < 100; ++x) inked += same(dashed.at(x, 5), black);
  CHECK(inked > 45);
  CHECK(inked < 70);  // 4 on, 3 off: about 4/7 of the length
  Figure diagonal(40, 40);
  diagonal.line({5, 5}, {35, 30}, {black, 3});
  const RgbImage aa = diagonal.rasterize();
  bool grey = false;
  for (uint8_t v : aa.rgb) grey |= v > 0 && v < 255;
  CHECK(grey);

  // A circle fills its centre and nothing far from it; a stroked rect leaves its inside.
  Figure shapes(40, 40);
  shapes.circle({10, 10}, 5, red);
  shapes.rect(20.5, 20.5, 10, 10, std::nullopt, black, 1);
  const RgbImage drawn = shapes.rasterize();
  CHECK(same(drawn.at(10, 10), red));
  CHECK(same(drawn.at(10, 18), white));
  CHECK(same(drawn.at(20, 25), black));  // left edge: the column x = 20
  CHECK(same(drawn.at(25, 25), white));  // inside
}

TEST_CASE("report plots: resize_smooth averages when shrinking and interpolates when enlarging") {
  RgbImage checker(4, 4);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) checker.set(x, y, (x + y) % 2 ? Rgb{200, 100, 0} : Rgb{0, 100, 200});
  const RgbImage half = resize_smooth(checker, 2, 2);  // each output pixel: two of each colour
  for (uint8_t v : half.rgb) CHECK(v == 100);
  RgbImage pair(2, 1);
  pair.set(0, 0, {0, 0, 0});
  pair.set(1, 0, {200, 200, 200});
  const RgbImage wide = resize_smooth(pair, 4, 1);  // centres at 0.25, 0.75, 1.25, 1.75 source pixels
  CHECK(wide.at(0, 0).r == 0);
  CHECK(wide.at(1, 0).r == 50);
  CHECK(wide.at(2, 0).r == 150);
  CHECK(wide.at(3, 0).r == 200);
  CHECK(blues(0).r > 240);  // white-ish at zero
  CHECK(blues(1).r < 20);
  CHECK(blues(1).b < 120);  // dark blue at the top
}

TEST_CASE("report plots: text draws inside its box, rotated text is taller than wide") {
  const double size = 20;
  Figure figure(200, 60);
  figure.text({20, 40}, "Hello, kiln!", {size, TextAnchor::start, 0, false, black});
  const RgbImage image = figure.rasterize();
  const auto box = ink_box(image, white);
  REQUIRE(box[0] >= 0);
  CHECK(box[0] >= 20);
  CHECK(box[2] < 20 + text_width("Hello, kiln!", size));
  CHECK(box[1] >= 40 - text_ascent(size));
  CHECK(box[3] < 40 + text_descent(size));  // ',' hangs below the baseline
  CHECK(box[3] >= 40);

  // Anchors: middle centres the text on x, end ends it there.
  Figure centred(200, 60);
  centred.text({100, 40}, "abc", {size, TextAnchor::middle, 0, false, black});
  const auto middle = ink_box(centred.rasterize(), white);
  CHECK(std::abs((middle[0] + middle[2] + 1) / 2.0 - 100) <= 0.5 * size / 10 + 1);

  Figure rotated(60, 200);
  rotated.text({30, 150}, "accuracy", {14, TextAnchor::start, -90, false, black});
  const auto up = ink_box(rotated.rasterize(), white);
  REQUIRE(up[0] >= 0);
  CHECK(up[3] - up[1] > 3 * (up[2] - up[0]));
  CHECK(up[3] <= 150);                             // runs upwards from the anchor
  CHECK(up[2] < 30 + text_descent(14) + 1);        // letter tops point left of the anchor

  // Bold text is inkier than regular text.
  auto ink = [](bool bold) {
    Figure f(200, 40);
    f.text({5, 30}, "Loss", {20, TextAnchor::start, 0, bold, black});
    const RgbImage image = f.rasterize();
    return std::count_if(image.rgb.begin(), image.rgb.end(), [](uint8_t v) { return v < 128; });
  };
  CHECK(ink(true) > ink(false));

  CHECK(truncate_to_width("airplane", 10, 1000) == "airplane");
  const std::string cut = truncate_to_width("a very long class name", 10, 60);
  CHECK(cut.size() >= 3);
  CHECK(cut.substr(cut.size() - 2) == "..");
  CHECK(text_width(cut, 10) <= 60);
}

TEST_CASE("report plots: the SVG renderer is well-formed and escapes text") {
  Figure figure(120, 80, {250, 250, 250});
  figure.polyline({{0, 0}, {10, 5}, {20, 7}, {30, 30}}, {red, 2, true});
  figure.text({5, 70}, "train & val <loss>", {12, TextAnchor::start, -90, true, black});
  figure.circle({50, 50}, 3, black);
  figure.image(RgbImage(2, 2, red), 60, 10, 20, 20, true);
  const std::string svg = figure.to_svg();
  CHECK(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0) == 0);
  CHECK(svg.find("width=\"120\" height=\"80\"") != std::string::npos);
  CHECK(svg.substr(svg.size() - 7) == "</svg>\n");
  CHECK(svg.find("points=\"0,0 10,5 20,7 30,30\"") != std::string::npos);
  CHECK(svg.find("stroke-dasharray=\"8 6\"") != std::string::npos);
  CHECK(svg.find("train &amp; val &lt;loss&gt;") != std::string::npos);
  CHECK(svg.find("train & val") == std::string::npos);
  CHECK(svg.find("rotate(-90 5 70)") != std::string::npos);
  CHECK(svg.find("font-weight=\"bold\"") != std::string::npos);
  CHECK(svg.find("data:image/png;base64,") != std::string::npos);
  CHECK(count(svg, "<text") == count(svg, "</text>"));
  CHECK(xml_escape("a<b>&\"'") == "a&lt;b&gt;&amp;&quot;&apos;");
  CHECK(xml_escape(std::string("bell\x07")) == "bell?");

  // draw_figure composes: the same primitives, shifted.
  Figure part(10, 10);
  part.rect(1, 2, 3, 4, red);
  Figure whole(40, 40);
  whole.draw_figure(part, {20, 10});
  const auto rects = primitives_of<RectPrimitive>(whole);
  REQUIRE(rects.size() == 1);
  CHECK(rects[0].x == 21);
  CHECK(rects[0].y == 12);
  CHECK(same(whole.rasterize().at(21, 12), red));
}

TEST_CASE("report plots: a line chart places its points at the data's pixels") {
  Series s{"val & test", {0, 2, 5, 10}, {0, 0.5, 0.25, 1}};
  ChartOptions options;
  options.title = "Accuracy";
  options.x_label = "epoch";
  options.y_label = "accuracy";
  options.x_min = 0, options.x_max = 10, options.y_min = 0, options.y_max = 1;
  const Figure chart = line_chart({s}, options);
  CHECK(chart.width() == 640);
  CHECK(chart.height() == 400);

  // The plot frame is the stroked rect just outside the plot area.
  std::vector<RectPrimitive> frames;
  for (const RectPrimitive& r : primitives_of<RectPrimitive>(chart))
    if (!r.fill && r.stroke && r.width > 300) frames.push_back(r);
  REQUIRE(frames.size() == 1);
  const double left = frames[0].x + 0.5, top = frames[0].y + 0.5;
  const double width = frames[0].width - 1, height = frames[0].height - 1;

  std::vector<PolylinePrimitive> data;
  for (const PolylinePrimitive& p : primitives_of<PolylinePrimitive>(chart))
    if (same(p.style.color, series_color(0)) && p.style.width == 2.0) data.push_back(p);
  REQUIRE(data.size() >= 1);  // the series (and its legend sample, 2 points)
  const PolylinePrimitive& line = data[0];
  REQUIRE(line.points.size() == 4);
  for (size_t i = 0; i < 4; ++i) {
    check_near(line.points[i].x, left + s.x[i] / 10 * width, 1e-6);
    check_near(line.points[i].y, top + (1 - s.y[i]) * height, 1e-6);
  }
  for (const char* label : {"0.0", "0.2", "1.0", "0", "10", "epoch", "accuracy", "Accuracy", "val & test"})
    CHECK_MESSAGE(has_text(chart, label), std::string(label));
  const std::string svg = chart.to_svg();
  CHECK(svg.find("val &amp; test") != std::string::npos);

  // Non-finite points break the line; values outside a fixed range are clipped to the frame.
  Series broken{"b", {0, 1, 2, 3, 4}, {0.1, 0.2, NAN, 0.4, 3.0}};
  const Figure clipped = line_chart({broken}, options);
  int pieces = 0;
  for (const PolylinePrimitive& p : primitives_of<PolylinePrimitive>(clipped)) {
    if (!same(p.style.color, series_color(0)) || p.points.size() < 2 || p.points[0].x == p.points[1].x) continue;
    for (const Point& q : p.points) CHECK(q.y >= top - 1e-6);
    ++pieces;
  }
  CHECK(pieces == 3);  // two runs + the legend sample

  // No data at all still gives a readable empty chart.
  CHECK(line_chart({}, options).primitives().size() > 10);
  CHECK(line_chart({{"empty", {}, {}}}, ChartOptions{}).width() == 640);

  // log_y: a learning rate over four decades gets power-of-ten ticks.
  Series lr{"lr", {1, 2, 3, 4}, {1e-1, 1e-2, 1e-3, 1e-4}};
  ChartOptions log_options;
  log_options.log_y = true;
  const Figure lr_chart = line_chart({lr}, log_options);
  CHECK(has_text(lr_chart, "1e-1"));  // one spelling on the axis, as "1e-4" needs it
  CHECK(has_text(lr_chart, "1e-4"));
}

TEST_CASE("report plots: confusion matrix colours grow with the counts and show every count") {
  const std::vector<std::string> names{"cat", "dog", "a very long class name indeed"};
  const std::vector<std::vector<int64_t>> counts{{50, 3, 0}, {7, 41, 2}, {1, 12, 28}};
  const Figure chart = confusion_matrix_chart(counts, names);
  std::vector<RectPrimitive> cells;
  for (const RectPrimitive& r : primitives_of<RectPrimitive>(chart))
    if (r.fill && !r.stroke && r.width == r.height && r.width >= 24) cells.push_back(r);
  REQUIRE(cells.size() == 9);
  auto darkness = [](Rgb c) { return 765 - (c.r + c.g + c.b); };
  std::vector<std::pair<int64_t, int>> by_count;
  for (size_t i = 0; i < 9; ++i) by_count.push_back({counts[i / 3][i % 3], darkness(*cells[i].fill)});
  std::sort(by_count.begin(), by_count.end());
  for (size_t i = 1; i < by_count.size(); ++i) CHECK(by_count[i].second > by_count[i - 1].second);
  for (const auto& row : counts)
    for (int64_t c : row) CHECK_MESSAGE(has_text(chart, std::to_string(c)), c);
  CHECK(has_text(chart, "predicted"));
  CHECK(has_text(chart, "true"));
  bool truncated = false;
  for (const std::string& t : texts_of(chart)) truncated |= t.rfind("a very", 0) == 0 && t.size() > 2 && t.substr(t.size() - 2) == "..";
  CHECK(truncated);

  // The text on the darkest cell is white, on the lightest black.
  for (const TextPrimitive& t : primitives_of<TextPrimitive>(chart)) {
    if (t.style.anchor != TextAnchor::middle) continue;  // the colour bar's labels are start-anchored
    if (t.text == "50") CHECK(same(t.style.color, white));
    if (t.text == "0") CHECK(same(t.style.color, black));
  }

  // K = 20 stays a sensible size with all 400 counts written.
  std::vector<std::string> many;
  std::vector<std::vector<int64_t>> big(20, std::vector<int64_t>(20));
  for (int i = 0; i < 20; ++i) {
    many.push_back("class_number_" + std::to_string(i));
    for (int j = 0; j < 20; ++j) big[i][j] = i == j ? 900 + i : (i * 7 + j * 3) % 13;
  }
  const Figure large = confusion_matrix_chart(big, many);
  CHECK(large.width() < 900);
  CHECK(large.height() < 900);
  const auto texts = texts_of(large);
  for (int i = 0; i < 20; ++i) CHECK(std::find(texts.begin(), texts.end(), std::to_string(900 + i)) != texts.end());

  kiln::test::expect_error_containing([&] { confusion_matrix_chart(counts, {"cat", "dog"}); },
                                      {"confusion_matrix_chart", "3 rows for 2 classes"});
}

TEST_CASE("report plots: ROC legend shows each AUC, bars grow with their values, image grid size") {
  RocSeries cat{"cat", {0, 0.1, 0.3, 1}, {0, 0.7, 0.95, 1}, 0.9734};
  RocSeries dog{"dog", {0, 1}, {0, 1}, NAN};
  CHECK(roc_legend_label(cat) == "cat (AUC 0.973)");
  const Figure roc = roc_chart({cat, dog});
  CHECK(has_text(roc, "cat (AUC 0.973)"));
  CHECK(has_text(roc, "dog (AUC n/a)"));
  CHECK(has_text(roc, "false positive rate"));
  bool diagonal = false;
  for (const PolylinePrimitive& p : primitives_of<PolylinePrimitive>(roc)) diagonal |= p.style.dashed && p.points.size() == 2 && p.points[0].x < p.points[1].x && p.points[0].y > p.points[1].y;
  CHECK(diagonal);

  BarChartOptions bar_options;
  bar_options.title = "Per-class metrics";
  bar_options.show_values = true;
  const Figure bars = bar_chart({"cat", "dog"}, {{"precision", {0.9, 0.5}}, {"recall", {0.3, 0.6}}}, bar_options);
  std::vector<RectPrimitive> filled;
  for (const RectPrimitive& r : primitives_of<RectPrimitive>(bars))
    if (r.fill && same(*r.fill, series_color(0))) filled.push_back(r);
  REQUIRE(filled.size() >= 2);  // two precision bars (+ the legend swatch)
  check_near(filled[0].height / filled[1].height, 0.9 / 0.5, 0.03);
  CHECK(has_text(bars, "0.90"));
  CHECK(has_text(bars, "recall"));

  std::vector<CaptionedImage> images;
  for (int i = 0; i < 30; ++i)
    images.push_back({RgbImage(32 + i, 24, {uint8_t(8 * i), 100, 200}),
                      {{"true: cat", black}, {i % 3 ? "pred: cat 0.91" : "pred: dog 0.87", i % 3 ? caption_green : caption_red}}});
  ImageGridOptions grid_options;
  grid_options.columns = 10;
  const Figure grid = image_grid(images, grid_options);
  const int line_h = static_cast<int>(std::ceil(text_ascent(10) + text_descent(10) + 3));
  CHECK(grid.width() == 10 * (96 + 10) + 10);
  CHECK(grid.height() == 3 * (96 + 4 + 2 * line_h + 10) + 10);
  CHECK(primitives_of<ImagePrimitive>(grid).size() == 30);
  int red_captions = 0;
  for (const TextPrimitive& t : primitives_of<TextPrimitive>(grid)) red_captions += same(t.style.color, caption_red);
  CHECK(red_captions == 10);
  bool kept_score = false;  // a long caption keeps its trailing score and cuts the words before it
  for (const TextPrimitive& t : primitives_of<TextPrimitive>(image_grid({{RgbImage(8, 8), {{"pred: a rather long class name 0.87", red}}}})))
    kept_score |= t.text.size() > 7 && t.text.find("..") != std::string::npos && t.text.substr(t.text.size() - 5) == " 0.87";
  CHECK(kept_score);
  grid_options.columns = 50;  // fewer images than columns: one row as wide as the images
  CHECK(image_grid(images, grid_options).width() == 30 * (96 + 10) + 10);
}

TEST_CASE("report plots: every chart rasterises to a PNG of its size") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / "kiln_test_plots";
  fs::create_directories(dir);

  std::vector<double> epochs, train, val, lr;
  for (int e = 1; e <= 30; ++e) {
    epochs.push_back(e);
    train.push_back(2.3 * std::exp(-e / 8.0) + 0.05);
    val.push_back(2.3 * std::exp(-e / 10.0) + 0.2 + 0.02 * std::sin(e));
    lr.push_back(0.1 * 0.5 * (1 + std::cos(M_PI * (e - 1) / 30.0)));
  }
  ChartOptions loss_options;
  loss_options.title = "Loss";
  loss_options.x_label = "epoch";
  loss_options.y_label = "cross-entropy";
  Series val_series{"val", epochs, val, true, series_color(0)};
  ChartOptions lr_options;
  lr_options.title = "Learning rate";
  lr_options.x_label = "epoch";
  lr_options.y_label = "learning rate";
  lr_options.log_y = true;

  const std::vector<std::string> classes{"tench", "English springer", "cassette player", "chain saw", "church",
                                         "French horn", "garbage truck", "gas pump", "golf ball", "parachute"};
  std::vector<std::vector<int64_t>> confusion(10, std::vector<int64_t>(10));
  std::vector<RocSeries> curves;
  for (int i = 0; i < 10; ++i) {
    for (int j = 0; j < 10; ++j) confusion[i][j] = i == j ? 80 + 3 * i : (i * 7 + j * 5) % 9;
    RocSeries c{classes[i], {0}, {0}, 0};
    for (int k = 1; k <= 20; ++k) {
      const double fpr = k / 20.0;
      c.fpr.push_back(fpr);
      c.tpr.push_back(std::pow(fpr, 0.1 + 0.04 * i));
    }
    c.auc = 1 / (1.1 + 0.04 * i);
    curves.push_back(c);
  }
  BarChartOptions bar_options;
  bar_options.title = "Per-class precision, recall and F1";
  bar_options.y_label = "score";
  bar_options.y_max = 1;
  std::vector<double> p, r, f;
  for (int i = 0; i < 10; ++i) p.push_back(0.7 + 0.03 * i), r.push_back(0.9 - 0.02 * i), f.push_back(0.8 + 0.005 * i);
  std::vector<CaptionedImage> images;
  for (int i = 0; i < 30; ++i) {
    RgbImage picture(64 + i, 48);
    for (int y = 0; y < picture.height; ++y)
      for (int x = 0; x < picture.width; ++x) picture.set(x, y, viridis((x + y + 3.0 * i) / 150.0));
    images.push_back({picture, {{"true: " + classes[i % 10], black},
                                {"pred: " + classes[(i * 3) % 10] + " 0.87", i % 3 ? caption_green : caption_red}}});
  }
  ImageGridOptions grid_options;
  grid_options.title = "Validation images";

  const std::vector<std::pair<std::string, Figure>> charts{
      {"loss", line_chart({{"train", epochs, train, false, series_color(0)}, val_series}, loss_options)},
      {"lr", line_chart({{"lr", epochs, lr}}, lr_options)},
      {"confusion", confusion_matrix_chart(confusion, classes)},
      {"roc", roc_chart(curves)},
      {"bars", bar_chart(classes, {{"precision", p}, {"recall", r}, {"F1", f}}, bar_options)},
      {"grid", image_grid(images, grid_options)},
  };
  for (const auto& [name, figure] : charts) {
    const fs::path png = dir / (name + ".png");
    write_figure_png(png.string(), figure);
    write_svg((dir / (name + ".svg")).string(), figure);
    int w = 0, h = 0, channels = 0;
    unsigned char* pixels = stbi_load(png.string().c_str(), &w, &h, &channels, 3);
    REQUIRE_MESSAGE(pixels != nullptr, png.string());
    CHECK(w == figure.width());
    CHECK(h == figure.height());
    stbi_image_free(pixels);
  }
  if (!std::getenv("KILN_KEEP_TEST_PLOTS")) fs::remove_all(dir);  // set it to look at the pictures
}
