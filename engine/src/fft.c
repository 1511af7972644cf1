/* Negacyclic FFT of size N through an N/2 complex FFTW plan (see veil/fft.h). */
#include "veil/fft.h"

#include <math.h>

#define VEIL_PI 3.14159265358979323846
#include <pthread.h>
#include <string.h>

#include <fftw3.h>
#include <sodium.h>

struct veil_fft {
    uint32_t n;    /* poly size N */
    uint32_t half; /* N / 2 */
    fftw_plan fwd, bwd;
    fftw_complex *buf;  /* N/2, SIMD aligned: twisted input / inverse output */
    fftw_complex *buf2; /* N/2, SIMD aligned: transform output */
    double *tw;         /* N/2 complex twist factors exp(i*pi*j/N), interleaved */
};

/* FFTW's planner is not thread-safe. */
static pthread_mutex_t planner_lock = PTHREAD_MUTEX_INITIALIZER;

veil_status veil_fft_new(uint32_t poly_size, veil_fft **out) {
    if (poly_size < 4 || (poly_size & (poly_size - 1)))
        return veil_error(VEIL_ERR_ARG, "veil_fft_new: N = %u is not a power of two >= 4",
                          poly_size);
    veil_fft *f = calloc(1, sizeof *f);
    if (!f) return veil_error(VEIL_ERR_NOMEM, "veil_fft_new: out of memory");
    f->n = poly_size;
    f->half = poly_size / 2;
    f->buf = fftw_malloc(sizeof(fftw_complex) * f->half);
    f->buf2 = fftw_malloc(sizeof(fftw_complex) * f->half);
    f->tw = malloc(sizeof(double) * poly_size);
    if (!f->buf || !f->buf2 || !f->tw) {
        veil_fft_free(f);
        return veil_error(VEIL_ERR_NOMEM, "veil_fft_new: out of memory");
    }
    for (uint32_t j = 0; j < f->half; j++) {
        double a = VEIL_PI * (double)j / (double)poly_size;
        f->tw[2 * j] = cos(a);
        f->tw[2 * j + 1] = sin(a);
    }
    pthread_mutex_lock(&planner_lock);
    /* out-of-place plans: buf -> buf2 forward, buf2 -> buf backward; they are
     * re-executed on other arrays of the same alignment (fftw_execute_dft). */
    f->fwd = fftw_plan_dft_1d((int)f->half, f->buf, f->buf2, FFTW_FORWARD, FFTW_ESTIMATE);
    f->bwd = fftw_plan_dft_1d((int)f->half, f->buf2, f->buf, FFTW_BACKWARD, FFTW_ESTIMATE);
    pthread_mutex_unlock(&planner_lock);
    if (!f->fwd || !f->bwd) {
        veil_fft_free(f);
        return veil_error(VEIL_ERR_INTERNAL, "veil_fft_new: FFTW could not plan size %u",
                          poly_size / 2);
    }
    *out = f;
    return VEIL_OK;
}

void veil_fft_free(veil_fft *f) {
    if (!f) return;
    pthread_mutex_lock(&planner_lock);
    if (f->fwd) fftw_destroy_plan(f->fwd);
    if (f->bwd) fftw_destroy_plan(f->bwd);
    pthread_mutex_unlock(&planner_lock);
    /* The scratch held the last transform, a secret key's when keygen or
     * encryption used this plan: wiped like every key-derived temporary. */
    if (f->buf) sodium_memzero(f->buf, sizeof(fftw_complex) * f->half);
    if (f->buf2) sodium_memzero(f->buf2, sizeof(fftw_complex) * f->half);
    fftw_free(f->buf);
    fftw_free(f->buf2);
    free(f->tw);
    free(f);
}

static void forward_finish(veil_fft *f, double *out) {
    if (fftw_alignment_of(out) == fftw_alignment_of((double *)f->buf2)) {
        fftw_execute_dft(f->fwd, f->buf, (fftw_complex *)out);
    } else {
        fftw_execute(f->fwd);
        memcpy(out, f->buf2, sizeof(fftw_complex) * f->half);
    }
}

