/* fft_measure.h — the FFT's error in the exact shape of one external
 * product, against the exact negacyclic product in 128-bit integers; shared
 * by test_fft_error.c (every path against Concrete's model) and test_noise.c
 * (the FFT term of the PBS noise's lower bound). See test_fft_error.c. */
#ifndef VEIL_TEST_FFT_MEASURE_H
#define VEIL_TEST_FFT_MEASURE_H

#include "testutil.h"
#include "veil/fft.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef __int128 i128;

typedef struct {
    uint32_t k, n, base_log, level;
} config;

/* Exact sum over the pairs of the negacyclic product, at coefficient j:
 * sum_p sum_i d_p[i] * t_p[(j - i) mod N] * (-1 if i > j). No reduction:
 * |result| < (k+1) l N 2^(B-1) 2^63 < 2^127 for the configurations here. */
static inline i128 exact_coeff(const int64_t *d, const int64_t *t, uint32_t pairs, uint32_t n,
                               uint32_t j) {
    i128 acc = 0;
    for (uint32_t p = 0; p < pairs; p++) {
        const int64_t *dp = d + (size_t)p * n, *tp = t + (size_t)p * n;
        for (uint32_t i = 0; i <= j; i++)
            acc += (i128)dp[i] * tp[j - i];
        for (uint32_t i = j + 1; i < n; i++)
            acc -= (i128)dp[i] * tp[n + j - i];
    }
    return acc;
}

/* v - e exactly (as a double), for a double v close to the integer e. */
static inline double diff_exact(double v, i128 e) {
    double ed = (double)e;          /* nearest double; an integer when |e| >= 2^53 */
    i128 rest = e - (i128)ed;       /* |rest| <= ulp(ed)/2, exact in a double */
    return (v - ed) - (double)rest; /* v - ed is exact (Sterbenz) */
}

/* The inputs of one measurement come from a stream of their own, seeded
 * from the test seed and the configuration, so every path sees the same
 * numbers (splitmix64). */
static inline uint64_t next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline int64_t rand_digit(uint64_t *s, uint32_t base_log) {
    /* uniform in [-2^(B-1), 2^(B-1)] */
    uint64_t span = (1ull << base_log) + 1;
    return (int64_t)(next(s) % span) - (int64_t)(1ull << (base_log - 1));
}

/* Measured variance of the FFT error of one external-product-shaped sum;
 * `checked` coefficients in all. */
static inline int measure(const config *c, veil_fft_path path, uint32_t checked, double *var_out,
                          double *max_out) {
    const uint32_t n = c->n, pairs = (c->k + 1) * c->level;
    uint64_t rs = veil_test_seed() ^ ((uint64_t)n << 32) ^ ((uint64_t)c->k << 24) ^
                  ((uint64_t)c->base_log << 8) ^ c->level;
    veil_fft *fft = NULL;
    if (veil_fft_new_path(n, path, &fft) != VEIL_OK) {
        printf("veil_fft_new(%u): %s\n", n, veil_error_message());
        return 0;
    }
    int64_t *d = malloc(sizeof(int64_t) * n * pairs);
    int64_t *t = malloc(sizeof(int64_t) * n * pairs);
    double *fa = malloc(sizeof(double) * n), *fb = malloc(sizeof(double) * n);
    double *acc = malloc(sizeof(double) * n), *out = malloc(sizeof(double) * n);
    if (!d || !t || !fa || !fb || !acc || !out) {
        free(d), free(t), free(fa), free(fb), free(acc), free(out);
        veil_fft_free(fft);
        return 0;
    }
    /* the exact product costs N per pair and coefficient */
    const uint32_t per_trial = n < 1024 ? n : 1024;
    const uint32_t trials = checked > per_trial ? checked / per_trial : 1;
    double sum2 = 0.0, maxabs = 0.0;
    uint64_t count = 0;
    for (uint32_t tr = 0; tr < trials; tr++) {
        for (size_t i = 0; i < (size_t)n * pairs; i++) {
            d[i] = rand_digit(&rs, c->base_log);
            t[i] = (int64_t)next(&rs);
        }
        memset(acc, 0, sizeof(double) * n);
        for (uint32_t p = 0; p < pairs; p++) {
            veil_fft_forward_i64(fft, d + (size_t)p * n, fa);
            veil_fft_forward_torus(fft, (const uint64_t *)(t + (size_t)p * n), fb);
            veil_fft_mac(acc, fa, fb, n);
        }
        veil_fft_backward_f64(fft, acc, out);
        uint32_t step = n / per_trial;
        uint32_t off = (uint32_t)(next(&rs) % step);
        for (uint32_t j = off; j < n; j += step) {
            double e = diff_exact(out[j], exact_coeff(d, t, pairs, n, j));
            sum2 += e * e;
            if (fabs(e) > maxabs) maxabs = fabs(e);
            count++;
        }
    }
    free(d), free(t), free(fa), free(fb), free(acc), free(out);
    veil_fft_free(fft);
    *var_out = sum2 / (double)count; /* the error has mean 0: E[e^2] */
    *max_out = maxabs;
    return 1;
}

#endif
