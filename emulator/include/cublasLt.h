// The emulated GPU's cuBLASLt (KILN_CUDA=EMULATE): only the handle, which kiln's
// Context creates and destroys (engine/cuda/context.cpp) but does not yet use for
// any matmul. Names and signatures are NVIDIA's; implemented in emulator/src/cublas.cpp.
// A cublasLtMatmul here would be a new feature of the emulator, not a declaration.
#pragma once
#include <cublas_v2.h>
#include <stddef.h>

struct cublasLtContext;
typedef struct cublasLtContext* cublasLtHandle_t;

#if defined(__cplusplus)
extern "C" {
#endif

cublasStatus_t CUBLASWINAPI cublasLtCreate(cublasLtHandle_t* lightHandle);
cublasStatus_t CUBLASWINAPI cublasLtDestroy(cublasLtHandle_t lightHandle);
size_t CUBLASWINAPI cublasLtGetVersion(void);  // CUBLAS_VERSION, like cuBLAS's
cublasStatus_t CUBLASWINAPI cublasLtGetProperty(libraryPropertyType type, int* value);
const char* CUBLASWINAPI cublasLtGetStatusName(cublasStatus_t status);
const char* CUBLASWINAPI cublasLtGetStatusString(cublasStatus_t status);

#if defined(__cplusplus)
}
#endif
