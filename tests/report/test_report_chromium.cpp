// End to end: report.html opened from disk in headless Chromium (Debian's `chromium`).
//   1. `chromium --dump-dom` gives the page after its load event, when the page's own
//      script has written data-figures-loaded="loaded/total" and
//      data-images-loaded="loaded/total" on <body> (report/html.h): every figure must
//      have loaded (each <img> decoded with naturalWidth > 0, each inline SVG laid out).
//   2. `chromium --screenshot` renders it; the PNG (read with stb_image) must not be
//      one colour and must have plenty of ink: pixels far from the white and light
//      grey of the page background.
// The page is the report of a hand-written run folder with the numpy fixture's test
// predictions; with KILN_REPORT_HTML set (tests/CMakeLists.txt does so for the report
// of the CLI's trained run) that file is checked instead. Where Chromium is not
// installed the test says so and skips (scripts/setup.sh installs it).
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include <stb/stb_image.h>

#include "report/run_report.h"
#include "report/sample_run.h"
#include "test_util.h"

using namespace kiln;

namespace {

// The Chromium binary: $KILN_CHROMIUM, else chromium or chromium-browser on the PATH.
std::string find_chromium() {
  if (const char* configured = std::getenv("KILN_CHROMIUM")) return configured;
  for (const char* name : {"chromium", "chromium-browser"}) {
    const std::string probe = std::string("command -v ") + name + " >/dev/null 2>&1";
    if (std::system(probe.c_str()) == 0) return name;
  }
  return "";
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Runs Chromium headless on `url` with its own profile folder (parallel runs do not
// share a profile lock); `action` is --dump-dom or --screenshot=FILE. Output goes to `log`.
int run_chromium(const std::string& chromium, const std::string& profile, const std::string& action,
                 const std::string& url, const std::string& log) {
  const std::string command = chromium + " --headless --no-sandbox --disable-gpu --disable-background-networking "
                              "--disable-extensions --no-first-run --hide-scrollbars --user-data-dir='" + profile +
                              "' --virtual-time-budget=10000 --window-size=1400,5000 " + action + " '" + url +
                              "' > '" + log + "' 2>'" + log + ".err'";
  return std::system(command.c_str());
}

// "a/b" of a body attribute; fails the test when the attribute is missing.
std::pair<int, int> loaded_count(const std::string& dom, const std::string& attribute) {
  std::smatch match;
  const std::regex pattern(attribute + "=\"([0-9]+)/([0-9]+)\"");
  REQUIRE_MESSAGE(std::regex_search(dom, match, pattern),
                  attribute, " was not set on <body>: the page's script did not run. DOM begins: ", dom.substr(0, 300));
  return {std::stoi(match[1]), std::stoi(match[2])};
}

}  // namespace

TEST_CASE("report e2e: report.html renders in headless Chromium with every figure loaded") {
  const std::string chromium = find_chromium();
  if (chromium.empty()) {
    MESSAGE("SKIPPED (chromium): no chromium on the PATH; install Debian's `chromium` (scripts/setup.sh does) "
            "or set KILN_CHROMIUM to run this test");
    return;
  }
  test::TempDir work("report-chromium");
  std::string page;
  int expected_figures = 0;  // 0: whatever the given page holds
  if (const char* given = std::getenv("KILN_REPORT_HTML")) {
    page = given;
    REQUIRE_MESSAGE(std::filesystem::exists(page), "KILN_REPORT_HTML names '", page, "', which does not exist");
  } else {
    const SafeTensors f = test::load_fixture("report_reference.safetensors");
    const Tensor& labels_tensor = f.tensors.at("labels");
    const std::vector<int64_t> labels(labels_tensor.data<int64_t>(), labels_tensor.data<int64_t>() + labels_tensor.numel());
    const std::string run = work.str() + "/run";
    std::filesystem::create_directories(run);
    test::write_sample_run(run);
    page = report::write_report_for_run(run, test::indexed_dataset(labels), f.tensors.at("logits"), "best.safetensors");
    expected_figures = 8;  // loss, accuracy, lr, confusion matrix, ROC, per-class bars, two prediction grids
  }
  const std::string url = "file://" + std::filesystem::absolute(page).string();

  const std::string dom_file = work.str() + "/dom.html";
  REQUIRE_MESSAGE(run_chromium(chromium, work.str() + "/profile-dom", "--dump-dom", url, dom_file) == 0,
                  "chromium --dump-dom failed: ", read_text(dom_file + ".err"));
  const std::string dom = read_text(dom_file);
  const auto [figures_loaded, figures] = loaded_count(dom, "data-figures-loaded");
  const auto [images_loaded, images] = loaded_count(dom, "data-images-loaded");
  MESSAGE("Chromium: " << figures_loaded << "/" << figures << " figures, " << images_loaded << "/" << images
                       << " images loaded in " << page);
  CHECK(figures > 0);
  CHECK(figures_loaded == figures);
  CHECK(images_loaded == images);
  if (expected_figures > 0) CHECK(figures == expected_figures);
  // A sweep report (report/sweep_report.h): its brushing script ran and counted the trials.
  if (dom.find("class=\"pc-interactive\"") != std::string::npos)
    CHECK_MESSAGE(std::regex_search(dom, std::regex("([0-9]+) of \\1 trials selected[.]")),
                  "the parallel-coordinates script did not run (no selection count in the DOM)");

  const std::string shot = work.str() + "/screenshot.png";
  REQUIRE_MESSAGE(run_chromium(chromium, work.str() + "/profile-shot", "--screenshot='" + shot + "'", url,
                               work.str() + "/shot.log") == 0,
                  "chromium --screenshot failed: ", read_text(work.str() + "/shot.log.err"));
  int width = 0, height = 0, channels = 0;
  unsigned char* pixels = stbi_load(shot.c_str(), &width, &height, &channels, 3);
  REQUIRE_MESSAGE(pixels != nullptr, "cannot read the screenshot '", shot, "': ", stbi_failure_reason());
  CHECK(width == 1400);
  CHECK(height == 5000);
  const int64_t count = static_cast<int64_t>(width) * height;
  int64_t ink = 0, differs_from_first = 0;
  for (int64_t i = 0; i < count; ++i) {
    const unsigned char* p = pixels + 3 * i;
    // The page's white and its light grey band (#f4f6f8) are background; anything
    // clearly darker is text, lines, bars, cells or pictures.
    if (p[0] + p[1] + p[2] < 3 * 200) ++ink;
    if (p[0] != pixels[0] || p[1] != pixels[1] || p[2] != pixels[2]) ++differs_from_first;
  }
  stbi_image_free(pixels);
  const double ink_fraction = static_cast<double>(ink) / static_cast<double>(count);
  MESSAGE("screenshot " << width << "x" << height << ": " << 100 * ink_fraction << "% ink");
  CHECK(differs_from_first > count / 10);  // not a single colour
  CHECK(ink_fraction > 0.03);
}
