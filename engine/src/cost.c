/* cost.c — the measured cost table (veil/cost.h). */
#include "veil/cost.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct cost_row {
    const char *id;
    /* the shape the figures were measured at: lwe_dim, glwe_dim, poly_size,
     * pbs_level, ks_level. A set re-derived since under the same id
     * (docs/PARAMS.md §5) does not match and gets the fit. */
    uint32_t shape[5];
    double br_ms;         /* blind rotation, one core */
    double ks_ns_per_row; /* keyswitch per master-key row */
    double cuda_us;       /* per KS-PBS at the set's own master dimension */
    int cuda_measured;
} cost_row;

static const cost_row k_rows[] = {
#include "cost_table.inc"
};
#define N_ROWS (sizeof k_rows / sizeof k_rows[0])

/* Multi-bit sets: ratios to the classic figure of their shape (cost.h). */
typedef struct mb_cost_row {
    const char *id;
    uint32_t shape[4]; /* n, k, N, l_pbs */
    double batch_ratio, lone_ratio, classic_lone_ratio;
} mb_cost_row;

static const mb_cost_row k_mb_rows[] = {
#include "cost_multibit.inc"
};
#define N_MB_ROWS (sizeof k_mb_rows / sizeof k_mb_rows[0])

static const double k_fit_br[] = VEIL_COST_FIT_BR;
static const double k_fit_ks[] = VEIL_COST_FIT_KS;

static int cmp_row(const void *key, const void *row) {
    return strcmp((const char *)key, ((const cost_row *)row)->id);
}

/* A measured shape (n, k, N, l_pbs first) of ps's k, N and l. */
static int same_knl(const uint32_t *shape, const veil_params *ps) {
    return shape[1] == ps->glwe_dim && shape[2] == ps->poly_size && shape[3] == ps->pbs_level;
}

static int same_shape(const cost_row *r, const veil_params *ps) {
    return r->shape[0] == ps->lwe_dim && same_knl(r->shape, ps) && r->shape[4] == ps->ks_level;
}

/* The row of ps's id, if it was measured at ps's shape. */
static const cost_row *row_by_id(const veil_params *ps) {
    const cost_row *r =
        ps && ps->id ? bsearch(ps->id, k_rows, N_ROWS, sizeof *k_rows, cmp_row) : NULL;
    return r && same_shape(r, ps) ? r : NULL;
}

/* The row of every set of veil_params_at(), and its two CPU terms (the
 * row's or the fit's), looked up once: the compiler's search asks for the
 * same few sets' costs millions of times. Other sets (multi-bit, a caller's
 * own) are looked up by id, and fitted, at every call. */
#define ROW_AT_MAX 1024u /* sets covered; any past it go by id */
static const cost_row *k_row_at[ROW_AT_MAX];
static double k_br_at[ROW_AT_MAX], k_ks_at[ROW_AT_MAX]; /* ms, ms per row */
static size_t k_row_at_n;
static pthread_once_t k_row_at_once = PTHREAD_ONCE_INIT;

static void terms_of(const veil_params *ps, const cost_row *r, double *br_ms,
                     double *ks_ms_per_row);

static void row_at_init(void) {
    const size_t n = veil_params_count() < ROW_AT_MAX ? veil_params_count() : ROW_AT_MAX;
    for (size_t i = 0; i < n; i++) {
        const veil_params *ps = veil_params_at(i);
        k_row_at[i] = row_by_id(ps);
        terms_of(ps, k_row_at[i], &k_br_at[i], &k_ks_at[i]);
    }
    k_row_at_n = n;
}

/* ps's index in veil_params_at(), or -1. */
static long at_index(const veil_params *ps) {
    pthread_once(&k_row_at_once, row_at_init);
    const uintptr_t first = (uintptr_t)veil_params_at(0), at = (uintptr_t)ps;
    if (at >= first && at < first + k_row_at_n * sizeof *ps && (at - first) % sizeof *ps == 0)
        return (long)((at - first) / sizeof *ps);
    return -1;
}

static const cost_row *row_of(const veil_params *ps) {
    const long i = at_index(ps);
    return i >= 0 ? k_row_at[i] : row_by_id(ps);
}

static double fit_br_ms(const veil_params *ps) {
    const double N = ps->poly_size;
    const double x[] = {1,      log(ps->lwe_dim),   log(ps->glwe_dim + 1.0),
                        log(N), log(ps->pbs_level), log(log2(N))};
    double y = 0;
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
        y += k_fit_br[i] * x[i];
    return exp(y);
}

static double fit_ks_ns(const veil_params *ps) {
    const double x[] = {1, log(ps->lwe_dim + 1.0), log(ps->ks_level)};
    double y = 0;
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
        y += k_fit_ks[i] * x[i];
    return exp(y);
}

static int cmp_mb_row(const void *key, const void *row) {
    return strcmp((const char *)key, ((const mb_cost_row *)row)->id);
}

