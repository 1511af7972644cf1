/* Negacyclic FFT (see veil/fft.h): the tables and the run-time choice of a
 * code path (veil's own, engine/src/fft/, or FFTW when built with it). */
#include "veil/fft.h"

#include "fft/fft_internal.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define VEIL_PI 3.14159265358979323846

#ifdef VEIL_HAVE_FFTW
#include <fftw3.h>
#include <pthread.h>
#endif
#include <sodium.h>

struct veil_fft {
    uint32_t n;    /* poly size N */
    uint32_t half; /* N / 2 */
    veil_fft_path path;
    const veil_fft_kernels *k; /* veil paths */
    veil_fft_tables t;         /* veil paths; the FFTW path uses its twist only */
#ifdef VEIL_HAVE_FFTW
    fftw_plan fwd, bwd;
    fftw_complex *buf;  /* N/2, SIMD aligned: twisted input / inverse output */
    fftw_complex *buf2; /* N/2, SIMD aligned: transform output */
#endif
};

/* ---- paths ------------------------------------------------------------- */

static const char *const path_names[VEIL_FFT_PATH_COUNT] = {"auto", "portable", "avx2", "avx512",
                                                            "fftw"};

const char *veil_fft_path_name(veil_fft_path path) {
    return (unsigned)path < VEIL_FFT_PATH_COUNT ? path_names[path] : NULL;
}

veil_status veil_fft_path_parse(const char *name, veil_fft_path *out) {
    for (int i = 0; name && i < VEIL_FFT_PATH_COUNT; i++)
        if (!strcmp(name, path_names[i])) {
            *out = (veil_fft_path)i;
            return VEIL_OK;
        }
    return veil_error(VEIL_ERR_ARG, "FFT path '%s': expected auto, portable, avx2, avx512 or fftw",
                      name ? name : "(null)");
}

int veil_fft_path_available(veil_fft_path path) {
    switch (path) {
    case VEIL_FFT_AUTO:
    case VEIL_FFT_PORTABLE:
        return 1;
#ifdef VEIL_FFT_X86
    case VEIL_FFT_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case VEIL_FFT_AVX512:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
#endif
#ifdef VEIL_HAVE_FFTW
    case VEIL_FFT_FFTW:
        return 1;
#endif
    default:
        return 0;
    }
}

static veil_fft_path best_veil_path(void) {
    if (veil_fft_path_available(VEIL_FFT_AVX512)) return VEIL_FFT_AVX512;
    if (veil_fft_path_available(VEIL_FFT_AVX2)) return VEIL_FFT_AVX2;
    return VEIL_FFT_PORTABLE;
}

static _Atomic int default_path = VEIL_FFT_AUTO;

veil_fft_path veil_fft_path_default(void) {
    const veil_fft_path p = (veil_fft_path)atomic_load(&default_path);
    if (p != VEIL_FFT_AUTO) return p;
#if defined(VEIL_FFT_DEFAULT_FFTW) && defined(VEIL_HAVE_FFTW)
    return VEIL_FFT_FFTW;
#else
    return best_veil_path();
#endif
}

veil_status veil_fft_path_set_default(veil_fft_path path) {
    if (!veil_fft_path_available(path))
        return veil_error(VEIL_ERR_UNSUPPORTED, "FFT path %s: not %s",
                          veil_fft_path_name(path) ? veil_fft_path_name(path) : "?",
                          path == VEIL_FFT_FFTW ? "built in (VEIL_FFTW=OFF)"
                                                : "supported by this CPU");
    atomic_store(&default_path, (int)path);
    return VEIL_OK;
}

static const veil_fft_kernels *kernels_of(veil_fft_path path) {
    switch (path) {
#ifdef VEIL_FFT_X86
    case VEIL_FFT_AVX512:
        return &veil_fft_kernels_avx512;
    case VEIL_FFT_AVX2:
        return &veil_fft_kernels_avx2;
#endif
    default:
        return &veil_fft_kernels_portable;
    }
}

/* Smallest N of a path: its first pass needs N/8 >= vector width. */
static uint32_t min_n_of(veil_fft_path path) {
    return path == VEIL_FFT_AVX512 ? 64 : path == VEIL_FFT_AVX2 ? 32 : VEIL_FFT_MIN_N;
}

