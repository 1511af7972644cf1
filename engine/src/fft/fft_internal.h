/* The tables every code path of veil's negacyclic FFT shares, and the entry
 * points of each path (fft_portable.c, fft_avx2.c, fft_avx512.c: one
 * template, fft_template.h, compiled three times with different target
 * flags). See veil/fft.h for the transform itself.
 *
 * Algorithm (no plan search, so results are repeatable bit for bit), on the
 * split spectrum of veil/fft.h (blocks of 8 real parts, then their 8
 * imaginary parts), for N >= 128:
 *   forward  = fold + twist fused with the first two decimation-in-frequency
 *              stages (spans h/2, h/4: a radix-4 pass reading the
 *              natural-order input), radix-4 DIF passes on whole blocks
 *              (spans h/8 .. 8, or .. 16), and a tile pass over 8 blocks
 *              (64 slots): the span-8 stage when the stage count needs it,
 *              an 8 x 8 transpose of the real and of the imaginary parts,
 *              spans 4, 2, 1 with position as the vector index, stored
 *              without transposing back. The spectrum stays in that order
 *              (bit reversal, then the tile transpose: fft.c spectrum_slot);
 *              the products in the Fourier domain do not care.
 *   backward = the mirror: the tile pass (spans 1, 2, 4, transpose, span 8),
 *              radix-4 decimation-in-time passes with conjugate twiddles, and
 *              a last pass (spans h/4, h/2) fused with the untwist (a table
 *              with the 1/(N/2) scale folded in) and the unfold, writing
 *              natural order.
 * No butterfly and no multiply-add shuffles: each vector holds W real or W
 * imaginary parts, so a complex product is two products and two fused
 * multiply-adds on whole vectors. The only shuffles are the two transposes per tile, as many
 * as the interleaved layout's first and last passes had. N < 128 runs a
 * scalar radix-2 version in fft.c (one build for every path), with the
 * bit-reversed order and no tile transpose.
 * Order: from N = 8192 (a transform past L1), the radix-4 passes whose groups
 * fit 2,048 slots and the tile pass run group by group (depth first), in
 * both directions; the same butterflies on the same values. N = 512 to 4096
 * each have their own copy of the passes with the size a constant
 * (fft_template.h BY_H).
 * In the classic PBS's CMux the first forward pass also makes the digits
 * (forward_digits): the gadget decomposition in registers, never stored,
 * ties rounded up like veil/gadget.h's VEIL_GADGET_INIT. The multi-bit step
 * decomposes with ties to even (decompose) and transforms the digits.
 * Every path does the same floating-point operations in the same order on
 * every value (fused multiply-adds only where the template writes them,
 * fft_template.h fmadd: no contraction by the compiler, no reassociation),
 * so all veil paths give bit-identical results; only the vector width
 * differs. */
#ifndef VEIL_FFT_INTERNAL_H
#define VEIL_FFT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* Cache lines the transforms prefetch into L2 as they run, `per` at each
 * loop iteration until `end` (veil_fft_prefetch): the blind rotation's next
 * GGSW, read from memory while the current CMux's transforms compute
 * instead of in a burst by the multiply-add. A hint only: no result
 * depends on it. */
typedef struct veil_fft_pf {
    const char *p, *end;
    uint32_t per;
} veil_fft_pf;

typedef struct veil_fft_tables {
    uint32_t n, h, log_h;
    double *twist_re, *twist_im;     /* h: exp(i pi j / N) */
    double *untwist_re, *untwist_im; /* h: the twist times 1/h (exact) */
    uint32_t *slot;                  /* h: the slot of frequency k (spectrum_slot) */
    /* Twiddles, W_L = exp(-2 pi i / L), split. Pass 0 (the first, m = h/4)
     * and the middle passes p = 1 .. n_mid (m = h/16, h/64, ...): four
     * arrays of m doubles at tw + tw_off[p]: Re and Im of W_{2m}^j, then Re
     * and Im of W_{4m}^j, j < m. Then at tw_off[n_mid + 1] Re and Im of
     * W_16^j, j < 8 (the tile's span-8 stage). N < 128 (the scalar path):
     * Re W_h^j, then Im W_h^j, j < h/2, at tw. */
    double *tw;
    uint32_t n_mid;  /* radix-4 passes between the first and the tile pass */
    int tile16;      /* 1 when the tile pass does the span-8 stage too */
    size_t *tw_off;  /* n_mid + 2 offsets into tw (doubles) */
    veil_fft_pf *pf; /* the owning veil_fft's prefetch stream; NULL: none */
} veil_fft_tables;

