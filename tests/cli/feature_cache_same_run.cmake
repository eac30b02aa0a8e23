# The frozen-feature cache changes the time, not the run (engine/train/feature_cache.h).
#
#   cmake -DKILN=build/kiln -DDATA=folder -DONNX=model.onnx -DWORK=dir -P this.cmake
#
# Three `kiln train` runs of the imported MobileNetV2 with --finetune head --freeze-bn,
# same seed and split:
#   cached    --feature-cache auto (the default), no augmentation: the cache is on, and
#             the terminal, run_info.json and report.html say so;
#   uncached  --feature-cache off: the same run computing the backbone every step;
#   flipped   --augment hflip:0.5: the cache is off and the line says why.
# cached and uncached must write the same epoch log (losses, accuracies: every digit)
# and the same test-set ROC files (every softmax probability, to 10 digits): on the
# cpu the backbone's output does not depend on which batch an image was in. An absent
# ONNX file or data folder skips with a message.
foreach(var KILN DATA ONNX WORK)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "feature_cache_same_run.cmake: -D${var}=... is required")
  endif()
endforeach()
foreach(input "${ONNX}" "${DATA}")
  if(NOT EXISTS "${input}")
    message("SKIPPED: ${input} is absent (shared assets not installed)")
    return()
  endif()
endforeach()

set(common train "${DATA}" --model mobilenet_v2 --pretrained "${ONNX}" --finetune head --freeze-bn --size 48
           --split 16/8/8 --batch-size 8 --device cpu --quiet --cache-dir "${WORK}/cache")
foreach(run cached uncached flipped)
  if(run STREQUAL "cached")
    set(extra --epochs 2)
  elseif(run STREQUAL "uncached")
    set(extra --epochs 2 --feature-cache off)
  else()
    set(extra --epochs 1 --augment hflip:0.5 --no-report)
  endif()
  file(REMOVE_RECURSE "${WORK}/${run}")
  execute_process(COMMAND "${KILN}" ${common} ${extra} --run-dir "${WORK}/${run}"
                  RESULT_VARIABLE status OUTPUT_VARIABLE output_${run} ERROR_VARIABLE output_${run})
  message("--- kiln ${common} ${extra}\n${output_${run}}")
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "kiln train (${run}) failed with status ${status}")
  endif()
endforeach()

function(expect_text text pattern where)
  string(FIND "${text}" "${pattern}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "${where} does not say '${pattern}'")
  endif()
endfunction()
expect_text("${output_cached}" "feature cache on: the frozen backbone runs once per image" "the cached run's output")
expect_text("${output_uncached}" "feature cache off: --feature-cache off" "the uncached run's output")
expect_text("${output_flipped}" "feature cache off: --augment hflip:0.5 changes the images every epoch"
            "the augmented run's output")
file(READ "${WORK}/cached/run_info.json" info)
expect_text("${info}" "\"feature_cache\": \"on: the frozen backbone" "cached/run_info.json")
file(READ "${WORK}/cached/report.html" report)
expect_text("${report}" "Feature cache" "cached/report.html")

# The epoch logs without the timing columns.
foreach(run cached uncached)
  file(STRINGS "${WORK}/${run}/epochs.jsonl" lines)
  set(log_${run} "")
  foreach(line ${lines})
    foreach(key epoch lr train_loss train_accuracy val_loss val_accuracy val_f1)
      string(JSON value GET "${line}" ${key})
      string(APPEND log_${run} "${key}=${value} ")
    endforeach()
    string(APPEND log_${run} "\n")
  endforeach()
endforeach()
if(NOT log_cached STREQUAL log_uncached)
  message(FATAL_ERROR "the epoch logs differ:\n--- cached:\n${log_cached}--- uncached:\n${log_uncached}")
endif()
file(GLOB roc_files RELATIVE "${WORK}/cached" "${WORK}/cached/roc_*.csv")
if(NOT roc_files)
  message(FATAL_ERROR "${WORK}/cached has no roc_*.csv: kiln train wrote no test metrics")
endif()
foreach(file ${roc_files})
  file(READ "${WORK}/cached/${file}" cached)
  file(READ "${WORK}/uncached/${file}" uncached)
  if(NOT cached STREQUAL uncached)
    message(FATAL_ERROR "${file} differs between the cached and the uncached run")
  endif()
endforeach()
message("cached and uncached runs agree: epoch logs and ${roc_files} identical\n${log_cached}")
