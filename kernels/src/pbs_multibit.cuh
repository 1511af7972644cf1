/* Multi-bit blind rotation (pbs.cu, veil_cuda_pbs_multibit with a buffer
 * made for a set with grouping g >= 2). On the cuFFT path, per group q of g
 * mask coefficients, per ciphertext,
 *   1. G = sum_t X^(d_t) GGSW_(q,t), t < 2^g, formed exactly in the standard
 *      domain from the 2^g standard-domain GGSWs of the group (d_0 = 0; d_t:
 *      the 64-bit sum of the mask words bit t selects, switched to 2N once:
 *      engine/src/pbs.c multibit_step), twisted and folded (one kernel), then
 *      (k+1)^2 l forward transforms (cuFFT);
 *   2. the accumulator's digits, ties rounded to even (veil/gadget.h
 *      VEIL_GADGET_INIT_EVEN), twisted, (k+1) l forward transforms;
 *   3. the Fourier product with the ciphertext's own G, (k+1) inverse
 *      transforms, and acc = the rounded, untwisted result.
 * On the cluster kernel (pbs_cluster.cu, MB), step 1 for every group first
 * (G depends on the mask only: TFHE-rs's key bundles), then steps 2 and 3
 * on chip, n/g of them: the sequential chain is g times shorter.
 * These helpers are the per-element code of steps 1 and 2, shared by the
 * kernels and by the host emulation (veil_cuda_pbs_multibit_emulate). */
#ifndef VEIL_KERNELS_PBS_MULTIBIT_CUH
#define VEIL_KERNELS_PBS_MULTIBIT_CUH

#include "common.cuh"

/* Coefficient t of X^e * P mod X^N + 1, e in [0, 2N) (host and device). */
__host__ __device__ __forceinline__ uint64_t veil_mb_mono(const uint64_t *P, uint32_t N, uint32_t e,
                                                          uint32_t t) {
    const uint32_t u = (t + 2 * N - e) & (2 * N - 1);
    return u < N ? P[u] : (uint64_t)0 - P[u - N];
}

/* d[t], t < 2^g: the monomial exponents of one group, a = its g mask words. */
__host__ __device__ __forceinline__ void veil_mb_exponents(const uint64_t *a, uint32_t g,
                                                           uint32_t lg, uint32_t *d) {
    d[0] = 0;
    for (uint32_t t = 1; t < (1u << g); t++) {
        uint64_t s = 0;
        for (uint32_t b = 0; b < g; b++)
            if ((t >> b) & 1) s += a[b];
        d[t] = veil_dev_ms_coef(s, lg);
    }
}

/* Coefficient j of polynomial r (of (k+1)^2 l) of G = sum_t X^(d_t) GGSW_t;
 * grp: the group's 2^g GGSWs, gw words apart. Exact mod 2^64. */
__host__ __device__ __forceinline__ uint64_t veil_mb_sum_coef(const uint64_t *grp, uint64_t gw,
                                                              uint32_t N, uint64_t r,
                                                              const uint32_t *d, uint32_t g,
                                                              uint32_t j) {
    uint64_t v = 0;
    for (uint32_t t = 0; t < (1u << g); t++)
        v += veil_mb_mono(grp + t * gw + r * N, N, d[t], j);
    return v;
}

/* The twisted digits of accumulator coefficients j and j + N/2 (ties to
 * even), level lev at out[lev * stride], most significant level first. */
__host__ __device__ __forceinline__ void veil_mb_decompose(const uint64_t *A, uint32_t j,
                                                           uint32_t H, double2 w, uint32_t base_log,
                                                           uint32_t l, double2 *out,
                                                           uint64_t stride) {
    uint64_t r0 = veil_gadget_round_even(A[j], base_log, l);
    uint64_t r1 = veil_gadget_round_even(A[j + H], base_log, l);
    for (uint32_t lev = l; lev-- > 0;) { /* digits least significant first */
        const double re = (double)veil_gadget_next(&r0, base_log),
                     im = (double)veil_gadget_next(&r1, base_log);
        out[(uint64_t)lev * stride] = veil_dev_twist(re, im, w);
    }
}

#endif
