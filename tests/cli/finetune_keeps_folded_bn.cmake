# A backbone whose batch norm was folded into its convolutions fine-tunes without
# re-estimating batch statistics (docs/onnx.md, "Fine-tuning a folded backbone").
#
#   cmake -DKILN=build/kiln -DDATA=folder -DONNX=model.onnx -DARCH=mobilenet_v2 -DWORK=dir -P this.cmake
#
# Two `kiln train` runs of the imported model, same seed, same split, same fresh head:
#   epochs0  --epochs 0          evaluates the model exactly as imported;
#   lr0      --epochs 1 --lr 0   runs a full training epoch (train mode, every layer
#                                trainable) that cannot move a weight.
# Only batch-norm statistics could change in the second run, and the imported
# (folded) batch norms must keep theirs, so both runs must write the same test-set
# ROC files: every softmax probability, to 10 digits. (With the statistics not
# frozen, the epoch overwrites the identity statistics with batch statistics and the
# probabilities differ.) An absent ONNX file or data folder skips with a message.
foreach(var KILN DATA ONNX ARCH WORK)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "finetune_keeps_folded_bn.cmake: -D${var}=... is required")
  endif()
endforeach()
foreach(input "${ONNX}" "${DATA}")
  if(NOT EXISTS "${input}")
    message("SKIPPED: ${input} is absent (shared assets not installed, or the torchvision ONNX fixture skipped)")
    return()
  endif()
endforeach()

set(common train "${DATA}" --model ${ARCH} --pretrained "${ONNX}" --finetune all --size 64 --split 8/0/16
           --batch-size 8 --quiet --cache-dir "${WORK}/cache")
foreach(run epochs0 lr0)
  if(run STREQUAL "epochs0")
    set(extra --epochs 0)
  else()
    set(extra --epochs 1 --lr 0)
  endif()
  file(REMOVE_RECURSE "${WORK}/${run}")
  execute_process(COMMAND "${KILN}" ${common} ${extra} --run-dir "${WORK}/${run}"
                  RESULT_VARIABLE status OUTPUT_VARIABLE output ERROR_VARIABLE output)
  message("--- kiln ${common} ${extra}\n${output}")
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "kiln train (${run}) failed with status ${status}")
  endif()
endforeach()

file(GLOB roc_files RELATIVE "${WORK}/epochs0" "${WORK}/epochs0/roc_*.csv")
if(NOT roc_files)
  message(FATAL_ERROR "${WORK}/epochs0 has no roc_*.csv: kiln train wrote no test metrics")
endif()
foreach(file ${roc_files})
  file(READ "${WORK}/epochs0/${file}" before)
  file(READ "${WORK}/lr0/${file}" after)
  if(NOT before STREQUAL after)
    message(FATAL_ERROR "${file} differs between --epochs 0 and --epochs 1 --lr 0: the training epoch changed "
                        "the model (batch-norm statistics re-estimated?)\n--- epochs 0:\n${before}\n--- lr 0:\n${after}")
  endif()
endforeach()
message("eval output unchanged by a training epoch: ${roc_files} identical")

# A kiln checkpoint as --pretrained on the same classes (train the head, then go on):
#   head       --finetune head --epochs 1 --lr 0.01   moves the fresh head away from its init;
#   from_head  --pretrained head/last.safetensors --epochs 0  must keep that trained head
#              (not a new random one) and evaluate exactly as the head run did;
#   from_lr0   the same with --epochs 1 --lr 0 --finetune all: the checkpoint's frozen
#              (folded) batch norms must stay frozen, so again nothing changes.
set(from_checkpoint train "${DATA}" --model ${ARCH} --size 64 --split 8/0/16 --batch-size 8 --quiet
                    --cache-dir "${WORK}/cache")
foreach(run head from_head from_lr0)
  if(run STREQUAL "head")
    set(extra --pretrained "${ONNX}" --finetune head --epochs 1 --lr 0.01)
  elseif(run STREQUAL "from_head")
    set(extra --pretrained "${WORK}/head/last.safetensors" --finetune all --epochs 0)
  else()
    set(extra --pretrained "${WORK}/head/last.safetensors" --finetune all --epochs 1 --lr 0)
  endif()
  file(REMOVE_RECURSE "${WORK}/${run}")
  execute_process(COMMAND "${KILN}" ${from_checkpoint} ${extra} --run-dir "${WORK}/${run}"
                  RESULT_VARIABLE status OUTPUT_VARIABLE output ERROR_VARIABLE output)
  message("--- kiln ${from_checkpoint} ${extra}\n${output}")
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "kiln train (${run}) failed with status ${status}")
  endif()
endforeach()
foreach(file ${roc_files})
  file(READ "${WORK}/head/${file}" trained)
  file(READ "${WORK}/epochs0/${file}" untrained)
  if(trained STREQUAL untrained)
    message(FATAL_ERROR "${file}: the head run equals the untrained head: the comparison below could not fail")
  endif()
  foreach(run from_head from_lr0)
    file(READ "${WORK}/${run}/${file}" after)
    if(NOT trained STREQUAL after)
      message(FATAL_ERROR "${file} differs between the head run and ${run} (--pretrained its checkpoint): the "
                          "trained head was replaced, or the frozen batch norms were re-estimated")
    endif()
  endforeach()
endforeach()
message("a checkpoint on the same classes keeps its head and its frozen batch norms")
