# `kiln predict --arch mobilenet_v2 --pretrained FILE.onnx` on the shared colour photos
# must name what the ImageNet-trained network sees in them (../shared/assets/MANIFEST.md
# lists the reference top-5, computed by PyTorch on the same ONNX weights). A channel
# mix-up, a wrong normalisation or a scrambled pixel layout changes these answers.
#
#   cmake -DKILN=build/kiln -DASSETS=../shared/assets -DWORK=dir -P this.cmake
#
# Exact probabilities differ a little from PyTorch's because the pixels do: stb_image
# decodes JPEG chroma differently from libjpeg, and kiln enlarges with Catmull-Rom where
# torchvision's Resize is bilinear (golden_retriever.jpg is 225x224 and must be
# enlarged to 256: 0.39 here, 0.37 with PIL bicubic, 0.51 with PIL bilinear). So:
#   - top-1 class of six photos (tiger_cat.jpg is left out: its top two are within
#     0.03 of each other and swap under a bicubic resize);
#   - the top-1 probability of the three photos whose shorter side is already 256 (no
#     resize, only decoding differs) within 0.015 of the reference.
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

# photo|expected top-1 label|reference probability (or -: the label only)
set(expectations "samoyed.jpg|Samoyed|0.682" "goldfish.jpg|goldfish|1.000" "sports_car.jpg|sports car|0.772"
                 "golden_retriever.jpg|golden retriever|-" "tabby_cat.jpg|tabby|-" "macaw.jpg|macaw|-")
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
  if(NOT reference STREQUAL "-")
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
  endif()
  message("${photo}: ${label} ${probability} (reference ${reference})")
endforeach()
message("predict imagenet photos ok")
