/* Elementwise ops on batches of LWEs (the executor's additions, plaintext
 * additions and the rounding chunks' arithmetic), one word per thread. The
 * per-word code is __host__ __device__ so that the host emulation
 * (veil_cuda_lwe_*_emulate) runs exactly what the kernels run. */
#ifndef VEIL_KERNELS_ELEMENTWISE_CUH
#define VEIL_KERNELS_ELEMENTWISE_CUH

#include "common.cuh"

/* Word w of out = a + f * b, mod 2^64. */
__host__ __device__ __forceinline__ void
veil_lwe_add_word(uint64_t *out, const uint64_t *a, const uint64_t *b, uint64_t w, uint64_t f) {
    out[w] = a[w] + f * b[w];
}

/* Word w of out = f * in, plus pt on every body (the last word of each
 * ciphertext of lwe_size words). */
__host__ __device__ __forceinline__ void veil_lwe_scale_word(uint64_t *out, const uint64_t *in,
                                                             uint64_t w, uint32_t lwe_size,
                                                             uint64_t f, uint64_t pt) {
    out[w] = f * in[w] + (w % lwe_size == lwe_size - 1 ? pt : 0);
}

#endif
