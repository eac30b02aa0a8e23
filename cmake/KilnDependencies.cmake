# Finds kiln's dependencies; all come from Debian packages (scripts/setup.sh
# installs them): libeigen3-dev doctest-dev libcli11-dev nlohmann-json3-dev libstb-dev libdnnl-dev,
# libyaml-cpp-dev (sweep configs, sweep/config.cpp),
# and for the GPU backend the CUDA toolkit with cuDNN and cuBLAS.
find_package(Eigen3 3.3 REQUIRED NO_MODULE)
find_package(OpenMP REQUIRED)
find_package(doctest REQUIRED)
find_package(CLI11 REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
# yaml-cpp: Debian's package ships a CMake config (0.7: target yaml-cpp; 0.8: yaml-cpp::yaml-cpp).
find_package(yaml-cpp REQUIRED)
if(TARGET yaml-cpp::yaml-cpp)
  set(KILN_YAML_TARGET yaml-cpp::yaml-cpp)
else()
  set(KILN_YAML_TARGET yaml-cpp)
endif()
find_path(KILN_STB_INCLUDE_DIR stb_image.h PATH_SUFFIXES stb REQUIRED)
# oneDNN (libdnnl-dev): the CPU fast path for convolutions (engine/ops/onednn/), the
# library PyTorch's CPU backend uses. Debian builds it over OpenMP, so kiln's
# --threads (omp_set_num_threads) governs it too.
find_package(dnnl 2.6 REQUIRED)

set(KILN_WITH_CUDA OFF)
set(KILN_CUDA_EMULATED OFF)
set(KILN_CUDA_WHY "")
if(KILN_CUDA STREQUAL "EMULATE")
  # The emulated GPU (emulator/, docs/cuda.md): the CUDA backend compiled by the host
  # compiler against kiln's own CUDA headers, run on the CPU. Needs no toolkit.
  set(KILN_WITH_CUDA ON)
  set(KILN_CUDA_EMULATED ON)
elseif(KILN_CUDA STREQUAL "ON" OR KILN_CUDA STREQUAL "AUTO")
  include(CheckLanguage)
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    enable_language(CUDA)
    set(CMAKE_CUDA_STANDARD 17)
    find_package(CUDAToolkit REQUIRED)
    find_path(KILN_CUDNN_INCLUDE_DIR cudnn.h HINTS ${CUDAToolkit_INCLUDE_DIRS} PATH_SUFFIXES include)
    find_library(KILN_CUDNN_LIBRARY cudnn HINTS ${CUDAToolkit_LIBRARY_DIR} PATH_SUFFIXES lib64 lib)
    if(KILN_CUDNN_INCLUDE_DIR AND KILN_CUDNN_LIBRARY)
      file(STRINGS ${KILN_CUDNN_INCLUDE_DIR}/cudnn_version.h _cudnn_major REGEX "define CUDNN_MAJOR")
      string(REGEX MATCH "[0-9]+" KILN_CUDNN_VERSION "${_cudnn_major}")
      set(KILN_WITH_CUDA ON)
    else()
      set(KILN_CUDA_WHY ": cuDNN not found")
    endif()
  else()
    set(KILN_CUDA_WHY ": nvcc not found")
  endif()
  if(KILN_CUDA STREQUAL "ON" AND NOT KILN_WITH_CUDA)
    message(FATAL_ERROR "KILN_CUDA=ON but the CUDA backend cannot be built${KILN_CUDA_WHY}")
  endif()
else()
  set(KILN_CUDA_WHY "")
endif()
