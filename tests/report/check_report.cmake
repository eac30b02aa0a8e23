# Checks the report.html that `kiln train` / `kiln report` wrote into a run folder:
# every section, the figures inline (SVG charts, PNG thumbnails as data URIs, nothing
# fetched from a network), the run table's key rows, and figures/*.png beside it.
#   cmake -DRUN_DIR=runs/x -P tests/report/check_report.cmake
if(NOT RUN_DIR)
  message(FATAL_ERROR "check_report.cmake: give -DRUN_DIR=<run folder>")
endif()
set(page "${RUN_DIR}/report.html")
if(NOT EXISTS "${page}")
  message(FATAL_ERROR "${page} was not written")
endif()
file(READ "${page}" html)
set(problems "")
foreach(part
    "<section id=\"summary\"" "<section id=\"curves\"" "<section id=\"confusion\"" "<section id=\"roc\""
    "<section id=\"per-class\"" "<section id=\"predictions\"" "<section id=\"reproduce\""
    "Parameters" "Batch size" "GPU memory|Memory" "Training time" "images per epoch" "Training accuracy"
    "Validation accuracy" "Validation F1 \\(macro\\)" "Test accuracy" "macro average" "kiln train"
    "config.json" "kiln version" "<svg " "src=\"data:image/png;base64," "data-figures-loaded")
  if(NOT html MATCHES "${part}")
    string(APPEND problems "\n  missing: ${part}")
  endif()
endforeach()
if(html MATCHES "(src|href)=\"https?:")
  string(APPEND problems "\n  the page fetches something from a network")
endif()
foreach(figure loss accuracy lr confusion_matrix roc per_class correct_predictions wrong_predictions)
  if(NOT EXISTS "${RUN_DIR}/figures/${figure}.png")
    string(APPEND problems "\n  missing: figures/${figure}.png")
  endif()
endforeach()
if(problems)
  message(FATAL_ERROR "${page}:${problems}")
endif()
message(STATUS "report ok: ${page}, every section and figure present")
