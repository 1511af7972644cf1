/* Test polynomials on the device: the accumulator a PBS starts from. */
#ifndef VEIL_KERNELS_LUT_CUH
#define VEIL_KERNELS_LUT_CUH

#include "common.cuh"

/* acc[c] = (0, ..., 0, X^(-b_c) * V_{index[c]}) with b_c = d_ms[c][n]: the
 * trivial GLWE the blind rotation of ciphertext c starts from. */
int veil_lut_acc_init_launch(cudaStream_t stream, const veil_cuda_params *p, uint64_t *d_acc,
                             const uint32_t *d_ms, const veil_cuda_lut_set *luts, uint32_t count);

#endif
