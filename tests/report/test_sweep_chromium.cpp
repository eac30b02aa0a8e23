// The sweep report's scripts in headless Chromium (Debian's `chromium`): the page of
// tests/report/sweep_fixture.h with a probe script appended that, once the page has
// loaded, clicks the metric's column header twice (descending) and drags a brush over
// the top third of the activation axis, and writes what it sees on <body>, which
// `chromium --dump-dom` returns. Skipped where Chromium is not installed.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "report/sweep_fixture.h"
#include "report/sweep_report.h"

using namespace kiln;

namespace {

std::string chromium_binary() {
  if (const char* configured = std::getenv("KILN_CHROMIUM")) return configured;
  for (const char* name : {"chromium", "chromium-browser"})
    if (std::system((std::string("command -v ") + name + " >/dev/null 2>&1").c_str()) == 0) return name;
  return "";
}

const char* kProbe = R"(<script>
window.addEventListener('load', function () {
  var table = document.getElementById('trials-table'), headers = table.querySelectorAll('thead th'), column = -1;
  headers.forEach(function (h, i) { if (h.textContent === 'val_accuracy') column = i; });
  headers[column].click(); headers[column].click();
  document.body.setAttribute('data-sorted', Array.prototype.map.call(table.tBodies[0].rows,
      function (r) { return r.cells[1].textContent; }).join(' '));
  var svg = document.querySelector('svg.pc-interactive'), area = svg.querySelector('.pc-brush-area'), box = area.getBoundingClientRect();
  area.dispatchEvent(new MouseEvent('mousedown', {clientX: box.x + 5, clientY: box.y, bubbles: true}));
  svg.dispatchEvent(new MouseEvent('mousemove', {clientX: box.x + 5, clientY: box.y + box.height / 3, bubbles: true}));
  window.dispatchEvent(new MouseEvent('mouseup', {clientX: box.x + 5, clientY: box.y + box.height / 3, bubbles: true}));
  document.body.setAttribute('data-brushed', document.querySelector('.pc-count').textContent + ' faded ' +
      svg.querySelectorAll('.pc-line.pc-faded').length);
});
</script></body>)";

std::string body_attribute(const std::string& dom, const std::string& name) {
  std::smatch match;
  REQUIRE_MESSAGE(std::regex_search(dom, match, std::regex(name + "=\"([^\"]*)\"")), name,
                  " was not set: the probe did not run. DOM begins: ", dom.substr(0, 300));
  return match[1];
}

}  // namespace

TEST_CASE("sweep report e2e: the trials table sorts by a click and the parallel coordinates brush in Chromium") {
  const std::string chromium = chromium_binary();
  if (chromium.empty()) {
    MESSAGE("SKIPPED (chromium): no chromium on the PATH; install Debian's `chromium` or set KILN_CHROMIUM");
    return;
  }
  test::TempDir dir("sweep-chromium");
  test::write_sample_sweep(dir / "sweep");
  std::ifstream in(report::write_sweep_report(dir / "sweep"));
  std::stringstream page;
  page << in.rdbuf();
  std::string html = page.str();
  const size_t end = html.rfind("</body>");
  REQUIRE(end != std::string::npos);
  html.replace(end, 7, kProbe);
  test::write_text(dir / "probe.html", html);
  const std::string dom_file = dir / "dom.html";
  const std::string command = chromium + " --headless --no-sandbox --disable-gpu --disable-extensions --no-first-run "
                              "--user-data-dir='" + dir / "profile" + "' --virtual-time-budget=5000 --dump-dom 'file://" +
                              dir / "probe.html" + "' > '" + dom_file + "' 2>/dev/null";
  REQUIRE(std::system(command.c_str()) == 0);
  std::ifstream dom_in(dom_file);
  std::stringstream dom;
  dom << dom_in.rdbuf();
  // val_accuracy descending: 0.83, 0.80, 0.78, 0.71, 0.52, and the failed trial (n/a) last.
  CHECK(body_attribute(dom.str(), "data-sorted") == "trial-003 trial-005 trial-001 trial-000 trial-002 trial-004");
  // The top third of the activation axis holds silu alone: trial-003 and trial-005 (the failed
  // trial-004 has no line).
  CHECK(body_attribute(dom.str(), "data-brushed") == "2 of 5 trials selected. faded 3");
}
