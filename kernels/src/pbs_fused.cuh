/* The fused blind rotation: one thread block per ciphertext keeps the
 * accumulator, the digit transforms and the products in shared memory for
 * all n steps, with its own radix-2 FFT (no cuFFT, no DRAM traffic per step).
 *
 * The work is written as phases: in a phase no thread reads what another
 * thread of the same phase writes, and phases are separated by a barrier.
 * The device kernel runs each phase with its threads and __syncthreads();
 * veil_cuda_pbs_fused_emulate() runs the same phase functions on the host,
 * one "thread" after another, so the algorithm is tested without a GPU.
 *
 * Transform: the fold-and-twist of veil/fft.h; forward digits are written in
 * bit-reversed order and transformed by decimation in time, which leaves them
 * in natural order to meet the Fourier bootstrapping key (natural order, as
 * cuFFT and FFTW produce it); products are written bit-reversed again for the
 * inverse transform. */
#ifndef VEIL_KERNELS_PBS_FUSED_CUH
#define VEIL_KERNELS_PBS_FUSED_CUH

#include <cmath>
#include <cstring>

#include "common.cuh"

#ifdef __CUDACC__
#define VEIL_HD __host__ __device__
#else
#define VEIL_HD
#endif

#define VEIL_FUSED_THREADS 512

/* The test polynomial of ciphertext c: table index[c] (index NULL: table
 * 0) of polys (N words each). The fused and cluster kernels and the batch
 * emulation (veil_cuda_pbs_batch_emulate) all choose it here. */
VEIL_HD inline const uint64_t *veil_lut_poly_of(const uint64_t *polys, const uint32_t *index,
                                                uint32_t c, uint32_t N) {
    return polys + (size_t)(index ? index[c] : 0) * N;
}

/* Shared Fourier buffers are padded: element p of a polynomial lives at
 * p + (p >> (logH - 3)) and polynomials are HP = H + 8 apart, so that the
 * bit-reversed scatters (8 threads writing p = r + m H/8) hit 8 different
 * 16-byte bank groups instead of one. */
struct veil_fused_dims {
    static constexpr int blocks_per_sm = 2; /* register budget: 64 a thread */
    uint32_t n, k, k1, N, H, logH, l, base_log, HP, pshift;
};

/* The same shape with k, N and l known at compile time: the phase functions
 * are templates over the dims type, and with these every loop has a fixed
 * trip count, every division is a shift and the indices fold. Profiled on
 * an H200 at batch 1 (ncu), the runtime-dims kernel spent 38 M instructions
 * a PBS, five in six of them index arithmetic, not the FFT. The kernel is
 * instantiated for the common shapes (veil_fused_with_dims), the emulator
 * and the other shapes use veil_fused_dims. */
template <uint32_t K, uint32_t LOGN, uint32_t L> struct veil_fused_fixed {
    static constexpr uint32_t k = K, k1 = K + 1, N = 1u << LOGN, H = N / 2, logH = LOGN - 1, l = L,
                              HP = H + 8, pshift = LOGN - 4;
    /* two blocks an SM when their shared memory fits (228 KiB an SM on
     * sm_90), which caps registers at 64; else all 128 */
    static constexpr int blocks_per_sm =
        2 * (k1 * N * 8 + (k1 * L + k1) * HP * 16 + 1024) <= 232448 ? 2 : 1;
    uint32_t n, base_log;
};

/* for (x = tid; x < total; x += VEIL_FUSED_THREADS) with a trip count the
 * compiler sees when total is a constant (it unrolls and drops the bound
 * check when total is a multiple of the block). */
#ifdef __CUDA_ARCH__
#define VEIL_FUSED_UNROLL _Pragma("unroll")
#else
#define VEIL_FUSED_UNROLL
#endif
#define VEIL_FUSED_FOR_T(x, total, T)                                                              \
    VEIL_FUSED_UNROLL                                                                              \
    for (uint32_t it_ = 0, x = tid; it_ < ((total) + (T)-1) / (T); it_++, x += (T))                \
        if ((total) % (T) == 0 || x < (total))
#define VEIL_FUSED_FOR(x, total) VEIL_FUSED_FOR_T(x, total, VEIL_FUSED_THREADS)

