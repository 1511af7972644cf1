/* bench_pbs — single-threaded CPU micro-benchmark of the TFHE core.
 *
 * First the negacyclic FFT alone: forward and inverse time per size N = 512
 * .. 65536 on every requested FFT path (veil/fft.h), runs interleaved so the
 * paths see the same machine load. Then for each parameter set: key
 * generation time, key sizes (raw and seeded), and the median and spread
 * (min, max, p10, p90) over R runs of encrypt, keyswitch, PBS and KS-PBS; PBS
 * and KS-PBS once per FFT path, interleaved run by run ("pbs"/"ks_pbs": the
 * first path; "fft_paths": all, with the ratio of medians to the first).
 * Then, per set, a batch of 2 VEIL_PBS_LANES KS-PBS one at a time against
 * lockstep groups (veil_ks_pbs_many): the throughput of one core; the
 * lockstep groups on every FFT path too ("fft_paths": "lockstep_ms_per_ks_pbs").
 * JSON to stdout (or --out FILE).
 *
 * --cost: only the figures of the compiler's cost table, for every set (see
 * bench_cost; scripts/cost_table.py turns the JSON into
 * engine/src/cost_table.inc).
 *
 * --cost --multibit: the multi-bit sets' cost figures instead (every set, or
 * the --params ones; see bench_cost_multibit).
 *
 * --multibit: instead, the published multi-bit sets (veil_params_multibit_at) beside
 * the classic TFHE-rs TUniform 2^-128 set of the same precision, runs
 * interleaved set by set so they see the same load: key generation, KS-PBS
 * latency on one core (median of R) and on 2 threads (veil_ks_pbs_threads:
 * a multi-bit PBS's groups formed by both threads; a classic one runs on
 * one), and the throughput of a batch of 4 VEIL_PBS_LANES KS-PBS through
 * veil_ks_pbs_many on 1 and on 2 threads (each thread its own context and
 * half the batch). What runs on 2 threads is timed by wall clock even with
 * --clock cpu: a thread's CPU clock would see its share of the work.
 *
 * --exchange: instead, what one lookup split over two cores would pay a CMux
 * to share its spectra (docs/results/HISTORY.md 0b, 0x): two threads each
 * write a buffer of N doubles (a digit spectrum of a set of that N), meet at
 * a barrier and read the other's, double-buffered, against one thread
 * writing and reading its own; N = 512 .. 65536, wall clock.
 *
 * usage: bench_pbs [--runs R] [--params ID[,ID...]] [--max-n N] [--fft P[,P...]]
 *                  [--clock wall|cpu] [--out FILE] [--cost] [--multibit] [--exchange]
 *                  (P: auto portable avx2 avx512 fftw) */
#include "veil/atomic_file.h"
#include "veil/compile_options.h"
#include "veil/fft.h"
#include "veil/tfhe.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* --clock cpu: this thread's CPU time, which leaves out the time other
 * processes hold the core (a shared machine); wall time by default. */
static clockid_t bench_clock = CLOCK_MONOTONIC;

