// The emulated GPU's cuDNN version (KILN_CUDA=EMULATE): the emulated library reports
// itself as cuDNN 9.19.0, the version its API was transcribed from.
#pragma once
#define CUDNN_MAJOR 9
#define CUDNN_MINOR 19
#define CUDNN_PATCHLEVEL 0
#define CUDNN_VERSION (CUDNN_MAJOR * 10000 + CUDNN_MINOR * 100 + CUDNN_PATCHLEVEL)