const veil_fft_kernels *veil_fft_loop_kernels(const veil_fft *f) {
    const veil_fft_path p = f ? f->path : veil_fft_path_default();
    return kernels_of(p == VEIL_FFT_FFTW || p == VEIL_FFT_AUTO ? best_veil_path() : p);
}

/* ---- memory ------------------------------------------------------------- */

void *veil_fft_alloc(size_t bytes) {
    return aligned_alloc(64, (bytes + 63) & ~(size_t)63);
}

void veil_fft_dealloc(void *p) {
    free(p);
}

/* ---- veil tables -------------------------------------------------------- */

/* cos and sin of pi t / b, the angle first reduced to [0, pi/4] by exact
 * symmetries so that the library functions see small arguments. */
static void cos_sin_pi(uint64_t t, uint64_t b, double *c, double *s) {
    t %= 2 * b;
    int neg_s = 0, neg_c = 0;
    if (t > b) t = 2 * b - t, neg_s = 1; /* -theta */
    if (2 * t > b) t = b - t, neg_c = 1; /* pi - theta */
    double x, y;
    if (4 * t > b) { /* pi/2 - phi */
        const double phi = VEIL_PI * (double)(b - 2 * t) / (double)(2 * b);
        x = sin(phi);
        y = cos(phi);
    } else {
        const double th = VEIL_PI * (double)t / (double)b;
        x = cos(th);
        y = sin(th);
    }
    *c = neg_c ? -x : x;
    *s = neg_s ? -y : y;
}

/* W_{2b}^k = exp(-i pi k / b) in the (re, re), (-im, im) form of
 * fft_template.h, at complex index k of wr and wi. */
static void put_twiddle(double *wr, double *wi, uint32_t k, uint32_t b) {
    double c, s;
    cos_sin_pi(k, b, &c, &s);
    wr[2 * k] = wr[2 * k + 1] = c; /* re = c, im = -s */
    wi[2 * k] = s;
    wi[2 * k + 1] = -s;
}

static void tables_free(veil_fft_tables *t) {
    veil_fft_dealloc(t->twist_re);
    veil_fft_dealloc(t->twist_im);
    veil_fft_dealloc(t->untwist_re);
    veil_fft_dealloc(t->untwist_im);
    veil_fft_dealloc(t->tw);
    free(t->rev4);
    free(t->tw_off);
}

static int tables_init(veil_fft_tables *t, uint32_t n) {
    const uint32_t h = n / 2, q = h / 4;
    t->n = n;
    t->h = h;
    t->log_h = (uint32_t)__builtin_ctz(h);
    const uint32_t rest = t->log_h - 2; /* stages after the first pass */
    t->n_radix4 = rest / 2;
    t->last_radix2 = (int)(rest & 1);
    t->tw_off = malloc(sizeof(size_t) * (t->n_radix4 + 1));
    t->twist_re = veil_fft_alloc(sizeof(double) * h);
    t->twist_im = veil_fft_alloc(sizeof(double) * h);
    t->untwist_re = veil_fft_alloc(sizeof(double) * h);
    t->untwist_im = veil_fft_alloc(sizeof(double) * h);
    t->rev4 = malloc(sizeof(uint32_t) * q);
    if (!t->tw_off || !t->twist_re || !t->twist_im || !t->untwist_re || !t->untwist_im || !t->rev4)
        return 0;
    size_t words = 0;
    for (uint32_t p = 0, m = 4; p < t->n_radix4; p++, m *= 4) {
        t->tw_off[p] = words;
        words += 8 * (size_t)m;
    }
    t->tw_off[t->n_radix4] = words;
    if (t->last_radix2) words += 2 * (size_t)h;
    t->tw = veil_fft_alloc(sizeof(double) * (words ? words : 1));
    if (!t->tw) return 0;
    for (uint32_t j = 0; j < h; j++) {
        cos_sin_pi(j, n, &t->twist_re[j], &t->twist_im[j]);
        t->untwist_re[j] = t->twist_re[j] / (double)h; /* h a power of two: exact */
        t->untwist_im[j] = t->twist_im[j] / (double)h;
    }
    const uint32_t bits = t->log_h - 2;
    for (uint32_t j = 0; j < q; j++) {
        uint32_t r = 0;
        for (uint32_t b = 0; b < bits; b++)
            r |= ((j >> b) & 1u) << (bits - 1 - b);
        t->rev4[j] = r;
    }
    for (uint32_t p = 0, m = 4; p < t->n_radix4; p++, m *= 4) {
        double *w = t->tw + t->tw_off[p];
        for (uint32_t k = 0; k < m; k++) {
            put_twiddle(w, w + 2 * m, k, m);             /* W_{2m}^k */
            put_twiddle(w + 4 * m, w + 6 * m, k, 2 * m); /* W_{4m}^k */
        }
    }
    if (t->last_radix2) {
        double *w = t->tw + t->tw_off[t->n_radix4];
        for (uint32_t k = 0; k < h / 2; k++)
            put_twiddle(w, w + h, k, h / 2); /* W_h^k */
    }
    return 1;
}