template <class D> VEIL_HD inline uint32_t veil_fused_pad(const D &d, uint32_t p) {
    return p + (p >> d.pshift);
}

struct veil_fused_smem {
    uint64_t *acc; /* (k+1) * N */
    double2 *dec;  /* (k+1) * l polynomials, HP apart, padded */
    double2 *prod; /* (k+1) polynomials, HP apart, padded */
};

VEIL_HD inline uint32_t veil_fused_bitrev(uint32_t x, uint32_t bits) {
#ifdef __CUDA_ARCH__
    return __brev(x) >> (32 - bits);
#else
    uint32_t r = 0;
    for (uint32_t b = 0; b < bits; b++) {
        r = (r << 1) | (x & 1);
        x >>= 1;
    }
    return r;
#endif
}

VEIL_HD inline uint64_t veil_fused_mono(const uint64_t *P, uint32_t N, uint32_t e, uint32_t t) {
    const uint32_t u = (t + 2 * N - e) & (2 * N - 1);
    return u < N ? P[u] : (uint64_t)0 - P[u - N];
}

/* acc = (0, ..., 0, X^-b V). */
template <class D>
VEIL_HD inline void veil_fused_init(const D &d, veil_fused_smem &s, const uint64_t *V, uint32_t b,
                                    uint32_t tid) {
    const uint32_t e = (2 * d.N - b) & (2 * d.N - 1);
    VEIL_FUSED_FOR(x, d.k1 * d.N) {
        const uint32_t q = x / d.N, t = x % d.N;
        s.acc[x] = q == d.k ? veil_fused_mono(V, d.N, e, t) : 0;
    }
}

/* dec[q*l + lev][bitrev(j)] = twist(fold(digit lev of X^a acc_q - acc_q)). */
template <class D>
VEIL_HD inline void veil_fused_rotate(const D &d, veil_fused_smem &s, uint32_t a, const double2 *tw,
                                      uint32_t tid) {
    VEIL_FUSED_FOR(x, d.k1 * d.H) {
        const uint32_t q = x / d.H, j = x % d.H;
        const uint64_t *A = s.acc + (uint32_t)q * d.N;
        /* digits taken one at a time, least significant level first: no
         * per-thread arrays (they lived in local memory) */
        uint64_t r0 = veil_gadget_round(veil_fused_mono(A, d.N, a, j) - A[j], d.base_log, d.l);
        uint64_t r1 =
            veil_gadget_round(veil_fused_mono(A, d.N, a, j + d.H) - A[j + d.H], d.base_log, d.l);
        const double2 w = tw[j];
        const uint32_t p = veil_fused_bitrev(j, d.logH);
        VEIL_FUSED_UNROLL
        for (uint32_t i = 0; i < d.l; i++) {
            const uint32_t lev = d.l - 1 - i;
            const double re = (double)veil_gadget_next(&r0, d.base_log),
                         im = (double)veil_gadget_next(&r1, d.base_log);
            s.dec[((uint32_t)q * d.l + lev) * d.HP + veil_fused_pad(d, p)] =
                veil_dev_twist(re, im, w);
        }
    }
}

/* The radix-2 butterfly (u, y) -> (u + w y, u - w y). */
VEIL_HD inline void veil_fused_bfly2(double2 &u, double2 &y, double2 w) {
    double2 t;
    t.x = w.x * y.x - w.y * y.y;
    t.y = w.x * y.y + w.y * y.x;
    const double2 v = u;
    u.x = v.x + t.x;
    u.y = v.y + t.y;
    y.x = v.x - t.x;
    y.y = v.y - t.y;
}

/* Stage st (1..logH) of an in-place radix-2 decimation-in-time FFT over
 * `polys` transforms of size H: roots[t] = exp(-2 pi i t / H), t < H/2;
 * inverse: conjugate roots (unnormalised, as cuFFT and FFTW). */
