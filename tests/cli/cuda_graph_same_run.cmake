# `kiln train --device cuda --cuda-graph` against the same run without it, on a
# subset of the shared ants/bees photos at 32 px: every epoch's losses, accuracies and lr in epochs.jsonl and
# the final weights and optimizer state (the tensor bytes of last.safetensors) must
# be identical, and the graphed run must refuse dropout, naming it. The graphed run
# replays a captured step after 2 warm-up steps; the emulated GPU runs the recorded
# kernels, so any state the step kept on the host would show up as a difference.
#
#   cmake -DKILN=build/kiln -DDATA=../shared/assets/data/hymenoptera_96 -DWORK=dir -P this.cmake
#
# Prints "SKIPPED" (ctest marks the test skipped) where the shared photos are
# missing or no GPU is visible.
foreach(var KILN DATA WORK)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "cuda_graph_same_run.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT EXISTS "${DATA}")
  message("SKIPPED: ${DATA} is missing (the shared assets, ../shared/assets/MANIFEST.md)")
  return()
endif()
execute_process(COMMAND "${KILN}" --version OUTPUT_VARIABLE version ERROR_VARIABLE version_err)
if(NOT version MATCHES "GPU 0")
  message("SKIPPED: no GPU visible:\n${version}${version_err}")
  return()
endif()

# 2 x 40 training images, batches of 16, 2 epochs: 10 steps (2 warm-up, 1 capture,
# 7 replays); 8 + 8 images per class to validate and test.
set(common "${DATA}" --split 40/8/8 --size 32 --cache-dir "${WORK}/cache" --epochs 2 --batch-size 16 --filters 4
           --dense 16 --schedule cyclic:base_lr=0.002,max_lr=0.02,step_size_up=3 --optimizer sgd --momentum 0.9
           --device cuda --deterministic --quiet --no-report --log-interval 3)
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")
foreach(mode eager graph)
  set(extra --dropout 0)
  if(mode STREQUAL "graph")
    list(APPEND extra --cuda-graph)
  endif()
  execute_process(COMMAND "${KILN}" train ${common} ${extra} --run-dir "${WORK}/${mode}"
                  RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "kiln train (${mode}) failed (${status}):\n${out}\n${err}")
  endif()
  # The training columns of every epoch (not the time, the rate or the memory).
  file(STRINGS "${WORK}/${mode}/epochs.jsonl" rows)
  set(epochs_${mode} "")
  foreach(row IN LISTS rows)
    foreach(key epoch lr train_loss train_accuracy val_loss val_accuracy val_f1)
      string(JSON value GET "${row}" ${key})
      string(APPEND epochs_${mode} "${key}=${value} ")
    endforeach()
    string(APPEND epochs_${mode} "\n")
  endforeach()
  # last.safetensors: an 8-byte little-endian header length, the JSON header (which
  # holds the run's config, --cuda-graph included), then the tensor bytes.
  file(READ "${WORK}/${mode}/last.safetensors" length_hex LIMIT 8 HEX)
  set(header_length 0)
  foreach(i RANGE 3 0 -1)  # the low 4 bytes are enough for a header
    math(EXPR position "${i} * 2")
    string(SUBSTRING "${length_hex}" ${position} 2 byte)
    math(EXPR header_length "${header_length} * 256 + 0x${byte}")
  endforeach()
  math(EXPR data_offset "8 + ${header_length}")
  file(READ "${WORK}/${mode}/last.safetensors" tensors_${mode} OFFSET ${data_offset} HEX)
  string(LENGTH "${tensors_${mode}}" tensor_hex_length)
  message("${mode}: ${tensor_hex_length} hex digits of tensors\n${epochs_${mode}}")
endforeach()
if(NOT epochs_eager STREQUAL epochs_graph)
  message(FATAL_ERROR "epochs.jsonl differs:\neager:\n${epochs_eager}\ngraph:\n${epochs_graph}")
endif()
if(NOT tensors_eager STREQUAL tensors_graph)
  message(FATAL_ERROR "the tensors of last.safetensors differ between the eager and the --cuda-graph run")
endif()
execute_process(COMMAND "${KILN}" train ${common} --dropout 0.2 --cuda-graph --run-dir "${WORK}/dropout"
                RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(status EQUAL 0 OR NOT "${out}${err}" MATCHES "--cuda-graph cannot capture dropout")
  message(FATAL_ERROR "kiln train --cuda-graph with dropout should be refused naming it:\n${out}\n${err}")
endif()
message("cuda graph same run ok")