void veil_fft_forward_i64(veil_fft *f, const int64_t *poly, double *out) {
    const uint32_t h = f->half;
    double *b = (double *)f->buf;
    for (uint32_t j = 0; j < h; j++) {
        double re = (double)poly[j], im = (double)poly[j + h];
        double c = f->tw[2 * j], s = f->tw[2 * j + 1];
        b[2 * j] = re * c - im * s;
        b[2 * j + 1] = re * s + im * c;
    }
    forward_finish(f, out);
}

void veil_fft_forward_torus(veil_fft *f, const uint64_t *poly, double *out) {
    const uint32_t h = f->half;
    double *b = (double *)f->buf;
    for (uint32_t j = 0; j < h; j++) {
        double re = (double)(int64_t)poly[j], im = (double)(int64_t)poly[j + h];
        double c = f->tw[2 * j], s = f->tw[2 * j + 1];
        b[2 * j] = re * c - im * s;
        b[2 * j + 1] = re * s + im * c;
    }
    forward_finish(f, out);
}

/* Inverse FFT + untwist + scale, leaving the folded result in f->buf. */
static void backward_core(veil_fft *f, const double *in) {
    if (fftw_alignment_of((double *)in) == fftw_alignment_of((double *)f->buf2)) {
        /* out-of-place c2c transforms preserve their input */
        fftw_execute_dft(f->bwd, (fftw_complex *)in, f->buf);
    } else {
        memcpy(f->buf2, in, sizeof(fftw_complex) * f->half);
        fftw_execute(f->bwd);
    }
    const uint32_t h = f->half;
    const double scale = 1.0 / (double)h;
    double *b = (double *)f->buf;
    for (uint32_t j = 0; j < h; j++) {
        double re = b[2 * j], im = b[2 * j + 1];
        double c = f->tw[2 * j], s = f->tw[2 * j + 1];
        /* multiply by conj(tw) */
        b[2 * j] = (re * c + im * s) * scale;
        b[2 * j + 1] = (im * c - re * s) * scale;
    }
}

uint64_t veil_f64_to_torus(double v) {
    /* Work on the torus itself: x = v / 2^64, keep its signed fractional part
     * f in [-1/2, 1/2] (round-to-nearest through the 1.5 * 2^52 trick, exact
     * for |x| < 2^51, i.e. |v| < 2^115), then scale back. The fraction keeps
     * all the bits v had: ulp(x) * 2^64 = ulp(v). */
    const double x = v * 0x1p-64;
    const double f = x - ((x + 0x1.8p52) - 0x1.8p52);
    /* truncation toward zero here costs under one unit of 2^-64 */
    double y = f * 0x1p64;
    if (y >= 0x1p63) y -= 0x1p64;
    return (uint64_t)(int64_t)y;
}

void veil_fft_backward_add_torus(veil_fft *f, double *in, uint64_t *acc) {
    backward_core(f, in);
    const uint32_t h = f->half;
    const double *b = (const double *)f->buf;
    for (uint32_t j = 0; j < h; j++) {
        acc[j] += veil_f64_to_torus(b[2 * j]);
        acc[j + h] += veil_f64_to_torus(b[2 * j + 1]);
    }
}

void veil_fft_backward_f64(veil_fft *f, double *in, double *out) {
    backward_core(f, in);
    const uint32_t h = f->half;
    const double *b = (const double *)f->buf;
    for (uint32_t j = 0; j < h; j++) {
        out[j] = b[2 * j];
        out[j + h] = b[2 * j + 1];
    }
}

void veil_fft_mac(double *restrict acc, const double *restrict a, const double *restrict b,
                  uint32_t poly_size) {
    const uint32_t h = poly_size / 2;
    for (uint32_t j = 0; j < h; j++) {
        double ar = a[2 * j], ai = a[2 * j + 1], br = b[2 * j], bi = b[2 * j + 1];
        acc[2 * j] += ar * br - ai * bi;
        acc[2 * j + 1] += ar * bi + ai * br;
    }
}