template <class D, uint32_t T = VEIL_FUSED_THREADS>
VEIL_HD inline void veil_fused_fft_stage(const D &d, double2 *buf, uint32_t polys, uint32_t st,
                                         int inverse, const double2 *roots, uint32_t tid) {
    const uint32_t half = 1u << (st - 1), hb = d.H / 2;
    VEIL_FUSED_FOR_T(x, polys * hb, T) {
        const uint32_t poly = x / hb, b = x % hb;
        const uint32_t pos = b & (half - 1), i0 = ((b >> (st - 1)) << st) + pos, i1 = i0 + half;
        double2 w = roots[pos << (d.logH - st)];
        if (inverse) w.y = -w.y;
        double2 *v = buf + (uint32_t)poly * d.HP;
        const uint32_t p0 = veil_fused_pad(d, i0), p1 = veil_fused_pad(d, i1);
        double2 u = v[p0], y = v[p1];
        veil_fused_bfly2(u, y, w);
        v[p0] = u;
        v[p1] = y;
    }
}

/* The radix-4 butterfly of stages st and st+1 on four elements held in
 * registers, a0..a3 at offsets 0, half, 2 half, 3 half: exactly the
 * operations, in the same order, of two radix-2 stages (so every pass built
 * on it is bit-identical to veil_fused_fft_stage twice). w1 = roots[pos <<
 * (logH - st)], w2 = roots[pos << (logH - st - 1)], w3 = roots[(pos + half)
 * << (logH - st - 1)], conjugated for the inverse. */
VEIL_HD inline void veil_fused_bfly4(double2 &a0, double2 &a1, double2 &a2, double2 &a3, double2 w1,
                                     double2 w2, double2 w3) {
    veil_fused_bfly2(a0, a1, w1); /* stage st */
    veil_fused_bfly2(a2, a3, w1);
    veil_fused_bfly2(a0, a2, w2); /* stage st + 1 */
    veil_fused_bfly2(a1, a3, w3);
}

/* The twiddles of veil_fused_bfly4 for butterfly position pos of stage st. */
template <class D>
VEIL_HD inline void veil_fused_twiddles4(const D &d, const double2 *roots, uint32_t st,
                                         uint32_t pos, int inverse, double2 &w1, double2 &w2,
                                         double2 &w3) {
    const uint32_t half = 1u << (st - 1);
    w1 = roots[pos << (d.logH - st)];
    w2 = roots[pos << (d.logH - st - 1)];
    w3 = roots[(pos + half) << (d.logH - st - 1)];
    if (inverse) {
        w1.y = -w1.y;
        w2.y = -w2.y;
        w3.y = -w3.y;
    }
}

/* Stages st and st+1 in one pass (radix 4): each item keeps the four
 * elements the two radix-2 stages combine in registers, with half the
 * shared-memory traffic and barriers of two stages. Needs
 * st + 1 <= logH. T: the block's threads. */
template <class D, uint32_t T = VEIL_FUSED_THREADS>
VEIL_HD inline void veil_fused_fft_stage2(const D &d, double2 *buf, uint32_t polys, uint32_t st,
                                          int inverse, const double2 *roots, uint32_t tid) {
    const uint32_t half = 1u << (st - 1), qb = d.H / 4;
    VEIL_FUSED_FOR_T(x, polys * qb, T) {
        const uint32_t poly = x / qb, b = x % qb;
        const uint32_t pos = b & (half - 1), i0 = ((b >> (st - 1)) << (st + 1)) + pos;
        double2 w1, w2, w3;
        veil_fused_twiddles4(d, roots, st, pos, inverse, w1, w2, w3);
        double2 *v = buf + (uint32_t)poly * d.HP;
        const uint32_t p0 = veil_fused_pad(d, i0), p1 = veil_fused_pad(d, i0 + half),
                       p2 = veil_fused_pad(d, i0 + 2 * half), p3 = veil_fused_pad(d, i0 + 3 * half);
        double2 a0 = v[p0], a1 = v[p1], a2 = v[p2], a3 = v[p3];
        /* veil_fused_bfly4 written out, storing each half of a result as soon
         * as it is final: with the helper and double2 stores, ptxas (CUDA 13,
         * sm_90) spills 92 bytes in the (1, 11, 1) fused kernel at its 64
         * registers, 32 bytes this way */
        double2 t, u;
        /* stage st: (a0, a1) and (a2, a3) with w1 */
        t.x = w1.x * a1.x - w1.y * a1.y;
        t.y = w1.x * a1.y + w1.y * a1.x;
        u = a0;
        a0.x = u.x + t.x;
        a0.y = u.y + t.y;
        a1.x = u.x - t.x;
        a1.y = u.y - t.y;
        t.x = w1.x * a3.x - w1.y * a3.y;
        t.y = w1.x * a3.y + w1.y * a3.x;
        u = a2;
        a2.x = u.x + t.x;
        a2.y = u.y + t.y;
        a3.x = u.x - t.x;
        a3.y = u.y - t.y;
        /* stage st+1: (a0, a2) with w2, (a1, a3) with w3 */
        t.x = w2.x * a2.x - w2.y * a2.y;
        t.y = w2.x * a2.y + w2.y * a2.x;
        v[p0].x = a0.x + t.x;
        v[p0].y = a0.y + t.y;
        v[p2].x = a0.x - t.x;
        v[p2].y = a0.y - t.y;
        t.x = w3.x * a3.x - w3.y * a3.y;
        t.y = w3.x * a3.y + w3.y * a3.x;
        v[p1].x = a1.x + t.x;
        v[p1].y = a1.y + t.y;
        v[p3].x = a1.x - t.x;
        v[p3].y = a1.y - t.y;
    }
}

