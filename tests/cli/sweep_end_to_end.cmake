# `kiln sweep` end to end on a Fashion-MNIST subset (docs/sweeps.md):
#
#   cmake -DKILN=build/kiln -DWORK=dir -P this.cmake
#
# Three small sweeps of two trials each, cnn5 with 2 filters, 160 training and 40
# validation images, 2 epochs:
#   grid     activation relu/gelu: both points, in grid order, finished
#   random   lr log-uniform and dropout uniform: two seeded draws inside their ranges
#   halving  lr at two values, eta 2, a rung at epoch 1: one trial stopped there,
#            the other trained to the end
# Every trial folder is a kiln train run folder (config.json, epochs.csv,
# checkpoints); the journal is kiln-sweep-journal/1; --finish evaluates the best
# trial on the test split once and writes "finish". Then the errors that must come
# before any trial runs: an unknown flag, a value the flag refuses, --finetune with
# cnn5. Without Fashion-MNIST it skips with a message.
foreach(var KILN WORK)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "sweep_end_to_end.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT EXISTS /usr/share/datasets/fashion-mnist)
  message("SKIPPED: Fashion-MNIST is not installed (Debian's dataset-fashion-mnist, scripts/setup.sh)")
  return()
endif()
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")

set(fixed "  split: {value: 16/4}\n  filters: {value: 2}\n  dense: {value: 8}\n  batch-size: {value: 32}\n"
          "  no-report: {value: true}\n  device: {value: cpu}\n  workers: {value: 1}\n")
string(CONCAT fixed ${fixed})
file(WRITE "${WORK}/grid.yaml" "name: grid\nmethod: grid\nepochs: 2\nparameters:\n  activation: {values: [relu, gelu]}\n${fixed}")
file(WRITE "${WORK}/random.yaml" "name: random\nmethod: random\nrun_cap: 2\nseed: 5\nepochs: 2\nparameters:\n"
           "  lr: {distribution: log_uniform_values, min: 1.0e-4, max: 1.0e-2}\n  dropout: {min: 0.1, max: 0.4}\n${fixed}")
file(WRITE "${WORK}/halving.json"
     "{\"name\": \"halving\", \"method\": \"halving\", \"epochs\": 2,
       \"early_terminate\": {\"type\": \"hyperband\", \"min_iter\": 1, \"eta\": 2},
       \"parameters\": {\"lr\": {\"values\": [0.00001, 0.01]}, \"split\": {\"value\": \"16/4\"},
                      \"filters\": {\"value\": 2}, \"dense\": {\"value\": 8}, \"batch-size\": {\"value\": 32},
                      \"no-report\": {\"value\": true}, \"device\": {\"value\": \"cpu\"}, \"workers\": {\"value\": 1}}}")

function(run_kiln expect_success)
  execute_process(COMMAND "${KILN}" ${ARGN} WORKING_DIRECTORY "${WORK}" RESULT_VARIABLE status
                  OUTPUT_VARIABLE out ERROR_VARIABLE out)
  message("--- kiln ${ARGN} (exit ${status})\n${out}")
  if(expect_success AND NOT status EQUAL 0)
    message(FATAL_ERROR "kiln ${ARGN} failed")
  elseif(NOT expect_success AND status EQUAL 0)
    message(FATAL_ERROR "kiln ${ARGN} should have failed")
  endif()
  set(output "${out}" PARENT_SCOPE)
endfunction()

function(read_journal name)
  file(READ "${WORK}/sweeps/${name}/journal.json" text)
  string(JSON format GET "${text}" format)
  if(NOT format STREQUAL "kiln-sweep-journal/1")
    message(FATAL_ERROR "${name}: journal format '${format}'")
  endif()
  set(journal "${text}" PARENT_SCOPE)
endfunction()

function(check_trial name index want_status)
  string(JSON status GET "${journal}" trials ${index} status)
  string(JSON run_dir GET "${journal}" trials ${index} run_dir)
  if(NOT status STREQUAL want_status)
    message(FATAL_ERROR "${name} trial ${index}: status ${status}, expected ${want_status}")
  endif()
  foreach(file config.json epochs.csv last.safetensors split.json train.log)
    if(NOT EXISTS "${WORK}/sweeps/${name}/${run_dir}/${file}")
      message(FATAL_ERROR "${name}/${run_dir}: no ${file} (a trial is a kiln train run folder)")
    endif()
  endforeach()
endfunction()

# grid: both points, relu first.
run_kiln(TRUE sweep grid.yaml)
read_journal(grid)
string(JSON count LENGTH "${journal}" trials)
string(JSON first GET "${journal}" trials 0 params activation)
string(JSON second GET "${journal}" trials 1 params activation)
if(NOT count EQUAL 2 OR NOT first STREQUAL "relu" OR NOT second STREQUAL "gelu")
  message(FATAL_ERROR "grid: ${count} trials, activations ${first} ${second}; expected relu then gelu")
endif()
check_trial(grid 0 finished)
check_trial(grid 1 finished)

