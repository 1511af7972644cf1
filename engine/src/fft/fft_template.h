/* The negacyclic FFT of veil/fft.h, written once for a vector of VEIL_W
 * doubles (GCC/Clang vector extensions). Included by fft_portable.c (2),
 * fft_avx2.c (4) and fft_avx512.c (8) after defining VEIL_W and
 * VEIL_FFT_NAME(x); each of those files is compiled with its own target
 * flags, and only called after a CPU feature check (fft.c). The algorithm
 * and the tables are described in fft_internal.h. Complex values are split
 * (blocks of 8 real parts, then their 8 imaginary parts, veil/fft.h): a
 * vector holds VEIL_W real or VEIL_W imaginary parts. The transforms here
 * need N >= 128 (a tile of 64 slots); fft.c runs smaller N itself. */
#include "fft_internal.h"

#include <string.h>

#define W VEIL_W
typedef double vd __attribute__((vector_size(8 * W)));
typedef int64_t vi __attribute__((vector_size(8 * W)));
typedef uint64_t vu __attribute__((vector_size(8 * W)));

/* The gadget steps' arithmetic shift (veil/gadget.h VEIL_GADGET_SAR) as a
 * signed shift, the same value: one vpsraq on AVX-512 where the generic
 * form is four operations (GCC does not see it); scalars alike. */
static inline vu sar_vu(vu r, unsigned b) {
    return (vu)((vi)r >> (int)b);
}
static inline uint64_t sar_u64(uint64_t r, unsigned b) {
    return (uint64_t)((int64_t)r >> b);
}
#define VEIL_GADGET_SAR(r, b) _Generic((r), vu : sar_vu, default : sar_u64)((r), (b))
#include "veil/gadget.h"

/* Unaligned, aliasing vector types for the loads and stores: a load in
 * the vector's own mode. Through memcpy GCC moved 32 bytes in an integer
 * mode, and where ldr's asm then wanted a double vector it went through
 * the stack (a store and a load per value: the AVX2 radix-4 pass stored 17
 * times an iteration instead of 8, on an AMD Zen 3 15 cycles an iteration
 * where its arithmetic needs 8). */
typedef double vd_u __attribute__((vector_size(8 * W), aligned(8), may_alias));
static inline vd ld(const double *p) {
    return *(const vd_u *)p;
}
/* ld into a register: GCC otherwise folds a load into each of the value's
 * uses (a load per use: twice for every butterfly input). Not for the
 * multiply-add's key vectors: there it made one PBS at a time (the key
 * streamed from memory) slower, 1.07 at nn-p2-norm2e4-2m40 (docs/results/HISTORY.md §0). */
static inline vd ldr(const double *p) {
    vd v = ld(p);
#if defined(__x86_64__)
    __asm__("" : "+v"(v)); /* "v": any SSE/AVX register */
#endif
    return v;
}
static inline void st(double *p, vd v) {
    *(vd_u *)p = v;
}
typedef int64_t vi_u __attribute__((vector_size(8 * W), aligned(8), may_alias));
typedef uint64_t vu_u __attribute__((vector_size(8 * W), aligned(8), may_alias));
static inline vi ldi(const int64_t *p) {
    return *(const vi_u *)p;
}
static inline vu ldu(const uint64_t *p) {
    return *(const vu_u *)p;
}
static inline void stu(uint64_t *p, vu v) {
    *(vu_u *)p = v;
}
/* 32-bit words, 2 W to a vector (the keyswitch's: ks_lanes); the scalar
 * pair too, for words that may live in a 64-bit buffer */
