/* Negacyclic FFT (see veil/fft.h): the tables and the run-time choice of a
 * code path (veil's own, engine/src/fft/, or FFTW when built with it). */
#include "veil/fft.h"

#include "fft/fft_internal.h"
#include "veil/gadget.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

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
    veil_fft_pf pf;            /* t.pf: the transforms' prefetch stream */
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

/* The fastest build this CPU runs, looked up once: the helpers every path
 * shares (rounding to the torus, the multiply-add) give the same bits in
 * every build, so they always run the fastest. */
static const veil_fft_kernels *best_kernels(void) {
    static _Atomic(const veil_fft_kernels *) best = NULL;
    const veil_fft_kernels *k = atomic_load(&best);
    if (!k) {
        k = kernels_of(best_veil_path());
        atomic_store(&best, k);
    }
    return k;
}

const veil_fft_kernels *veil_fft_loop_kernels(const veil_fft *f) {
    const veil_fft_path p = f ? f->path : veil_fft_path_default();
    return p == VEIL_FFT_FFTW || p == VEIL_FFT_AUTO ? best_kernels() : kernels_of(p);
}

const veil_fft_tables *veil_fft_tables_of(const veil_fft *f) {
    return &f->t;
}

/* ---- memory ------------------------------------------------------------- */

void *veil_fft_alloc(size_t bytes) {
    return aligned_alloc(64, (bytes + 63) & ~(size_t)63);
}

