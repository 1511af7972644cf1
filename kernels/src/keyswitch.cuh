/* Batched LWE keyswitch, big key (kN) -> small key (n), as one integer matrix
 * product with the decomposition done while loading tiles. */
#ifndef VEIL_KERNELS_KEYSWITCH_CUH
#define VEIL_KERNELS_KEYSWITCH_CUH

#include "common.cuh"

int veil_keyswitch_launch(cudaStream_t stream, const veil_cuda_params *p, uint64_t *d_out,
                          const uint64_t *d_in, const uint64_t *d_ksk, uint32_t count);

#endif
