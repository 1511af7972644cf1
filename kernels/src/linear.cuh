/* Leveled layers on LWE tensors with clear int64 weights: dense (the shared
 * integer matrix product) and 2-D convolution (direct). */
#ifndef VEIL_KERNELS_LINEAR_CUH
#define VEIL_KERNELS_LINEAR_CUH

#include "common.cuh"

#endif
