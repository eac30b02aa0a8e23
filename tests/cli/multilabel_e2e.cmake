# Multi-label end to end at demo size (docs/multilabel.md), on the shared Imagenette images:
#   kiln make-mosaic  400 train + 100 test 2x2 mosaics of 16 px tiles, 1-3 classes each
#                     (ImageID,Labels,Captions CSVs, captions with commas and quotes)
#   kiln train        a small cnn5 (32 px input), 6 epochs, BCE, --threshold tune
#   kiln eval         the best checkpoint on test_labels.csv: the same numbers as train's,
#                     and probabilities.csv (true labels and all 10 probabilities per image)
#   kiln predict      test.csv (no labels) as image,labels,probabilities and as a submission
#   report.html       written by train, and again by `kiln report RUN` (its Chromium rendering is the next ctest)
# Bars: the per-class thresholds raise macro-F1 on the test split over the 0.5 rule,
# and micro-F1 and mAP are printed.
#
#   cmake -DKILN=build/kiln -DASSETS=../shared/assets -DWORK=dir -P this.cmake
foreach(var KILN ASSETS WORK)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "multilabel_e2e.cmake: -D${var}=... is required")
  endif()
endforeach()
set(source "${ASSETS}/data/imagenette_96")
if(NOT EXISTS "${source}")
  message("SKIPPED: ${source} is absent (shared assets not installed)")
  return()
endif()

function(run_kiln name)
  execute_process(COMMAND "${KILN}" ${ARGN} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "kiln ${name} failed (${status}):\n${out}\n${err}")
  endif()
  set(${name}_out "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")
set(mosaic "${WORK}/mosaic")
set(run "${WORK}/run")
run_kiln(mosaic make-mosaic "${source}" -o "${mosaic}" --train 400 --test 100 --tile 16 --seed 1)
run_kiln(train train "${mosaic}/train.csv" --test-data "${mosaic}/test_labels.csv" --model cnn5
         --filter-list 16,32,64,64,64 --dense 64 --size 32 --epochs 6 --lr 3e-3 --batch-size 32 --val 0.25
         --threshold tune --device cpu --quiet --workers 1 --cache-dir "${WORK}/cache" --run-dir "${run}")
message("${train_out}")
foreach(expected "read as multi-label" "class statistics of the training split" "multi-label .label cells list several"
                 "decision rule: per-class thresholds" "test micro-F1 [0-9.]+  macro-F1 [0-9.]+  mAP [0-9.]+")
  if(NOT train_out MATCHES "${expected}")
    message(FATAL_ERROR "kiln train printed no '${expected}'")
  endif()
endforeach()
foreach(file best.safetensors thresholds.json test_metrics.json class_stats.json epochs.csv report.html
             figures/precision_recall.png figures/cooccurrence.png)
  if(NOT EXISTS "${run}/${file}")
    message(FATAL_ERROR "the run folder has no ${file}")
  endif()
endforeach()
file(STRINGS "${run}/epochs.csv" epochs LIMIT_COUNT 1)
if(NOT epochs MATCHES "val_map,val_f1_micro,val_f1_macro")
  message(FATAL_ERROR "epochs.csv has no multi-label columns: ${epochs}")
endif()

# Tuned thresholds against the 0.5 rule on the test split (test_metrics.json, compared_rules[0] and [1]).
file(READ "${run}/test_metrics.json" metrics)
string(JSON tuned_rule GET "${metrics}" compared_rules 0 rule)
string(JSON tuned_macro GET "${metrics}" compared_rules 0 macro_f1)
string(JSON half_rule GET "${metrics}" compared_rules 1 rule)
string(JSON half_macro GET "${metrics}" compared_rules 1 macro_f1)
string(JSON micro GET "${metrics}" micro_avg f1)
string(JSON map GET "${metrics}" mAP)
message("test: ${tuned_rule} macro-F1 ${tuned_macro} vs ${half_rule} macro-F1 ${half_macro}; micro-F1 ${micro}, mAP ${map}")
if(NOT tuned_rule STREQUAL "per-class thresholds" OR NOT half_rule STREQUAL "threshold 0.5")
  message(FATAL_ERROR "unexpected rules in test_metrics.json: ${tuned_rule}, ${half_rule}")
endif()
if(NOT tuned_macro GREATER half_macro)
  message(FATAL_ERROR "tuned thresholds did not raise macro-F1 over the 0.5 rule: ${tuned_macro} <= ${half_macro}")
endif()

# --threshold tune-global: one threshold for every class, chosen on the validation split's
# micro-F1, saved as K equal thresholds.
run_kiln(train_global train "${mosaic}/train.csv" --test-data "${mosaic}/test_labels.csv" --model cnn5
         --filter-list 16,32,64,64,64 --dense 64 --size 32 --epochs 2 --lr 3e-3 --batch-size 32 --val 0.25
         --threshold tune-global --device cpu --quiet --workers 1 --no-report --cache-dir "${WORK}/cache"
         --run-dir "${WORK}/run-global")
if(NOT train_global_out MATCHES "one threshold for every class tuned on validation"
   OR NOT train_global_out MATCHES "decision rule: threshold 0\\.[0-9]+ \\(thresholds.json\\)")
  message(FATAL_ERROR "kiln train --threshold tune-global printed no global rule:\n${train_global_out}")
