# `kiln predict --arch mobilenet_v2 --pretrained FILE.onnx` on the shared colour photos
# must name what the ImageNet-trained network sees in them (../shared/assets/MANIFEST.md
# lists the reference top-5, computed by PyTorch on the same ONNX weights). A channel
# mix-up, a wrong normalisation or a scrambled pixel layout changes these answers.
#
#   cmake -DKILN=build/kiln -DASSETS=../shared/assets -DWORK=dir -P this.cmake
#
# Every photo's top-1 class and its probability within 0.015 of the reference. What is
# left of the difference is JPEG decoding (stb_image upsamples chroma differently from
# libjpeg): 0.005 on samoyed.jpg, whose shorter side is already 256 (no resize at all).
# The resize matters more: golden_retriever.jpg (225x224) is enlarged to 256, and
# kiln's triangle filter gives 0.505 like PIL's bilinear; Catmull-Rom gave 0.39.
foreach(var KILN ASSETS WORK)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "predict_imagenet_photos.cmake: -D${var}=... is required")
  endif()
endforeach()
set(onnx "${ASSETS}/models/mobilenet_v2_imagenet_fp32.onnx")
foreach(input "${onnx}" "${ASSETS}/images" "${ASSETS}/imagenet_classes.txt")
  if(NOT EXISTS "${input}")
    message("SKIPPED: ${input} is absent (shared assets not installed)")
    return()
  endif()
endforeach()

file(MAKE_DIRECTORY "${WORK}")
set(csv "${WORK}/imagenet_predictions.csv")
execute_process(COMMAND "${KILN}" predict --arch mobilenet_v2 --pretrained "${onnx}"
                        --class-names "${ASSETS}/imagenet_classes.txt" "${ASSETS}/images" --top-k 5 --device cpu -o "${csv}"
                RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "kiln predict failed (${status}):\n${out}\n${err}")
endif()
file(STRINGS "${csv}" rows)
list(GET rows 0 header)
if(NOT header STREQUAL "image,label,probability,label_2,probability_2,label_3,probability_3,label_4,probability_4,label_5,probability_5")
  message(FATAL_ERROR "unexpected header in ${csv}: ${header}")
endif()

# photo|expected top-1 label|reference probability (MANIFEST.md)
set(expectations "samoyed.jpg|Samoyed|0.682" "golden_retriever.jpg|golden retriever|0.505" "tabby_cat.jpg|tabby|0.692"
                 "tiger_cat.jpg|jaguar|0.336" "goldfish.jpg|goldfish|1.000" "macaw.jpg|macaw|1.000"
                 "sports_car.jpg|sports car|0.772")
foreach(expectation ${expectations})
  string(REPLACE "|" ";" parts "${expectation}")
  list(GET parts 0 photo)
  list(GET parts 1 label)
  set(found "")
  foreach(row ${rows})
    if(row MATCHES "/${photo},")
      set(found "${row}")
    endif()
  endforeach()
  if(found STREQUAL "")
    message(FATAL_ERROR "${csv} has no row for ${photo}")
  endif()
  if(NOT found MATCHES "/${photo},${label},([0-9.]+),")
    message(FATAL_ERROR "${photo}: expected top-1 '${label}', got: ${found}")
  endif()
  set(probability "${CMAKE_MATCH_1}")
  list(GET parts 2 reference)
  # CMake has integer math only: compare in units of 1e-6.
  string(REGEX REPLACE "^0?\\.([0-9]+)$" "\\1" got_digits "${probability}")
  if(probability MATCHES "^1\\.0+$")
    set(got 1000000)
  else()
    string(SUBSTRING "${got_digits}000000" 0 6 got_digits)
    math(EXPR got "1${got_digits} - 1000000")
  endif()
  if(reference STREQUAL "1.000")
    set(want 1000000)
  else()
    string(REGEX REPLACE "^0\\.([0-9]+)$" "\\1" want_digits "${reference}")
    string(SUBSTRING "${want_digits}000000" 0 6 want_digits)
    math(EXPR want "1${want_digits} - 1000000")
  endif()
  math(EXPR difference "${got} - ${want}")
  if(difference LESS -15000 OR difference GREATER 15000)
    message(FATAL_ERROR "${photo}: top-1 probability ${probability}, reference ${reference} (allowed 0.015)")
  endif()
  message("${photo}: ${label} ${probability} (PyTorch ${reference})")
endforeach()
message("predict imagenet photos ok")
