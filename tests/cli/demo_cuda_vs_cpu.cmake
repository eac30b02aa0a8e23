# `kiln demo` on cuda:0 and on the cpu, same subset, seed and settings: the test
# accuracies must agree within 2 points (the bar of the trainer-on-cuda issue). The
# two runs differ only in the backends' f32 summation order (cuDNN/cuBLAS against
# Eigen), which moves a few borderline test images. Each run leaves its run folder
# (--run-dir) with config.json, run_info.json, the epoch log, a checkpoint and report.html.
#
#   cmake -DKILN=build/kiln -DWORK=dir [-DARGS="--train-per-class 30 ..."] -P this.cmake
#
# Prints "SKIPPED" (ctest marks the test skipped) where Fashion-MNIST is not
# installed or no GPU is visible.
foreach(var KILN WORK)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "demo_cuda_vs_cpu.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT DEFINED ARGS)
  # 500 training images for 3 epochs (21 steps) reach about 64% on 200 test images:
  # far enough from chance (10%) that the comparison means something, and about a
  # minute on the emulated GPU.
  set(ARGS "--train-per-class 50 --test-per-class 20 --epochs 3")
endif()
separate_arguments(demo_args UNIX_COMMAND "${ARGS}")
if(NOT EXISTS "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
  message("SKIPPED: Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
  return()
endif()
execute_process(COMMAND "${KILN}" --version OUTPUT_VARIABLE version ERROR_VARIABLE version_err)
if(NOT version MATCHES "GPU 0")
  message("SKIPPED: no GPU visible:\n${version}${version_err}")
  return()
endif()

file(MAKE_DIRECTORY "${WORK}")
foreach(device cuda cpu)
  string(TIMESTAMP start "%s")
  file(REMOVE_RECURSE "${WORK}/run-${device}")
  execute_process(COMMAND "${KILN}" demo --device ${device} ${demo_args} --run-dir "${WORK}/run-${device}"
                  WORKING_DIRECTORY "${WORK}" RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
  string(TIMESTAMP stop "%s")
  math(EXPR seconds "${stop} - ${start}")
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "kiln demo --device ${device} failed (${status}):\n${out}\n${err}")
  endif()
  if(NOT out MATCHES "test accuracy: ([0-9]+)\\.([0-9][0-9])% on ([0-9]+) images")
    message(FATAL_ERROR "kiln demo --device ${device}: no test accuracy in its output:\n${out}\n${err}")
  endif()
  # Hundredths of a percent, for CMake's integer math.
  math(EXPR accuracy_${device} "${CMAKE_MATCH_1} * 100 + ${CMAKE_MATCH_2}")
  set(images_${device} ${CMAKE_MATCH_3})
  message("kiln demo --device ${device} ${ARGS}: test accuracy ${CMAKE_MATCH_1}.${CMAKE_MATCH_2}% "
          "on ${CMAKE_MATCH_3} images (${seconds} s)")
  if(NOT out MATCHES "stratified subset")
    message(FATAL_ERROR "kiln demo --device ${device} did not use the subset:\n${out}")
  endif()
  # Its run folder and report, like every run that trains.
  foreach(file config.json run_info.json epochs.jsonl last.safetensors report.html)
    if(NOT EXISTS "${WORK}/run-${device}/${file}")
      message(FATAL_ERROR "kiln demo --device ${device}: no ${file} in its run folder ${WORK}/run-${device}:\n${out}")
    endif()
  endforeach()
  file(READ "${WORK}/run-${device}/report.html" report)
  if(NOT report MATCHES "Confusion matrix" OR NOT report MATCHES "kiln demo")
    message(FATAL_ERROR "kiln demo --device ${device}: report.html has no confusion matrix or command")
  endif()
endforeach()
if(NOT images_cuda EQUAL images_cpu)
  message(FATAL_ERROR "the two runs evaluated different test sets: ${images_cuda} and ${images_cpu} images")
endif()
math(EXPR difference "${accuracy_cuda} - ${accuracy_cpu}")
if(difference LESS -200 OR difference GREATER 200)
  message(FATAL_ERROR "cuda and cpu test accuracies differ by more than 2 points: ${accuracy_cuda} vs ${accuracy_cpu} "
                      "(hundredths of a percent)")
endif()
message("demo cuda vs cpu ok")
