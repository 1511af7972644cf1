/* The cluster blind rotation: one thread-block cluster of k+1 blocks per
 * ciphertext (sm_90), block q owning GLWE polynomial q: its accumulator, its
 * l digit transforms and its output product, in its own shared memory. Each
 * step a block transforms only its own digits; the products, which need
 * every block's digits, read the other blocks' through distributed shared
 * memory after one cluster barrier. Against the fused kernel (one block,
 * all k+1 polynomials) each block does 1/(k+1) of the work, on k+1
 * multiprocessors: at batch 1, where one block leaves a multiprocessor
 * issue-bound, the step takes about half the time for k = 1. TFHE-rs splits
 * its CUDA PBS the same way (one block per GLWE polynomial and level).
 *
 * Phases, as in pbs_fused.cuh (the same FFT, twiddles and padded layout):
 *   rotate   acc_q -> digits, twist, bit-reversed, and the first radix-4
 *            pass in registers (one item = 4 coefficients of every level)
 *   passes   the forward radix-4 passes from stage 3, in place
 *   -- cluster barrier --
 *   mac      prod_q = sum over blocks r, levels of digits_r * key[r][q],
 *            read from the other blocks' shared memory, and the first
 *            inverse radix-4 pass in registers
 *   passes   the inverse passes up to the last one
 *   add      the last inverse pass (radix 4, or radix 2 for odd log2(N/2)),
 *            untwisted, rounded and added to acc_q in registers
 * Merging the first and last passes into their neighbours saves three
 * shared-memory round trips and barriers a step. Items of the merged first
 * passes are numbered so that thread x reads coefficient x (consecutive per
 * warp: no bank conflicts, coalesced remote reads) and writes bit-reversed
 * position 4 bitrev(x) + m, which the padding spreads over 8 banks.
 *
 * Digits are double-buffered by step parity: a block writes digits of step
 * s + 2 only after the cluster barrier of step s + 1, which its peers pass
 * only once they have read its digits of step s. So one cluster barrier a
 * step suffices. Steps with a zero rotation are skipped by every block of a
 * cluster (they see the same ciphertext), so the parity flips together. */
#ifndef VEIL_KERNELS_PBS_CLUSTER_CUH
#define VEIL_KERNELS_PBS_CLUSTER_CUH

#include "pbs_fused.cuh"

#define VEIL_CLUSTER_MAX_K1 5 /* k <= 4 */

/* Threads a block and blocks a multiprocessor (the register budget) of the
 * cluster kernel: one thread an item of the merged passes (N/8), within
 * 128..512. Runtime-dims shapes take 512 threads and all registers. */
template <class D> struct veil_cluster_cfg {
    static constexpr uint32_t threads = VEIL_FUSED_THREADS;
    static constexpr int blocks_per_sm = 1;
};
template <uint32_t K, uint32_t LOGN, uint32_t L>
struct veil_cluster_cfg<veil_fused_fixed<K, LOGN, L>> {
    static constexpr uint32_t items = (1u << LOGN) / 8;
    static constexpr uint32_t threads = items < 128 ? 128 : items > 512 ? 512 : items;
    static constexpr uint32_t smem = (1u << LOGN) * 8 + (2 * L + 1) * ((1u << LOGN) / 2 + 8) * 16;
    static constexpr int fit = (int)(232448 / (smem + 1024));
    /* three would fit N = 2048, l = 1 by shared memory, but cap registers at
     * 80, where ptxas spills (CUDA 13, sm_90) */
    static constexpr int blocks_per_sm = fit >= 2 ? 2 : 1;
};

/* One block's shared memory. */
struct veil_cluster_smem {
    uint64_t *acc;   /* N: accumulator polynomial q */
    double2 *dec[2]; /* l polynomials HP apart, by step parity */
    double2 *prod;   /* 1 polynomial */
};

template <class D> VEIL_HD inline veil_cluster_smem veil_cluster_carve(const D &d, void *base) {
    veil_cluster_smem s;
    s.acc = (uint64_t *)base;
    s.dec[0] = (double2 *)(s.acc + d.N);
    s.dec[1] = s.dec[0] + d.l * d.HP;
    s.prod = s.dec[1] + d.l * d.HP;
    return s;
}

inline size_t veil_cluster_smem_bytes(const veil_cuda_params *p) {
    const size_t N = p->poly_size, HP = N / 2 + 8;
    return N * 8 + (2 * (size_t)p->pbs_level + 1) * HP * 16;
}

/* Coefficient offset of element m (0..3) of a merged first-pass item:
 * bit-reversed position 4 bitrev(x) + m holds coefficient x + off(m) H/4. */