/* The pass plan of a transform of h = 2^log_h slots (h >= 64): 2 stages in
 * the first pass, 3 or 4 in the tile pass (tile16: 4), the rest in n_mid
 * radix-4 passes between. fft.c builds the tables by it; fft_template.h
 * derives it again from a constant h in the copies of the passes it keeps
 * for the common sizes (so it folds). */
static inline uint32_t veil_fft_tile16(uint32_t log_h) {
    return (log_h - 5) & 1;
}
static inline uint32_t veil_fft_n_mid(uint32_t log_h) {
    return (log_h - 5 - veil_fft_tile16(log_h)) / 2;
}

typedef struct veil_fft_kernels {
    void (*forward_i64)(const veil_fft_tables *t, const int64_t *in, double *out);
    /* in: clobbered */
    void (*backward_add_torus)(const veil_fft_tables *t, double *in, uint64_t *acc);
    void (*backward_f64)(const veil_fft_tables *t, double *in, double *out);
    void (*mac)(double *acc, const double *a, const double *b, uint32_t poly_size);
    /* ---- the rest of the PBS loop, vectorised the same way ----
     * digits[j N + t], j < levels: the gadget digits (veil/gadget.h, most
     * significant level first) of X^a * src - src, a in [0, 2N). */
    void (*decompose_rotated)(const uint64_t *src, uint32_t poly_size, uint32_t a,
                              uint32_t base_log, uint32_t levels, int64_t *digits);
    /* digits[j N + t]: the gadget digits of src itself, ties rounded to even
     * (veil/gadget.h VEIL_GADGET_INIT_EVEN: the multi-bit external product
     * decomposes the accumulator its inverse FFT wrote, not a rotated
     * difference) */
    void (*decompose)(const uint64_t *src, uint32_t poly_size, uint32_t base_log, uint32_t levels,
                      int64_t *digits);
    /* acc[q] = sum_r fd[r] * ggsw[r k1 + q] (transformed polynomials of N
     * doubles, q < k1, r < rows; the GGSW's rows k1 polynomials in
     * veil_fft_ggsw_put's layout, VEIL_FFT_GGSW_BLOCK), acc overwritten; the
     * per-element sum runs r = 0, 1, ... from +0.0, like veil_fft_mac calls
     * into a zeroed acc. */
    void (*mac_ggsw)(double *acc, const double *fd, const double *ggsw, uint32_t rows, uint32_t k1,
                     uint32_t poly_size);
    /* mac_ggsw of P <= VEIL_MAC_LANES lanes' digit spectra fd[j] into acc[j]
     * against one GGSW, each key vector read once for all: bit for bit
     * mac_ggsw per lane */
    void (*mac_ggsw_lanes)(double *const *acc, const double *const *fd, uint32_t P,
                           const double *ggsw, uint32_t rows, uint32_t k1, uint32_t poly_size);
    /* out[c os + t] -= sum_r digits[r lanes + c] rows[r rs + t], mod 2^32,
     * c < lanes (1 .. 64, 8 at a time), r < count, t < width: the keyswitch of `lanes`
     * ciphertexts in lockstep over `count` consecutive rows of the 32-bit
     * key (rs words apart; veil/ks32.h), each row element loaded once for
     * every lane and the lanes' sums kept in registers over the rows (a
     * small integer GEMM); out is read and written only through a may_alias
     * vector type or memcpy */
    void (*ks_lanes)(uint32_t *out, size_t os, const uint32_t *rows, size_t rs,
                     const uint32_t *digits, uint32_t count, uint32_t lanes, uint32_t width);
    /* out[c os + t] += sum_r digits[r lanes + c] rows[r rs + t], mod 2^64,
     * c < lanes, r < count, t < width, digits below 2^32: the packing
     * keyswitch of the WoP-PBS (wop.c) for `lanes` values in lockstep over
     * `count` rows of its key, each row element loaded once for a group of
     * lanes whose sums stay in registers */
    void (*pfpks_lanes)(uint64_t *out, size_t os, const uint64_t *rows, size_t rs,
                        const uint32_t *digits, uint32_t count, uint32_t lanes, uint32_t width);
    /* diff = X^a * src - src (mod X^N + 1), a in [0, 2N) */
    void (*rotate_sub)(const uint64_t *src, uint32_t poly_size, uint32_t a, uint64_t *diff);
    /* out += X^d * in (mod X^N + 1), d in [0, 2N) */
    void (*add_monomial)(uint64_t *out, const uint64_t *in, uint32_t poly_size, uint32_t d);
    /* out[lv N ..]: forward_i64 of the digit polynomial of level lv
     * (veil/gadget.h, ties up) of X^a x - x for a in [1, 2N) (rotate_sub's
     * difference), or of x itself for a = 0, bit for bit, neither the
     * difference nor the digits stored: both are fused with the first pass
     * of the transform */
    void (*forward_digits)(const veil_fft_tables *t, const uint64_t *x, uint32_t a,
                           uint32_t base_log, uint32_t levels, double *out);
    /* acc[j] += round(v[j]) mod 2^64, ties to even, exact for every
     * finite v (0 from |v| >= 2^116 on), j < count: the inverse transform's
     * last step, on its own (tests) */
    void (*add_torus)(uint64_t *acc, const double *v, uint32_t count);
    uint32_t width; /* doubles per vector (W): 2, 4 or 8 */
} veil_fft_kernels;