/* The multi-bit row of ps's id, if measured at ps's shape. */
static const mb_cost_row *mb_row_of(const veil_params *ps) {
    const mb_cost_row *r =
        ps && ps->id && ps->grouping >= 2
            ? bsearch(ps->id, k_mb_rows, N_MB_ROWS, sizeof *k_mb_rows, cmp_mb_row)
            : NULL;
    return r && r->shape[0] == ps->lwe_dim && same_knl(r->shape, ps) ? r : NULL;
}

/* The classic blind rotation of ps's n, k, N, l (a set of that shape need
 * not exist): a measured row of the same k, N, l scaled to n (the table's
 * figures are pooled per CMux step over such families), else the fit. */
static double classic_br_ms(const veil_params *ps) {
    for (size_t i = 0; i < N_ROWS; i++)
        if (same_knl(k_rows[i].shape, ps))
            return k_rows[i].br_ms * ps->lwe_dim / k_rows[i].shape[0];
    return fit_br_ms(ps);
}

/* The median of each ratio over the multi-bit rows, per grouping (index g)
 * and over all of them (index 0): the figures of a set without a row of its
 * own, computed once. */
static double k_mb_median[3][VEIL_MULTIBIT_MAX_G + 1];
static pthread_once_t k_mb_median_once = PTHREAD_ONCE_INIT;

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void mb_median_init(void) {
    static double v[N_MB_ROWS];
    for (int which = 0; which < 3; which++)
        for (uint32_t g = 0; g <= VEIL_MULTIBIT_MAX_G; g++) {
            size_t n = 0;
            for (size_t i = 0; i < N_MB_ROWS; i++) {
                const mb_cost_row *r = &k_mb_rows[i];
                const veil_params *ps = veil_params_multibit_find(r->id);
                if (g && (!ps || ps->grouping != g)) continue;
                v[n++] = which == 0   ? r->batch_ratio
                         : which == 1 ? r->lone_ratio
                                      : r->classic_lone_ratio;
            }
            qsort(v, n, sizeof *v, cmp_double);
            /* no row of that grouping: all rows' */
            k_mb_median[which][g] = !n      ? k_mb_median[which][0]
                                    : n % 2 ? v[n / 2]
                                            : 0.5 * (v[n / 2 - 1] + v[n / 2]);
        }
}

static double mb_median(int which, uint32_t g) {
    pthread_once(&k_mb_median_once, mb_median_init);
    return k_mb_median[which][g <= VEIL_MULTIBIT_MAX_G ? g : 0];
}

/* The two CPU terms of ps: its row's (r), else the fit's; a multi-bit set,
 * its ratio times the classic figure of its shape. */
static void terms_of(const veil_params *ps, const cost_row *r, double *br_ms,
                     double *ks_ms_per_row) {
    if (ps->grouping >= 2) {
        const mb_cost_row *m = mb_row_of(ps);
        *br_ms = (m ? m->batch_ratio : mb_median(0, ps->grouping)) * classic_br_ms(ps);
        *ks_ms_per_row = 1e-6 * fit_ks_ns(ps);
        return;
    }
    *br_ms = r ? r->br_ms : fit_br_ms(ps);
    *ks_ms_per_row = 1e-6 * (r ? r->ks_ns_per_row : fit_ks_ns(ps));
}

void veil_cost_cpu_terms(const veil_params *ps, double *br_ms, double *ks_ms_per_row) {
    const long i = at_index(ps);
    if (i < 0) {
        terms_of(ps, row_by_id(ps), br_ms, ks_ms_per_row);
        return;
    }
    *br_ms = k_br_at[i];
    *ks_ms_per_row = k_ks_at[i];
}

double veil_cost_cpu_ms(const veil_params *ps, uint32_t rows) {
    double br, ks;
    veil_cost_cpu_terms(ps, &br, &ks);
    return veil_cost_cpu_ms_of(br, ks, rows);
}

/* A classic PBS alone over its batch figure: the classic_lone_ratio of a
 * multi-bit row of ps's k, N, l (measured beside it), else their median. */
static double classic_lone_factor(const veil_params *ps) {
    for (size_t i = 0; i < N_MB_ROWS; i++)
        if (same_knl(k_mb_rows[i].shape, ps)) return k_mb_rows[i].classic_lone_ratio;
    return mb_median(2, 0);
}

/* A lone PBS over the batch figure of its set: a multi-bit set's row
 * (lone_ratio / batch_ratio), a classic set's classic_lone_factor. */
static double lone_factor(const veil_params *ps) {
    if (ps->grouping < 2) return classic_lone_factor(ps);
    const mb_cost_row *m = mb_row_of(ps);
    return m ? m->lone_ratio / m->batch_ratio
             : mb_median(1, ps->grouping) / mb_median(0, ps->grouping);
}

void veil_cost_cpu_latency_terms(const veil_params *ps, veil_latency_terms *t) {
    veil_cost_cpu_terms(ps, &t->br_ms, &t->ks_ms_per_row);
    t->lone = lone_factor(ps);
    t->grouping = ps->grouping;
    t->chain_ms =
        ps->grouping >= 2 ? classic_br_ms(ps) * classic_lone_factor(ps) / ps->grouping : 0;
}