#ifdef __CUDACC__
/* The barrier after the radix-4 pass over stages st, st+1. A pass whose
 * butterflies span at most 128 elements (2^(st+1) <= 128) has each warp read
 * and write one block of 128 consecutive elements: thread x (32 consecutive
 * per warp, 32 | H/4) covers ((x >> (st-1)) << (st+1)) + (x & (2^(st-1)-1))
 * plus 0..3 times 2^(st-1), which for st = 1, 3, 5 is the block 128 (x/32)
 * of its polynomial. So between two such passes (after st = 1 and 3; the
 * next pass, st + 2 <= 5 < logH, is one too) the warp only waits for itself.
 * Every other phase boundary is a block barrier. */
__device__ __forceinline__ void veil_fused_stage_barrier(uint32_t st) {
    if (st <= 3)
        __syncwarp();
    else
        __syncthreads();
}
#endif

/* prod[q][bitrev(j)] = sum_r dec[r][j] * ggsw[r][q][j]. */
template <class D>
VEIL_HD inline void veil_fused_mac(const D &d, veil_fused_smem &s, const double2 *ggsw,
                                   uint32_t tid) {
    const uint32_t rows = d.k1 * d.l;
    VEIL_FUSED_FOR(x, d.k1 * d.H) {
        const uint32_t q = x / d.H, j = x % d.H;
        double sr = 0, si = 0;
        VEIL_FUSED_UNROLL
        for (uint32_t r = 0; r < rows; r++) {
            const double2 a = s.dec[(uint32_t)r * d.HP + veil_fused_pad(d, j)];
            const double2 b = ggsw[((uint32_t)r * d.k1 + q) * d.H + j];
            sr += a.x * b.x - a.y * b.y;
            si += a.x * b.y + a.y * b.x;
        }
        double2 z;
        z.x = sr;
        z.y = si;
        s.prod[(uint32_t)q * d.HP + veil_fused_pad(d, veil_fused_bitrev(j, d.logH))] = z;
    }
}

/* A[j], A[j + H] += round(untwist(v) / H): one product coefficient pair
 * back to the torus (the fused and cluster kernels' accumulation); SET: =
 * instead (the multi-bit step, whose key bundle encrypts a monomial: the
 * product is the new accumulator). */
template <bool SET = false, class D>
VEIL_HD inline void veil_fused_acc_add(const D &d, uint64_t *A, uint32_t j, double2 v,
                                       const double2 *tw) {
    const double2 u = veil_dev_untwist(v, tw[j], 1.0 / (double)d.H);
    const uint64_t re = veil_dev_f64_to_torus(u.x), im = veil_dev_f64_to_torus(u.y);
    A[j] = SET ? re : A[j] + re;
    A[j + d.H] = SET ? im : A[j + d.H] + im;
}

/* acc += round(untwist(prod) / H). */
template <class D>
VEIL_HD inline void veil_fused_add(const D &d, veil_fused_smem &s, const double2 *tw,
                                   uint32_t tid) {
    VEIL_FUSED_FOR(x, d.k1 * d.H) {
        const uint32_t q = x / d.H, j = x % d.H;
        veil_fused_acc_add(d, s.acc + (uint32_t)q * d.N, j,
                           s.prod[(uint32_t)q * d.HP + veil_fused_pad(d, j)], tw);
    }
}

