/* The negacyclic FFT of veil/fft.h, written once for a vector of VEIL_W
 * doubles (GCC/Clang vector extensions). Included by fft_portable.c (2),
 * fft_avx2.c (4) and fft_avx512.c (8) after defining VEIL_W and
 * VEIL_FFT_NAME(x); each of those files is compiled with its own target
 * flags, and only called after a CPU feature check (fft.c). The algorithm
 * and the tables are described in fft_internal.h. Complex values are
 * interleaved (re, im) in memory; a vector holds VEIL_W / 2 of them, or, in
 * the first and last passes, VEIL_W real or imaginary parts (split form). */
#include "fft_internal.h"
#include "veil/gadget.h"

#include <string.h>

#define W VEIL_W
typedef double vd __attribute__((vector_size(8 * W)));
typedef int64_t vi __attribute__((vector_size(8 * W)));
typedef uint64_t vu __attribute__((vector_size(8 * W)));

static inline vd ld(const double *p) {
    vd v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void st(double *p, vd v) {
    memcpy(p, &v, sizeof v);
}
static inline vi ldi(const int64_t *p) {
    vi v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline vu ldu(const uint64_t *p) {
    vu v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void stu(uint64_t *p, vu v) {
    memcpy(p, &v, sizeof v);
}
static inline vd splat(double x) {
    return (vd){0} + x;
}

#if W == 8
#define SWAP(x) __builtin_shufflevector(x, x, 1, 0, 3, 2, 5, 4, 7, 6)
#define DUPRE(x) __builtin_shufflevector(x, x, 0, 0, 2, 2, 4, 4, 6, 6)
#define DUPIM(x) __builtin_shufflevector(x, x, 1, 1, 3, 3, 5, 5, 7, 7)
#elif W == 4
#define SWAP(x) __builtin_shufflevector(x, x, 1, 0, 3, 2)
#define DUPRE(x) __builtin_shufflevector(x, x, 0, 0, 2, 2)
#define DUPIM(x) __builtin_shufflevector(x, x, 1, 1, 3, 3)
#elif W == 2
#define SWAP(x) __builtin_shufflevector(x, x, 1, 0)
#define DUPRE(x) __builtin_shufflevector(x, x, 0, 0)
#define DUPIM(x) __builtin_shufflevector(x, x, 1, 1)
#else
#error "VEIL_W must be 2, 4 or 8"
#endif

/* (-1, 1, -1, 1, ...): multiplying by it is exact. */
static inline vd alt(void) {
    vd a;
    for (int i = 0; i < W; i++)
        a[i] = (i & 1) ? 1.0 : -1.0;
    return a;
}

/* x * w and x * conj(w), w given as (re, re, ...) and (-im, im, ...). */
static inline vd cmul(vd x, vd wr, vd wi) {
    return x * wr + SWAP(x) * wi;
}
static inline vd cmulc(vd x, vd wr, vd wi) {
    return x * wr - SWAP(x) * wi;
}
/* x * (-i) = (im, -re); x * i = (-im, re) */
static inline vd mul_neg_i(vd x) {
    return SWAP(x) * -alt();
}
static inline vd mul_i(vd x) {
    return SWAP(x) * alt();
}

/* int64 -> double, correctly rounded (the high half is exact, the low half
 * exact, one rounding in the sum), the same on every path. */
static inline vd cvt_i64(vi x) {
#if defined(__AVX512DQ__)
    return __builtin_convertvector(x, vd);
#else
    const vu u = (vu)x;
    const vu hi_bits = ((u >> 32) ^ 0x80000000u) | 0x4530000000000000u; /* 2^84 + (hi+2^31) 2^32 */
    const vu lo_bits = (u & 0xffffffffu) | 0x4330000000000000u;         /* 2^52 + lo */
    const vd hi = (vd)hi_bits - splat(0x1p84 + 0x1p63);
    const vd lo = (vd)lo_bits - splat(0x1p52);
    return hi + lo;
#endif
}

#if defined(__AVX2__) && (W == 4 || W == 8)
#include <immintrin.h>
/* x86 variable shifts give 0 for any count above 63 (negative counts
 * included): exactly the semantics f64_to_torus needs, without the clamps. */
#if W == 8
#define SLLV(x, c) ((vu)_mm512_sllv_epi64((__m512i)(x), (__m512i)(c)))
#define SRLV(x, c) ((vu)_mm512_srlv_epi64((__m512i)(x), (__m512i)(c)))
#else
#define SLLV(x, c) ((vu)_mm256_sllv_epi64((__m256i)(x), (__m256i)(c)))
#define SRLV(x, c) ((vu)_mm256_srlv_epi64((__m256i)(x), (__m256i)(c)))
#endif
#else
static inline vu sllv_c(vu x, vu c) {
    return (x << (c & 63)) & (vu)(c < 64);
}
static inline vu srlv_c(vu x, vu c) {
    return (x >> (c & 63)) & (vu)(c < 64);
}
#define SLLV(x, c) sllv_c(x, c)
#define SRLV(x, c) srlv_c(x, c)
#endif

/* round(v) mod 2^64, ties away from zero, for any finite v: |v| = mant *
 * 2^sh; sh >= 0: mant << sh (0 from sh = 64 on); sh < 0: (mant + half) >>
 * -sh, 0 from -sh = 54 on. The sign is applied mod 2^64. */
static inline vu f64_to_torus(vd v) {
    const vu bits = (vu)v;
    const vu sh = ((bits >> 52) & 0x7ff) - 1075; /* mod 2^64: "negative" is huge */
    const vu mant = (bits & 0xfffffffffffffu) | 0x10000000000000u;
    const vu one = (vu){0} + 1;
    const vu mag = SLLV(mant, sh) | SRLV(mant + SLLV(one, (vu){0} - sh - 1), (vu){0} - sh);
    const vu neg = (vu){0} - (bits >> 63);
    return (mag ^ neg) - neg;
}

/* ---- transposes between the split form (8 vectors over W lanes) and W
 * groups of 8 doubles (4 interleaved complex values) ---------------------- */
#if W == 8
static inline void tr_block(vd r[8]) {
    vd t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = __builtin_shufflevector(r[i], r[i + 1], 0, 8, 2, 10, 4, 12, 6, 14);
        t[i + 1] = __builtin_shufflevector(r[i], r[i + 1], 1, 9, 3, 11, 5, 13, 7, 15);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = __builtin_shufflevector(t[i], t[i + 2], 0, 1, 8, 9, 4, 5, 12, 13);
        u[i + 2] = __builtin_shufflevector(t[i], t[i + 2], 2, 3, 10, 11, 6, 7, 14, 15);
        u[i + 1] = __builtin_shufflevector(t[i + 1], t[i + 3], 0, 1, 8, 9, 4, 5, 12, 13);
        u[i + 3] = __builtin_shufflevector(t[i + 1], t[i + 3], 2, 3, 10, 11, 6, 7, 14, 15);
    }
    /* u[0]: rows 0-3 at cols 0, 4; u[1]: cols 1, 5; u[2]: 2, 6; u[3]: 3, 7 */
    for (int c = 0; c < 4; c++) {
        r[c] = __builtin_shufflevector(u[c], u[c + 4], 0, 1, 2, 3, 8, 9, 10, 11);
        r[c + 4] = __builtin_shufflevector(u[c], u[c + 4], 4, 5, 6, 7, 12, 13, 14, 15);
    }
}
#elif W == 4
static inline void tr_block(vd r[4]) {
    vd t0 = __builtin_shufflevector(r[0], r[1], 0, 4, 2, 6);
    vd t1 = __builtin_shufflevector(r[0], r[1], 1, 5, 3, 7);
    vd t2 = __builtin_shufflevector(r[2], r[3], 0, 4, 2, 6);
    vd t3 = __builtin_shufflevector(r[2], r[3], 1, 5, 3, 7);
    r[0] = __builtin_shufflevector(t0, t2, 0, 1, 4, 5);
    r[2] = __builtin_shufflevector(t0, t2, 2, 3, 6, 7);
    r[1] = __builtin_shufflevector(t1, t3, 0, 1, 4, 5);
    r[3] = __builtin_shufflevector(t1, t3, 2, 3, 6, 7);
}
#else
static inline void tr_block(vd r[2]) {
    vd t0 = __builtin_shufflevector(r[0], r[1], 0, 2);
    vd t1 = __builtin_shufflevector(r[0], r[1], 1, 3);
    r[0] = t0;
    r[1] = t1;
}
#endif

/* q[0..7] (split, lane L = group L) -> 8 doubles at dst + 8 rev[L] */
static inline void scatter_groups(vd q[8], double *dst, const uint32_t *rev) {
    for (int g = 0; g < 8; g += W) {
        tr_block(q + g);
        for (int L = 0; L < W; L++)
            st(dst + 8 * (size_t)rev[L] + g, q[g + L]);
    }
}
/* the inverse: 8 doubles from src + 8 rev[L] -> q[0..7] split */
static inline void gather_groups(vd q[8], const double *src, const uint32_t *rev) {
    for (int g = 0; g < 8; g += W) {
        for (int L = 0; L < W; L++)
            q[g + L] = ld(src + 8 * (size_t)rev[L] + g);
        tr_block(q + g);
    }
}

/* ---- radix passes on interleaved data (m >= 4 complex >= W / 2) ---------- */
static void dit4(double *x, uint32_t h, uint32_t m, const double *tw) {
    const double *w1r = tw, *w1i = tw + 2 * m, *w2r = tw + 4 * m, *w2i = tw + 6 * m;
    for (uint32_t b = 0; b < h; b += 4 * m) {
        double *p = x + 2 * (size_t)b;
        for (uint32_t k = 0; k < 2 * m; k += W) {
            const vd wr1 = ld(w1r + k), wi1 = ld(w1i + k), wr2 = ld(w2r + k), wi2 = ld(w2i + k);
            const vd x0 = ld(p + k), x1 = ld(p + 2 * m + k), x2 = ld(p + 4 * m + k),
                     x3 = ld(p + 6 * m + k);
            const vd t1 = cmul(x1, wr1, wi1), t3 = cmul(x3, wr1, wi1);
            const vd a0 = x0 + t1, a1 = x0 - t1, a2 = x2 + t3, a3 = x2 - t3;
            const vd t2 = cmul(a2, wr2, wi2), t4 = mul_neg_i(cmul(a3, wr2, wi2));
            st(p + k, a0 + t2);
            st(p + 2 * m + k, a1 + t4);
            st(p + 4 * m + k, a0 - t2);
            st(p + 6 * m + k, a1 - t4);
        }
    }
}

static void dif4(double *x, uint32_t h, uint32_t m, const double *tw) {
    const double *w1r = tw, *w1i = tw + 2 * m, *w2r = tw + 4 * m, *w2i = tw + 6 * m;
    for (uint32_t b = 0; b < h; b += 4 * m) {
        double *p = x + 2 * (size_t)b;
        for (uint32_t k = 0; k < 2 * m; k += W) {
            const vd wr1 = ld(w1r + k), wi1 = ld(w1i + k), wr2 = ld(w2r + k), wi2 = ld(w2i + k);
            const vd x0 = ld(p + k), x1 = ld(p + 2 * m + k), x2 = ld(p + 4 * m + k),
                     x3 = ld(p + 6 * m + k);
            const vd a0 = x0 + x2, a2 = cmulc(x0 - x2, wr2, wi2);
            const vd a1 = x1 + x3, a3 = mul_i(cmulc(x1 - x3, wr2, wi2));
            st(p + k, a0 + a1);
            st(p + 2 * m + k, cmulc(a0 - a1, wr1, wi1));
            st(p + 4 * m + k, a2 + a3);
            st(p + 6 * m + k, cmulc(a2 - a3, wr1, wi1));
        }
    }
}

/* the stage of length h, m = h / 2 */
static void dit2(double *x, uint32_t h, const double *tw) {
    const double *wr = tw, *wi = tw + h;
    for (uint32_t k = 0; k < h; k += W) {
        const vd x0 = ld(x + k), t = cmul(ld(x + h + k), ld(wr + k), ld(wi + k));
        st(x + k, x0 + t);
        st(x + h + k, x0 - t);
    }
}

static void dif2(double *x, uint32_t h, const double *tw) {
    const double *wr = tw, *wi = tw + h;
    for (uint32_t k = 0; k < h; k += W) {
        const vd x0 = ld(x + k), x1 = ld(x + h + k);
        st(x + k, x0 + x1);
        st(x + h + k, cmulc(x0 - x1, ld(wr + k), ld(wi + k)));
    }
}

/* The first forward pass on W groups: fold + twist of the real parts ar[s]
 * and imaginary parts ai[s] at j = off[s] + j0, the first two radix-2
 * stages, the bit-reversed scatter. */
static inline void first_pass(const veil_fft_tables *t, uint32_t j0, const vd ar[4], const vd ai[4],
                              double *out) {
    const uint32_t h = t->h;
    const uint32_t off[4] = {0, h / 2, h / 4, 3 * (h / 4)};
    vd ur[4], ui[4];
    for (int s = 0; s < 4; s++) {
        const uint32_t j = off[s] + j0;
        const vd c = ld(t->twist_re + j), sn = ld(t->twist_im + j);
        ur[s] = ar[s] * c - ai[s] * sn;
        ui[s] = ar[s] * sn + ai[s] * c;
    }
    const vd a0r = ur[0] + ur[1], a0i = ui[0] + ui[1], a1r = ur[0] - ur[1], a1i = ui[0] - ui[1],
             a2r = ur[2] + ur[3], a2i = ui[2] + ui[3], a3r = ur[2] - ur[3], a3i = ui[2] - ui[3];
    vd y[8] = {a0r + a2r, a0i + a2i, a1r + a3i, a1i - a3r,
               a0r - a2r, a0i - a2i, a1r - a3i, a1i + a3r};
    scatter_groups(y, out, t->rev4 + j0);
}

/* the passes after the first */
static void forward_rest(const veil_fft_tables *t, double *out) {
    for (uint32_t p = 0, m = 4; p < t->n_radix4; p++, m *= 4)
        dit4(out, t->h, m, t->tw + t->tw_off[p]);
    if (t->last_radix2) dit2(out, t->h, t->tw + t->tw_off[t->n_radix4]);
}

static void VEIL_FFT_NAME(forward_i64)(const veil_fft_tables *t, const int64_t *in, double *out) {
    const uint32_t h = t->h, q = h / 4;
    const uint32_t off[4] = {0, h / 2, h / 4, 3 * (h / 4)};
    for (uint32_t j0 = 0; j0 < q; j0 += W) {
        vd ar[4], ai[4];
        for (int s = 0; s < 4; s++) {
            ar[s] = cvt_i64(ldi(in + off[s] + j0));
            ai[s] = cvt_i64(ldi(in + h + off[s] + j0));
        }
        first_pass(t, j0, ar, ai, out);
    }
    forward_rest(t, out);
}

/* A gadget digit (|d| <= 2^(B-1)) as a double: exact. For B <= 51 two
 * operations (the 1.5 * 2^52 trick, exact for |d| < 2^51), else cvt_i64;
 * the same value either way, so the same bits as cvt_i64 of stored digits. */
static inline vd digit_f64(vu d, uint32_t base_log) {
    if (base_log > 51) return cvt_i64((vi)d);
    return (vd)(d + 0x4338000000000000u) - splat(0x1.8p52);
}

/* The transforms of the `levels` digit polynomials of x (veil/gadget.h, most
 * significant level first, at out + lv N), without storing the digits: each
 * first-pass group of x is decomposed in registers, all levels at once, and
 * fed to first_pass per level. The same values enter the same operations
 * as decompose + forward_i64: the same bits. */
static void VEIL_FFT_NAME(forward_digits)(const veil_fft_tables *t, const uint64_t *x,
                                          uint32_t base_log, uint32_t levels, double *out) {
    const uint32_t h = t->h, q = h / 4, n = t->n, bits = base_log * levels;
    const uint32_t off[4] = {0, h / 2, h / 4, 3 * (h / 4)};
    for (uint32_t j0 = 0; j0 < q; j0 += W) {
        vu r[8];
        for (int s = 0; s < 4; s++) {
            const vu xr = ldu(x + off[s] + j0), xi = ldu(x + h + off[s] + j0);
            VEIL_GADGET_INIT(r[2 * s], xr, bits);
            VEIL_GADGET_INIT(r[2 * s + 1], xi, bits);
        }
        for (uint32_t lv = levels; lv-- > 0;) {
            vd ar[4], ai[4];
            for (int s = 0; s < 4; s++) {
                /* one level: the digit is INIT's balanced value itself
                 * (STEP would keep it and leave a rest of 0: veil/gadget.h),
                 * which saves the step, half the decomposition's work */
                vu dr = r[2 * s], di = r[2 * s + 1];
                if (levels > 1) {
                    VEIL_GADGET_STEP(r[2 * s], dr, base_log);
                    VEIL_GADGET_STEP(r[2 * s + 1], di, base_log);
                }
                ar[s] = digit_f64(dr, base_log);
                ai[s] = digit_f64(di, base_log);
            }
            first_pass(t, j0, ar, ai, out + (size_t)lv * n);
        }
    }
    for (uint32_t lv = 0; lv < levels; lv++)
        forward_rest(t, out + (size_t)lv * n);
}

/* The inverse up to its last pass, in place; then the last pass hands each
 * group of output values to `emit`. mode 0: out[] = values (doubles);
 * mode 1: acc[] += round(values) mod 2^64. */
static inline void backward(const veil_fft_tables *t, double *x, double *out, uint64_t *acc,
                            int mode) {
    const uint32_t h = t->h, q = h / 4;
    if (t->last_radix2) dif2(x, h, t->tw + t->tw_off[t->n_radix4]);
    for (uint32_t p = t->n_radix4; p-- > 0;)
        dif4(x, h, 4u << (2 * p), t->tw + t->tw_off[p]);
    const uint32_t off[4] = {0, h / 2, h / 4, 3 * (h / 4)};
    for (uint32_t j0 = 0; j0 < q; j0 += W) {
        vd g[8];
        gather_groups(g, x, t->rev4 + j0);
        const vd a0r = g[0] + g[4], a0i = g[1] + g[5], a2r = g[0] - g[4], a2i = g[1] - g[5];
        const vd a1r = g[2] + g[6], a1i = g[3] + g[7], dr = g[2] - g[6], di = g[3] - g[7];
        /* a3 = i (x1 - x3) = (-di, dr) */
        const vd yr[4] = {a0r + a1r, a0r - a1r, a2r - di, a2r + di};
        const vd yi[4] = {a0i + a1i, a0i - a1i, a2i + dr, a2i - dr};
        for (int s = 0; s < 4; s++) {
            const uint32_t j = off[s] + j0;
            /* the untwist with the 1/h scale folded in (a power of two:
             * the same bits as scaling after) */
            const vd c = ld(t->untwist_re + j), sn = ld(t->untwist_im + j);
            const vd re = yr[s] * c + yi[s] * sn, im = yi[s] * c - yr[s] * sn;
            if (mode == 0) {
                st(out + j, re);
                st(out + h + j, im);
            } else {
                stu(acc + j, ldu(acc + j) + f64_to_torus(re));
                stu(acc + h + j, ldu(acc + h + j) + f64_to_torus(im));
            }
        }
    }
}

static void VEIL_FFT_NAME(backward_f64)(const veil_fft_tables *t, double *in, double *out) {
    backward(t, in, out, NULL, 0);
}

static void VEIL_FFT_NAME(backward_add_torus)(const veil_fft_tables *t, double *in, uint64_t *acc) {
    backward(t, in, NULL, acc, 1);
}

static void VEIL_FFT_NAME(mac)(double *acc, const double *a, const double *b, uint32_t n) {
    const vd sg = alt();
    for (uint32_t j = 0; j < n; j += W) {
        /* b streams from memory (the Fourier bootstrapping key, read once
         * per PBS, is larger than the caches): ask 4 KiB ahead, past the end
         * of this polynomial into the next one, which the PBS reads next.
         * Measured: PBS 9.5 -> 8.3 ms at N = 2048 on an AMD EPYC (Zen 5). */
        __builtin_prefetch(b + j + 512, 0, 0);
        const vd x = ld(a + j), y = ld(b + j);
        st(acc + j, ld(acc + j) + (x * DUPRE(y) + (SWAP(x) * DUPIM(y)) * sg));
    }
}

/* ---- the rest of the PBS loop ------------------------------------------ */

/* The digits of one vector (or one scalar: the same macros) v, stored at
 * digits + j N, level j = levels-1 (least significant) down to 0; INIT is
 * veil/gadget.h's start state: VEIL_GADGET_INIT (ties up, the classic CMux's
 * rotated differences, as the CUDA kernels) or VEIL_GADGET_INIT_EVEN (the
 * multi-bit external product's accumulator). */
#define DECOMPOSE_ONE(INIT, T, v, dst, N, B, levels, bits)                                         \
    do {                                                                                           \
        T r_;                                                                                      \
        INIT(r_, (v), (bits));                                                                     \
        for (uint32_t j_ = (levels); j_-- > 0;) {                                                  \
            T d_;                                                                                  \
            VEIL_GADGET_STEP(r_, d_, (B));                                                         \
            STORE_##T((dst) + (size_t)j_ * (N), d_);                                               \
        }                                                                                          \
    } while (0)
/* Every coefficient of src (may be digits itself: each element is read
 * before any level of it is written). */
#define DECOMPOSE_POLY(INIT, src, N, B, levels, digits)                                            \
    do {                                                                                           \
        const uint32_t bits_ = (B) * (levels);                                                     \
        uint32_t t_ = 0;                                                                           \
        for (; t_ + W <= (N); t_ += W) {                                                           \
            const vu v_ = ldu((src) + t_);                                                         \
            DECOMPOSE_ONE(INIT, vu, v_, (digits) + t_, (N), (B), (levels), bits_);                 \
        }                                                                                          \
        for (; t_ < (N); t_++)                                                                     \
            DECOMPOSE_ONE(INIT, uint64_t, (src)[t_], (digits) + t_, (N), (B), (levels), bits_);    \
    } while (0)
#define STORE_vu(p, x) stu((uint64_t *)(p), (x))
#define STORE_uint64_t(p, x) (*(p) = (int64_t)(x))

/* diff = X^a * src - src, a in [0, 2N): two branch-free runs. m = 0 or all
 * ones: (v ^ m) - m is v or -v. For t < e, X^a wraps src[t - e + N] around
 * once more (one more sign); pointer offsets keep the loads contiguous. */
static void VEIL_FFT_NAME(rotate_sub)(const uint64_t *src, uint32_t N, uint32_t a, uint64_t *diff) {
    const uint64_t m_hi = a >= N ? ~(uint64_t)0 : 0, m_lo = ~m_hi;
    const uint32_t e = a >= N ? a - N : a;
    const uint64_t *wrap = src + (N - e), *sh = src - e; /* sh + t: src[t - e], t >= e */
    uint32_t t = 0;
    for (; t + W <= e; t += W)
        stu(diff + t, ((ldu(wrap + t) ^ m_lo) - m_lo) - ldu(src + t));
    for (; t < e; t++)
        diff[t] = ((wrap[t] ^ m_lo) - m_lo) - src[t];
    for (; t + W <= N; t += W)
        stu(diff + t, ((ldu(sh + t) ^ m_hi) - m_hi) - ldu(src + t));
    for (; t < N; t++)
        diff[t] = ((sh[t] ^ m_hi) - m_hi) - src[t];
}

static void VEIL_FFT_NAME(decompose)(const uint64_t *src, uint32_t N, uint32_t B, uint32_t levels,
                                     int64_t *digits) {
    DECOMPOSE_POLY(VEIL_GADGET_INIT_EVEN, src, N, B, levels, digits);
}

/* The digits of X^a * src - src: the difference goes to level 0's slot and
 * is decomposed in place, ties up like the CMux everywhere (forward_digits,
 * the CUDA kernels). The FFTW path's route; veil paths use forward_digits. */
static void VEIL_FFT_NAME(decompose_rotated)(const uint64_t *src, uint32_t N, uint32_t a,
                                             uint32_t B, uint32_t levels, int64_t *digits) {
    VEIL_FFT_NAME(rotate_sub)(src, N, a, (uint64_t *)digits);
    DECOMPOSE_POLY(VEIL_GADGET_INIT, (const uint64_t *)digits, N, B, levels, digits);
}

/* One pass over the spectrum for every output column: the digit spectra
 * (rows x N doubles, in cache) are read once per element and each GGSW
 * polynomial streams once, in order; no zeroing pass. */
static void VEIL_FFT_NAME(mac_ggsw)(double *acc, const double *fd, const double *ggsw,
                                    uint32_t rows, uint32_t k1, uint32_t n) {
    const vd sg = alt();
    if (k1 == 2) {
        /* k = 1, the usual GLWE dimension: both columns side by side, so each
         * digit vector and its swapped, signed copy serve the two:
         * SWAP(x) DUPIM(y) sg = (SWAP(x) sg) DUPIM(y) exactly (sg only flips
         * signs), the same bits as the general loop and veil_fft_mac. */
        for (uint32_t j = 0; j < n; j += W) {
            vd s0 = splat(0.0), s1 = splat(0.0);
            for (uint32_t r = 0; r < rows; r++) {
                const double *b = ggsw + (size_t)r * 2 * n + j;
                __builtin_prefetch(b + 512, 0, 0);
                __builtin_prefetch(b + n + 512, 0, 0);
                const vd x = ld(fd + (size_t)r * n + j), xs = SWAP(x) * sg;
                const vd y0 = ld(b), y1 = ld(b + n);
                s0 = s0 + (x * DUPRE(y0) + xs * DUPIM(y0));
                s1 = s1 + (x * DUPRE(y1) + xs * DUPIM(y1));
            }
            st(acc + j, s0);
            st(acc + n + j, s1);
        }
        return;
    }
    for (uint32_t j = 0; j < n; j += W) {
        for (uint32_t q = 0; q < k1; q++) {
            vd s = splat(0.0);
            for (uint32_t r = 0; r < rows; r++) {
                const double *b = ggsw + ((size_t)r * k1 + q) * n + j;
                /* the key streams from memory: ask 4 KiB ahead (see mac) */
                __builtin_prefetch(b + 512, 0, 0);
                const vd x = ld(fd + (size_t)r * n + j), y = ld(b);
                s = s + (x * DUPRE(y) + (SWAP(x) * DUPIM(y)) * sg);
            }
            st(acc + (size_t)q * n + j, s);
        }
    }
}

static void VEIL_FFT_NAME(ks_rows)(uint64_t *out, const uint64_t *const *rows,
                                   const uint64_t *digits, uint32_t count, uint32_t width) {
    uint32_t t = 0;
    for (; t + W <= width; t += W) {
        vu s = ldu(out + t);
        for (uint32_t j = 0; j < count; j++)
            s -= ldu(rows[j] + t) * digits[j];
        stu(out + t, s);
    }
    for (; t < width; t++) {
        uint64_t s = out[t];
        for (uint32_t j = 0; j < count; j++)
            s -= rows[j][t] * digits[j];
        out[t] = s;
    }
}

const veil_fft_kernels VEIL_FFT_KERNELS = {
    /* .forward_i64        = */ VEIL_FFT_NAME(forward_i64),
    /* .backward_add_torus = */ VEIL_FFT_NAME(backward_add_torus),
    /* .backward_f64       = */ VEIL_FFT_NAME(backward_f64),
    /* .mac                = */ VEIL_FFT_NAME(mac),
    /* .decompose_rotated  = */ VEIL_FFT_NAME(decompose_rotated),
    /* .decompose          = */ VEIL_FFT_NAME(decompose),
    /* .mac_ggsw           = */ VEIL_FFT_NAME(mac_ggsw),
    /* .ks_rows            = */ VEIL_FFT_NAME(ks_rows),
    /* .rotate_sub         = */ VEIL_FFT_NAME(rotate_sub),
    /* .forward_digits     = */ VEIL_FFT_NAME(forward_digits),
};
