/* veil/fft.h — negacyclic polynomial products through a size-N/2 complex FFT.
 *
 * For a real polynomial a of size N (mod X^N + 1), the transform is
 *   z_j = (a_j + i a_{j+N/2}) * exp(i*pi*j/N),  j < N/2   (fold and twist)
 *   A   = FFT_{N/2}(z), exp(-2 pi i jk / (N/2))             (forward)
 * which evaluates a at the N/2 primitive 2N-th roots exp(i*pi*(1-4m)/N); the
 * other N/2 roots are their conjugates, so A determines a. Products are
 * pointwise; the inverse undoes the FFT (scaled by 2/N), the twist, and the
 * fold. Torus coefficients enter as signed int64 (uint64 reinterpreted) and
 * results are reduced mod 2^64 after rounding to the nearest integer.
 * The spectrum is stored split and in a fixed permuted order: a transformed
 * polynomial is N doubles, blocks of 8 complex slots each (8 real parts,
 * then their 8 imaginary parts), and frequency k sits in the slot given by
 * a bit reversal and, from N = 128 on, a transpose within each 64-slot tile
 * (engine/src/fft/fft_internal.h). Products in the Fourier domain are
 * pointwise, so the order does not matter to them; the split form lets
 * every butterfly and veil_fft_mac work on whole vectors of real or
 * imaginary parts without shuffles. The layout is the same on every path
 * (FFTW's path reorders its natural-order output into it). The GPU uses
 * interleaved natural order (cuFFT's): the data is not shared, since key
 * files hold the standard-domain key, loading prepares bsk_fourier for the
 * CPU, and the cuda backend uploads the standard-domain key and transforms
 * it on the device (veil_cuda_bsk_to_fourier); tests that hand the CPU's
 * bsk_fourier to the kernels (test_kernels_emu's emulation, test_gpu_ops's
 * comparison) convert it with veil_fft_to_natural.
 *
 * Code paths. veil's own transform (engine/src/fft/: radix-4, no plan search)
 * comes in three builds of one source: AVX-512 (8 doubles a vector), AVX2 (4)
 * and portable C (2); they do the same operations in the same order, so they
 * give bit-identical results, and the fastest one the CPU supports is chosen
 * at run time. FFTW (FFTW_ESTIMATE plans) remains as a path when veil is
 * built with VEIL_FFTW=ON, for comparison. N from 16 to 2^20 on every path.
 * Every path is deterministic: the same input gives the same bits on every
 * run and thread. */
#ifndef VEIL_FFT_H
#define VEIL_FFT_H

#include <stddef.h>
#include <stdint.h>

#include "veil/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct veil_fft veil_fft;

typedef enum veil_fft_path {
    VEIL_FFT_AUTO = 0,     /* the process default (see veil_fft_path_set_default) */
    VEIL_FFT_PORTABLE = 1, /* veil, portable C (vectors of 2 doubles) */
    VEIL_FFT_AVX2 = 2,     /* veil, AVX2 */
    VEIL_FFT_AVX512 = 3,   /* veil, AVX-512 F + DQ */
    VEIL_FFT_FFTW = 4,     /* FFTW 3 (only when built with VEIL_FFTW=ON) */
} veil_fft_path;
#define VEIL_FFT_PATH_COUNT 5

/* "auto", "portable", "avx2", "avx512", "fftw"; NULL for an unknown value. */
const char *veil_fft_path_name(veil_fft_path path);
/* The inverse of veil_fft_path_name; VEIL_ERR_ARG naming the choices. */
veil_status veil_fft_path_parse(const char *name, veil_fft_path *out);
/* 1 when the path is built in and this CPU runs it (AUTO: always). */
int veil_fft_path_available(veil_fft_path path);
/* The path veil_fft_new uses: the one set by veil_fft_path_set_default, or
 * the build's default (VEIL_FFT=veil: the fastest veil path this CPU runs). */
veil_fft_path veil_fft_path_default(void);
/* Process-wide choice for veil_fft_new (AUTO: back to the build default).
 * Meant for a program's start (command-line option, test, benchmark): FFTs
 * already made keep their path. VEIL_ERR_UNSUPPORTED if not available. The
 * Fourier layout is the same on every path, so keys prepared on one path
 * work with contexts on another. */