VEIL_HD inline uint32_t veil_cluster_off(uint32_t m) {
    return ((m & 1) << 1) | (m >> 1); /* bitrev over 2 bits */
}

/* acc_q = q == k ? X^-b V : 0. */
template <class D, uint32_t T>
VEIL_HD inline void veil_cluster_init(const D &d, uint64_t *A, const uint64_t *V, uint32_t b,
                                      uint32_t q, uint32_t tid) {
    const uint32_t e = (2 * d.N - b) & (2 * d.N - 1);
    VEIL_FUSED_FOR_T(t, d.N, T) {
        A[t] = q == d.k ? veil_fused_mono(V, d.N, e, t) : 0;
    }
}

/* dec[lev] = first radix-4 pass of bit-reversed twist(fold(digit lev of
 * X^a acc - acc)); MB (a multi-bit step): of acc itself, ties to even
 * (pbs_multibit.cuh), a unused. */
template <class D, uint32_t T, bool MB = false>
VEIL_HD inline void veil_cluster_rotate(const D &d, const uint64_t *A, double2 *dec, uint32_t a,
                                        const double2 *tw, const double2 *roots, uint32_t tid) {
    const uint32_t qb = d.H / 4;
    double2 w1, w2, w3;
    veil_fused_twiddles4(d, roots, 1, 0, 0, w1, w2, w3);
    VEIL_FUSED_FOR_T(x, qb, T) {
        const uint32_t b4 = veil_fused_bitrev(x, d.logH - 2) << 2;
        uint64_t r0[4], r1[4];
        double2 w[4];
        VEIL_FUSED_UNROLL
        for (uint32_t m = 0; m < 4; m++) {
            const uint32_t j = x + veil_cluster_off(m) * qb;
            if (MB) {
                r0[m] = veil_gadget_round_even(A[j], d.base_log, d.l);
                r1[m] = veil_gadget_round_even(A[j + d.H], d.base_log, d.l);
            } else {
                r0[m] = veil_gadget_round(veil_fused_mono(A, d.N, a, j) - A[j], d.base_log, d.l);
                r1[m] = veil_gadget_round(veil_fused_mono(A, d.N, a, j + d.H) - A[j + d.H],
                                          d.base_log, d.l);
            }
            w[m] = tw[j];
        }
        VEIL_FUSED_UNROLL
        for (uint32_t i = 0; i < d.l; i++) { /* least significant level first */
            const uint32_t lev = d.l - 1 - i;
            double2 z[4];
            VEIL_FUSED_UNROLL
            for (uint32_t m = 0; m < 4; m++) {
                const double re = (double)veil_gadget_next(&r0[m], d.base_log),
                             im = (double)veil_gadget_next(&r1[m], d.base_log);
                z[m] = veil_dev_twist(re, im, w[m]);
            }
            veil_fused_bfly4(z[0], z[1], z[2], z[3], w1, w2, w3);
            double2 *v = dec + lev * d.HP;
            VEIL_FUSED_UNROLL
            for (uint32_t m = 0; m < 4; m++)
                v[veil_fused_pad(d, b4 + m)] = z[m];
        }
    }
}

/* prod = first inverse radix-4 pass of bit-reversed sum_r dec_r * ggsw[r][q],
 * r over every block's levels; decs[r'] is block r''s digit buffer (its own
 * or a peer's, through distributed shared memory). */
template <class D, uint32_t T>
VEIL_HD inline void veil_cluster_mac(const D &d, const double2 *const *decs, double2 *prod,
                                     const double2 *ggsw, uint32_t q, const double2 *roots,
                                     uint32_t tid) {
    const uint32_t qb = d.H / 4;
    double2 w1, w2, w3;
    veil_fused_twiddles4(d, roots, 1, 0, 1, w1, w2, w3);
    VEIL_FUSED_FOR_T(x, qb, T) {
        const uint32_t b4 = veil_fused_bitrev(x, d.logH - 2) << 2;
        double2 z[4];
        VEIL_FUSED_UNROLL
        for (uint32_t m = 0; m < 4; m++) {
            const uint32_t j = x + veil_cluster_off(m) * qb, pj = veil_fused_pad(d, j);
            double sr = 0, si = 0;
            VEIL_FUSED_UNROLL
            for (uint32_t rb = 0; rb < d.k1; rb++)
                VEIL_FUSED_UNROLL
            for (uint32_t lev = 0; lev < d.l; lev++) {
                const uint32_t r = rb * d.l + lev;
                const double2 a = decs[rb][lev * d.HP + pj];
                const double2 g = ggsw[(r * d.k1 + q) * d.H + j];
                sr += a.x * g.x - a.y * g.y;
                si += a.x * g.y + a.y * g.x;
            }
            z[m].x = sr;
            z[m].y = si;
        }
        veil_fused_bfly4(z[0], z[1], z[2], z[3], w1, w2, w3);
        VEIL_FUSED_UNROLL
        for (uint32_t m = 0; m < 4; m++)
            prod[veil_fused_pad(d, b4 + m)] = z[m];
    }
}