static double now_s(void) {
    struct timespec t;
    clock_gettime(bench_clock, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Wall time whatever --clock says: a section that runs on several threads
 * (--multibit's 2-thread runs) is timed by it, since the thread CPU clock
 * would count only the calling thread's share of the work. */
static double wall_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double load_avg(void) {
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1;
        fclose(f);
    }
    return l;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Of sorted t[0..r): the q-quantile by nearest rank, t[ceil(q r) - 1]. */
static double rank_pct(const double *t, int r, double q) {
    int k = (int)ceil(q * (double)r - 1e-9);
    return t[k < 1 ? 0 : k > r ? r - 1 : k - 1];
}

/* Sorts t[0..r) and returns its median (the mean of the middle pair for an
 * even r). */
static double median_of(double *t, int r) {
    qsort(t, (size_t)r, sizeof *t, cmp_d);
    return r % 2 ? t[r / 2] : 0.5 * (t[r / 2 - 1] + t[r / 2]);
}

static void stats(FILE *o, const char *name, double *t, int r, int last) {
    const double med = median_of(t, r);
    fprintf(o,
            "      \"%s\": {\"median_ms\": %.4f, \"min_ms\": %.4f, \"p10_ms\": %.4f, "
            "\"p90_ms\": %.4f, \"max_ms\": %.4f, \"runs\": %d}%s\n",
            name, 1e3 * med, 1e3 * t[0], 1e3 * rank_pct(t, r, 0.1), 1e3 * rank_pct(t, r, 0.9),
            1e3 * t[r - 1], r, last ? "" : ",");
}

/* Forward and inverse transform, median microseconds per transform. The
 * inverse clobbers its input, so each call transforms a fresh copy: the
 * copies alone are timed in the same runs ("copy_us") and their median
 * taken off the inverse's. */
static void bench_fft(FILE *o, const veil_fft_path *paths, int np, int runs) {
    fprintf(o, "  \"fft\": [\n");
    double *tf = malloc(sizeof(double) * (size_t)runs * np),
           *tb = malloc(sizeof(double) * (size_t)runs * np), *tc = malloc(sizeof(double) * runs);
    for (uint32_t n = 512; n <= 65536; n *= 2) {
        veil_fft *f[VEIL_FFT_PATH_COUNT] = {0};
        int64_t *a = malloc(sizeof(int64_t) * n);
        double *x = veil_fft_alloc(sizeof(double) * n), *y = veil_fft_alloc(sizeof(double) * n);
        uint64_t *acc = calloc(n, sizeof(uint64_t));
        for (uint32_t i = 0; i < n; i++)
            a[i] = (int64_t)(i * 0x9e3779b97f4a7c15ull);
        for (int p = 0; p < np; p++)
            if (veil_fft_new_path(n, paths[p], &f[p]) != VEIL_OK) {
                fprintf(stderr, "fft %u: %s\n", n, veil_error_message());
                exit(1);
            }
        const int inner = n <= 4096 ? 64 : n <= 16384 ? 8 : 2;
        for (int r = 0; r < runs; r++) {
            double c0 = now_s();
            for (int i = 0; i < inner; i++) {
                memcpy(y, x, sizeof(double) * n);
                __asm__ volatile("" : : "r"(y) : "memory"); /* keep every copy */
            }
            tc[r] = (now_s() - c0) / inner;
            for (int p = 0; p < np; p++) {
                double t0 = now_s();
                for (int i = 0; i < inner; i++)
                    veil_fft_forward_i64(f[p], a, x);
                double t1 = now_s();
                for (int i = 0; i < inner; i++) {
                    memcpy(y, x, sizeof(double) * n); /* the inverse clobbers its input */
                    veil_fft_backward_add_torus(f[p], y, acc);
                }
                double t2 = now_s();
                tf[p * runs + r] = (t1 - t0) / inner;
                tb[p * runs + r] = (t2 - t1) / inner;
            }
        }
        const double mc = median_of(tc, runs);
        fprintf(o, "    {\"N\": %u, \"copy_us\": %.3f", n, 1e6 * mc);
        double f0 = 0, b0 = 0;
        for (int p = 0; p < np; p++) {
            double mf = median_of(tf + p * runs, runs), mb = median_of(tb + p * runs, runs) - mc;
            if (p == 0) f0 = mf, b0 = mb;
            fprintf(o,
                    ", \"%s\": {\"forward_us\": %.3f, \"inverse_us\": %.3f, "
                    "\"time_over_first\": %.3f}",
                    veil_fft_path_name(veil_fft_path_of(f[p])), 1e6 * mf, 1e6 * mb,
                    (mf + mb) / (f0 + b0));
            veil_fft_free(f[p]);
        }
        fprintf(o, "}%s\n", n < 65536 ? "," : "");
        free(a), veil_fft_dealloc(x), veil_fft_dealloc(y), free(acc);
    }
    fprintf(o, "  ],\n");
    free(tf), free(tb), free(tc);
}

static int wanted(const veil_params *p, const char *list, uint32_t max_n);

/* ---- --cost: the compiler's cost table (scripts/cost_table.py) ------------ */

static uint64_t mix_state = 0x243f6a8885a308d3ull;
static uint64_t mix64(void) { /* splitmix64: timing data, not keys */
    uint64_t z = (mix_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Blind-rotation work of one PBS in units of N log2 N products, to size
 * the measured share of n below. */
static double br_units(const veil_params *p, uint32_t n) {
    double N = p->poly_size, lg = 0;
    for (uint32_t v = p->poly_size; v > 1; v >>= 1)
        lg += 1;
    return (double)n * (p->glwe_dim + 1) * p->pbs_level * N * lg;
}

static int same_shape(const veil_params *a, const veil_params *b) {
    return a->lwe_dim == b->lwe_dim && a->glwe_dim == b->glwe_dim && a->poly_size == b->poly_size &&
           a->pbs_level == b->pbs_level && a->ks_level == b->ks_level;
}

/* The identity table of p's precision as a lookup table of set pm (a
 * measured share of p), and VEIL_PBS_LANES pointers to it: what the cost
 * figures run (the table's values do not change the time). 0 on failure,
 * printed. */
static int identity_luts(const veil_params *p, const veil_params *pm, veil_lut **lut,
                         const veil_lut **luts) {
    int64_t *table = malloc(sizeof(int64_t) << p->precision);
    if (!table) {
        fprintf(stderr, "%s: out of memory\n", p->id);
        return 0;
    }
    for (int64_t i = 0; i < (1 << p->precision); i++)
        table[i] = i;
    const veil_status st = veil_lut_new(pm, table, p->precision, 0, veil_delta(p->precision), lut);
    free(table);
    if (st) {
        fprintf(stderr, "%s: %s\n", p->id, veil_error_message());
        return 0;
    }
    for (size_t i = 0; i < VEIL_PBS_LANES; i++)
        luts[i] = *lut;
    return 1;
}

/* Per set (one measurement per shape n, k, N, l_pbs, l_ks: the operation
 * counts depend on nothing else), on this thread:
 *  - blind rotation: a lockstep batch of VEIL_PBS_LANES KS-PBS
 *    (veil_ks_pbs_many, what the cpu backend runs) minus the same batch's
 *    keyswitch (veil_keyswitch_many), per ciphertext. Blind rotation is n
 *    identical external products, so where the full key would not fit in
 *    memory or time it is measured on the first n_meas < n of them and
 *    scaled by n / n_meas (JSON: "n_measured").
 *  - keyswitch from a master key of D rows: veil_keyswitch_many of
 *    VEIL_KS_LANES ciphertexts (the cpu backend's keyswitch group) over
 *    D_meas rows (at most the set's own k*N, fewer where the key would
 *    exceed 256 MiB), per ciphertext and per row: linear in D, which the
 *    compiler multiplies by its master dimension.
 * Keys are random words (timing does not depend on their values; no key
 * generation), inputs random masks (every keyswitch digit nonzero-ish, as
 * for real ciphertexts). */
static int bench_cost(FILE *o, const char *list, uint32_t max_n, int runs_small) {
    const double mib = 1048576.0, key_cap = 768 * mib, ks_cap = 256 * mib, units_cap = 1.5e9;
    const size_t lanes = VEIL_PBS_LANES, ks_lanes = VEIL_KS_LANES;
    fprintf(o, "  \"sets\": [\n");
    int first = 1, measured = 0;
    for (size_t s = 0; s < veil_params_count(); s++) {
        const veil_params *p = veil_params_at(s);
        if (p->poly_size > max_n) continue;
        if (list && !wanted(p, list, max_n)) continue;
        fprintf(o,
                "%s    {\"id\": \"%s\", \"n\": %u, \"k\": %u, \"N\": %u, \"l_pbs\": %u, "
                "\"l_ks\": %u",
                first ? "" : ",\n", p->id, p->lwe_dim, p->glwe_dim, p->poly_size, p->pbs_level,
                p->ks_level);
        first = 0;
        const veil_params *twin = NULL;
        for (size_t q = 0; q < s && !twin; q++)
            if (same_shape(veil_params_at(q), p) && veil_params_at(q)->poly_size <= max_n &&
                (!list || wanted(veil_params_at(q), list, max_n)))
                twin = veil_params_at(q);
        if (twin) {
            fprintf(o, ", \"same_shape_as\": \"%s\"}", twin->id);
            continue;
        }
        const uint32_t big = veil_params_big_dim(p), n = p->lwe_dim;
        /* the measured share of the blind rotation */
        const double k1 = p->glwe_dim + 1;
        const double per_n = 8.0 * k1 * k1 * p->pbs_level * p->poly_size + /* Fourier BSK */
                             8.0 * big * p->ks_level;                      /* its KSK */
        uint32_t nm = n;
        if (per_n * nm > key_cap) nm = (uint32_t)(key_cap / per_n);
        if (br_units(p, nm) > units_cap) nm = (uint32_t)(n * units_cap / br_units(p, n));
        if (nm < 64) nm = 64;
        if (nm > n) nm = n;
        veil_params pm = *p;
        pm.lwe_dim = nm;
        veil_pbs_key pk = {.params = &pm, .in_dim = big, .ksk_rows = big};
        const size_t bsk_w = veil_eval_key_bsk_words(&pm),
                     ksk_w = veil_eval_key_ksk_words(&pm, big);
        pk.bsk_fourier = veil_fft_alloc(sizeof(double) * bsk_w);
        pk.ksk32 = malloc(4 * ksk_w);
        /* the D-row keyswitch, full n */
        uint32_t dm = big;
        const double row = 8.0 * p->ks_level * (n + 1);
        if (row * dm > ks_cap) dm = (uint32_t)(ks_cap / row);
        veil_pbs_key kk = {.params = p, .in_dim = dm, .ksk_rows = dm};
        kk.ksk32 = malloc(4 * veil_eval_key_ksk_words(p, dm));
        uint64_t *in = malloc(8 * lanes * (big + 1)), *out = malloc(8 * lanes * (big + 1)),
                 *sm = malloc(8 * lanes * (n + 1)), *kin = malloc(8 * ks_lanes * (dm + 1)),
                 *ksout = malloc(8 * ks_lanes * (n + 1));
        veil_pbs_ctx *ctx = NULL;
        veil_lut *lut = NULL;
        if (!pk.bsk_fourier || !pk.ksk32 || !kk.ksk32 || !in || !out || !sm || !kin || !ksout) {
            fprintf(stderr, "%s: out of memory\n", p->id);
            return 1;
        }
        for (size_t i = 0; i < bsk_w; i++) /* torus-sized Fourier coefficients */
            pk.bsk_fourier[i] = ldexp((double)(int64_t)mix64(), -11);
        for (size_t i = 0; i < ksk_w; i++)
            pk.ksk32[i] = (uint32_t)(mix64() >> 32);
        for (size_t i = 0; i < veil_eval_key_ksk_words(p, dm); i++)
            kk.ksk32[i] = (uint32_t)(mix64() >> 32);
        for (size_t i = 0; i < lanes * (big + 1); i++)
            in[i] = mix64();
        for (size_t i = 0; i < ks_lanes * (dm + 1); i++)
            kin[i] = mix64();
        const veil_lut *luts[VEIL_PBS_LANES];
        if (veil_pbs_ctx_new(&pm, &ctx)) {
            fprintf(stderr, "%s: %s\n", p->id, veil_error_message());
            return 1;
        }
        if (!identity_luts(p, &pm, &lut, luts)) return 1;
        const int runs = p->poly_size >= 16384 ? 3 : runs_small;
        double tb[64], tk[64], td[64];
        for (int r = 0; r < runs && r < 64; r++) {
            double a = now_s();
            veil_ks_pbs_many(ctx, &pk, luts, in, lanes, out);
            double b = now_s();
            veil_keyswitch_many(&pk, in, lanes, sm);
            double c = now_s();
            veil_keyswitch_many(&kk, kin, ks_lanes, ksout);
            double d = now_s();
            tb[r] = (b - a) / (double)lanes;
            tk[r] = (c - b) / (double)lanes;
            td[r] = (d - c) / (double)ks_lanes;
        }
        const int rr = runs < 64 ? runs : 64;
        const double ksp = median_of(tb, rr), ksm = median_of(tk, rr), kd = median_of(td, rr);
        const double br = (ksp - ksm) * (double)n / (double)nm;
        const double ks_row = kd / (double)dm;
        fprintf(o,
                ", \"n_measured\": %u, \"runs\": %d, \"lanes\": %zu, \"ks_lanes\": %zu,\n      "
                "\"ks_pbs_lockstep_ms_measured\": %.4f, \"keyswitch_lockstep_ms_measured\": %.4f, "
                "\"blind_rotation_ms\": %.4f,\n      \"ks_rows_measured\": %u, "
                "\"keyswitch_ns_per_row\": %.3f, \"ks_pbs_own_master_ms\": %.4f}",
                nm, rr, lanes, ks_lanes, 1e3 * ksp, 1e3 * ksm, 1e3 * br, dm, 1e9 * ks_row,
                1e3 * (br + ks_row * big));
        fflush(o);
        measured++;
        veil_lut_free(lut);
        veil_pbs_ctx_free(ctx);
        veil_fft_dealloc(pk.bsk_fourier);
        free(pk.ksk32), free(kk.ksk32);
        free(in), free(out), free(sm), free(kin), free(ksout);
    }
    fprintf(o, "\n  ],\n  \"shapes_measured\": %d,\n", measured);
    return 0;
}

/* --cost --multibit: per multi-bit set, its blind rotation against a
 * classic one of the same n, k, N and l (what the compiler's table prices:
 * the multi-bit sets are not in it), on this thread, both with random keys
 * (no key generation), in two settings:
 *  - a lockstep batch of VEIL_PBS_LANES (veil_ks_pbs_many minus its
 *    keyswitch, per ciphertext), as the cpu backend runs a batch;
 *  - one PBS alone (veil_pbs), as it runs a lone lookup: there the
 *    multi-bit key (2^g / g times the classic one) streams from memory for
 *    one ciphertext only.
 * The ratios to the classic batch figure are what engine/src/cost.c keeps
 * (scripts/cost_table.py): the absolute times are this host's, the ratios
 * move less between hosts. Where the multi-bit key would pass 768 MiB the
 * first n_meas groups are timed, for both, and the ratios are of those. */
static int bench_cost_multibit(FILE *o, const char *list, int runs) {
    const double key_cap = 768 * 1048576.0;
    const size_t lanes = VEIL_PBS_LANES;
    fprintf(o, "  \"multibit_sets\": [\n");
    int first = 1;
    for (size_t s = 0; s < veil_params_multibit_count(); s++) {
        const veil_params *p = veil_params_multibit_at(s);
        if (list && !wanted(p, list, 65536)) continue;
        const uint32_t g = p->grouping, big = veil_params_big_dim(p);
        const double k1 = p->glwe_dim + 1;
        const double group_bytes = 8.0 * (1u << g) * k1 * k1 * p->pbs_level * p->poly_size;
        uint32_t groups = p->lwe_dim / g;
        if (group_bytes * groups > key_cap) groups = (uint32_t)(key_cap / group_bytes);
        veil_params pm = *p, pc = *p;
        pm.lwe_dim = pc.lwe_dim = groups * g;
        pc.grouping = 0;
        veil_pbs_key km = {.params = &pm, .in_dim = big, .ksk_rows = big};
        veil_pbs_key kc = {.params = &pc, .in_dim = big, .ksk_rows = big};
        const size_t mw = veil_eval_key_bsk_words(&pm), cw = veil_eval_key_bsk_words(&pc);
        km.bsk = malloc(8 * mw);
        kc.bsk_fourier = veil_fft_alloc(sizeof(double) * cw);
        km.ksk32 = kc.ksk32 = malloc(4 * veil_eval_key_ksk_words(&pm, big));
        uint64_t *in = malloc(8 * lanes * (big + 1)), *out = malloc(8 * lanes * (big + 1)),
                 *sm = malloc(8 * lanes * (pm.lwe_dim + 1));
        veil_pbs_ctx *cm = NULL, *cc = NULL;
        veil_lut *lut = NULL;
        if (!km.bsk || !kc.bsk_fourier || !km.ksk32 || !in || !out || !sm) {
            fprintf(stderr, "%s: out of memory\n", p->id);
            return 1;
        }
        for (size_t i = 0; i < mw; i++)
            km.bsk[i] = mix64();
        for (size_t i = 0; i < cw; i++) /* torus-sized Fourier coefficients */
            kc.bsk_fourier[i] = ldexp((double)(int64_t)mix64(), -11);
        for (size_t i = 0; i < veil_eval_key_ksk_words(&pm, big); i++)
            km.ksk32[i] = (uint32_t)(mix64() >> 32);
        for (size_t i = 0; i < lanes * (big + 1); i++)
            in[i] = mix64();
        const veil_lut *luts[VEIL_PBS_LANES];
        if (veil_pbs_ctx_new(&pm, &cm) || veil_pbs_ctx_new(&pc, &cc)) {
            fprintf(stderr, "%s: %s\n", p->id, veil_error_message());
            return 1;
        }
        if (!identity_luts(p, &pm, &lut, luts)) return 1;
        double t[4][64];
        const int rr = runs < 64 ? runs : 64;
        for (int r = 0; r < rr; r++)
            for (int m = 0; m < 2; m++) {
                veil_pbs_ctx *c = m ? cc : cm;
                const veil_pbs_key *k = m ? &kc : &km;
                double a = now_s();
                veil_ks_pbs_many(c, k, luts, in, lanes, out);
                double b = now_s();
                veil_keyswitch_many(k, in, lanes, sm);
                double d = now_s();
                veil_pbs(c, k, lut, sm, out);
                double e = now_s();
                t[2 * m][r] = ((b - a) - (d - b)) / (double)lanes;
                t[2 * m + 1][r] = e - d;
            }
        const double mb = median_of(t[0], rr), ml = median_of(t[1], rr), cb = median_of(t[2], rr),
                     cl = median_of(t[3], rr);
        fprintf(o,
                "%s    {\"id\": \"%s\", \"grouping\": %u, \"n\": %u, \"k\": %u, \"N\": %u, "
                "\"l_pbs\": %u, \"n_measured\": %u, \"runs\": %d,\n      \"multibit_batch_ms\": "
                "%.4f, \"multibit_lone_ms\": %.4f, \"classic_batch_ms\": %.4f, "
                "\"classic_lone_ms\": %.4f,\n      \"batch_ratio\": %.4f, \"lone_ratio\": %.4f, "
                "\"classic_lone_ratio\": %.4f}",
                first ? "" : ",\n", p->id, g, p->lwe_dim, p->glwe_dim, p->poly_size, p->pbs_level,
                pm.lwe_dim, rr, 1e3 * mb, 1e3 * ml, 1e3 * cb, 1e3 * cl, mb / cb, ml / cb, cl / cb);
        fflush(o);
        first = 0;
        veil_lut_free(lut);
        veil_pbs_ctx_free(cm);
        veil_pbs_ctx_free(cc);
        free(km.bsk);
        veil_fft_dealloc(kc.bsk_fourier);
        free(km.ksk32);
        free(in), free(out), free(sm);
    }
    fprintf(o, "\n  ],\n");
    return 0;
}

/* ---- --multibit ----------------------------------------------------------- */

typedef struct {
    const veil_params *p;
    veil_secret_key *sk;
    veil_eval_key *ek;
    veil_pbs_ctx *ctx[2];
    veil_lut *lut;
    uint64_t *in, *out; /* batch x (big + 1) */
    const veil_lut **luts;
    double keygen_s;
} mb_case;

#define MB_BATCH (4 * VEIL_PBS_LANES)

typedef struct {
    mb_case *c;
    int half;
} mb_job;

static void *mb_half(void *arg) {
    const mb_job *j = arg;
    const size_t w = (size_t)veil_params_big_dim(j->c->p) + 1, h = MB_BATCH / 2;
    veil_ks_pbs_many(j->c->ctx[j->half], veil_eval_key_part(j->c->ek, 0), j->c->luts,
                     j->c->in + j->half * h * w, h, j->c->out + j->half * h * w);
    return NULL;
}

static int mb_case_new(const veil_params *p, mb_case *c) {
    memset(c, 0, sizeof *c);
    c->p = p;
    veil_encryptor *enc = NULL;
    double t0 = now_s();
    if (veil_secret_key_new(p, NULL, &c->sk) || veil_eval_key_new(c->sk, NULL, NULL, &c->ek))
        return 0;
    c->keygen_s = now_s() - t0;
    int64_t table[256];
    for (int64_t i = 0; i < (1 << p->precision); i++)
        table[i] = ((1 << p->precision) - 1) - i;
    if (veil_pbs_ctx_new(p, &c->ctx[0]) || veil_pbs_ctx_new(p, &c->ctx[1]) ||
        veil_lut_new(p, table, p->precision, 0, veil_delta(p->precision), &c->lut) ||
        veil_encryptor_new(NULL, NULL, &enc))
        return 0;
    const size_t w = (size_t)veil_params_big_dim(p) + 1;
    c->in = malloc(8 * w * MB_BATCH);
    c->out = malloc(8 * w * MB_BATCH);
    c->luts = malloc(sizeof *c->luts * MB_BATCH);
    if (!c->in || !c->out || !c->luts) return 0;
    for (size_t b = 0; b < MB_BATCH; b++) {
        veil_encrypt_big(enc, c->sk, veil_encode((int64_t)(b % (1u << p->precision)), p->precision),
                         c->in + b * w);
        c->luts[b] = c->lut;
    }
    veil_encryptor_free(enc);
    return 1;
}

static void mb_case_free(mb_case *c) {
    veil_pbs_ctx_free(c->ctx[0]);
    veil_pbs_ctx_free(c->ctx[1]);
    veil_lut_free(c->lut);
    veil_eval_key_free(c->ek);
    veil_secret_key_free(c->sk);
    free(c->in);
    free(c->out);
    free(c->luts);
}

/* One run of each measure: KS-PBS latency, batch on 1 thread (both by the
 * --clock clock), KS-PBS latency and batch on 2 threads (always wall time:
 * see wall_s). */
static void mb_run(mb_case *c, double *lat, double *lat2, double *t1, double *t2) {
    double a = now_s();
    veil_ks_pbs(c->ctx[0], veil_eval_key_part(c->ek, 0), c->lut, c->in, c->out);
    *lat = now_s() - a;
    a = wall_s();
    veil_ks_pbs_threads(c->ctx, 2, veil_eval_key_part(c->ek, 0), c->lut, c->in, c->out);
    *lat2 = wall_s() - a;
    a = now_s();
    veil_ks_pbs_many(c->ctx[0], veil_eval_key_part(c->ek, 0), c->luts, c->in, MB_BATCH, c->out);
    *t1 = (now_s() - a) / MB_BATCH;
    mb_job j[2] = {{c, 0}, {c, 1}};
    pthread_t th;
    a = wall_s();
    const int spawned = pthread_create(&th, NULL, mb_half, &j[1]) == 0;
    mb_half(&j[0]);
    if (spawned)
        pthread_join(th, NULL);
    else
        mb_half(&j[1]);
    *t2 = (wall_s() - a) / MB_BATCH;
}

/* Each multi-bit set and its classic reference, interleaved run by run. */
static int bench_multibit(FILE *o, int runs) {
    fprintf(o, "  \"multibit\": [\n");
    /* the published sets: each has a classic TFHE-rs set of its precision
     * (the derived NN sets have none: left out) */
    size_t published = 0;
    while (published < veil_params_multibit_count() &&
           !(veil_params_multibit_at(published)->flags & VEIL_PARAMS_NN))
        published++;
    for (size_t i = 0; i < published; i++) {
        const veil_params *mp = veil_params_multibit_at(i);
        const veil_params *cp = veil_params_find(mp->precision == 2 ? "tfhers-1_1-tuniform-2m128"
                                                                    : "tfhers-2_2-tuniform-2m128");
        mb_case c[2];
        if (!cp || !mb_case_new(mp, &c[0]) || !mb_case_new(cp, &c[1])) {
            fprintf(stderr, "%s: %s\n", mp->id, veil_error_message());
            return 0;
        }
        double *t = malloc(sizeof(double) * 8 * (size_t)runs);
        for (int r = 0; r < runs; r++)
            for (int k = 0; k < 2; k++)
                mb_run(&c[k], &t[(4 * k) * runs + r], &t[(4 * k + 3) * runs + r],
                       &t[(4 * k + 1) * runs + r], &t[(4 * k + 2) * runs + r]);
        double m[8];
        for (int q = 0; q < 8; q++)
            m[q] = median_of(t + q * runs, runs);
        fprintf(o,
                "    {\"multibit\": \"%s\", \"grouping\": %u, \"classic\": \"%s\", \"runs\": %d,\n",
                mp->id, mp->grouping, cp->id, runs);
        for (int k = 0; k < 2; k++) {
            const veil_params *p = c[k].p;
            fprintf(
                o,
                "     \"%s\": {\"n\": %u, \"k\": %u, \"N\": %u, \"l\": %u, \"keygen_s\": %.3f, "
                "\"bsk_bytes\": %zu, \"ks_pbs_ms\": %.3f, \"batch_ms_per_ks_pbs_1_thread\": %.3f, "
                "\"batch_ms_per_ks_pbs_2_threads\": %.3f, \"ks_pbs_ms_2_threads\": %.3f},\n",
                k ? "classic_set" : "multibit_set", p->lwe_dim, p->glwe_dim, p->poly_size,
                p->pbs_level, c[k].keygen_s, veil_eval_key_bsk_words(p) * 8, 1e3 * m[4 * k],
                1e3 * m[4 * k + 1], 1e3 * m[4 * k + 2], 1e3 * m[4 * k + 3]);
        }
        fprintf(o,
                "     \"multibit_over_classic\": {\"ks_pbs\": %.3f, \"batch_1_thread\": %.3f, "
                "\"batch_2_threads\": %.3f, \"ks_pbs_2_threads\": %.3f}}%s\n",
                m[0] / m[4], m[1] / m[5], m[2] / m[6], m[3] / m[7], i + 1 < published ? "," : "");
        fflush(o);
        free(t);
        mb_case_free(&c[0]);
        mb_case_free(&c[1]);
    }
    fprintf(o, "  ],\n");
    return 1;
}

static int wanted(const veil_params *p, const char *list, uint32_t max_n) {
    if (p->poly_size > max_n) return 0;
    if (!list) return !(p->flags & VEIL_PARAMS_NN);
    size_t len = strlen(p->id);
    for (const char *s = list; (s = strstr(s, p->id)); s += len)
        if ((s == list || s[-1] == ',') && (s[len] == 0 || s[len] == ',')) return 1;
    return 0;
}

static int bench_main(FILE *o, const char *list, uint32_t max_n, int max_n_given,
                      const veil_fft_path *paths, int np, int runs, int cost, int multibit);

/* The CPU's model name (/proc/cpuinfo), or "unknown". */
static void cpu_model(char *cpu, size_t cap) {
    snprintf(cpu, cap, "unknown");
    FILE *ci = fopen("/proc/cpuinfo", "r");
    if (!ci) return;
    char line[512];
    while (fgets(line, sizeof line, ci))
        if (!strncmp(line, "model name", 10)) {
            char *c = strchr(line, ':');
            if (c) {
                snprintf(cpu, cap, "%s", c + 2);
                cpu[strcspn(cpu, "\n")] = 0;
            }
            break;
        }
    fclose(ci);
}

/* ---- --exchange ------------------------------------------------------------ */

typedef struct xch {
    _Alignas(64) atomic_uint at[2]; /* per side: the last round written */
    double *buf[2][2];              /* [side][round parity] */
    size_t words;
    unsigned rounds;
    double sink[2];
} xch;

/* Rounds of: write this side's buffer, meet the other side, read its buffer
 * (eight sums, so the reads stream instead of waiting on one chain). */
static void xch_side(xch *x, int me) {
    double s[8] = {0};
    for (unsigned r = 1; r <= x->rounds; r++) {
        double *w = x->buf[me][r & 1];
        for (size_t j = 0; j < x->words; j++)
            w[j] = (double)j * (double)r;
        atomic_store_explicit(&x->at[me], r, memory_order_release);
        while (atomic_load_explicit(&x->at[!me], memory_order_acquire) < r) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        }
        const double *q = x->buf[!me][r & 1];
        for (size_t j = 0; j < x->words; j += 8)
            for (int u = 0; u < 8; u++)
                s[u] += q[j + u];
    }
    x->sink[me] = s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

static void *xch_other(void *p) {
    xch_side(p, 1);
    return NULL;
}

static int bench_exchange(FILE *o, int runs) {
    char cpu[256];
    cpu_model(cpu, sizeof cpu);
    fprintf(o,
            "{\n  \"benchmark\": \"exchange\",\n  \"cpu\": \"%s\",\n  \"clock\": \"wall\",\n"
            "  \"sizes\": [\n",
            cpu);
    for (uint32_t N = 512; N <= 65536; N *= 2) {
        xch x = {.words = N, .rounds = (unsigned)(runs * 100 > 2000 ? runs * 100 : 2000)};
        double *mem = veil_fft_alloc(sizeof(double) * 4 * N);
        if (!mem) return 1;
        for (int k = 0; k < 4; k++)
            x.buf[k / 2][k % 2] = mem + (size_t)k * N;
        /* one thread, its own buffer: the work without the exchange */
        atomic_store(&x.at[1], UINT32_MAX);
        double t0 = wall_s();
        xch_side(&x, 0);
        const double local_us = (wall_s() - t0) / x.rounds * 1e6;
        atomic_store(&x.at[0], 0);
        atomic_store(&x.at[1], 0);
        pthread_t t;
        if (pthread_create(&t, NULL, xch_other, &x) != 0) {
            veil_fft_dealloc(mem);
            return 1;
        }
        t0 = wall_s();
        xch_side(&x, 0);
        pthread_join(t, NULL);
        const double two_us = (wall_s() - t0) / x.rounds * 1e6;
        fprintf(o,
                "    {\"N\": %u, \"kib\": %u, \"rounds\": %u, \"local_us\": %.3f, "
                "\"two_threads_us\": %.3f, \"exchange_us\": %.3f}%s\n",
                N, N * 8 / 1024, x.rounds, local_us, two_us, two_us - local_us,
                N < 65536 ? "," : "");
        veil_fft_dealloc(mem);
    }
    fprintf(o, "  ]\n}\n");
    return 0;
}

int main(int argc, char **argv) {
    int runs = 30;
    const char *list = NULL, *out_path = NULL;
    uint32_t max_n = 8192;
    const char *fft_list = NULL;
    int cost = 0, max_n_given = 0, multibit = 0, exchange = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--cost"))
            cost = 1;
        else if (!strcmp(argv[i], "--exchange"))
            exchange = 1;
        else if (!strcmp(argv[i], "--multibit"))
            multibit = 1;
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
            uint64_t u; /* the per-run arrays of --cost hold 64 */
            if (veil_arg_u64("--runs", argv[++i], 3, 100000, &u) != VEIL_OK) {
                fprintf(stderr, "%s: %s\n", argv[0], veil_error_message());
                return 2;
            }
            runs = (int)u;
        } else if (!strcmp(argv[i], "--params") && i + 1 < argc)
            list = argv[++i];
        else if (!strcmp(argv[i], "--max-n") && i + 1 < argc) {
            uint64_t u;
            if (veil_arg_u64("--max-n", argv[++i], 512, 65536, &u) != VEIL_OK) {
                fprintf(stderr, "%s: %s\n", argv[0], veil_error_message());
                return 2;
            }
            max_n = (uint32_t)u, max_n_given = 1;
        } else if (!strcmp(argv[i], "--clock") && i + 1 < argc &&
                   (!strcmp(argv[i + 1], "cpu") || !strcmp(argv[i + 1], "wall")))
            bench_clock = !strcmp(argv[++i], "cpu") ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC;
        else if (!strcmp(argv[i], "--fft") && i + 1 < argc)
            fft_list = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc)
            out_path = argv[++i];
        else {
            /* --help: the usage on stdout, exit 0; anything else: stderr, 2 */
            const int help = !strcmp(argv[i], "--help") || !strcmp(argv[i], "-h");
            fprintf(help ? stdout : stderr,
                    "usage: %s [--runs R] [--params ID[,ID...]] [--max-n N] [--fft P[,P...]]\n"
                    "       [--clock wall|cpu] [--out FILE] [--cost] [--multibit] [--exchange]\n"
                    "Single-threaded CPU benchmark of the FFT per size, then keygen, encrypt,\n"
                    "keyswitch, PBS, KS-PBS per set.\n\n"
                    "options:\n"
                    "  --runs R        timed runs of each measurement, 3 to 100000 (default 30)\n"
                    "  --params ID[,ID...]\n"
                    "                  these sets (not capped by --max-n); default: every\n"
                    "                  published set up to --max-n\n"
                    "  --max-n N       largest N, 512 to 65536 (default 8192; with --cost: all)\n"
                    "  --fft P[,P...]  the FFT paths to compare: auto, portable, avx2, avx512,\n"
                    "                  fftw (default auto,fftw when FFTW is built in, else auto)\n"
                    "  --clock wall|cpu\n"
                    "                  cpu: thread CPU time instead of wall time (shared\n"
                    "                  machines; default wall); what --multibit runs on 2\n"
                    "                  threads is always timed by wall clock\n"
                    "  --out FILE      the JSON (default: standard output)\n"
                    "  --cost          only the compiler's cost figures (blind rotation and\n"
                    "                  keyswitch per row, one per parameter-set shape)\n"
                    "  --multibit      the multi-bit sets beside the classic set of the same\n"
                    "                  precision instead: KS-PBS latency and batch throughput on\n"
                    "                  1 and 2 threads; with --cost, the multi-bit sets' blind\n"
                    "                  rotation against a classic one of the same shape, in a\n"
                    "                  batch and alone (every multi-bit set, or --params)\n"
                    "  --exchange      instead, two threads sharing a buffer of N doubles a round\n"
                    "                  (one lookup's spectra split over two cores) against one\n"
                    "                  thread alone\n",
                    argv[0]);
            return help ? 0 : 2;
        }
    }
    /* every set --params names exists (a typo would give an empty run);
     * named sets are not capped by the default --max-n */
    for (const char *s = list; s && *s;) {
        const size_t len = strcspn(s, ",");
        char id[128];
        snprintf(id, sizeof id, "%.*s", (int)len, s);
        if (cost && multibit ? !veil_params_multibit_find(id) : !veil_params_find(id)) {
            fprintf(stderr,
                    "%s: --params: unknown parameter set '%s' (classic sets; multi-bit ones "
                    "with --cost --multibit)\n",
                    argv[0], id);
            return 2;
        }
        s += len + (s[len] == ',');
    }
    if (list && !max_n_given) max_n = 65536;
    /* FFT paths; auto resolved to the path it stands for */
    veil_fft_path paths[VEIL_FFT_PATH_COUNT];
    int np = 0;
    char fl[256];
    snprintf(fl, sizeof fl, "%s",
             fft_list                                 ? fft_list
             : veil_fft_path_available(VEIL_FFT_FFTW) ? "auto,fftw"
                                                      : "auto");
    for (char *tok = strtok(fl, ","); tok && np < VEIL_FFT_PATH_COUNT; tok = strtok(NULL, ",")) {
        veil_fft_path p;
        if (veil_fft_path_parse(tok, &p) != VEIL_OK) {
            fprintf(stderr, "%s: --fft %s: %s\n", argv[0], tok, veil_error_message());
            return 2;
        }
        if (!veil_fft_path_available(p)) {
            fprintf(stderr, "%s: --fft %s: not available here\n", argv[0], tok);
            return 2;
        }
        paths[np++] = p == VEIL_FFT_AUTO ? veil_fft_path_default() : p;
    }
    /* --out appears whole at the end (veil_atomic_file), a previous file
     * kept when the run fails */
    veil_atomic_file af = {0};
    if (out_path && veil_atomic_file_open(&af, out_path, 0644) != VEIL_OK) {
        fprintf(stderr, "%s: %s\n", argv[0], veil_error_message());
        return 1;
    }
    FILE *o = out_path ? af.f : stdout;
    const int rc = exchange
                       ? bench_exchange(o, runs)
                       : bench_main(o, list, max_n, max_n_given, paths, np, runs, cost, multibit);
    if (out_path && rc) veil_atomic_file_discard(&af);
    if (out_path && !rc && veil_atomic_file_commit(&af) != VEIL_OK) {
        fprintf(stderr, "%s: %s\n", argv[0], veil_error_message());
        return 1;
    }
    return rc;
}

/* Everything after the options: JSON on o; 0 when whole. */
static int bench_main(FILE *o, const char *list, uint32_t max_n, int max_n_given,
                      const veil_fft_path *paths, int np, int runs, int cost, int multibit) {
    char cpu[256];
    cpu_model(cpu, sizeof cpu);
    fprintf(o, "{\n  \"benchmark\": \"pbs\",\n  \"backend\": \"cpu\",\n  \"threads\": %d,\n",
            multibit ? 2 : 1);
    /* the machine's load while measured (a shared machine: other work) */
    fprintf(o, "  \"load_avg_1min_start\": %.2f,\n", load_avg());
    fprintf(o, "  \"clock\": \"%s\",\n", bench_clock == CLOCK_MONOTONIC ? "wall" : "thread_cpu");
    /* what runs on 2 threads: wall time whatever --clock says */
    if (multibit && !cost) fprintf(o, "  \"clock_2_threads\": \"wall\",\n");
    if (cost) {
        fprintf(o, "  \"cpu\": \"%s\",\n  \"fft_path\": \"%s\",\n", cpu,
                veil_fft_path_name(veil_fft_path_default()));
        int rc = multibit ? bench_cost_multibit(o, list, runs)
                          : bench_cost(o, list, max_n_given ? max_n : 65536, runs);
        fprintf(o, "  \"load_avg_1min_end\": %.2f\n}\n", load_avg());
        return rc;
    }
    fprintf(o, "  \"cpu\": \"%s\",\n  \"fft_paths\": [", cpu);
    for (int p = 0; p < np; p++)
        fprintf(o, "%s\"%s\"", p ? ", " : "", veil_fft_path_name(paths[p]));
    fprintf(o, "],\n");
    if (multibit) {
        const int ok = bench_multibit(o, runs);
        fprintf(o, "  \"load_avg_1min_end\": %.2f\n}\n", load_avg());
        return ok ? 0 : 1;
    }
    bench_fft(o, paths, np, runs);
    fprintf(o, "  \"sets\": [\n");
    int first = 1;
    double *t = malloc(sizeof(double) * (size_t)runs);
    double *tp = malloc(sizeof(double) * (size_t)runs * np * 2);
    for (size_t s = 0; s < veil_params_count(); s++) {
        const veil_params *p = veil_params_at(s);
        if (!wanted(p, list, max_n)) continue;
        veil_secret_key *sk;
        veil_eval_key *ek;
        veil_encryptor *enc;
        veil_pbs_ctx *ctx, *pctx[VEIL_FFT_PATH_COUNT] = {0};
        veil_lut *lut;
        double t0 = now_s();
        if (veil_secret_key_new(p, NULL, &sk) || veil_eval_key_new(sk, NULL, NULL, &ek)) {
            fprintf(stderr, "%s: %s\n", p->id, veil_error_message());
            return 1;
        }
        double keygen = now_s() - t0;
        int64_t *table = malloc(sizeof(int64_t) << p->precision);
        for (int64_t i = 0; i < (1 << p->precision); i++)
            table[i] = ((1 << p->precision) - 1) - i;
        if (veil_encryptor_new(NULL, NULL, &enc) || veil_pbs_ctx_new(p, &ctx) ||
            veil_lut_new(p, table, p->precision, 0, veil_delta(p->precision), &lut)) {
            fprintf(stderr, "%s: %s\n", p->id, veil_error_message());
            return 1;
        }
        /* one PBS context per FFT path; the Fourier key layout is shared */
        for (int q = 0; q < np; q++) {
            veil_fft_path_set_default(paths[q]);
            if (veil_pbs_ctx_new(p, &pctx[q])) {
                fprintf(stderr, "%s: %s\n", p->id, veil_error_message());
                return 1;
            }
        }
        veil_fft_path_set_default(VEIL_FFT_AUTO);
        const uint32_t big = veil_params_big_dim(p), n = p->lwe_dim;
        uint64_t *in = malloc(8 * (big + 1)), *o2 = malloc(8 * (big + 1)),
                 *sm = malloc(8 * (n + 1));
        const size_t k1 = p->glwe_dim + 1;
        size_t bsk_raw = veil_eval_key_bsk_words(p) * 8,
               ksk_raw = veil_eval_key_ksk_words(p, big) * 8;
        /* seeded: the bodies only (N words per BSK row, one word per KSK row) + seed */
        size_t bsk_seeded = bsk_raw / k1, ksk_seeded = ksk_raw / (n + 1);
        fprintf(o, "%s    {\n      \"id\": \"%s\", \"n\": %u, \"k\": %u, \"N\": %u,\n",
                first ? "" : ",\n", p->id, n, p->glwe_dim, p->poly_size);
        first = 0;
        fprintf(o, "      \"keygen_s\": %.3f,\n", keygen);
        fprintf(o,
                "      \"bsk_bytes\": %zu, \"ksk_bytes\": %zu, \"eval_key_seeded_bytes\": %zu,\n",
                bsk_raw, ksk_raw, bsk_seeded + ksk_seeded + VEIL_SEED_BYTES);
        for (int r = 0; r < runs; r++) {
            double a = now_s();
            veil_encrypt_big(enc, sk, veil_encode(r % (1 << p->precision), p->precision), in);
            t[r] = now_s() - a;
        }
        stats(o, "encrypt", t, runs, 0);
        for (int r = 0; r < runs; r++) {
            double a = now_s();
            veil_keyswitch(veil_eval_key_part(ek, 0), in, sm);
            t[r] = now_s() - a;
        }
        stats(o, "keyswitch", t, runs, 0);
        for (int r = 0; r < runs; r++)
            for (int q = 0; q < np; q++) {
                double a = now_s();
                veil_pbs(pctx[q], veil_eval_key_part(ek, 0), lut, sm, o2);
                double b = now_s();
                veil_ks_pbs(pctx[q], veil_eval_key_part(ek, 0), lut, in, o2);
                tp[(2 * q) * runs + r] = b - a;
                tp[(2 * q + 1) * runs + r] = now_s() - b;
            }
        stats(o, "pbs", tp, runs, 0);
        stats(o, "ks_pbs", tp + runs, runs, 0);
        /* throughput on this one core: 2 VEIL_PBS_LANES KS-PBS one at a time
         * against the same ciphertexts in lockstep groups (veil_ks_pbs_many,
         * the cpu backend's batches), interleaved run by run; the lockstep
         * groups again on every other FFT path (fft_paths' lockstep figures) */
        double lockstep_q[VEIL_FFT_PATH_COUNT] = {0};
        {
            const size_t nb = 2 * VEIL_PBS_LANES, w = big + 1;
            uint64_t *bi = malloc(8 * w * nb), *bo = malloc(8 * w * nb);
            const veil_lut *bl[2 * VEIL_PBS_LANES];
            for (size_t b = 0; b < nb; b++) {
                memcpy(bi + b * w, in, 8 * w);
                bl[b] = lut;
            }
            const int br = runs < 5 ? runs : 5;
            double ts[5], tm[5], tq[VEIL_FFT_PATH_COUNT * 5]; /* lockstep per path: q * 5 + r */
            for (int r = 0; r < br; r++) {
                double a = now_s();
                for (size_t b = 0; b < nb; b++)
                    veil_ks_pbs(pctx[0], veil_eval_key_part(ek, 0), lut, bi + b * w, bo + b * w);
                double m = now_s();
                veil_ks_pbs_many(pctx[0], veil_eval_key_part(ek, 0), bl, bi, nb, bo);
                ts[r] = (m - a) / (double)nb;
                tm[r] = (now_s() - m) / (double)nb;
                tq[r] = tm[r];
                for (int q = 1; q < np; q++) {
                    const double c = now_s();
                    veil_ks_pbs_many(pctx[q], veil_eval_key_part(ek, 0), bl, bi, nb, bo);
                    tq[q * 5 + r] = (now_s() - c) / (double)nb;
                }
            }
            for (int q = 0; q < np; q++)
                lockstep_q[q] = median_of(tq + q * 5, br);
            const double ms = median_of(ts, br), mm = median_of(tm, br);
            fprintf(o,
                    "      \"batch\": {\"ciphertexts\": %zu, \"lanes\": %d, \"runs\": %d, "
                    "\"one_at_a_time_ms_per_ks_pbs\": %.4f, \"lockstep_ms_per_ks_pbs\": %.4f, "
                    "\"speedup\": %.3f},\n",
                    nb, VEIL_PBS_LANES, br, 1e3 * ms, 1e3 * mm, ms / mm);
            free(bi);
            free(bo);
        }
        fprintf(o, "      \"fft_paths\": {\n");
        const double ks_first = median_of(tp + runs, runs);
        for (int q = 0; q < np; q++) {
            double *pb = tp + 2 * q * runs, *kp = pb + runs;
            const double mp = median_of(pb, runs), mk = median_of(kp, runs);
            fprintf(o,
                    "        \"%s\": {\"pbs_median_ms\": %.4f, \"ks_pbs_median_ms\": %.4f, "
                    "\"ks_pbs_min_ms\": %.4f, \"ks_pbs_over_first\": %.3f, "
                    "\"lockstep_ms_per_ks_pbs\": %.4f, \"lockstep_over_first\": %.3f}%s\n",
                    veil_fft_path_name(paths[q]), 1e3 * mp, 1e3 * mk, 1e3 * kp[0], mk / ks_first,
                    1e3 * lockstep_q[q], lockstep_q[q] / lockstep_q[0], q + 1 < np ? "," : "");
        }
        fprintf(o, "      }\n");
        (void)ctx;
        fprintf(o, "    }");
        fflush(o);
        free(in);
        free(o2);
        free(sm);
        free(table);
        veil_lut_free(lut);
        veil_pbs_ctx_free(ctx);
        for (int q = 0; q < np; q++)
            veil_pbs_ctx_free(pctx[q]);
        veil_encryptor_free(enc);
        veil_eval_key_free(ek);
        veil_secret_key_free(sk);
    }
    fprintf(o, "\n  ],\n  \"load_avg_1min_end\": %.2f\n}\n", load_avg());
    free(t);
    free(tp);
    return 0;
}