endif()
file(READ "${WORK}/run-global/thresholds.json" global_rule)
string(JSON first_threshold GET "${global_rule}" thresholds 0)
string(JSON chosen_on GET "${global_rule}" chosen_on)
foreach(k RANGE 1 9)
  string(JSON threshold GET "${global_rule}" thresholds ${k})
  if(NOT threshold EQUAL first_threshold)
    message(FATAL_ERROR "tune-global saved different thresholds: ${first_threshold} and ${threshold}")
  endif()
endforeach()
if(NOT chosen_on MATCHES "micro-F1 of one threshold")
  message(FATAL_ERROR "thresholds.json of tune-global: chosen_on '${chosen_on}'")
endif()

# kiln eval on the same test CSV gives the numbers train printed.
run_kiln(eval eval "${run}/best.safetensors" "${mosaic}/test_labels.csv" --subset all --device cpu
         --cache-dir "${WORK}/cache" --out "${WORK}/eval")
# (Both print 4 decimals; compared as text.)
string(REGEX MATCH "test micro-F1 ([0-9.]+)  macro-F1 ([0-9.]+)  mAP ([0-9.]+)" train_line "${train_out}")
set(train_numbers "${CMAKE_MATCH_1} ${CMAKE_MATCH_2} ${CMAKE_MATCH_3}")
string(REGEX MATCH "\nmicro-F1 ([0-9.]+)  macro-F1 ([0-9.]+)  mAP ([0-9.]+)" eval_line "${eval_out}")
set(eval_numbers "${CMAKE_MATCH_1} ${CMAKE_MATCH_2} ${CMAKE_MATCH_3}")
if(NOT eval_numbers STREQUAL train_numbers)
  message(FATAL_ERROR "kiln eval's micro-F1, macro-F1, mAP (${eval_numbers}) differ from train's (${train_numbers})")
endif()
if(NOT eval_out MATCHES "samples avg" OR NOT eval_out MATCHES "ranking loss")
  message(FATAL_ERROR "kiln eval printed no multi-label table:\n${eval_out}")
endif()
# Without DATA: the run's own split (split.json: train and val) and its --test-data.
run_kiln(eval_split eval "${run}/best.safetensors" --subset test --device cpu --cache-dir "${WORK}/cache"
         --out "${WORK}/eval-split")
string(REGEX MATCH "\nmicro-F1 ([0-9.]+)  macro-F1 ([0-9.]+)  mAP ([0-9.]+)" eval_line "${eval_split_out}")
if(NOT "${CMAKE_MATCH_1} ${CMAKE_MATCH_2} ${CMAKE_MATCH_3}" STREQUAL train_numbers)
  message(FATAL_ERROR "kiln eval --subset test of a --test-data run differs from train's test numbers:\n${eval_split_out}")
endif()
run_kiln(eval_val eval "${run}/best.safetensors" --subset val --device cpu --cache-dir "${WORK}/cache"
         --out "${WORK}/eval-val")
file(READ "${run}/split.json" split)
string(JSON val_count LENGTH "${split}" val)
if(NOT eval_val_out MATCHES "\\(val, ${val_count} images, multi-label\\)")
  message(FATAL_ERROR "kiln eval --subset val of a --test-data run: not the ${val_count} images of split.json's val:\n${eval_val_out}")
endif()
# probabilities.csv: each test image's true labels and its 10 probabilities, in the CSV's order.
file(STRINGS "${WORK}/eval/probabilities.csv" probabilities)
list(LENGTH probabilities probabilities_rows)
list(GET probabilities 0 probabilities_header)
list(GET probabilities 1 first_probabilities)
string(REPEAT ",[0-9.e-]+" 10 ten_probabilities)
if(NOT probabilities_header STREQUAL "image,labels,0,1,2,3,4,5,6,7,8,9" OR NOT probabilities_rows EQUAL 101
   OR NOT first_probabilities MATCHES "^images/test_00000.png,[0-9 ]+${ten_probabilities}$")
  message(FATAL_ERROR "probabilities.csv: header '${probabilities_header}', ${probabilities_rows} lines, first '${first_probabilities}'")
endif()

# kiln predict on the labelless test.csv.
run_kiln(predict predict "${run}/best.safetensors" "${mosaic}/test.csv" --device cpu -o "${WORK}/preds.csv")
run_kiln(submission predict "${run}/best.safetensors" "${mosaic}/test.csv" --device cpu --format submission
         -o "${WORK}/submission.csv")
file(STRINGS "${WORK}/preds.csv" preds)
file(STRINGS "${WORK}/submission.csv" submission)
list(LENGTH preds preds_rows)
list(LENGTH submission submission_rows)
list(GET preds 0 preds_header)
list(GET submission 0 submission_header)
list(GET submission 1 first_submission)
if(NOT preds_header STREQUAL "image,labels,probabilities" OR NOT preds_rows EQUAL 101)
  message(FATAL_ERROR "preds.csv: header '${preds_header}', ${preds_rows} lines (want 101)")
endif()
if(NOT submission_header STREQUAL "ImageID,Labels" OR NOT submission_rows EQUAL 101
   OR NOT first_submission MATCHES "^images/test_00000.png,[0-9 ]*$")
  message(FATAL_ERROR "submission.csv: header '${submission_header}', ${submission_rows} lines, first '${first_submission}'")
endif()
# kiln report writes the page again from the run folder and the best checkpoint.
run_kiln(report report "${run}" --device cpu --cache-dir "${WORK}/cache")
if(NOT report_out MATCHES "evaluated the multi-label checkpoint on 100 test images.*wrote .*report.html")
  message(FATAL_ERROR "kiln report did not re-evaluate the multi-label run:\n${report_out}")
endif()
message("multilabel e2e ok")