/* ---- FFTW --------------------------------------------------------------- */

#ifdef VEIL_HAVE_FFTW
/* FFTW's planner is not thread-safe. */
static pthread_mutex_t planner_lock = PTHREAD_MUTEX_INITIALIZER;

static int fftw_init(veil_fft *f) {
    f->buf = fftw_malloc(sizeof(fftw_complex) * f->half);
    f->buf2 = fftw_malloc(sizeof(fftw_complex) * f->half);
    if (!f->buf || !f->buf2) return 0;
    pthread_mutex_lock(&planner_lock);
    /* out-of-place plans: buf -> buf2 forward, buf2 -> buf backward; they are
     * re-executed on other arrays of the same alignment (fftw_execute_dft). */
    f->fwd = fftw_plan_dft_1d((int)f->half, f->buf, f->buf2, FFTW_FORWARD, FFTW_ESTIMATE);
    f->bwd = fftw_plan_dft_1d((int)f->half, f->buf2, f->buf, FFTW_BACKWARD, FFTW_ESTIMATE);
    pthread_mutex_unlock(&planner_lock);
    return f->fwd && f->bwd;
}

static void fftw_clear(veil_fft *f) {
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
}

static void fftw_forward(veil_fft *f, const int64_t *poly, double *out) {
    const uint32_t h = f->half;
    double *b = (double *)f->buf;
    for (uint32_t j = 0; j < h; j++) {
        double re = (double)poly[j], im = (double)poly[j + h];
        double c = f->t.twist_re[j], s = f->t.twist_im[j];
        b[2 * j] = re * c - im * s;
        b[2 * j + 1] = re * s + im * c;
    }
    if (fftw_alignment_of(out) == fftw_alignment_of((double *)f->buf2)) {
        fftw_execute_dft(f->fwd, f->buf, (fftw_complex *)out);
    } else {
        fftw_execute(f->fwd);
        memcpy(out, f->buf2, sizeof(fftw_complex) * f->half);
    }
}

/* Inverse FFT + untwist + scale, leaving the folded result in f->buf. */
static void fftw_backward(veil_fft *f, const double *in) {
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
        double c = f->t.twist_re[j], s = f->t.twist_im[j];
        /* multiply by conj(tw) */
        b[2 * j] = (re * c + im * s) * scale;
        b[2 * j + 1] = (im * c - re * s) * scale;
    }
}
#endif

/* ---- the transform ------------------------------------------------------ */

veil_status veil_fft_new(uint32_t poly_size, veil_fft **out) {
    return veil_fft_new_path(poly_size, VEIL_FFT_AUTO, out);
}