/* forward_digits through f's own kernels (veil paths only, not FFTW: the
 * caller decomposes and calls veil_fft_forward_i64 there): the digits'
 * transforms of X^a x - x (a in [1, 2N)), or of x (a = 0). */
struct veil_fft;
void veil_fft_forward_digits(struct veil_fft *f, const uint64_t *x, uint32_t a, uint32_t base_log,
                             uint32_t levels, double *out);

/* Prefetch `bytes` from p into L2, spread evenly over f's next `transforms`
 * transforms (forward or inverse, N >= VEIL_FFT_TILE_N, veil paths; a no-op
 * otherwise). Lines left when they are done are not fetched. */
void veil_fft_prefetch(struct veil_fft *f, const void *p, size_t bytes, uint32_t transforms);
/* Bytes of the stream not prefetched yet (tests). */
size_t veil_fft_prefetch_left(const struct veil_fft *f);

/* The kernels of the PBS loop for an FFT of any path (FFTW's path runs the
 * fastest veil build for everything but the transforms), and for code with
 * no transform object (the keyswitch): the default path's, same rule. */
struct veil_fft;
const veil_fft_kernels *veil_fft_loop_kernels(const struct veil_fft *f);

/* f's tables (veil paths; benchmarks that call a path's kernels directly:
 * scripts/fft_ab.sh). */
const veil_fft_tables *veil_fft_tables_of(const struct veil_fft *f);

/* Lanes of the blind rotation's lockstep whose CMux share one multiply-add
 * pass (mac_ggsw_lanes, pbs.c cmux_lanes). Per KS-PBS in a batch of 16 on
 * one core of an Intel Xeon, against one lane at a time: 2 lanes 0.97-0.98x
 * at tfhers-2_2, nn-p4 and nn-p6 sets; 4 lanes (k = 1) and 3 (k = 2)
 * 0.99-1.09x, their spectra no longer in L1 (docs/results/HISTORY.md §0g).
 * The AVX2 path pairs lanes at k = 1 (its 16 registers hold no more):
 * 0.98-0.99x at the same sets. */
#define VEIL_MAC_LANES 2

/* Smallest N of every path (a block of 8 slots); below VEIL_FFT_TILE_N
 * the scalar transform of fft.c runs on every path. */
#define VEIL_FFT_MIN_N 16
#define VEIL_FFT_TILE_N 128

/* A GGSW of `polys` transformed polynomials of N doubles (veil_fft_ggsw_put):
 * block b (slots 8b .. 8b + 7, 16 doubles) of polynomial p starts here.
 * Above VEIL_FFT_GGSW_STREAMS polynomials they are interleaved by block,
 * one stream for the multiply-add; up to it, one after the other, one
 * stream each (measured, docs/results/HISTORY.md §1: with the key streamed from memory, one
 * PBS at a time, 4 or 8 streams ran the multiply-add faster than one,
 * and 25 slower). */
#define VEIL_FFT_GGSW_STREAMS 8
#define VEIL_FFT_GGSW_BLOCK(polys, N, b, p)                                                        \
    ((polys) > VEIL_FFT_GGSW_STREAMS ? 16 * ((size_t)(b) * (polys) + (p))                          \
                                     : (size_t)(p) * (N) + 16 * (size_t)(b))

/* The split spectrum (veil/fft.h): slot c's real part is at this offset of a
 * transformed polynomial, its imaginary part 8 doubles further. */
#define VEIL_FFT_SLOT_RE(c) (16 * ((size_t)(c) >> 3) + ((size_t)(c)&7))

extern const veil_fft_kernels veil_fft_kernels_portable;
#if defined(__x86_64__)
#define VEIL_FFT_X86 1
extern const veil_fft_kernels veil_fft_kernels_avx2;
extern const veil_fft_kernels veil_fft_kernels_avx512;
#endif

#endif