/* out: D+1 words (D = in_dim >= kN): the kN mask words, zeros up to D, the
 * body at D (the ciphertext under the master key, veil/tfhe.h key sets);
 * o.acc: the (k+1) N words of the accumulator as they are. */
template <class D>
VEIL_HD inline void veil_fused_extract(const D &d, const veil_fused_smem &s, uint64_t *out,
                                       const veil_pbs_out &o, uint32_t tid) {
    if (o.acc) {
        VEIL_FUSED_FOR(w, d.k1 * d.N) {
            out[w] = s.acc[w];
        }
        return;
    }
    const uint32_t in_dim = o.in_dim;
    VEIL_FUSED_FOR(w, in_dim + 1) {
        uint64_t v;
        if (w == in_dim) {
            v = s.acc[(uint32_t)d.k * d.N];
        } else if (w >= d.k * d.N) {
            v = 0;
        } else {
            const uint32_t q = w / d.N, j = w % d.N;
            const uint64_t *A = s.acc + (uint32_t)q * d.N;
            v = j == 0 ? A[0] : (uint64_t)0 - A[d.N - j];
        }
        out[w] = v;
    }
}

VEIL_HD inline veil_fused_dims veil_fused_dims_of(const veil_cuda_params *p) {
    veil_fused_dims d;
    d.n = p->lwe_dim;
    d.k = p->glwe_dim;
    d.k1 = p->glwe_dim + 1;
    d.N = p->poly_size;
    d.H = p->poly_size / 2;
    d.logH = 0;
    while ((1u << d.logH) < d.H)
        d.logH++;
    d.l = p->pbs_level;
    d.base_log = p->pbs_base_log;
    d.HP = d.H + 8;
    d.pshift = d.logH - 3; /* N >= 256: logH >= 7 */
    return d;
}

/* Shared memory of one block, bytes. */
inline size_t veil_fused_smem_bytes(const veil_cuda_params *p) {
    const size_t k1 = p->glwe_dim + 1, N = p->poly_size, HP = N / 2 + 8;
    return k1 * N * 8 + k1 * p->pbs_level * HP * 16 + k1 * HP * 16;
}

/* Calls f with the shape as compile-time constants when it is one of the
 * instantiated ones (k = 1, N = 2048, l = 1 or 2: the 2_2 sets and the
 * 4-bit NN sets; k = 2, N = 1024, l = 1: the 3-bit NN sets), else with
 * runtime dims (N = 4096 fully unrolled spills at 128
 * registers). The kernels and their host emulations take the same path. */
template <uint32_t K, uint32_t LOGN, uint32_t L, class F>
inline bool veil_fused_fixed_as(const veil_cuda_params *p, F &f, int *r) {
    if (p->glwe_dim != K || p->poly_size != (1u << LOGN) || p->pbs_level != L) return false;
    veil_fused_fixed<K, LOGN, L> d;
    d.n = p->lwe_dim;
    d.base_log = p->pbs_base_log;
    *r = f(d);
    return true;
}

template <class F> inline int veil_fused_with_dims(const veil_cuda_params *p, F f) {
    int r = 0;
    if (veil_fused_fixed_as<1, 11, 1>(p, f, &r) || veil_fused_fixed_as<1, 11, 2>(p, f, &r) ||
        veil_fused_fixed_as<2, 10, 1>(p, f, &r))
        return r;
    return f(veil_fused_dims_of(p));
}

/* Twist factors exp(i pi j / N) (j < N/2) and roots exp(-2 pi i t / (N/2))
 * (t < N/4), on the host. */
void veil_fused_host_tables(uint32_t N, double2 *tw, double2 *roots);
/* Host-built tables: roots exp(-2 pi i t / H) (t < H/2). */
int veil_fused_make_roots(cudaStream_t stream, uint32_t N, double2 **d_roots);
int veil_fused_launch(cudaStream_t stream, const veil_cuda_params *p, uint64_t *d_out,
                      const uint32_t *d_ms, const veil_cuda_lut_set *luts, const double2 *d_bsk,
                      const double2 *d_tw, const double2 *d_roots, uint32_t count);

#endif