veil_status veil_fft_new_path(uint32_t poly_size, veil_fft_path path, veil_fft **out) {
    if (path == VEIL_FFT_AUTO) path = veil_fft_path_default();
    if (!veil_fft_path_available(path))
        return veil_error(VEIL_ERR_UNSUPPORTED, "veil_fft_new: FFT path %s is not available",
                          veil_fft_path_name(path) ? veil_fft_path_name(path) : "?");
    const uint32_t min_n = path == VEIL_FFT_FFTW ? 4 : VEIL_FFT_MIN_N;
    if (poly_size < min_n || poly_size > (1u << 20) || (poly_size & (poly_size - 1)))
        return veil_error(VEIL_ERR_ARG,
                          "veil_fft_new: N = %u is not a power of two in [%u, 2^20] (path %s)",
                          poly_size, min_n, veil_fft_path_name(path));
    veil_fft *f = calloc(1, sizeof *f);
    if (!f) return veil_error(VEIL_ERR_NOMEM, "veil_fft_new: out of memory");
    f->n = poly_size;
    f->half = poly_size / 2;
    f->path = path;
    /* a path too wide for a tiny N runs the portable build (same results) */
    f->k = kernels_of(poly_size >= min_n_of(path) ? path : VEIL_FFT_PORTABLE);
    int ok;
    if (path == VEIL_FFT_FFTW) {
        /* FFTW needs only the twist; it accepts N >= 4 */
        f->t.twist_re = veil_fft_alloc(sizeof(double) * f->half);
        f->t.twist_im = veil_fft_alloc(sizeof(double) * f->half);
        ok = f->t.twist_re && f->t.twist_im;
        for (uint32_t j = 0; ok && j < f->half; j++)
            cos_sin_pi(j, poly_size, &f->t.twist_re[j], &f->t.twist_im[j]);
#ifdef VEIL_HAVE_FFTW
        ok = ok && fftw_init(f);
#endif
    } else {
        ok = tables_init(&f->t, poly_size);
    }
    if (!ok) {
        veil_fft_free(f);
        return veil_error(VEIL_ERR_NOMEM, "veil_fft_new: out of memory (N = %u)", poly_size);
    }
    *out = f;
    return VEIL_OK;
}

void veil_fft_free(veil_fft *f) {
    if (!f) return;
#ifdef VEIL_HAVE_FFTW
    if (f->path == VEIL_FFT_FFTW) fftw_clear(f);
#endif
    tables_free(&f->t);
    free(f);
}

veil_fft_path veil_fft_path_of(const veil_fft *f) {
    return f->path;
}

void veil_fft_forward_i64(veil_fft *f, const int64_t *poly, double *out) {
#ifdef VEIL_HAVE_FFTW
    if (f->path == VEIL_FFT_FFTW) {
        fftw_forward(f, poly, out);
        return;
    }
#endif
    f->k->forward_i64(&f->t, poly, out);
}

void veil_fft_forward_digits(veil_fft *f, const uint64_t *x, uint32_t base_log, uint32_t levels,
                             double *out) {
    VEIL_ASSERT(f->path != VEIL_FFT_FFTW);
    f->k->forward_digits(&f->t, x, base_log, levels, out);
}

void veil_fft_forward_torus(veil_fft *f, const uint64_t *poly, double *out) {
    veil_fft_forward_i64(f, (const int64_t *)poly, out);
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
#ifdef VEIL_HAVE_FFTW
    if (f->path == VEIL_FFT_FFTW) {
        fftw_backward(f, in);
        const uint32_t h = f->half;
        const double *b = (const double *)f->buf;
        for (uint32_t j = 0; j < h; j++) {
            acc[j] += veil_f64_to_torus(b[2 * j]);
            acc[j + h] += veil_f64_to_torus(b[2 * j + 1]);
        }
        return;
    }
#endif
    f->k->backward_add_torus(&f->t, in, acc);
}

void veil_fft_backward_f64(veil_fft *f, double *in, double *out) {
#ifdef VEIL_HAVE_FFTW
    if (f->path == VEIL_FFT_FFTW) {
        fftw_backward(f, in);
        const uint32_t h = f->half;
        const double *b = (const double *)f->buf;
        for (uint32_t j = 0; j < h; j++) {
            out[j] = b[2 * j];
            out[j + h] = b[2 * j + 1];
        }
        return;
    }
#endif
    f->k->backward_f64(&f->t, in, out);
}

void veil_fft_mac(double *restrict acc, const double *restrict a, const double *restrict b,
                  uint32_t poly_size) {
    /* every build gives the same bits; a width that does not divide N (tiny
     * N) falls back to the portable one */
    static _Atomic(const veil_fft_kernels *) best = NULL;
    const veil_fft_kernels *k = atomic_load(&best);
    if (!k) {
        k = kernels_of(best_veil_path());
        atomic_store(&best, k);
    }
    if (poly_size < 16) {
        for (uint32_t j = 0; j < poly_size / 2; j++) {
            const double ar = a[2 * j], ai = a[2 * j + 1], br = b[2 * j], bi = b[2 * j + 1];
            acc[2 * j] += ar * br - ai * bi;
            acc[2 * j + 1] += ar * bi + ai * br;
        }
        return;
    }
    k->mac(acc, a, b, poly_size);
}
