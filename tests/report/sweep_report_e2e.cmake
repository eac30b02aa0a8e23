# The sweep report end to end, from real runs: three tiny `kiln train` runs on the
# Fashion-MNIST subset (2 epochs on the CPU, different lr and activation) laid out as a sweep
# folder with a hand-written journal.json (the contract of report/sweep_journal.h),
# then `kiln report SWEEP_DIR`:
#   1. before --finish: sweep.html with every section, the best model's figures on the
#      validation split;
#   2. with a "finish" block in the journal: rebuilt, the figures on the test split.
# The Chromium test (tests/CMakeLists.txt) then renders the page.
#
#   cmake -DKILN=build/kiln -DWORK=dir -P tests/report/sweep_report_e2e.cmake
foreach(var KILN WORK)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "sweep_report_e2e.cmake: -D${var}=... is required")
  endif()
endforeach()
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "${ARGN} failed (${status}):\n${out}\n${err}")
  endif()
  set(out "${out}" PARENT_SCOPE)
endfunction()

set(lrs 0.01 0.003 0.001)
set(activations relu gelu relu)
set(trials "")
set(best_metric -1)
foreach(i 0 1 2)
  list(GET lrs ${i} lr)
  list(GET activations ${i} activation)
  set(name "trial-00${i}")
  set(command kiln train fashion-mnist --split 40/10 --epochs 2 --filters 8 --dense 16 --lr ${lr}
              --activation ${activation} --device cpu)
  run("${KILN}" train fashion-mnist --split 40/10 --epochs 2 --filters 8 --dense 16 --lr ${lr}
      --activation ${activation} --device cpu --quiet --no-report --run-dir "${WORK}/${name}")
  file(STRINGS "${WORK}/${name}/epochs.jsonl" epochs)
  list(GET epochs -1 last)
  string(JSON metric GET "${last}" val_accuracy)
  string(JSON val_loss GET "${last}" val_loss)
  if(metric GREATER best_metric)
    set(best_metric ${metric})
    set(best ${i})
  endif()
  string(REPLACE ";" " " command "${command}")
  if(trials)
    string(APPEND trials ",")
  endif()
  string(APPEND trials "{\"id\": ${i}, \"name\": \"${name}\", \"created\": \"2026-12-05T07:0${i}:00Z\", \"order\": ${i},
    \"params\": {\"lr\": ${lr}, \"activation\": \"${activation}\"}, \"status\": \"finished\", \"run_dir\": \"${name}\",
    \"epochs_done\": 2, \"metric\": ${metric}, \"rungs\": [], \"command\": \"${command}\", \"error\": \"\"}")
endforeach()
set(head "{\"format\": \"kiln-sweep-journal/1\", \"name\": \"e2e\", \"method\": \"random\", \"seed\": 0,
  \"metric\": {\"name\": \"val_accuracy\", \"goal\": \"maximize\"}, \"data\": \"fashion-mnist\", \"split\": \"split.json\",
  \"parameters\": {\"lr\": {\"kind\": \"continuous\", \"min\": 0.001, \"max\": 0.1, \"distribution\": \"log_uniform_values\"},
                 \"activation\": {\"kind\": \"categorical\", \"values\": [\"relu\", \"gelu\"]}},
  \"trials\": [${trials}], \"best\": ${best}")
file(WRITE "${WORK}/journal.json" "${head}, \"finish\": null}\n")

set(sections summary progress parallel importance trials best figures)
function(check_page expected_split expected_neurons)
  set(page "${WORK}/sweep.html")
  if(NOT EXISTS "${page}")
    message(FATAL_ERROR "${page} was not written")
  endif()
  file(READ "${page}" html)
  set(problems "")
  foreach(section ${sections})
    if(NOT html MATCHES "<section id=\"${section}\"")
      string(APPEND problems "\n  missing section: ${section}")
    endif()
  endforeach()
  foreach(part "class=\"pc-interactive\"" "id=\"trials-table\"" "id=\"correlation-table\"" "activation=gelu"
          "log10\\(lr\\)" "<tr class=\"best\">" "kiln train fashion-mnist --split 40/10" "<h3>Predictions</h3>"
          "<h3>First-layer filters</h3>" "${expected_neurons}" "on the ${expected_split} split"
          "src=\"data:image/png;base64," "data-figures-loaded")
    if(NOT html MATCHES "${part}")
      string(APPEND problems "\n  missing: ${part}")
    endif()
  endforeach()
  if(html MATCHES "(src|href)=\"https?:")
    string(APPEND problems "\n  the page fetches something from a network")
  endif()
  if(problems)
    message(FATAL_ERROR "${page}:${problems}")
  endif()
endfunction()

run("${KILN}" report "${WORK}" --device cpu)
if(NOT out MATCHES "on 100 validation images: accuracy")
  message(FATAL_ERROR "kiln report did not evaluate the best trial on its validation split:\n${out}")
endif()
check_page(validation "10 neurons of block5")

# After `kiln sweep --finish`: the checkpoint it names (here last.safetensors) on the test split.
file(READ "${WORK}/trial-00${best}/test_metrics.json" test_metrics)
string(JSON test_accuracy GET "${test_metrics}" accuracy)
file(WRITE "${WORK}/journal.json"
     "${head}, \"finish\": {\"trial\": ${best}, \"test_accuracy\": ${test_accuracy}, \"test_loss\": 1.0, \"run_dir\": \"trial-00${best}\",
     \"checkpoint\": \"${WORK}/trial-00${best}/last.safetensors\"}}\n")
run("${KILN}" report "${WORK}" --device cpu --neurons 4)
if(NOT out MATCHES "\\(last.safetensors\\) on 10000 test images: accuracy")
  message(FATAL_ERROR "kiln report did not evaluate the finished trial on the test split:\n${out}")
endif()
check_page(test "4 neurons of block5")
# --neurons belongs to sweep folders: a run folder refuses it.
execute_process(COMMAND "${KILN}" report "${WORK}/trial-000" --neurons 4 RESULT_VARIABLE status ERROR_VARIABLE err)
if(status EQUAL 0 OR NOT err MATCHES "--neurons is for a sweep folder")
  message(FATAL_ERROR "kiln report RUN --neurons should fail naming the option (exit ${status}):\n${err}")
endif()
message(STATUS "sweep report ok: ${WORK}/sweep.html, every section, best model's figures on the test split")
