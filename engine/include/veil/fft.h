/* veil/fft.h — negacyclic polynomial products through a size-N/2 complex FFT
 * (FFTW on the CPU).
 *
 * For a real polynomial a of size N (mod X^N + 1), the transform is
 *   z_j = (a_j + i a_{j+N/2}) * exp(i*pi*j/N),  j < N/2   (fold and twist)
 *   A   = FFT_{N/2}(z)                                      (FFTW_FORWARD)
 * which evaluates a at the N/2 primitive 2N-th roots exp(i*pi*(1-4m)/N); the
 * other N/2 roots are their conjugates, so A determines a. Products are
 * pointwise; the inverse undoes the FFT (scaled by 2/N), the twist, and the
 * fold. Torus coefficients enter as signed int64 (uint64 reinterpreted) and
 * results are reduced mod 2^64 after rounding to the nearest integer.
 * Complex values are stored interleaved (re, im): a transformed polynomial is
 * N doubles. Plans use FFTW_ESTIMATE so results are repeatable bit for bit. */
#ifndef VEIL_FFT_H
#define VEIL_FFT_H

#include <stdint.h>

#include "veil/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct veil_fft veil_fft;

veil_status veil_fft_new(uint32_t poly_size, veil_fft **out);
void veil_fft_free(veil_fft *fft);

/* out: N doubles (N/2 complex). */
void veil_fft_forward_torus(veil_fft *fft, const uint64_t *poly, double *out);
void veil_fft_forward_i64(veil_fft *fft, const int64_t *poly, double *out);
/* acc[j] += round(inverse(in))_j mod 2^64. `in` is used as scratch (clobbered). */
void veil_fft_backward_add_torus(veil_fft *fft, double *in, uint64_t *acc);
/* out[j] = inverse(in)_j as doubles, not rounded (for measuring FFT error). */
void veil_fft_backward_f64(veil_fft *fft, double *in, double *out);

/* acc += a * b (pointwise, complex), N/2 complex values. */
void veil_fft_mac(double *acc, const double *a, const double *b, uint32_t poly_size);

/* Reduces a double holding an integer-valued (or near) number mod 2^64,
 * rounding to nearest. Exact for |v| < 2^116. */
uint64_t veil_f64_to_torus(double v);

#ifdef __cplusplus
}
#endif
#endif