typedef uint32_t vw __attribute__((vector_size(8 * W)));
typedef uint32_t vw_u __attribute__((vector_size(8 * W), aligned(4), may_alias));
#define W32 (2 * W)
static inline vw ldw(const uint32_t *p) {
    return *(const vw_u *)p;
}
static inline void stw(uint32_t *p, vw v) {
    *(vw_u *)p = v;
}
static inline uint32_t ld32(const uint32_t *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void st32(uint32_t *p, uint32_t v) {
    memcpy(p, &v, sizeof v);
}
static inline vd splat(double x) {
    return (vd){0} + x;
}
/* The 1.5 2^52 trick, written once: in [2^52, 2^53) a double's ulp is 1,
 * so adding 1.5 2^52 to a double within 2^51 of zero rounds it to an
 * integer (nearest, ties to even) held in the low bits of MAGIC52_BITS +
 * that integer, and the other way, the bits of MAGIC52_BITS + d for an
 * integer |d| < 2^51 are the double 1.5 2^52 + d exactly. */
#define MAGIC52 0x1.8p52
#define MAGIC52_BITS 0x4338000000000000u
static inline vd small_i64_f64(vu d) {
    return (vd)(d + MAGIC52_BITS) - splat(MAGIC52);
}

#if W != 2 && W != 4 && W != 8
#error "VEIL_W must be 2, 4 or 8"
#endif

/* a b + c with one rounding (a fused multiply-add), the same bits on every
 * path: the FMA instruction on AVX-512 and AVX2 (fft.c picks the AVX2 path
 * only where the CPU has FMA), the C library's fma per lane on the portable
 * path (glibc uses the instruction where the CPU has it). The transforms'
 * complex products and the multiply-add are written with it: against the
 * same code with separate multiplies and adds, the blind rotation took
 * 0.915-0.952x on one core of an Intel Xeon (docs/results/intel-cpu-fma.json,
 * docs/results/HISTORY.md §0d; the compiler's own contraction, which would
 * have given each path its own bits, 0.90-0.98x). */
#if defined(__AVX2__) && (W == 4 || W == 8)
#include <immintrin.h> /* fmadd here, the variable shifts of f64_to_torus below */
#endif
static inline __attribute__((always_inline)) vd fmadd(vd a, vd b, vd c) {
#if W == 8
    return (vd)_mm512_fmadd_pd((__m512d)a, (__m512d)b, (__m512d)c);
#elif W == 4 && defined(__FMA__)
    return (vd)_mm256_fmadd_pd((__m256d)a, (__m256d)b, (__m256d)c);
#else
    vd r = c; /* every lane written below; initialised for GCC -O1 -Werror */
    for (int i = 0; i < W; i++)
        r[i] = __builtin_fma(a[i], b[i], c[i]);
    return r;
#endif
}
/* a b - c, one rounding (the negation is exact) */
static inline __attribute__((always_inline)) vd fmsub(vd a, vd b, vd c) {
    return fmadd(a, b, -c);
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

/* round(v) mod 2^64, ties to even, for any finite v: the rule of the CUDA
 * kernels (rint, kernels/src/common.cuh veil_dev_f64_to_torus) and of IEEE
 * conversion, so one AVX-512 instruction does the rounding. |v| = mant *
 * 2^sh; sh >= 0: mant << sh (0 from sh = 64 on); sh < 0, s = -sh: (mant +
 * 2^(s-1) - 1 + bit s of mant) >> s (a remainder above half, or exactly
 * half with an odd quotient, carries), 0 from s = 54 on. The sign is
 * applied mod 2^64. */
static inline vu f64_to_torus(vd v) {
#if W == 8 && defined(__AVX512DQ__)
    /* x = v / 2^64 (exact), K = round(x) (any nearest integer does), w = v -
     * K 2^64 in one fused multiply-add: exact (it is (x - K) 2^64, |w| <=
     * 2^63, a double), then converted rounding to nearest even. A tie needs
     * |v| < 2^52, where K = 0 and w = v, so the rounding is v's own; w =
     * +2^63 converts to 2^63 mod 2^64, the integer-indefinite value. |v| >=
     * 2^116 gives 0 as the shifts do. 4 operations a vector, where ties away
     * from zero took 8 (a copysign'd half added, then truncation) and the
     * shifts below 16. */
    const vd k = (vd)_mm512_roundscale_pd((__m512d)(v * splat(0x1p-64)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const vd w = fmadd(k, splat(-0x1p64), v);
    return (vu)_mm512_cvt_roundpd_epi64((__m512d)w, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
#elif W == 4 && defined(__AVX2__)
    /* AVX2 has no double -> int64 conversion: w as above, then split into
     * hi 2^32 + lo, hi = round(w / 2^32) (an integer, |hi| <= 2^31) and lo
     * = w - hi 2^32 in one fused multiply-add (exact: a multiple of w's ulp
     * below 2^31 in size). Each becomes an integer by adding 1.5 2^52 (the
     * sum's ulp is 1: hi unchanged, lo rounded to nearest even, which is
     * w's own rounding since hi 2^32 is even); the sums' low bits are the
     * integers mod 2^32 plus MAGIC52_BITS's high word, which the shift
     * drops from hi and one subtraction removes from lo. 11
     * operations a vector where the shifts below take about 22. */
#define VEIL_RN (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC) /* a constant for clang */
    const vd k = (vd)_mm256_round_pd((__m256d)(v * splat(0x1p-64)), VEIL_RN);
    const vd w = fmadd(k, splat(-0x1p64), v);
    const vd hi = (vd)_mm256_round_pd((__m256d)(w * splat(0x1p-32)), VEIL_RN);
#undef VEIL_RN
    const vd lo = fmadd(hi, splat(-0x1p32), w);
    const vu hb = (vu)(hi + splat(MAGIC52)), lb = (vu)(lo + splat(MAGIC52));
    return (hb << 32) + lb - MAGIC52_BITS;
#else
    const vu bits = (vu)v;
    const vu sh = ((bits >> 52) & 0x7ff) - 1075; /* mod 2^64: "negative" is huge */
    const vu mant = (bits & 0xfffffffffffffu) | 0x10000000000000u;
    const vu one = (vu){0} + 1, s = (vu){0} - sh;
    const vu odd = SRLV(mant, s) & one;
    const vu frac = (vu)((vi)sh < 0); /* all ones where sh < 0 */
    const vu mag = SLLV(mant, sh) | (SRLV(mant + SLLV(one, s - 1) - one + odd, s) & frac);
    const vu neg = (vu){0} - (bits >> 63);
    return (mag ^ neg) - neg;
#endif
}

/* ---- the split spectrum ------------------------------------------------
 * A transformed polynomial (N/2 complex values) is stored in blocks of 8:
 * 8 real parts, then their 8 imaginary parts (veil/fft.h). Complex slot c:
 * real part at SRE(c), imaginary part 8 doubles further. A vector of W
 * doubles holds W real (or imaginary) parts of consecutive slots, so every
 * butterfly and the multiply-add are whole-vector operations with no
 * shuffles; only the tile pass (spans 8 and below) transposes. */
#define SRE(c) VEIL_FFT_SLOT_RE(c)

typedef struct {
    vd r, i;
} cv;

/* The real part of the W slots from slot c (c a multiple of W, so they
 * share a block): SRE(c), which for W = 8 (c = 8 b) is 16 b = 2 c. Written
 * so, the compiler keeps one running pointer instead of a shift, a mask
 * and an add per load and store: that address arithmetic was half of a
 * radix-4 iteration's ~110 instructions on AVX-512 (67 without; the pass
 * about 7% faster, so it was not what bounds it: docs/results/HISTORY.md §0). */
#if W == 8
#define VRE(c) (2 * (size_t)(c))
#else
#define VRE(c) SRE(c)
#endif
static inline cv cld(const double *p, size_t c) {
    return (cv){ld(p + VRE(c)), ld(p + VRE(c) + 8)};
}
static inline void cst(double *p, size_t c, cv x) {
    st(p + VRE(c), x.r);
    st(p + VRE(c) + 8, x.i);
}
/* The same for slot cb + o given as a block's first slot cb (a multiple of
 * 8) and o < 8 (a multiple of W): SRE(cb + o) = 2 cb + o. The transform's
 * passes loop so (blocks, then the 8 / W vectors of each), which leaves
 * AVX2 and the portable path, whose W slots are not a whole block, the
 * same running pointers as AVX-512: with SRE's shift, mask and add per
 * load and store, AVX2's radix-4 iteration was ~85 instructions, half of
 * them address arithmetic. */
#define BRE(cb, o) (2 * (size_t)(cb) + (size_t)(o))
static inline cv bld(const double *p, size_t cb, size_t o) {
    return (cv){ld(p + BRE(cb, o)), ld(p + BRE(cb, o) + 8)};
}
static inline cv bldr(const double *p, size_t cb, size_t o) {
    return (cv){ldr(p + BRE(cb, o)), ldr(p + BRE(cb, o) + 8)};
}
static inline void bst(double *p, size_t cb, size_t o, cv x) {
    st(p + BRE(cb, o), x.r);
    st(p + BRE(cb, o) + 8, x.i);
}
static inline cv cadd(cv a, cv b) {
    return (cv){a.r + b.r, a.i + b.i};
}
static inline cv csub(cv a, cv b) {
    return (cv){a.r - b.r, a.i - b.i};
}
/* x w and x conj(w) */
static inline __attribute__((always_inline)) cv cmulw(cv x, vd wr, vd wi) {
    return (cv){fmsub(x.r, wr, x.i * wi), fmadd(x.r, wi, x.i * wr)};
}
static inline __attribute__((always_inline)) cv cmulwc(cv x, vd wr, vd wi) {
    return (cv){fmadd(x.r, wr, x.i * wi), fmsub(x.i, wr, x.r * wi)};
}
/* z + x y: two fused multiply-adds a part, x.r first */
static inline __attribute__((always_inline)) cv cmac(cv z, cv x, cv y) {
    return (cv){fmadd(-x.i, y.i, fmadd(x.r, y.r, z.r)), fmadd(x.i, y.r, fmadd(x.r, y.i, z.i))};
}
/* x (-i) and x i: exact */
static inline cv mnegi(cv x) {
    return (cv){x.i, -x.r};
}
static inline cv mposi(cv x) {
    return (cv){-x.i, x.r};
}

/* One radix-4 decimation-in-frequency butterfly (spans 2m then m; w2 =
 * W_{4m}^j, w1 = W_{2m}^j) and its inverse, decimation in time with the
 * conjugate twiddles (unscaled: each of the two stages doubles). */
static inline __attribute__((always_inline)) void dif4_core(cv x[4], vd w1r, vd w1i, vd w2r,
                                                            vd w2i) {
    const cv a0 = cadd(x[0], x[2]), a2 = cmulw(csub(x[0], x[2]), w2r, w2i);
    const cv a1 = cadd(x[1], x[3]), a3 = mnegi(cmulw(csub(x[1], x[3]), w2r, w2i));
    x[0] = cadd(a0, a1);
    x[1] = cmulw(csub(a0, a1), w1r, w1i);
    x[2] = cadd(a2, a3);
    x[3] = cmulw(csub(a2, a3), w1r, w1i);
}
static inline __attribute__((always_inline)) void dit4_core(cv y[4], vd w1r, vd w1i, vd w2r,
                                                            vd w2i) {
    const cv t1 = cmulwc(y[1], w1r, w1i), t3 = cmulwc(y[3], w1r, w1i);
    const cv a0 = cadd(y[0], t1), a1 = csub(y[0], t1), a2 = cadd(y[2], t3), a3 = csub(y[2], t3);
    const cv s = cmulwc(a2, w2r, w2i), u = mposi(cmulwc(a3, w2r, w2i));
    y[0] = cadd(a0, s);
    y[2] = csub(a0, s);
    y[1] = cadd(a1, u);
    y[3] = csub(a1, u);
}

/* the twiddles of pass p (tables in fft_internal.h): w1 re, w1 im, w2 re,
 * w2 im, m doubles each */
#define TWP(t, p) ((t)->tw + (t)->tw_off[p])

/* The prefetch stream's lines for one loop iteration (veil_fft_pf): into
 * L2 (locality 2: prefetcht1), a few at a time, so the core never waits on
 * a full fill queue as it did when a whole GGSW was asked for at once
 * (docs/results/HISTORY.md §0e). */
static inline __attribute__((always_inline)) void pf_step(const veil_fft_tables *t) {
    veil_fft_pf *pf = t->pf;
    if (!pf) return;
    const char *p = pf->p, *const end = pf->end;
    if (p >= end) return;
    /* bounded by a pointer, not a count: in the big passes GCC kept a count
     * on the stack, a store-to-load chain through every prefetch (5% of
     * the CMux's forward transform on an AMD Zen 3, by perf) */
    const size_t room = (size_t)(end - p), want = (size_t)pf->per * 64;
    const char *const stop = p + (want < room ? want : room);
    for (; p < stop; p += 64)
        __builtin_prefetch(p, 0, 2);
    pf->p = p;
}

/* A middle pass, radix 4 over groups of 4m slots, m >= 8: DIF (forward)
 * or DIT (inverse) butterflies; dit is a constant at each call, so the
 * compiler keeps one loop per direction. */
static inline void radix4_pass(const veil_fft_tables *t, double *x, uint32_t h, uint32_t m_,
                               const double *tw, int dit) {
    const size_t m = m_; /* size_t indices: no 32-bit wrap to keep, so running pointers */
    for (size_t b = 0; b < h; b += 4 * m)
        for (size_t jb = 0; jb < m; jb += 8) {
            pf_step(t); /* once a block, not a vector: fewer registers held */
            for (size_t o = 0; o < 8; o += W) {
                const size_t j = jb + o;
                const vd w1r = ld(tw + j), w1i = ld(tw + m + j), w2r = ld(tw + 2 * m + j),
                         w2i = ld(tw + 3 * m + j);
                cv y[4];
                for (int s = 0; s < 4; s++)
                    y[s] = bldr(x, b + jb + s * m, o);
                if (dit)
                    dit4_core(y, w1r, w1i, w2r, w2i);
                else
                    dif4_core(y, w1r, w1i, w2r, w2i);
                for (int s = 0; s < 4; s++)
                    bst(x, b + jb + s * m, o, y[s]);
            }
        }
}

/* ---- the tile pass: 8 blocks (64 slots) at a time ----------------------
 * 8 x 8 transposes of W x W sub-tiles: m[row][v] holds columns v W ..
 * v W + W - 1 of a row; out[col][u] holds rows u W .. u W + W - 1. */
#define NV (8 / W)
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
/* [a's high half, b's high half]: written as an extract and a blend, not
 * the lane-crossing vperm2f128 GCC makes of the plain shuffle (8 uops and
 * one every 3 cycles on AMD Zen 1, whose units are 128 bits wide; 1 uop
 * from Zen 2 and on Intel, where this pair costs about the same) */
static inline __attribute__((always_inline)) vd hi_halves(vd a, vd b) {
#if defined(__AVX2__)
    return (vd)_mm256_blend_pd((__m256d)b,
                               _mm256_castpd128_pd256(_mm256_extractf128_pd((__m256d)a, 1)), 3);
#else
    return __builtin_shufflevector(a, b, 2, 3, 6, 7);
#endif
}
static inline void tr_block(vd r[4]) {
    vd t0 = __builtin_shufflevector(r[0], r[1], 0, 4, 2, 6);
    vd t1 = __builtin_shufflevector(r[0], r[1], 1, 5, 3, 7);
    vd t2 = __builtin_shufflevector(r[2], r[3], 0, 4, 2, 6);
    vd t3 = __builtin_shufflevector(r[2], r[3], 1, 5, 3, 7);
    r[0] = __builtin_shufflevector(t0, t2, 0, 1, 4, 5);
    r[2] = hi_halves(t0, t2);
    r[1] = __builtin_shufflevector(t1, t3, 0, 1, 4, 5);
    r[3] = hi_halves(t1, t3);
}
#else
static inline void tr_block(vd r[2]) {
    vd t0 = __builtin_shufflevector(r[0], r[1], 0, 2);
    vd t1 = __builtin_shufflevector(r[0], r[1], 1, 3);
    r[0] = t0;
    r[1] = t1;
}
#endif

static inline void transpose8(vd m[8][NV], vd out[8][NV]) {
    for (int u = 0; u < NV; u++)
        for (int v = 0; v < NV; v++) {
            vd tmp[W];
            for (int i = 0; i < W; i++)
                tmp[i] = m[u * W + i][v];
            tr_block(tmp);
            for (int k = 0; k < W; k++)
                out[v * W + k][u] = tmp[k];
        }
}

/* the last three DIF stages (spans 4, 2, 1) on 8 positions, and their
 * inverse; c8 = cos(pi/4) */
static const double c8 = 0x1.6a09e667f3bcdp-1;
static inline void dif8_tail(cv y[8]) {
    const vd c = splat(c8), nc = splat(-c8);
    for (int p = 0; p < 4; p++) {
        const cv s = cadd(y[p], y[p + 4]), d = csub(y[p], y[p + 4]);
        y[p] = s;
        if (p == 0) y[4] = d;
        if (p == 1) y[5] = (cv){(d.r + d.i) * c, (d.i - d.r) * c};  /* W_8 */
        if (p == 2) y[6] = mnegi(d);                                /* W_8^2 = -i */
        if (p == 3) y[7] = (cv){(d.i - d.r) * c, (d.r + d.i) * nc}; /* W_8^3 */
    }
    for (int q = 0; q < 8; q += 4) {
        const cv s0 = cadd(y[q], y[q + 2]), d0 = csub(y[q], y[q + 2]);
        const cv s1 = cadd(y[q + 1], y[q + 3]), d1 = mnegi(csub(y[q + 1], y[q + 3]));
        y[q] = cadd(s0, s1);
        y[q + 1] = csub(s0, s1);
        y[q + 2] = cadd(d0, d1);
        y[q + 3] = csub(d0, d1);
    }
}
static inline void dit8_tail(cv y[8]) {
    const vd c = splat(c8), nc = splat(-c8);
    for (int q = 0; q < 8; q += 4) {
        const cv s0 = cadd(y[q], y[q + 1]), s1 = csub(y[q], y[q + 1]);
        const cv d0 = cadd(y[q + 2], y[q + 3]), d1 = mposi(csub(y[q + 2], y[q + 3]));
        y[q] = cadd(s0, d0);
        y[q + 2] = csub(s0, d0);
        y[q + 1] = cadd(s1, d1);
        y[q + 3] = csub(s1, d1);
    }
    for (int p = 0; p < 4; p++) {
        const cv d = y[p + 4];
        cv t = d;
        if (p == 1) t = (cv){(d.r - d.i) * c, (d.r + d.i) * c};  /* conj W_8 */
        if (p == 2) t = mposi(d);                                /* i */
        if (p == 3) t = (cv){(d.r + d.i) * nc, (d.r - d.i) * c}; /* conj W_8^3 */
        y[p + 4] = csub(y[p], t);
        y[p] = cadd(y[p], t);
    }
}

/* Forward tile pass: optionally the span-8 stage between block pairs (lane
 * p: W_16^p), then the transpose (vector = position in the block, lane =
 * block) and spans 4, 2, 1; stored without transposing back: slot 8 p + b
 * of the tile holds DIF position 8 b + p (fft.c spectrum_slot). */
static void tile_forward(const veil_fft_tables *t, double *x, size_t slots) {
    const double *w16 = t->tw + t->tw_off[t->n_mid + 1];
    for (size_t c0 = 0; c0 < slots; c0 += 64) {
        pf_step(t);
        double *tile = x + 2 * (size_t)c0;
        vd R[8][NV], I[8][NV], TR[8][NV], TI[8][NV];
        for (int b = 0; b < 8; b++)
            for (int v = 0; v < NV; v++) {
                R[b][v] = ld(tile + 16 * b + v * W);
                I[b][v] = ld(tile + 16 * b + 8 + v * W);
            }
        if (t->tile16)
            for (int b = 0; b < 8; b += 2)
                for (int v = 0; v < NV; v++) {
                    const cv x0 = {R[b][v], I[b][v]}, x1 = {R[b + 1][v], I[b + 1][v]};
                    const cv s = cadd(x0, x1),
                             d = cmulw(csub(x0, x1), ld(w16 + v * W), ld(w16 + 8 + v * W));
                    R[b][v] = s.r, I[b][v] = s.i, R[b + 1][v] = d.r, I[b + 1][v] = d.i;
                }
        transpose8(R, TR);
        transpose8(I, TI);
        for (int v = 0; v < NV; v++) {
            cv y[8];
            for (int p = 0; p < 8; p++)
                y[p] = (cv){TR[p][v], TI[p][v]};
            dif8_tail(y);
            for (int p = 0; p < 8; p++) {
                st(tile + 16 * p + v * W, y[p].r);
                st(tile + 16 * p + 8 + v * W, y[p].i);
            }
        }
    }
}
static void tile_backward(const veil_fft_tables *t, double *x, size_t slots) {
    const double *w16 = t->tw + t->tw_off[t->n_mid + 1];
    for (size_t c0 = 0; c0 < slots; c0 += 64) {
        pf_step(t);
        double *tile = x + 2 * (size_t)c0;
        vd R[8][NV], I[8][NV], TR[8][NV], TI[8][NV];
        for (int v = 0; v < NV; v++) {
            cv y[8];
            for (int p = 0; p < 8; p++)
                y[p] = (cv){ld(tile + 16 * p + v * W), ld(tile + 16 * p + 8 + v * W)};
            dit8_tail(y);
            for (int p = 0; p < 8; p++)
                TR[p][v] = y[p].r, TI[p][v] = y[p].i;
        }
        transpose8(TR, R);
        transpose8(TI, I);
        if (t->tile16)
            for (int b = 0; b < 8; b += 2)
                for (int v = 0; v < NV; v++) {
                    const cv y0 = {R[b][v], I[b][v]};
                    const cv tt = cmulwc((cv){R[b + 1][v], I[b + 1][v]}, ld(w16 + v * W),
                                         ld(w16 + 8 + v * W));
                    const cv s = cadd(y0, tt), d = csub(y0, tt);
                    R[b][v] = s.r, I[b][v] = s.i, R[b + 1][v] = d.r, I[b + 1][v] = d.i;
                }
        for (int b = 0; b < 8; b++)
            for (int v = 0; v < NV; v++) {
                st(tile + 16 * b + v * W, R[b][v]);
                st(tile + 16 * b + 8 + v * W, I[b][v]);
            }
    }
}

/* The first forward pass on W values of each quarter: fold + twist of the
 * real parts ar[s] and imaginary parts ai[s] at j = j0 + s h/4, then the
 * first two DIF stages (spans h/2, h/4), stored at the same slots. The
 * tables come as locals (fp_tables): read through t, every store (through
 * memcpy then) made the compiler load their pointers again. */
typedef struct {
    const double *twist_re, *twist_im, *tw;
    size_t q;
} fp_tables;
static inline __attribute__((always_inline)) fp_tables fp_tables_of(const veil_fft_tables *t,
                                                                    size_t q) {
    return (fp_tables){t->twist_re, t->twist_im, TWP(t, 0),
                       q}; /* q = h / 4, a constant where h is */
}
static inline __attribute__((always_inline)) void
first_pass(fp_tables f, size_t jb, size_t o, const vd ar[4], const vd ai[4], double *out) {
    const size_t q = f.q, j0 = jb + o;
    cv u[4];
    for (int s = 0; s < 4; s++) {
        const size_t j = j0 + (size_t)s * q;
        const vd c = ld(f.twist_re + j), sn = ld(f.twist_im + j);
        u[s] = (cv){fmsub(ar[s], c, ai[s] * sn), fmadd(ar[s], sn, ai[s] * c)};
    }
    dif4_core(u, ld(f.tw + j0), ld(f.tw + q + j0), ld(f.tw + 2 * q + j0), ld(f.tw + 3 * q + j0));
    for (int s = 0; s < 4; s++)
        bst(out, jb + (size_t)s * q, o, u[s]);
}

/* Middle pass p (m = h/16 / 4^p) works on groups of 4m slots, and every
 * pass after it, the tile pass included, stays inside each group. From the
 * first pass whose groups fit VEIL_FFT_BLOCK_SLOTS, the remaining passes run
 * group by group (depth first) while the group is in L1, instead of each
 * pass streaming the whole transform (h slots of 16 bytes) through L2: the
 * same butterflies on the same values, only their order changes, so the
 * same bits. Below that size (h <= VEIL_FFT_BLOCK_SLOTS) the whole
 * transform is one group. */
#define VEIL_FFT_BLOCK_SLOTS 2048
static inline uint32_t block_pass(size_t h, uint32_t n_mid) {
    uint32_t p = 0;
    if (h > VEIL_FFT_BLOCK_SLOTS)
        while (p < n_mid && (h / 4 >> (2 * p)) > VEIL_FFT_BLOCK_SLOTS)
            p++;
    return p;
}
static inline size_t block_slots(size_t h, uint32_t n_mid, uint32_t p0) {
    return h <= VEIL_FFT_BLOCK_SLOTS ? h : p0 < n_mid ? h / 4 >> (2 * p0) : 64;
}

/* The sizes the PBS loop runs most (N = 512 to 4096: h = 256 to 2048
 * slots) get their own copy of each transform with h a constant: the
 * strides between a butterfly's four streams become constant displacements
 * and the pass plan folds, where with h read at run time GCC ran short of
 * registers for the streams' pointers and kept some in vector registers,
 * moving them back before each load (the first pass at N = 2048 about 6%
 * faster as a constant). Other sizes run the same code with the tables' h.
 * CALL(H) is the caller's macro. */
#define BY_H(h, CALL)                                                                              \
    do {                                                                                           \
        switch (h) {                                                                               \
        case 256:                                                                                  \
            CALL(256);                                                                             \
            break;                                                                                 \
        case 512:                                                                                  \
            CALL(512);                                                                             \
            break;                                                                                 \
        case 1024:                                                                                 \
            CALL(1024);                                                                            \
            break;                                                                                 \
        case 2048:                                                                                 \
            CALL(2048);                                                                            \
            break;                                                                                 \
        default:                                                                                   \
            CALL(h);                                                                               \
            break;                                                                                 \
        }                                                                                          \
    } while (0)
static inline uint32_t n_mid_of(size_t h) {
    return veil_fft_n_mid((uint32_t)__builtin_ctzll((unsigned long long)h));
}

/* the passes after the first, h = t->h */
static inline __attribute__((always_inline)) void forward_rest(const veil_fft_tables *t,
                                                               double *out, const size_t h) {
    const uint32_t n_mid = n_mid_of(h), p0 = block_pass(h, n_mid);
    const size_t g = block_slots(h, n_mid, p0);
    for (uint32_t p = 0; p < p0; p++)
        radix4_pass(t, out, (uint32_t)h, (uint32_t)(h / 16) >> (2 * p), TWP(t, p + 1), 0);
    for (size_t b = 0; b < h; b += g) {
        double *x = out + 2 * b; /* slot b (a multiple of 8): BRE(b, 0) */
        for (uint32_t p = p0; p < n_mid; p++)
            radix4_pass(t, x, (uint32_t)g, (uint32_t)(h / 16) >> (2 * p), TWP(t, p + 1), 0);
        tile_forward(t, x, g);
    }
}

static inline __attribute__((always_inline)) void
forward_i64_h(const veil_fft_tables *t, const int64_t *in, double *out, const size_t h) {
    const size_t q = h / 4;
    const fp_tables f = fp_tables_of(t, q);
    for (size_t jb = 0; jb < q; jb += 8)
        for (size_t o = 0; o < 8; o += W) {
            pf_step(t);
            const size_t j0 = jb + o;
            vd ar[4], ai[4];
            for (int s = 0; s < 4; s++) {
                ar[s] = cvt_i64(ldi(in + s * q + j0));
                ai[s] = cvt_i64(ldi(in + h + s * q + j0));
            }
            first_pass(f, jb, o, ar, ai, out);
        }
    forward_rest(t, out, h);
}
static void VEIL_FFT_NAME(forward_i64)(const veil_fft_tables *t, const int64_t *in, double *out) {
#define FORWARD_I64(H) forward_i64_h(t, in, out, H)
    BY_H(t->h, FORWARD_I64);
#undef FORWARD_I64
}

/* A gadget digit (|d| <= 2^(B-1)) as a double: exact. With AVX-512 DQ one
 * conversion; otherwise, for B <= 51 (narrow), two operations (the 1.5 *
 * 2^52 trick, exact for |d| < 2^51), else cvt_i64. The same value every
 * way, so the same bits as cvt_i64 of stored digits. */
static inline vd digit_f64(vu d, int narrow) {
#if defined(__AVX512DQ__)
    (void)narrow;
    return cvt_i64((vi)d);
#else
    if (!narrow) return cvt_i64((vi)d);
    return small_i64_f64(d);
#endif
}

/* One level of B = bits <= 51 bits: VEIL_GADGET_INIT's balanced digit of x
 * as a double (digit_f64 of it), without INIT's 64-bit arithmetic shift
 * (AVX2 has none: GCC emulates it in four operations) or its tie fix-up.
 * u, the top B bits of x rounded (half up), is the digit mod 2^B; of its
 * two representatives the balanced one lies in [-2^(B-1), 2^(B-1) - 1],
 * except at the tie u = 2^(B-1), which INIT makes +2^(B-1) when x's top bit
 * is set (c = 1): the representative in [-2^(B-1) + c, 2^(B-1) - 1 + c],
 * which no other u tells apart. That is ((u - c + 2^(B-1)) mod 2^B) +
 * c - 2^(B-1), made a double by the 1.5 2^52 trick (its constant and
 * 2^(B-1) fold into one add): 9 operations where INIT and digit_f64 took about 14 (the same
 * value for every x: test_pbs_loop checks forward_digits against
 * decompose + forward_i64). */
static inline __attribute__((always_inline)) vd digit1_f64(vu x, unsigned bits) {
    const uint64_t half = (uint64_t)1 << (bits - 1);
    const vu u = (x + ((uint64_t)1 << (63 - bits))) >> (64 - bits), c = x >> 63;
    const vu v = (u - c + half) & (2 * half - 1);
    return small_i64_f64(v + c - half);
}

/* X^a x (mod X^N + 1), a in [0, 2N): one definition for rotate_sub,
 * add_monomial and forward_digits. rot_e splits a into e = a mod N and the
 * sign mask m_hi (all ones for a >= N); then coefficient t is
 * +-x[t - e] (sign m_hi) for t >= e and +-x[t - e + N] (the other sign)
 * for t < e, each (v ^ m) - m: v or -v. */
static inline size_t rot_e(uint32_t a, size_t N, uint64_t *m_hi) {
    *m_hi = a >= N ? ~(uint64_t)0 : 0;
    return a >= N ? a - N : a;
}
static inline __attribute__((always_inline)) uint64_t rot_at(const uint64_t *x, size_t t, size_t N,
                                                             size_t e, uint64_t m_hi) {
    const uint64_t m = t < e ? ~m_hi : m_hi;
    return (x[t < e ? t + N - e : t - e] ^ m) - m;
}
/* coefficients t0 .. t0 + W - 1; the one vector that straddles t = e takes
 * each value from its own run */
static inline __attribute__((always_inline)) vu rot_ld(const uint64_t *x, size_t t0, size_t N,
                                                       size_t e, uint64_t m_hi) {
    if (t0 >= e) return (ldu(x + t0 - e) ^ m_hi) - m_hi;
    if (t0 + W <= e) return (ldu(x + t0 + N - e) ^ ~m_hi) - ~m_hi;
    uint64_t v[W];
    for (size_t i = 0; i < W; i++)
        v[i] = rot_at(x, t0 + i, N, e, m_hi);
    return ldu(v);
}

/* forward_digits' first pass; multi (levels > 1), narrow (base_log <= 51)
 * and rot (a != 0) are constants at each call, so the loop tests none */
static inline __attribute__((always_inline)) void
digits_first_pass(const veil_fft_tables *t, const uint64_t *x, uint32_t a, uint32_t base_log,
                  uint32_t levels, double *out, const int multi, const int narrow, const int rot,
                  const size_t h) {
    const size_t q = h / 4, n = 2 * h, N = 2 * h;
    const uint32_t bits = base_log * levels;
    uint64_t m_hi;
    const size_t e = rot_e(a, N, &m_hi);
    const fp_tables f = fp_tables_of(t, q);
    for (size_t j0 = 0; j0 < q; j0 += W) {
        const size_t jb = j0 & ~(size_t)7, o = j0 & 7;
        vu r[8];
        vd ar[4], ai[4];
        for (int s = 0; s < 4; s++) {
            const size_t t0 = s * q + j0;
            /* X^a x - x, or x */
            const vu xr = rot ? rot_ld(x, t0, N, e, m_hi) - ldu(x + t0) : ldu(x + t0),
                     xi = rot ? rot_ld(x, h + t0, N, e, m_hi) - ldu(x + h + t0) : ldu(x + h + t0);
            if (!multi && narrow) {
                ar[s] = digit1_f64(xr, bits);
                ai[s] = digit1_f64(xi, bits);
                continue;
            }
            VEIL_GADGET_INIT(r[2 * s], xr, bits);
            VEIL_GADGET_INIT(r[2 * s + 1], xi, bits);
        }
        if (!multi && narrow) {
            pf_step(t);
            first_pass(f, jb, o, ar, ai, out);
            continue;
        }
        for (uint32_t lv = levels; lv-- > 0;) {
            pf_step(t); /* a first-pass iteration of each level's transform */
            for (int s = 0; s < 4; s++) {
                /* one level: the digit is INIT's balanced value itself
                 * (STEP would keep it and leave a rest of 0: veil/gadget.h),
                 * which saves the step, half the decomposition's work */
                vu dr = r[2 * s], di = r[2 * s + 1];
                if (multi) {
                    VEIL_GADGET_STEP(r[2 * s], dr, base_log);
                    VEIL_GADGET_STEP(r[2 * s + 1], di, base_log);
                }
                ar[s] = digit_f64(dr, narrow);
                ai[s] = digit_f64(di, narrow);
            }
            first_pass(f, jb, o, ar, ai, out + (size_t)lv * n);
        }
    }
}

/* The transforms of the `levels` digit polynomials of X^a x - x (a in
 * [1, 2N): the CMux's difference, read straight from the accumulator), or of
 * x itself (a = 0) (veil/gadget.h, most significant level first, at
 * out + lv N), without storing the difference or the digits: each
 * first-pass group is formed and decomposed in registers, all levels at
 * once, and fed to first_pass per level. The same values enter the same
 * operations as rotate_sub + decompose + forward_i64: the same bits. */
static inline __attribute__((always_inline)) void
forward_digits_h(const veil_fft_tables *t, const uint64_t *x, uint32_t a, uint32_t base_log,
                 uint32_t levels, double *out, const size_t h) {
    const int narrow = base_log <= 51;
#define DIGITS_FIRST_PASS(rot)                                                                     \
    do {                                                                                           \
        if (levels > 1 && narrow)                                                                  \
            digits_first_pass(t, x, a, base_log, levels, out, 1, 1, rot, h);                       \
        else if (levels > 1)                                                                       \
            digits_first_pass(t, x, a, base_log, levels, out, 1, 0, rot, h);                       \
        else if (narrow)                                                                           \
            digits_first_pass(t, x, a, base_log, levels, out, 0, 1, rot, h);                       \
        else                                                                                       \
            digits_first_pass(t, x, a, base_log, levels, out, 0, 0, rot, h);                       \
    } while (0)
    if (a)
        DIGITS_FIRST_PASS(1);
    else
        DIGITS_FIRST_PASS(0);
#undef DIGITS_FIRST_PASS
    for (uint32_t lv = 0; lv < levels; lv++)
        forward_rest(t, out + 2 * h * lv, h);
}
static void VEIL_FFT_NAME(forward_digits)(const veil_fft_tables *t, const uint64_t *x, uint32_t a,
                                          uint32_t base_log, uint32_t levels, double *out) {
#define FORWARD_DIGITS(H) forward_digits_h(t, x, a, base_log, levels, out, H)
    BY_H(t->h, FORWARD_DIGITS);
#undef FORWARD_DIGITS
}

/* The inverse up to its last pass, in place; then the last pass (spans h/4,
 * h/2, the untwist with the 1/h scale, the unfold) hands each group of
 * output values on. mode 0: out[] = values (doubles); mode 1: acc[] +=
 * round(values) mod 2^64. */
static inline __attribute__((always_inline)) void backward(const veil_fft_tables *t, double *x,
                                                           double *out, uint64_t *acc, int mode,
                                                           const size_t h) {
    const size_t q = h / 4;
    /* forward_rest's passes in reverse, group by group as there */
    const uint32_t n_mid = n_mid_of(h), p0 = block_pass(h, n_mid);
    const size_t g = block_slots(h, n_mid, p0);
    for (size_t b = 0; b < h; b += g) {
        double *xb = x + 2 * b;
        tile_backward(t, xb, g);
        for (uint32_t p = n_mid; p-- > p0;)
            radix4_pass(t, xb, (uint32_t)g, (uint32_t)(h / 16) >> (2 * p), TWP(t, p + 1), 1);
    }
    for (uint32_t p = p0; p-- > 0;)
        radix4_pass(t, x, (uint32_t)h, (uint32_t)(h / 16) >> (2 * p), TWP(t, p + 1), 1);
    const double *tw = TWP(t, 0), *ure = t->untwist_re, *uim = t->untwist_im;
    for (size_t j0 = 0; j0 < q; j0 += W) {
        pf_step(t);
        const size_t jb = j0 & ~(size_t)7, o = j0 & 7;
        cv y[4];
        for (int s = 0; s < 4; s++)
            y[s] = bld(x, jb + (size_t)s * q, o);
        dit4_core(y, ld(tw + j0), ld(tw + q + j0), ld(tw + 2 * q + j0), ld(tw + 3 * q + j0));
        for (int s = 0; s < 4; s++) {
            const size_t j = j0 + (size_t)s * q;
            /* the untwist with the 1/h scale folded in (a power of two:
             * the same bits as scaling after) */
            const vd c = ld(ure + j), sn = ld(uim + j);
            const vd re = fmadd(y[s].r, c, y[s].i * sn), im = fmsub(y[s].i, c, y[s].r * sn);
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
#define BACKWARD_F64(H) backward(t, in, out, NULL, 0, H)
    BY_H(t->h, BACKWARD_F64);
#undef BACKWARD_F64
}

static void VEIL_FFT_NAME(backward_add_torus)(const veil_fft_tables *t, double *in, uint64_t *acc) {
#define BACKWARD_ADD_TORUS(H) backward(t, in, NULL, acc, 1, H)
    BY_H(t->h, BACKWARD_ADD_TORUS);
#undef BACKWARD_ADD_TORUS
}

/* No software prefetch of the key inside the multiply-add: a 4 KiB-ahead
 * prefetch there cost 40% at N = 2048 and 60% at 8192 in mac_ggsw (thread
 * CPU time, 2 shared cores of an AMD EPYC). The key's GGSW is prefetched
 * a CMux ahead instead, a few lines per transform loop iteration (pf_step,
 * veil_fft_prefetch), so the multiply-add finds it in L2. */

/* acc += a b over the N/2 slots: split data, four fused multiply-adds per
 * W values (cmac), no shuffles */
static void VEIL_FFT_NAME(mac)(double *acc, const double *a, const double *b, uint32_t n) {
    for (size_t c = 0; c < n / 2; c += W) {
        const cv x = cld(a, c), y = cld(b, c), z = cld(acc, c);
        cst(acc, c, cmac(z, x, y));
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

/* diff = X^a * src - src, a in [0, 2N) (rot_ld) */
static void VEIL_FFT_NAME(rotate_sub)(const uint64_t *src, uint32_t N, uint32_t a, uint64_t *diff) {
    uint64_t m_hi;
    const size_t e = rot_e(a, N, &m_hi);
    size_t t = 0;
    for (; t + W <= N; t += W)
        stu(diff + t, rot_ld(src, t, N, e, m_hi) - ldu(src + t));
    for (; t < N; t++)
        diff[t] = rot_at(src, t, N, e, m_hi) - src[t];
}

/* out += X^d * in, d in [0, 2N) (rot_ld): the multi-bit step's sum of a
 * group's GGSWs times monomials */
static void VEIL_FFT_NAME(add_monomial)(uint64_t *out, const uint64_t *in, uint32_t N, uint32_t d) {
    uint64_t m_hi;
    const size_t e = rot_e(d, N, &m_hi);
    size_t t = 0;
    for (; t + W <= N; t += W)
        stu(out + t, ldu(out + t) + rot_ld(in, t, N, e, m_hi));
    for (; t < N; t++)
        out[t] += rot_at(in, t, N, e, m_hi);
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

/* acc[q] = sum_r fd[r] ggsw[r K + q] for all K output columns in one pass:
 * each digit vector is loaded once per row for every column, and the K
 * sums stay in registers (K is a constant at each call). The GGSW's
 * layout (VEIL_FFT_GGSW_BLOCK): rows K streams up to 8 polynomials, one
 * stream in address order above. */
static inline __attribute__((always_inline)) void
mac_cols_p(double *const *acc, const double *const *fd, const double *ggsw, uint32_t rows,
           const uint32_t K, const uint32_t P, uint32_t n) {
    for (size_t c = 0; c < n / 2; c += W) {
        cv s[VEIL_MAC_LANES][5]; /* P <= VEIL_MAC_LANES, K <= 5 */
        /* polynomial r K + q's block at g + (r K + q) step */
        const double *g = ggsw + VEIL_FFT_GGSW_BLOCK(rows * K, n, c >> 3, 0) + (c & 7);
        const size_t step = VEIL_FFT_GGSW_BLOCK(rows * K, n, 0, 1);
#pragma GCC unroll 8
        for (uint32_t p = 0; p < P; p++)
#pragma GCC unroll 8
            for (uint32_t q = 0; q < K; q++)
                s[p][q] = (cv){splat(0.0), splat(0.0)};
        for (uint32_t r = 0; r < rows; r++, g += K * step) {
            cv x[VEIL_MAC_LANES];
#pragma GCC unroll 8
            for (uint32_t p = 0; p < P; p++)
                x[p] = cld(fd[p] + (size_t)r * n, c);
#pragma GCC unroll 8
            for (uint32_t q = 0; q < K; q++) {
                const cv y = {ld(g + q * step), ld(g + q * step + 8)};
#pragma GCC unroll 8
                for (uint32_t p = 0; p < P; p++)
                    s[p][q] = cmac(s[p][q], x[p], y);
            }
        }
#pragma GCC unroll 8
        for (uint32_t p = 0; p < P; p++)
#pragma GCC unroll 8
            for (uint32_t q = 0; q < K; q++)
                cst(acc[p] + (size_t)q * n, c, s[p][q]);
    }
}
static inline __attribute__((always_inline)) void mac_cols(double *acc, const double *fd,
                                                           const double *ggsw, uint32_t rows,
                                                           const uint32_t K, uint32_t n) {
    mac_cols_p(&acc, &fd, ggsw, rows, K, 1, n);
}

/* One pass over the spectrum for every output column: the digit spectra
 * (rows x N doubles, in cache) are read once per element, the k + 1 sums of
 * each vector stay in registers (mac_cols, k + 1 <= 5: every set of the
 * table), and the GGSW streams once (one stream per polynomial up to 8 of
 * them, one in address order above: VEIL_FFT_GGSW_BLOCK); no zeroing pass.
 * The per-element sum runs r = 0, 1, ... from +0.0 with mac's operations:
 * the same bits as veil_fft_mac calls into a zeroed accumulator. With the
 * GGSW one polynomial after another (rows (k + 1) streams), summing the 5
 * columns side by side at k = 4 had been slower inside the lockstep PBS
 * than one column at a time (5.56 -> 5.85 ms per KS-PBS at
 * nn-p2-norm2e4-2m40); with the interleaved GGSW it is the faster one
 * (docs/results/HISTORY.md §1, CPU: per lane-CMux 0.93 to 0.95 of the old loop). */
static void VEIL_FFT_NAME(mac_ggsw)(double *acc, const double *fd, const double *ggsw,
                                    uint32_t rows, uint32_t k1, uint32_t n) {
    switch (k1) { /* the parameter table's k + 1: 2 to 5 */
    case 2:
        mac_cols(acc, fd, ggsw, rows, 2, n);
        return;
    case 3:
        mac_cols(acc, fd, ggsw, rows, 3, n);
        return;
    case 4:
        mac_cols(acc, fd, ggsw, rows, 4, n);
        return;
    case 5:
        mac_cols(acc, fd, ggsw, rows, 5, n);
        return;
    default:
        break;
    }
    const uint32_t polys = rows * k1;
    for (size_t c = 0; c < n / 2; c += W) {
        const double *g = ggsw + VEIL_FFT_GGSW_BLOCK(polys, n, c >> 3, 0) + (c & 7);
        const size_t step = VEIL_FFT_GGSW_BLOCK(polys, n, 0, 1);
        for (uint32_t q = 0; q < k1; q++) {
            cv s = {splat(0.0), splat(0.0)};
            for (uint32_t r = 0; r < rows; r++) {
                const double *b = g + step * ((size_t)r * k1 + q);
                const cv x = cld(fd + (size_t)r * n, c), y = {ld(b), ld(b + 8)};
                s = cmac(s, x, y);
            }
            cst(acc + (size_t)q * n, c, s);
        }
    }
}

/* mac_ggsw for P ciphertexts' digit spectra against the same GGSW, each key
 * vector loaded once for VEIL_MAC_LANES of them (the same operations per
 * element as mac_ggsw, so the same bits). One pass holds P (k + 1) complex
 * sums, P digit vectors and a key vector in registers (MAC_FITS): with
 * AVX-512's 32, two lanes at every k + 1 up to 5; with AVX2's 16, two lanes
 * at k + 1 = 2; otherwise one lane at a time. */
#define MAC_REGS (W == 8 ? 32 : 16)
#define MAC_FITS(P, K) (2 * (P) * (K) + 2 * (P) + 2 <= MAC_REGS)
static void VEIL_FFT_NAME(mac_ggsw_lanes)(double *const *acc, const double *const *fd, uint32_t P,
                                          const double *ggsw, uint32_t rows, uint32_t k1,
                                          uint32_t n) {
    while (P > 0) {
        uint32_t p = P < VEIL_MAC_LANES ? P : VEIL_MAC_LANES;
        while (p > 1 && !MAC_FITS(p, k1))
            p--;
        /* a case is reached only where it fits (p > 1 above) */
        switch (p * 8 + k1) {
#define MAC_CASE(P_, K_)                                                                           \
    case P_ * 8 + K_:                                                                              \
        if (MAC_FITS(P_, K_)) {                                                                    \
            mac_cols_p(acc, fd, ggsw, rows, K_, P_, n);                                            \
            break;                                                                                 \
        }                                                                                          \
        __builtin_unreachable();
            MAC_CASE(2, 2)
            MAC_CASE(2, 3)
            MAC_CASE(2, 4)
            MAC_CASE(2, 5)
#undef MAC_CASE
        default:
            for (uint32_t j = 0; j < p; j++)
                VEIL_FFT_NAME(mac_ggsw)(acc[j], fd[j], ggsw, rows, k1, n);
        }
        acc += p, fd += p, P -= p;
    }
}

/* ks_lanes: a tile of TV vectors of every lane's output in registers
 * (lanes x TV <= 16 accumulators) while the rows stream through; L and TV
 * are constants at each call. 32-bit words (veil/ks32.h), 2 W to a vector,
 * every access through ldw/stw's may_alias vector type (the output may be
 * the first half of a 64-bit buffer: keyswitch.c). Row r's digit of lane c is d[r ds + c].
 * More than 8 lanes are taken 8 at a time over the same rows, which the
 * first 8 left in L1. */
#define KS_TV (W == 8 ? 2 : 1)
#define KS_MAXL 8
static inline __attribute__((always_inline)) void
ks_tile(uint32_t *out, size_t os, const uint32_t *rows, size_t rs, const uint32_t *d, size_t ds,
        uint32_t count, const uint32_t L, const uint32_t TV, uint32_t t) {
    vw acc[KS_MAXL][KS_TV];
#pragma GCC unroll 8
    for (uint32_t c = 0; c < L; c++)
#pragma GCC unroll 8
        for (uint32_t v = 0; v < TV; v++)
            acc[c][v] = ldw(out + c * os + t + v * W32);
    for (uint32_t r = 0; r < count; r++) {
        const uint32_t *row = rows + r * rs + t, *dr = d + (size_t)r * ds;
        vw y[KS_TV];
#pragma GCC unroll 8
        for (uint32_t v = 0; v < TV; v++)
            y[v] = ldw(row + v * W32);
#pragma GCC unroll 8
        for (uint32_t c = 0; c < L; c++) {
            const vw dc = (vw){0} + dr[c];
#pragma GCC unroll 8
            for (uint32_t v = 0; v < TV; v++)
                acc[c][v] -= y[v] * dc;
        }
    }
#pragma GCC unroll 8
    for (uint32_t c = 0; c < L; c++)
#pragma GCC unroll 8
        for (uint32_t v = 0; v < TV; v++)
            stw(out + c * os + t + v * W32, acc[c][v]);
}
static inline __attribute__((always_inline)) void
ks_lanes_L(uint32_t *out, size_t os, const uint32_t *rows, size_t rs, const uint32_t *d, size_t ds,
           uint32_t count, const uint32_t L, uint32_t width) {
    uint32_t t = 0;
    for (; t + KS_TV * W32 <= width; t += KS_TV * W32)
        ks_tile(out, os, rows, rs, d, ds, count, L, KS_TV, t);
    for (; t + W32 <= width; t += W32)
        ks_tile(out, os, rows, rs, d, ds, count, L, 1, t);
    for (; t < width; t++)
        for (uint32_t c = 0; c < L; c++) {
            uint32_t sum = ld32(out + c * os + t);
            for (uint32_t r = 0; r < count; r++)
                sum -= rows[r * rs + t] * d[(size_t)r * ds + c];
            st32(out + c * os + t, sum);
        }
}
static void VEIL_FFT_NAME(ks_lanes)(uint32_t *out, size_t os, const uint32_t *rows, size_t rs,
                                    const uint32_t *digits, uint32_t count, uint32_t lanes,
                                    uint32_t width) {
    if (lanes < 1 || lanes > 64) __builtin_trap(); /* the caller's groups (keyswitch.c) */
    for (uint32_t c0 = 0; c0 < lanes; c0 += KS_MAXL) {
        const uint32_t L = lanes - c0 < KS_MAXL ? lanes - c0 : KS_MAXL;
        uint32_t *o = out + c0 * os;
        const uint32_t *d = digits + c0;
        switch (L) {
#define KS_CASE(n)                                                                                 \
    case n:                                                                                        \
        ks_lanes_L(o, os, rows, rs, d, lanes, count, n, width);                                    \
        break;
            KS_CASE(1)
            KS_CASE(2)
            KS_CASE(3)
            KS_CASE(4)
            KS_CASE(5)
            KS_CASE(6)
            KS_CASE(7)
            KS_CASE(8)
#undef KS_CASE
        default:
            __builtin_trap();
        }
    }
}

/* pfpks_lanes: the packing keyswitch's small integer GEMM (wop.c), mod
 * 2^64 with digits below 2^32: d K = d K_lo + 2^32 d K_hi, each product one
 * 32 x 32 -> 64 multiply (pmuludq), the two halves summed apart and joined
 * at the end (the shift of a sum is the sum of the shifts mod 2^64). A tile
 * of PK_TV vectors of PK_MAXL lanes' sums in registers while the rows
 * stream through; the lanes taken PK_MAXL at a time over the same rows. */
static inline __attribute__((always_inline)) vu mul32(vu a, vu b) {
#if W == 8
    return (vu)_mm512_mul_epu32((__m512i)a, (__m512i)b);
#elif W == 4 && defined(__AVX2__)
    return (vu)_mm256_mul_epu32((__m256i)a, (__m256i)b);
#else
    return (a & 0xffffffffu) * (b & 0xffffffffu);
#endif
}
#define PK_TV (W == 8 ? 2 : 1)
#define PK_MAXL (W == 8 ? 6 : 3)
static inline __attribute__((always_inline)) void
pk_tile(uint64_t *out, size_t os, const uint64_t *rows, size_t rs, const uint32_t *d, size_t ds,
        uint32_t count, const uint32_t L, const uint32_t TV, uint32_t t) {
    vu lo[PK_MAXL][PK_TV], hi[PK_MAXL][PK_TV];
#pragma GCC unroll 8
    for (uint32_t c = 0; c < L; c++)
#pragma GCC unroll 8
        for (uint32_t v = 0; v < TV; v++)
            lo[c][v] = hi[c][v] = (vu){0};
    for (uint32_t r = 0; r < count; r++) {
        const uint64_t *row = rows + r * rs + t;
        const uint32_t *dr = d + (size_t)r * ds;
        vu y[PK_TV], yh[PK_TV];
#pragma GCC unroll 8
        for (uint32_t v = 0; v < TV; v++) {
            y[v] = ldu(row + v * W);
            yh[v] = y[v] >> 32;
        }
#pragma GCC unroll 8
        for (uint32_t c = 0; c < L; c++) {
            const vu dc = (vu){0} + dr[c];
#pragma GCC unroll 8
            for (uint32_t v = 0; v < TV; v++) {
                lo[c][v] += mul32(y[v], dc);
                hi[c][v] += mul32(yh[v], dc);
            }
        }
    }
#pragma GCC unroll 8
    for (uint32_t c = 0; c < L; c++)
#pragma GCC unroll 8
        for (uint32_t v = 0; v < TV; v++) {
            uint64_t *o = out + c * os + t + v * W;
            stu(o, ldu(o) + lo[c][v] + (hi[c][v] << 32));
        }
}
static inline __attribute__((always_inline)) void
pk_lanes_L(uint64_t *out, size_t os, const uint64_t *rows, size_t rs, const uint32_t *d, size_t ds,
           uint32_t count, const uint32_t L, uint32_t width) {
    uint32_t t = 0;
    for (; t + PK_TV * W <= width; t += PK_TV * W)
        pk_tile(out, os, rows, rs, d, ds, count, L, PK_TV, t);
    for (; t + W <= width; t += W)
        pk_tile(out, os, rows, rs, d, ds, count, L, 1, t);
    for (; t < width; t++)
        for (uint32_t c = 0; c < L; c++) {
            uint64_t sum = out[c * os + t];
            for (uint32_t r = 0; r < count; r++)
                sum += rows[r * rs + t] * d[(size_t)r * ds + c];
            out[c * os + t] = sum;
        }
}
static void VEIL_FFT_NAME(pfpks_lanes)(uint64_t *out, size_t os, const uint64_t *rows, size_t rs,
                                       const uint32_t *digits, uint32_t count, uint32_t lanes,
                                       uint32_t width) {
    for (uint32_t c0 = 0; c0 < lanes; c0 += PK_MAXL) {
        const uint32_t L = lanes - c0 < PK_MAXL ? lanes - c0 : PK_MAXL;
        uint64_t *o = out + c0 * os;
        const uint32_t *d = digits + c0;
        switch (L) {
#define PK_CASE(n)                                                                                 \
    case n:                                                                                        \
        pk_lanes_L(o, os, rows, rs, d, lanes, count, n, width);                                    \
        break;
            PK_CASE(1)
            PK_CASE(2)
            PK_CASE(3)
#if PK_MAXL > 3
            PK_CASE(4)
            PK_CASE(5)
            PK_CASE(6)
#endif
#undef PK_CASE
        default:
            __builtin_trap();
        }
    }
}

static void VEIL_FFT_NAME(add_torus)(uint64_t *acc, const double *v, uint32_t count) {
    uint32_t t = 0;
    for (; t + W <= count; t += W)
        stu(acc + t, ldu(acc + t) + f64_to_torus(ld(v + t)));
    if (t < count) { /* the tail through one zero-padded vector */
        double pad[W] = {0};
        uint64_t sum[W];
        memcpy(pad, v + t, sizeof(double) * (count - t));
        stu(sum, f64_to_torus(ld(pad)));
        for (uint32_t j = 0; t + j < count; j++)
            acc[t + j] += sum[j];
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
    /* .mac_ggsw_lanes     = */ VEIL_FFT_NAME(mac_ggsw_lanes),
    /* .ks_lanes           = */ VEIL_FFT_NAME(ks_lanes),
    /* .pfpks_lanes        = */ VEIL_FFT_NAME(pfpks_lanes),
    /* .rotate_sub         = */ VEIL_FFT_NAME(rotate_sub),
    /* .add_monomial       = */ VEIL_FFT_NAME(add_monomial),
    /* .forward_digits     = */ VEIL_FFT_NAME(forward_digits),
    /* .add_torus          = */ VEIL_FFT_NAME(add_torus),
    /* .width              = */ W,
};
