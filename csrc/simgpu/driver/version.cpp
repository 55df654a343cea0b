// Driver identity: the simulator reports CUDA 13.0.
#include "api.h"

extern "C" {

SIM_EXPORT CUresult CUDAAPI cuDriverGetVersion(int* driverVersion) {
  if (!driverVersion) return CUDA_ERROR_INVALID_VALUE;
  *driverVersion = CUDA_VERSION;  // 13000: the headers this library is built against
  return CUDA_SUCCESS;
}

}  // extern "C"