veil_status veil_fft_path_set_default(veil_fft_path path);

veil_status veil_fft_new(uint32_t poly_size, veil_fft **out);
/* A transform on a given path (AUTO: the default). VEIL_ERR_UNSUPPORTED when
 * the path is not available or N is outside its range. */
veil_status veil_fft_new_path(uint32_t poly_size, veil_fft_path path, veil_fft **out);
void veil_fft_free(veil_fft *fft);
veil_fft_path veil_fft_path_of(const veil_fft *fft);

/* out: N doubles (N/2 complex). */
void veil_fft_forward_torus(veil_fft *fft, const uint64_t *poly, double *out);
void veil_fft_forward_i64(veil_fft *fft, const int64_t *poly, double *out);
/* acc[j] += round(inverse(in))_j mod 2^64. `in` is used as scratch (clobbered). */
void veil_fft_backward_add_torus(veil_fft *fft, double *in, uint64_t *acc);
/* out[j] = inverse(in)_j as doubles, not rounded (for measuring FFT error).
 * `in` is clobbered. */
void veil_fft_backward_f64(veil_fft *fft, double *in, double *out);

/* acc += a * b (pointwise, complex), N/2 complex values; vectorised, the
 * same bits on every path. */
void veil_fft_mac(double *acc, const double *a, const double *b, uint32_t poly_size);

/* One transformed polynomial (N doubles, the layout above) in interleaved
 * natural order: out[2k], out[2k + 1] = Re, Im of frequency k (the order of
 * cuFFT, FFTW and the CUDA kernels' Fourier keys). out must not be in. */
void veil_fft_to_natural(uint32_t poly_size, const double *in, double *out);

/* The Fourier bootstrapping key's layout (veil_pbs_key.bsk_fourier): the
 * `polys` = (k+1) l (k+1) transformed polynomials of one GGSW, above 8 of
 * them interleaved by blocks of 8 slots (16 doubles: block 0 of polynomials
 * 0 .. polys - 1, then block 1 of each, ...) so that the external product's
 * multiply-add reads the key as one stream in address order; up to 8 one
 * after the other, one stream each, which measured faster there
 * (engine/src/fft/fft_internal.h VEIL_FFT_GGSW_BLOCK). put copies
 * polynomial p (N doubles, the layout above) into the GGSW, get copies it
 * out. */
void veil_fft_ggsw_put(uint32_t poly_size, uint32_t polys, uint32_t p, const double *poly,
                       double *ggsw);
void veil_fft_ggsw_get(uint32_t poly_size, uint32_t polys, uint32_t p, const double *ggsw,
                       double *poly);

/* Reduces a double mod 2^64, rounding to nearest with ties to even: the
 * rule of every transform path's rounding to the torus, and of the CUDA
 * kernels' (kernels/src/common.cuh veil_dev_f64_to_torus). Exact for
 * |v| < 2^116; 0 from there on (every such double is a multiple of 2^64). */
uint64_t veil_f64_to_torus(double v);

/* 64-byte aligned memory for transformed polynomials (any path) and the
 * keys the PBS loop streams; free with veil_fft_dealloc. NULL when out of
 * memory. veil_fft_alloc_huge also advises the whole 2 MiB pages of an
 * allocation of 4 MiB or more for transparent huge pages (MADV_HUGEPAGE:
 * needed where the kernel runs them in "madvise" mode): for the
 * keyswitching key only, which a lone keyswitch reads once from memory with
 * fewer TLB misses (1.14x to 1.43x faster on a Zen 5, HISTORY §0m). The
 * bootstrapping key, read in order a GGSW at a time, gained nothing
 * measurable there, and on a KVM guest whose memory the host backs lazily
 * each huge page costs milliseconds at its first touch (keygen 8x slower at
 * 2_2 with every key in huge pages, HISTORY §0v). */
void *veil_fft_alloc(size_t bytes);
void *veil_fft_alloc_huge(size_t bytes);
void veil_fft_dealloc(void *p);

#ifdef __cplusplus
}
#endif
#endif
