/* Batched PBS on cuFFT: modulus switch, blind rotation (one cuFFT call per
 * direction per step, the elementwise work fused around it), sample
 * extraction. The work memory lives in veil_cuda_pbs_buffer. */
#ifndef VEIL_KERNELS_PBS_CUH
#define VEIL_KERNELS_PBS_CUH

#include "common.cuh"

int veil_modulus_switch_launch(cudaStream_t stream, const veil_cuda_params *p, uint32_t *d_out,
                               const uint64_t *d_in, const veil_cuda_lut_set *luts, uint32_t count);

#endif