double veil_cost_latency_of(const veil_latency_terms *t, uint32_t rows, uint64_t count,
                            unsigned cores, int lookup) {
    if (!count) return 0;
    if (cores < 1) cores = 1;
    const double ks = t->ks_ms_per_row * (double)rows;
    /* a lone lookup's keyswitch split over the cores (cpu_ks_pbs) */
    const double ks_lone = lookup ? ks / cores : ks;
    if (t->grouping >= 2 && cores / count >= 2) {
        /* a team of cores / count each (the cpu backend, veil_pbs_threads):
         * the group sums shared, the external products in order on one */
        const double team = (double)(cores / count);
        const double br = t->br_ms * t->lone / team;
        return (br > t->chain_ms ? br : t->chain_ms) + (count == 1 ? ks_lone : ks);
    }
    /* a share of ceil(count / cores) lookups a core, in lockstep lanes:
     * the first at the lone figure, the others at the batch one */
    const uint64_t share = count / cores + (count % cores != 0);
    return t->br_ms * ((double)share - 1.0 + t->lone) + (count == 1 ? ks_lone : ks * (double)share);
}

double veil_cost_cpu_latency_ms(const veil_params *ps, uint32_t rows, uint64_t count,
                                unsigned cores) {
    veil_latency_terms t;
    veil_cost_cpu_latency_terms(ps, &t);
    return veil_cost_latency_of(&t, rows, count, cores, 1);
}

/* A WoP-PBS of the width of each WoP set (9 to 16 bits), in KS-PBS of the
 * set's own (a lockstep batch, its keyswitch reading the set's k N rows):
 * bench_wide --methods wop --tables random --n 2 (ks_pbs_per_lookup), the
 * mean of two runs on one core of the Intel Xeon of docs/results/MEASURED.md
 * (family 6 model 167, AVX-512: the cost table's host is an AVX-512 Zen 4,
 * and the ratio moves with the vector width), process CPU time, main
 * 53dc3dc of 2026-12-06 (docs/results/intel-wop-cost.json; the runs within
 * 7% but at 15 bits, 18%). On an AVX2-only Zen 1 the same lookups cost 15 to
 * 27 KS-PBS (zen1-wop-cost.json): there the KS-PBS's transforms lose more to
 * the narrower vectors than the WoP-PBS's integer products do, so its ratio
 * is lower; with those figures this Xeon's WoP-PBS was priced 1.45x to 1.74x
 * under its measured time while the digits' were within 10%
 * (intel-wop-auto.json). */
static const double k_wop_ks_pbs[] = {28.9, 22.6, 34.4, 37.0, 43.35, 47.6, 34.55, 33.9};
#define WOP_FIRST_WIDTH 9u

double veil_cost_wop_cpu_ms(const veil_wop_params *wp, unsigned w, uint32_t rows) {
    const veil_params *ps = &wp->pbs;
    const unsigned width = wp->width < WOP_FIRST_WIDTH       ? WOP_FIRST_WIDTH
                           : wp->width > WOP_FIRST_WIDTH + 7 ? WOP_FIRST_WIDTH + 7
                                                             : wp->width;
    const uint32_t big = veil_params_big_dim(ps);
    double br, ks;
    veil_cost_cpu_terms(ps, &br, &ks);
    /* the measured figure, then the w bit reads' keyswitches at `rows` rows
     * instead of the k N measured, and w / width where w is not the set's
     * (the cost is about linear in the bits) */
    const double ms = k_wop_ks_pbs[width - WOP_FIRST_WIDTH] * (br + ks * big) * w / width;
    return ms + w * ks * ((double)rows - big);
}

double veil_cost_cuda_us(const veil_params *ps, uint32_t master_dim) {
    const cost_row *r = row_of(ps);
    const double own = veil_cost_cpu_ms(ps, veil_params_big_dim(ps));
    const double at = veil_cost_cpu_ms(ps, master_dim);
    const double us = r ? r->cuda_us : own * VEIL_COST_CUDA_SCALE;
    return us * at / own;
}

double veil_cost_wop_cuda_us(const veil_wop_params *wp, unsigned w, uint32_t rows) {
    const veil_params *ps = &wp->pbs;
    return veil_cost_wop_cpu_ms(wp, w, rows) / veil_cost_cpu_ms(ps, rows) *
           veil_cost_cuda_us(ps, rows);
}

veil_cost_origin veil_cost_cpu_origin(const veil_params *ps) {
    if (ps->grouping >= 2) return mb_row_of(ps) ? VEIL_COST_MEASURED : VEIL_COST_ESTIMATED;
    return row_of(ps) ? VEIL_COST_MEASURED : VEIL_COST_ESTIMATED;
}

veil_cost_origin veil_cost_cuda_origin(const veil_params *ps) {
    const cost_row *r = row_of(ps);
    return r && r->cuda_measured ? VEIL_COST_MEASURED : VEIL_COST_ESTIMATED;
}

const char *veil_cost_source(void) {
    return VEIL_COST_SOURCE;
}

const char *veil_cost_multibit_source(void) {
    return VEIL_COST_MB_SOURCE;
}

size_t veil_cost_table_count(void) {
    return N_ROWS;
}

const char *veil_cost_table_id(size_t i) {
    return i < N_ROWS ? k_rows[i].id : NULL;
}