/* The last inverse pass with the accumulation: radix 4 (stages logH-1,
 * logH) when log2(N/2) is even, else radix 2 (stage logH). Either leaves
 * natural order, coefficient j of the item in registers. MB: acc = the
 * product (veil_fused_acc_add's SET). */
template <class D, uint32_t T, bool MB = false>
VEIL_HD inline void veil_cluster_last_add(const D &d, double2 *prod, uint64_t *A, const double2 *tw,
                                          const double2 *roots, uint32_t tid) {
    if ((d.logH & 1) == 0) {
        const uint32_t qb = d.H / 4;
        VEIL_FUSED_FOR_T(x, qb, T) {
            double2 w1, w2, w3;
            veil_fused_twiddles4(d, roots, d.logH - 1, x, 1, w1, w2, w3);
            double2 z[4];
            VEIL_FUSED_UNROLL
            for (uint32_t m = 0; m < 4; m++)
                z[m] = prod[veil_fused_pad(d, x + m * qb)];
            veil_fused_bfly4(z[0], z[1], z[2], z[3], w1, w2, w3);
            VEIL_FUSED_UNROLL
            for (uint32_t m = 0; m < 4; m++)
                veil_fused_acc_add<MB>(d, A, x + m * qb, z[m], tw);
        }
    } else {
        const uint32_t hb = d.H / 2;
        VEIL_FUSED_FOR_T(x, hb, T) {
            double2 w = roots[x];
            w.y = -w.y;
            double2 u = prod[veil_fused_pad(d, x)], y = prod[veil_fused_pad(d, x + hb)];
            veil_fused_bfly2(u, y, w);
            veil_fused_acc_add<MB>(d, A, x, u, tw);
            veil_fused_acc_add<MB>(d, A, x + hb, y, tw);
        }
    }
}

/* Block q's part of the sample extraction into D+1 words (D = in_dim >=
 * kN): mask polynomial q (q < k), or (q = k) the zeros from kN to D and the
 * body at D; o.acc: its polynomial of the accumulator as it is. */
template <class D, uint32_t T>
VEIL_HD inline void veil_cluster_extract(const D &d, const uint64_t *A, uint64_t *out, uint32_t q,
                                         const veil_pbs_out &o, uint32_t tid) {
    const uint32_t in_dim = o.in_dim;
    if (o.acc) {
        VEIL_FUSED_FOR_T(j, d.N, T) {
            out[(size_t)q * d.N + j] = A[j];
        }
        return;
    }
    if (q == d.k) {
        VEIL_FUSED_FOR_T(j, in_dim - d.k * d.N, T) {
            out[(size_t)d.k * d.N + j] = 0;
        }
        if (tid == 0) out[in_dim] = A[0];
        return;
    }
    VEIL_FUSED_FOR_T(j, d.N, T) {
        out[(size_t)q * d.N + j] = j == 0 ? A[0] : (uint64_t)0 - A[d.N - j];
    }
}

/* The kernel's phases on the host for one ciphertext (every block, every
 * thread in turn): veil_cuda_pbs_fused_emulate with VEIL_CUDA_PBS_CLUSTER.
 * Multi-bit (p->grouping >= 2): bsk_fourier is this ciphertext's n/g key
 * bundles, one GGSW each (veil_cuda_pbs_multibit_emulate). */
int veil_cluster_emulate(const veil_cuda_params *p, const double *bsk_fourier, const uint32_t *ms,
                         const uint64_t *lut_poly, uint64_t *out_big);
int veil_cluster_launch(cudaStream_t stream, const veil_cuda_params *p, uint64_t *d_out,
                        const uint32_t *d_ms, const veil_cuda_lut_set *luts, const double2 *d_bsk,
                        const double2 *d_tw, const double2 *d_roots, uint32_t count);
/* How many clusters of this shape the device runs at once (0: the cluster
 * kernel cannot run there: compute capability below 9.0, or its shared
 * memory does not fit), or a negative CUDA error code. */
int veil_cluster_max_active(const veil_cuda_params *p, int device);

#endif
