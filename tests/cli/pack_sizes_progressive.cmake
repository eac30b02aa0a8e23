# `kiln pack --size 16,24,32` and a progressive run read from it: the fixture folder
# laid out as Tiny-ImageNet (8 train and 2 val images of each of 2 classes), packed
# once at three sizes, then `kiln train t.kpacks --val official --progressive
# 16:0,24:1,32:2` for 3 epochs must say it reads the sizes from the packs, write
# epochs.csv with sizes 16, 24, 32, hold the official val images out (split.json),
# and `kiln eval` must score the run at its final size. A size the set lacks
# (--progressive 16:0,20:1) is refused before anything is trained, naming 20 and the
# sizes 16/24/32.
#
#   cmake -DKILN=build/kiln -DFIXTURES=tests/fixtures -DWORK=dir [-DDEVICE=cuda:0] -P this.cmake
foreach(var KILN FIXTURES WORK)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "pack_sizes_progressive.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT DEFINED DEVICE)
  set(DEVICE cpu)
endif()
file(REMOVE_RECURSE "${WORK}")
set(tin "${WORK}/tin")
file(WRITE "${tin}/wnids.txt" "n01\nn02\n")
file(MAKE_DIRECTORY "${tin}/val/images")
set(annotations "")
foreach(class_folder dark light)
  if(class_folder STREQUAL "dark")
    set(wnid n01)
  else()
    set(wnid n02)
  endif()
  foreach(i 0 1 2 3 4 5 6 7)
    file(COPY "${FIXTURES}/tiny_folder/${class_folder}/${i}.png" DESTINATION "${tin}/train/${wnid}/images")
  endforeach()
  foreach(i 8 9)
    file(COPY "${FIXTURES}/tiny_folder/${class_folder}/${i}.png" DESTINATION "${WORK}/tmp")
    file(RENAME "${WORK}/tmp/${i}.png" "${tin}/val/images/${wnid}_val_${i}.png")
    string(APPEND annotations "${wnid}_val_${i}.png\t${wnid}\t0\t0\t15\t15\n")
  endforeach()
endforeach()
file(WRITE "${tin}/val/val_annotations.txt" "${annotations}")

execute_process(COMMAND "${KILN}" pack ${tin} -o ${WORK}/t.kpacks --size 16,24,32
                RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT status EQUAL 0 OR NOT out MATCHES "packed 20 images of 2 classes .* \\(decoded once\\)"
   OR NOT EXISTS "${WORK}/t.16.kpack" OR NOT EXISTS "${WORK}/t.24.kpack" OR NOT EXISTS "${WORK}/t.32.kpack")
  message(FATAL_ERROR "kiln pack --size 16,24,32 did not write the three packs and the index (${status}):\n${out}\n${err}")
endif()

set(common --val official --test 0 --model resnet_custom --depths 1,1,1 --widths 4,8,16 --epochs 3 --batch-size 4
           --optimizer sgd --lr 0.05 --device ${DEVICE} --quiet --no-report --workers 1)
execute_process(COMMAND "${KILN}" train ${WORK}/t.kpacks ${common} --progressive 16:0,24:1,32:2
                        --run-dir ${WORK}/run
                RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "kiln train from the pack set failed (${status}):\n${out}\n${err}")
endif()
if(NOT out MATCHES "sizes 16/24/32 read from the packs of [^\n]*t.kpacks \\(16/24/32 px\\), no resizing")
  message(FATAL_ERROR "kiln train did not say it reads each size from its pack:\n${out}")
endif()
file(READ "${WORK}/run/epochs.csv" epochs)
if(NOT epochs MATCHES "^epoch,size,batch_size,[^\n]*\n1,16,4,[^\n]*\n2,24,4,[^\n]*\n3,32,4,")
  message(FATAL_ERROR "epochs.csv does not show the sizes 16, 24, 32:\n${epochs}")
endif()
file(READ "${WORK}/run/split.json" split)
if(NOT split MATCHES "official val" OR NOT split MATCHES "\"val/images/n01_val_8.png\"")
  message(FATAL_ERROR "split.json does not hold the official val images out:\n${split}")
endif()
execute_process(COMMAND "${KILN}" eval ${WORK}/run/best.safetensors --subset val --device ${DEVICE}
                RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT status EQUAL 0 OR NOT out MATCHES "accuracy")
  message(FATAL_ERROR "kiln eval of the run failed (${status}):\n${out}\n${err}")
endif()

execute_process(COMMAND "${KILN}" train ${WORK}/t.kpacks ${common} --progressive 16:0,20:1 --run-dir ${WORK}/run20
                RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(status EQUAL 0 OR NOT err MATCHES "--progressive 16:0,20:1: the pack set '[^']*t.kpacks' has no 20 px pack \\(it has 16/24/32 px\\)"
   OR EXISTS "${WORK}/run20/split.json")
  message(FATAL_ERROR "a size the pack set lacks was not refused before training (${status}):\n${out}\n${err}")
endif()
message("pack sizes progressive ok on ${DEVICE}")
