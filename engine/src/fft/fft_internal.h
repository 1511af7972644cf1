/* The tables every code path of veil's negacyclic FFT shares, and the entry
 * points of each path (fft_portable.c, fft_avx2.c, fft_avx512.c: one
 * template, fft_template.h, compiled three times with different target
 * flags). See veil/fft.h for the transform itself.
 *
 * Algorithm (no plan search, so results are repeatable bit for bit):
 *   forward  = fold + twist, written in bit-reversed order and fused with the
 *              first two radix-2 stages (their twiddles are 1 and -i), then
 *              radix-4 decimation-in-time passes (pairs of radix-2 stages in
 *              registers), a last radix-2 stage when log2(N/2) is odd;
 *              natural-order output.
 *   backward = the mirror: radix-2/radix-4 decimation-in-frequency passes on
 *              the natural-order spectrum, and a last pass fusing the two
 *              final stages with the bit-reversed read, untwist (a table
 *              with the 1/(N/2) scale folded in) and unfold.
 * There is no separate permutation pass to drop: the bit reversal (over
 * groups of 4 complex values, whole cache lines) rides on the transposes
 * between the split form of the fold (real parts, imaginary parts) and the
 * interleaved spectrum, which a natural-order-in, permuted-out pair (the
 * "unordered" FFT of tfhe-fft, https://docs.rs/tfhe-fft, module unordered)
 * would still need with this layout. Measured (README, "Measured"): the
 * scatter's addresses cost the forward transform about 4% at N = 2048.
 * In the classic PBS's CMux the first forward pass also makes the digits
 * (forward_digits): the gadget decomposition in registers, never stored,
 * ties rounded up like veil/gadget.h's VEIL_GADGET_INIT. The multi-bit step
 * decomposes with ties to even (decompose) and transforms the digits.
 * Every path does the same floating-point operations in the same order on
 * every value (no FMA contraction, no reassociation), so all veil paths give
 * bit-identical results; only the vector width differs. */
#ifndef VEIL_FFT_INTERNAL_H
#define VEIL_FFT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

typedef struct veil_fft_tables {
    uint32_t n, h, log_h;
    double *twist_re, *twist_im;     /* h: exp(i pi j / N) */
    double *untwist_re, *untwist_im; /* h: the twist times 1/h (exact) */
    uint32_t *rev4;                  /* h/4: bit reversal over log2(h/4) bits */
    /* twiddles of the radix-4 passes (m = 4, 16, ... for the forward
     * transform), W_L = exp(-2 pi i / L): per pass four arrays of 2m
     * doubles, indexed like the interleaved data (k < m): (re, re) and
     * (-im, im) of w1 = W_{2m}^k, then the same for w2 = W_{4m}^k. The
     * radix-2 stage (when log2 h is odd) has W_h^k, k < h/2, in the same
     * form. Inverse passes multiply by the conjugates of these. */
    double *tw;
    uint32_t n_radix4; /* number of radix-4 passes */
    int last_radix2;   /* 1 when a final radix-2 stage (L = h) is needed */
    size_t *tw_off;    /* n_radix4 + 1 offsets into tw (doubles) */
} veil_fft_tables;

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
     * doubles, q < k1, r < rows), acc overwritten; the per-element sum runs
     * r = 0, 1, ... from +0.0, like veil_fft_mac calls into a zeroed acc. */
    void (*mac_ggsw)(double *acc, const double *fd, const double *ggsw, uint32_t rows, uint32_t k1,
                     uint32_t poly_size);
    /* out[t] -= sum_j digits[j] rows[j][t], t < width, mod 2^64 (the LWE
     * keyswitch's inner loop: rows[j] are keyswitching key rows) */
    void (*ks_rows)(uint64_t *out, const uint64_t *const *rows, const uint64_t *digits,
                    uint32_t count, uint32_t width);
    /* diff = X^a * src - src (mod X^N + 1), a in [0, 2N) */
    void (*rotate_sub)(const uint64_t *src, uint32_t poly_size, uint32_t a, uint64_t *diff);
    /* out[lv N ..]: forward_i64 of the digit polynomial of level lv of x
     * (decompose's digits), bit for bit, the digits never stored: the
     * decomposition is fused with the first pass of the transform */
    void (*forward_digits)(const veil_fft_tables *t, const uint64_t *x, uint32_t base_log,
                           uint32_t levels, double *out);
} veil_fft_kernels;

/* forward_digits through f's own kernels (veil paths only, not FFTW: the
 * caller decomposes and calls veil_fft_forward_i64 there). */
struct veil_fft;
void veil_fft_forward_digits(struct veil_fft *f, const uint64_t *x, uint32_t base_log,
                             uint32_t levels, double *out);

/* The kernels of the PBS loop for an FFT of any path (FFTW's path runs the
 * fastest veil build for everything but the transforms), and for code with
 * no transform object (the keyswitch): the default path's, same rule. */
struct veil_fft;
const veil_fft_kernels *veil_fft_loop_kernels(const struct veil_fft *f);

/* Smallest N each path supports (its vector width needs N/8 lanes). */
#define VEIL_FFT_MIN_N 16

extern const veil_fft_kernels veil_fft_kernels_portable;
#if defined(__x86_64__)
#define VEIL_FFT_X86 1
extern const veil_fft_kernels veil_fft_kernels_avx2;
extern const veil_fft_kernels veil_fft_kernels_avx512;
#endif

#endif