# random: two draws inside their ranges.
run_kiln(TRUE sweep random.yaml)
read_journal(random)
foreach(index 0 1)
  check_trial(random ${index} finished)
  string(JSON lr GET "${journal}" trials ${index} params lr)
  string(JSON dropout GET "${journal}" trials ${index} params dropout)
  if(lr LESS 0.0001 OR lr GREATER 0.01 OR dropout LESS 0.1 OR dropout GREATER 0.4)
    message(FATAL_ERROR "random trial ${index}: lr ${lr}, dropout ${dropout} outside their ranges")
  endif()
endforeach()

# halving: lr 1e-5 barely moves the weights; 0.01 learns. One goes on past epoch 1.
run_kiln(TRUE sweep halving.json)
read_journal(halving)
string(JSON s0 GET "${journal}" trials 0 status)
string(JSON s1 GET "${journal}" trials 1 status)
string(JSON kept0 GET "${journal}" trials 0 rungs 0 kept)
string(JSON kept1 GET "${journal}" trials 1 rungs 0 kept)
set(statuses "${s0} ${s1}")
if(NOT (statuses STREQUAL "stopped finished" OR statuses STREQUAL "finished stopped"))
  message(FATAL_ERROR "halving: statuses ${statuses}; expected one stopped at the rung and one finished")
endif()
foreach(index 0 1)
  string(JSON status GET "${journal}" trials ${index} status)
  string(JSON kept GET "${journal}" trials ${index} rungs 0 kept)
  if((status STREQUAL "stopped" AND kept) OR (status STREQUAL "finished" AND NOT kept))
    message(FATAL_ERROR "halving trial ${index}: status ${status} but rung kept ${kept}")
  endif()
endforeach()

# --finish: the best trial on the test split, written into the journal.
run_kiln(TRUE sweep --finish sweeps/grid)
read_journal(grid)
string(JSON best GET "${journal}" best)
string(JSON finish_trial GET "${journal}" finish trial)
string(JSON test_accuracy GET "${journal}" finish test_accuracy)
if(NOT best EQUAL finish_trial OR test_accuracy LESS 0 OR test_accuracy GREATER 1)
  message(FATAL_ERROR "finish: trial ${finish_trial} (best ${best}), test accuracy ${test_accuracy}")
endif()
if(NOT output MATCHES "test accuracy [0-9.]+%.* on 10000 images")
  message(FATAL_ERROR "finish printed no test accuracy")
endif()
# Every sweep leaves its report (report/sweep_report.h), with the best model's figures
# after --finish, and the ready command without the sweep's own --run-dir.
foreach(name grid random halving)
  if(NOT EXISTS "${WORK}/sweeps/${name}/sweep.html")
    message(FATAL_ERROR "sweeps/${name}/sweep.html was not written")
  endif()
endforeach()
file(READ "${WORK}/sweeps/grid/sweep.html" page)
foreach(part "best-command" "Parallel coordinates" "<h3>First-layer filters</h3>" "<h3>Predictions</h3>")
  string(FIND "${page}" "${part}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "sweeps/grid/sweep.html has no '${part}'")
  endif()
endforeach()
string(REGEX MATCH "<pre id=\"best-command\">[^<]*</pre>" command "${page}")
if(command MATCHES "--run-dir" OR NOT command MATCHES "kiln train")
  message(FATAL_ERROR "the best command must be a kiln train command without --run-dir: ${command}")
endif()
# --resume of a finished sweep runs nothing again.
run_kiln(TRUE sweep --resume sweeps/grid)
if(output MATCHES "starts")
  message(FATAL_ERROR "--resume of a finished sweep started a trial again")
endif()

# Errors before any trial: the message names the parameter and kiln train's reason.
set(cases "lrr: {values: [0.1, 0.2]}|parameters.lrr|--lrr"
          "activation: {values: [relu, rleu]}|parameters.activation = \"rleu\"|rleu"
          "finetune: {values: [head]}|--finetune are for zoo models|finetune"
          "batch-norm: {values: [on, maybe]}|parameters.batch-norm = \"maybe\"|maybe")
set(index 0)
foreach(case IN LISTS cases)
  string(REPLACE "|" ";" parts "${case}")
  list(GET parts 0 parameter)
  list(GET parts 1 want1)
  list(GET parts 2 want2)
  file(WRITE "${WORK}/bad${index}.yaml" "name: bad${index}\nmethod: grid\nepochs: 2\nparameters:\n  ${parameter}\n${fixed}")
  run_kiln(FALSE sweep bad${index}.yaml)
  string(FIND "${output}" "${want1}" at1)
  string(FIND "${output}" "${want2}" at2)
  if(at1 EQUAL -1 OR at2 EQUAL -1)
    message(FATAL_ERROR "bad${index}.yaml: the error must name '${want1}' and '${want2}'")
  endif()
  if(EXISTS "${WORK}/sweeps/bad${index}")
    message(FATAL_ERROR "bad${index}.yaml: a refused sweep must write nothing")
  endif()
  math(EXPR index "${index} + 1")
endforeach()
message("kiln sweep end to end ok")
