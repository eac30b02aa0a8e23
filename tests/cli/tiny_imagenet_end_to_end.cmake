# The capped-benchmark pipeline at demo size: the shared Imagenette images laid out
# as Tiny-ImageNet (scripts/imagenette_as_tiny_imagenet.cmake, 18 train and 6 val
# images a class), `kiln train DIR --val official --classes 10` with a separable
# resnet_custom under --max-params 26M, a cyclic schedule and progressive resizing
# (16 -> 24 -> 32 px over three epochs, the batch scaled with the size, batch norm
# re-estimated after each switch; epochs.csv must show each epoch's size and batch) and
# --rules tiny-imagenet checked before the first epoch, then
# `kiln check-rules RUN --rules tiny-imagenet` must print "all rules hold",
# `kiln eval RUN/best.safetensors --hardest 5` must list five validation images and
# `kiln report RUN` show them and every rule's verdict, and
# --classes 11 must be refused naming the count.
#
#   cmake -DKILN=build/kiln -DSOURCE=<repo> -DWORK=dir -P this.cmake
#
# Prints "SKIPPED" (ctest marks the test skipped) without the shared assets.
foreach(var KILN SOURCE WORK)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "tiny_imagenet_end_to_end.cmake: -D${var}=... is required")
  endif()
endforeach()
set(imagenette "${SOURCE}/../shared/assets/data/imagenette_96")
if(NOT EXISTS "${imagenette}/classes.csv")
  message("SKIPPED: ${imagenette} is not there (the shared assets, see MANIFEST.md)")
  return()
endif()
file(REMOVE_RECURSE "${WORK}")
execute_process(COMMAND "${CMAKE_COMMAND}" -DSRC=${imagenette} -DOUT=${WORK}/tiny -DTRAIN_PER_CLASS=18
                        -DVAL_PER_CLASS=6 -P "${SOURCE}/scripts/imagenette_as_tiny_imagenet.cmake"
                RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "the Tiny-ImageNet layout script failed (${status})")
endif()
set(common --val official --size 32 --device cpu --quiet --no-report --cache-dir ${WORK}/cache)
execute_process(COMMAND "${KILN}" train ${WORK}/tiny ${common} --classes 10 --model resnet_custom --depths 1,1,1
                        --widths 16,32,64 --separable --max-params 26M --rules tiny-imagenet --optimizer sgd --lr 0.01
                        --schedule cyclic:mode=triangular2,max_lr=0.1,step_size_up=3 --epochs 3 --batch-size 32
                        --progressive 16:0,24:1,32:2 --progressive-batch scale --bn-reestimate 1
                        --run-dir ${WORK}/run
                RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT status EQUAL 0 OR NOT out MATCHES "test accuracy")
  message(FATAL_ERROR "kiln train on the Tiny-ImageNet layout failed (${status}):\n${out}\n${err}")
endif()
# Batches 32, 32 * (16/24)^2 = 14 and 32 * (16/32)^2 = 8.
file(READ "${WORK}/run/epochs.csv" epochs)
if(NOT epochs MATCHES "^epoch,size,batch_size,lr,[^\n]*\n1,16,32,[^\n]*\n2,24,14,[^\n]*\n3,32,8,")
  message(FATAL_ERROR "epochs.csv does not show the sizes 16, 24, 32 and batches 32, 14, 8:\n${epochs}")
endif()
if(NOT out MATCHES "progressive resizing: 16 px from epoch 1 \\(batch 32\\), 24 px from epoch 2")
  message(FATAL_ERROR "kiln train did not print the progressive schedule:\n${out}")
endif()
file(READ "${WORK}/run/split.json" split)
if(NOT split MATCHES "official val" OR NOT split MATCHES "\"val/images/val_0.JPEG\"")
  message(FATAL_ERROR "split.json does not hold the official val images out:\n${split}")
endif()
execute_process(COMMAND "${KILN}" check-rules ${WORK}/run --rules tiny-imagenet
                RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT status EQUAL 0 OR NOT out MATCHES "all rules hold")
  message(FATAL_ERROR "kiln check-rules did not pass the run (${status}):\n${out}\n${err}")
endif()
execute_process(COMMAND "${KILN}" train ${WORK}/tiny ${common} --classes 11 --epochs 0 --run-dir ${WORK}/run11
                RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(status EQUAL 0 OR NOT err MATCHES "--classes 11: .* has 10 classes")
  message(FATAL_ERROR "--classes 11 was not refused as expected (${status}):\n${out}\n${err}")
endif()
execute_process(COMMAND "${KILN}" eval ${WORK}/run/best.safetensors --hardest 5 --cache-dir ${WORK}/cache
                RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
file(STRINGS "${WORK}/run/hardest.csv" hardest)
list(LENGTH hardest rows)
if(NOT status EQUAL 0 OR NOT out MATCHES "the 5 hardest of 60 val images" OR NOT rows EQUAL 6
   OR NOT EXISTS "${WORK}/run/figures/hardest.png")
  message(FATAL_ERROR "kiln eval --hardest 5 did not list and draw five images (${status}, ${rows} csv lines):\n${out}\n${err}")
endif()
execute_process(COMMAND "${KILN}" report ${WORK}/run RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
file(READ "${WORK}/run/report.html" html)
if(NOT status EQUAL 0 OR NOT html MATCHES "Hardest images" OR NOT html MATCHES "no-val-in-train</td><td>holds"
   OR NOT html MATCHES "the side of the training images in each epoch")
  message(FATAL_ERROR "report.html lacks the image-size chart, the hardest images or the rules' verdicts (${status}):\n${out}\n${err}")
endif()
message("tiny-imagenet end to end ok")