void *veil_fft_alloc_huge(size_t bytes) {
    void *p = veil_fft_alloc(bytes);
    const uintptr_t huge = (uintptr_t)2 << 20;
    if (p && bytes >= 2 * huge) {
        uintptr_t from = ((uintptr_t)p + huge - 1) & ~(huge - 1);
        uintptr_t to = ((uintptr_t)p + bytes) & ~(huge - 1);
        if (to > from) madvise((void *)from, to - from, MADV_HUGEPAGE);
    }
    return p;
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

/* exp(-i pi k / b) (= W_{2b}^k) into wr[k], wi[k] */
static void put_twiddle(double *wr, double *wi, uint32_t k, uint32_t b) {
    double c, s;
    cos_sin_pi(k, b, &c, &s);
    wr[k] = c;
    wi[k] = -s;
}

/* Where frequency k of the N/2-point transform is stored (veil/fft.h): the
 * decimation-in-frequency passes leave it at the bit reversal P of k; from
 * h = 64 on the tile pass stores DIF position 8 b + p of each 64-slot tile
 * at slot 8 p + b (fft_internal.h). The one definition of the order:
 * tables_init, the FFTW path and veil_fft_to_natural read it. */
static uint32_t spectrum_slot(uint32_t h, uint32_t k) {
    const uint32_t bits = (uint32_t)__builtin_ctz(h);
    uint32_t r = 0;
    for (uint32_t b = 0; b < bits; b++)
        r |= ((k >> b) & 1u) << (bits - 1 - b);
    if (h < VEIL_FFT_TILE_N / 2) return r;
    return (r & ~63u) | ((r & 7u) << 3) | ((r >> 3) & 7u);
}

static void tables_free(veil_fft_tables *t) {
    veil_fft_dealloc(t->twist_re);
    veil_fft_dealloc(t->twist_im);
    veil_fft_dealloc(t->untwist_re);
    veil_fft_dealloc(t->untwist_im);
    veil_fft_dealloc(t->tw);
    free(t->slot);
    free(t->tw_off);
}

/* The twist and the spectrum order, for every path (FFTW's too). */
static int tables_common(veil_fft_tables *t, uint32_t n) {
    const uint32_t h = n / 2;
    t->n = n;
    t->h = h;
    t->log_h = (uint32_t)__builtin_ctz(h);
    t->twist_re = veil_fft_alloc(sizeof(double) * h);
    t->twist_im = veil_fft_alloc(sizeof(double) * h);
    t->slot = malloc(sizeof(uint32_t) * h);
    if (!t->twist_re || !t->twist_im || !t->slot) return 0;
    for (uint32_t j = 0; j < h; j++) {
        cos_sin_pi(j, n, &t->twist_re[j], &t->twist_im[j]);
        t->slot[j] = spectrum_slot(h, j);
    }
    return 1;
}

static int tables_init(veil_fft_tables *t, uint32_t n) {
    if (!tables_common(t, n)) return 0;
    const uint32_t h = t->h, L = t->log_h;
    t->untwist_re = veil_fft_alloc(sizeof(double) * h);
    t->untwist_im = veil_fft_alloc(sizeof(double) * h);
    if (!t->untwist_re || !t->untwist_im) return 0;
    for (uint32_t j = 0; j < h; j++) {
        t->untwist_re[j] = t->twist_re[j] / (double)h; /* h a power of two: exact */
        t->untwist_im[j] = t->twist_im[j] / (double)h;
    }
    if (n < VEIL_FFT_TILE_N) { /* the scalar path: W_h^j, j < h/2 */
        t->tw = veil_fft_alloc(sizeof(double) * h);
        if (!t->tw) return 0;
        for (uint32_t j = 0; j < h / 2; j++)
            put_twiddle(t->tw, t->tw + h / 2, j, h / 2);
        return 1;
    }
    /* stages: 2 in the first pass, 3 or 4 in the tile pass, pairs between */
    t->tile16 = (int)veil_fft_tile16(L);
    t->n_mid = veil_fft_n_mid(L);
    t->tw_off = malloc(sizeof(size_t) * (t->n_mid + 2));
    if (!t->tw_off) return 0;
    size_t words = 0;
    for (uint32_t p = 0, m = h / 4; p <= t->n_mid; p++, m = (p == 1 ? h / 16 : m / 4)) {
        t->tw_off[p] = words;
        words += 4 * (size_t)m;
    }
    t->tw_off[t->n_mid + 1] = words;
    words += 16;
    t->tw = veil_fft_alloc(sizeof(double) * words);
    if (!t->tw) return 0;
    for (uint32_t p = 0, m = h / 4; p <= t->n_mid; p++, m = (p == 1 ? h / 16 : m / 4)) {
        double *w = t->tw + t->tw_off[p];
        for (uint32_t j = 0; j < m; j++) {
            put_twiddle(w, w + m, j, m);                 /* W_{2m}^j */
            put_twiddle(w + 2 * m, w + 3 * m, j, 2 * m); /* W_{4m}^j */
        }
    }
    double *w16 = t->tw + t->tw_off[t->n_mid + 1];
    for (uint32_t j = 0; j < 8; j++)
        put_twiddle(w16, w16 + 8, j, 8); /* W_16^j */
    return 1;
}

/* ---- N < 128: one scalar transform for every path ----------------------
 * Radix-2 DIF from the folded, twisted input (fft_template.h's first pass
 * formulas), the spectrum left in bit-reversed order, and its mirror. */

static void small_forward(const veil_fft_tables *t, const double *ar, const double *ai,
                          double *out) {
    const uint32_t h = t->h;
    double zr[64], zi[64];
    for (uint32_t j = 0; j < h; j++) {
        const double c = t->twist_re[j], sn = t->twist_im[j];
        zr[j] = ar[j] * c - ai[j] * sn;
        zi[j] = ar[j] * sn + ai[j] * c;
    }
    for (uint32_t s = h / 2; s >= 1; s /= 2)
        for (uint32_t g = 0; g < h; g += 2 * s)
            for (uint32_t j = 0; j < s; j++) {
                const uint32_t a = g + j, b = a + s, e = j * (h / (2 * s));
                const double wr = t->tw[e], wi = t->tw[h / 2 + e];
                const double dr = zr[a] - zr[b], di = zi[a] - zi[b];
                zr[a] = zr[a] + zr[b];
                zi[a] = zi[a] + zi[b];
                zr[b] = dr * wr - di * wi;
                zi[b] = dr * wi + di * wr;
            }
    for (uint32_t P = 0; P < h; P++) {
        out[VEIL_FFT_SLOT_RE(P)] = zr[P];
        out[VEIL_FFT_SLOT_RE(P) + 8] = zi[P];
    }
}

static void small_backward(const veil_fft_tables *t, const double *in, double *out, uint64_t *acc) {
    const uint32_t h = t->h;
    double zr[64], zi[64];
    for (uint32_t P = 0; P < h; P++) {
        zr[P] = in[VEIL_FFT_SLOT_RE(P)];
        zi[P] = in[VEIL_FFT_SLOT_RE(P) + 8];
    }
    for (uint32_t s = 1; s < h; s *= 2)
        for (uint32_t g = 0; g < h; g += 2 * s)
            for (uint32_t j = 0; j < s; j++) {
                const uint32_t a = g + j, b = a + s, e = j * (h / (2 * s));
                const double wr = t->tw[e], wi = t->tw[h / 2 + e];
                const double tr = zr[b] * wr + zi[b] * wi, ti = zi[b] * wr - zr[b] * wi;
                zr[b] = zr[a] - tr;
                zi[b] = zi[a] - ti;
                zr[a] = zr[a] + tr;
                zi[a] = zi[a] + ti;
            }
    for (uint32_t j = 0; j < h; j++) {
        const double c = t->untwist_re[j], sn = t->untwist_im[j];
        const double re = zr[j] * c + zi[j] * sn, im = zi[j] * c - zr[j] * sn;
        if (acc) {
            acc[j] += veil_f64_to_torus(re);
            acc[j + h] += veil_f64_to_torus(im);
        } else {
            out[j] = re;
            out[j + h] = im;
        }
    }
}

static void small_forward_i64(const veil_fft_tables *t, const int64_t *in, double *out) {
    double ar[64], ai[64];
    for (uint32_t j = 0; j < t->h; j++) {
        ar[j] = (double)in[j];
        ai[j] = (double)in[j + t->h];
    }
    small_forward(t, ar, ai, out);
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

/* FFTW computes the natural-order spectrum (interleaved); the path stores
 * it in veil's split order (spectrum_slot), so that spectra, keys and
 * veil_fft_mac are the same on every path. The reordering is part of this
 * path's time. */
static void fftw_forward(veil_fft *f, const int64_t *poly, double *out) {
    const uint32_t h = f->half;
    double *b = (double *)f->buf;
    for (uint32_t j = 0; j < h; j++) {
        double re = (double)poly[j], im = (double)poly[j + h];
        double c = f->t.twist_re[j], s = f->t.twist_im[j];
        b[2 * j] = re * c - im * s;
        b[2 * j + 1] = re * s + im * c;
    }
    fftw_execute(f->fwd);
    const double *y = (const double *)f->buf2;
    for (uint32_t k = 0; k < h; k++) {
        const size_t o = VEIL_FFT_SLOT_RE(f->t.slot[k]);
        out[o] = y[2 * k];
        out[o + 8] = y[2 * k + 1];
    }
}

/* Inverse FFT + untwist + scale, leaving the folded result in f->buf. */
static void fftw_backward(veil_fft *f, const double *in) {
    const uint32_t h = f->half;
    double *y = (double *)f->buf2;
    for (uint32_t k = 0; k < h; k++) {
        const size_t o = VEIL_FFT_SLOT_RE(f->t.slot[k]);
        y[2 * k] = in[o];
        y[2 * k + 1] = in[o + 8];
    }
    fftw_execute(f->bwd);
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
    const uint32_t min_n = VEIL_FFT_MIN_N; /* a block of the split spectrum */
    if (poly_size < min_n || poly_size > (1u << 20) || (poly_size & (poly_size - 1)))
        return veil_error(VEIL_ERR_ARG,
                          "veil_fft_new: N = %u is not a power of two in [%u, 2^20] (path %s)",
                          poly_size, min_n, veil_fft_path_name(path));
    veil_fft *f = calloc(1, sizeof *f);
    if (!f) return veil_error(VEIL_ERR_NOMEM, "veil_fft_new: out of memory");
    f->n = poly_size;
    f->half = poly_size / 2;
    f->path = path;
    f->k = kernels_of(path);
    int ok;
    if (path == VEIL_FFT_FFTW) {
        /* FFTW needs only the twist and the spectrum order */
        ok = tables_common(&f->t, poly_size);
#ifdef VEIL_HAVE_FFTW
        ok = ok && fftw_init(f);
#endif
    } else {
        ok = tables_init(&f->t, poly_size);
        f->t.pf = &f->pf;
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

void veil_fft_prefetch(veil_fft *f, const void *p, size_t bytes, uint32_t transforms) {
    if (f->path == VEIL_FFT_FFTW || f->n < VEIL_FFT_TILE_N) return;
    if (!p || bytes == 0 || transforms == 0) {
        f->pf.p = f->pf.end = NULL;
        return;
    }
    /* prefetch steps of one transform (fft_template.h): the first or last
     * pass h/(4 W), each middle pass h/32 (a step a block), the tile pass
     * h/64 */
    const veil_fft_tables *t = &f->t;
    const size_t iters = t->h / 4 / f->k->width + (size_t)t->n_mid * (t->h / 32) + t->h / 64,
                 lines = (bytes + 63) / 64;
    const size_t total = iters * transforms;
    f->pf.p = p;
    f->pf.end = (const char *)p + bytes;
    f->pf.per = (uint32_t)((lines + total - 1) / total);
}

size_t veil_fft_prefetch_left(const veil_fft *f) {
    return f->pf.p < f->pf.end ? (size_t)(f->pf.end - f->pf.p) : 0;
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
    if (f->n < VEIL_FFT_TILE_N)
        small_forward_i64(&f->t, poly, out);
    else
        f->k->forward_i64(&f->t, poly, out);
}

void veil_fft_forward_digits(veil_fft *f, const uint64_t *x, uint32_t a, uint32_t base_log,
                             uint32_t levels, double *out) {
    VEIL_ASSERT(f->path != VEIL_FFT_FFTW && a < 2 * f->n);
    if (f->n >= VEIL_FFT_TILE_N) {
        f->k->forward_digits(&f->t, x, a, base_log, levels, out);
        return;
    }
    /* the scalar path: the difference, each level's digits (veil/gadget.h,
     * ties up), then its transform; the same values as the fused route */
    uint64_t diff[VEIL_FFT_TILE_N];
    if (a) {
        f->k->rotate_sub(x, f->n, a, diff);
        x = diff;
    }
    const uint32_t bits = base_log * levels;
    for (uint32_t lv = 0; lv < levels; lv++) {
        int64_t d[64];
        for (uint32_t j = 0; j < f->n; j++) {
            uint64_t r, dg = 0;
            VEIL_GADGET_INIT(r, x[j], bits);
            for (uint32_t s = levels; s-- > lv;)
                VEIL_GADGET_STEP(r, dg, base_log);
            d[j] = (int64_t)dg;
        }
        small_forward_i64(&f->t, d, out + (size_t)lv * f->n);
    }
}

void veil_fft_forward_torus(veil_fft *f, const uint64_t *poly, double *out) {
    veil_fft_forward_i64(f, (const int64_t *)poly, out);
}

uint64_t veil_f64_to_torus(double v) {
    /* The vector paths' rule (fft_template.h f64_to_torus: round to nearest,
     * ties to even, mod 2^64), one value through the fastest build's
     * kernel (the portable one, generic vectors without SIMD, took about 25
     * ns a value), so the small transforms round as the others do. */
    uint64_t r = 0;
    best_kernels()->add_torus(&r, &v, 1);
    return r;
}

void veil_fft_backward_add_torus(veil_fft *f, double *in, uint64_t *acc) {
#ifdef VEIL_HAVE_FFTW
    if (f->path == VEIL_FFT_FFTW) {
        fftw_backward(f, in);
        /* folded result into buf2 (free once the plan has run), rounded in
         * one call of the fastest build's kernel: the same bits as every
         * path, at that path's cost (one value at a time through the
         * portable kernel made this path's inverse about 20 times slower
         * than FFTW's transform). */
        const uint32_t h = f->half;
        const double *b = (const double *)f->buf;
        double *d = (double *)f->buf2;
        for (uint32_t j = 0; j < h; j++) {
            d[j] = b[2 * j];
            d[j + h] = b[2 * j + 1];
        }
        best_kernels()->add_torus(acc, d, f->n);
        return;
    }
#endif
    if (f->n < VEIL_FFT_TILE_N)
        small_backward(&f->t, in, NULL, acc);
    else
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
    if (f->n < VEIL_FFT_TILE_N)
        small_backward(&f->t, in, out, NULL);
    else
        f->k->backward_f64(&f->t, in, out);
}

void veil_fft_mac(double *restrict acc, const double *restrict a, const double *restrict b,
                  uint32_t poly_size) {
    /* every build gives the same bits (N >= 16: whole blocks of 8 slots) */
    VEIL_ASSERT(poly_size >= VEIL_FFT_MIN_N);
    best_kernels()->mac(acc, a, b, poly_size);
}

void veil_fft_ggsw_put(uint32_t poly_size, uint32_t polys, uint32_t p, const double *poly,
                       double *ggsw) {
    for (uint32_t b = 0; b < poly_size / 16; b++)
        memcpy(ggsw + VEIL_FFT_GGSW_BLOCK(polys, poly_size, b, p), poly + 16 * (size_t)b,
               sizeof(double) * 16);
}

void veil_fft_ggsw_get(uint32_t poly_size, uint32_t polys, uint32_t p, const double *ggsw,
                       double *poly) {
    for (uint32_t b = 0; b < poly_size / 16; b++)
        memcpy(poly + 16 * (size_t)b, ggsw + VEIL_FFT_GGSW_BLOCK(polys, poly_size, b, p),
               sizeof(double) * 16);
}

void veil_fft_to_natural(uint32_t poly_size, const double *in, double *out) {
    const uint32_t h = poly_size / 2;
    for (uint32_t k = 0; k < h; k++) {
        const size_t o = VEIL_FFT_SLOT_RE(spectrum_slot(h, k));
        out[2 * k] = in[o];
        out[2 * k + 1] = in[o + 8];
    }
}
