// LABELS: crypto
/* The FFT's error in the external product, measured against Concrete's model,
 * on every code path of veil/fft.h (veil's portable, AVX2 and AVX-512 builds,
 * and FFTW), each forced through veil_fft_new_path.
 *
 * The noise model behind every p_fail (veil/noise.h) includes an FFT term
 * fitted to Zama's own FFT: per external product, a variance of
 *   2^-2.57722494 * 2^(2*(64-53)) * l * 2^(2B) * N^2 * (k+1)   (units 2^-64 ^ 2).
 * veil multiplies through its own FFT (or FFTW), so this test measures the error in
 * exactly the shape of an external product: (k+1)*l products of a digit
 * polynomial (integers in [-2^(B-1), 2^(B-1)]) by a torus polynomial (uniform
 * 64-bit, as the Fourier bootstrapping key holds), accumulated in the Fourier
 * domain (veil_fft_forward_i64, veil_fft_forward_torus, veil_fft_mac,
 * veil_fft_backward_f64), against the exact negacyclic product in 128-bit
 * integers. The measured variance must not exceed the model's, for every
 * (k, N, B, l) of the parameter table with 512 <= N <= 8192 and for every
 * N up to 65536, on every path; veil's paths must not exceed FFTW's by more
 * than the sampling noise, and must agree with each other bit for bit. */
#include "testutil.h"
#include "veil/fft.h"
#include "veil/noise.h"
#include "veil/params.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fft_measure.h"

static const veil_fft_path PATHS[] = {VEIL_FFT_PORTABLE, VEIL_FFT_AVX2, VEIL_FFT_AVX512,
                                      VEIL_FFT_FFTW};
#define N_PATHS (sizeof PATHS / sizeof PATHS[0])

/* The reference itself: with tiny digits and torus values the double
 * computation is exact, so the rounded FFT result must equal it. */
static void reference_exact_small(veil_fft_path path) {
    const uint32_t n = 512;
    veil_fft *fft = NULL;
    CU_ASSERT_FATAL(veil_fft_new_path(n, path, &fft) == VEIL_OK);
    int64_t d[512], t[512];
    double fa[512], fb[512], acc[512], out[512];
    for (uint32_t i = 0; i < n; i++) {
        d[i] = (int64_t)(veil_test_rand() % 17) - 8;
        t[i] = (int64_t)(veil_test_rand() % 2001) - 1000;
    }
    memset(acc, 0, sizeof acc);
    veil_fft_forward_i64(fft, d, fa);
    veil_fft_forward_torus(fft, (const uint64_t *)t, fb);
    veil_fft_mac(acc, fa, fb, n);
    veil_fft_backward_f64(fft, acc, out);
    int bad = 0;
    for (uint32_t j = 0; j < n; j++) {
        i128 e = exact_coeff(d, t, 1, n, j);
        if (llround(out[j]) != (long long)e) bad++;
        CU_ASSERT(fabs(diff_exact(out[j], e)) < 1e-6);
    }
    CU_ASSERT_EQUAL(bad, 0);
    /* X^1 * X^(N-1) = X^N = -1 */
    memset(d, 0, sizeof d);
    memset(t, 0, sizeof t);
    d[1] = 1;
    t[n - 1] = 5;
    CU_ASSERT(exact_coeff(d, t, 1, n, 0) == -5);
    veil_fft_free(fft);
}

static void test_reference_exact_small(void) {
    for (size_t i = 0; i < N_PATHS; i++)
        if (veil_test_fft_path_here(PATHS[i])) reference_exact_small(PATHS[i]);
}

static int config_seen(const config *cs, size_t m, const config *c) {
    for (size_t i = 0; i < m; i++)
        if (cs[i].k == c->k && cs[i].n == c->n && cs[i].base_log == c->base_log &&
            cs[i].level == c->level)
            return 1;
    return 0;
}

static void test_within_model(void) {
    config cs[256];
    size_t m = 0;
    for (size_t i = 0; i < veil_params_count() && m < 256; i++) {
        const veil_params *p = veil_params_at(i);
        config c = {p->glwe_dim, p->poly_size, p->pbs_base_log, p->pbs_level};
        if (c.n < 512 || c.n > 8192 || config_seen(cs, m, &c)) continue;
        cs[m++] = c;
    }
    CU_ASSERT(m >= 8);
    /* every size up to 65536, with a TFHE-like (k = 1, B = 15, l = 2) */
    for (uint32_t n = 512; n <= 65536 && m < 256; n *= 2) {
        config c = {1, n, 15, 2};
        if (!config_seen(cs, m, &c)) cs[m++] = c;
    }
    int over = 0, worse = 0;
    printf("\n  %5s %2s %3s %2s %-8s %14s %14s %9s %12s %10s\n", "N", "k", "B", "l", "path",
           "measured var", "model var", "log2 m/M", "max |err|", "var/FFTW");
    for (size_t i = 0; i < m; i++) {
        /* 4096 coefficients at every size: the veil / FFTW ratio's sd was
         * 0.068 over 1024 at N = 65536 (ratio 0.84, a false alarm of the
         * 15% margin about 5e-5 a run, the statistical audit of
         * 2026-12-04); 4096 halve it */
        const uint32_t checked = 4096;
        double model = veil_noise_fft_variance(cs[i].k, cs[i].n, cs[i].base_log, cs[i].level);
        double var[N_PATHS] = {0}, fftw_var = 0.0;
        for (size_t j = 0; j < N_PATHS; j++) {
            if (!veil_fft_path_available(PATHS[j])) continue;
            double maxabs = 0.0;
            CU_ASSERT_FATAL(measure(&cs[i], PATHS[j], checked, &var[j], &maxabs));
            if (PATHS[j] == VEIL_FFT_FFTW) fftw_var = var[j];
            printf("  %5u %2u %3u %2u %-8s %14.6e %14.6e %9.3f %12.4e", cs[i].n, cs[i].k,
                   cs[i].base_log, cs[i].level, veil_fft_path_name(PATHS[j]), var[j], model,
                   log2(var[j] / model), maxabs);
            if (PATHS[j] == VEIL_FFT_FFTW && fftw_var > 0.0) {
                /* the veil paths were measured first, on the same inputs */
                for (size_t v = 0; v < j; v++)
                    if (var[v] > 0.0 && var[v] > 1.15 * fftw_var) worse++;
                printf(" %10s", "1");
            } else if (var[j] > 0.0) {
                printf(" %10s", "");
            }
            printf("%s\n", var[j] > model ? "  EXCEEDS THE MODEL" : "");
            CU_ASSERT(var[j] > 0.0); /* the error is real: the test measures something */
            CU_ASSERT(var[j] <= model);
            if (var[j] > model) over++;
        }
        if (fftw_var > 0.0)
            for (size_t v = 0; v < N_PATHS; v++)
                if (PATHS[v] != VEIL_FFT_FFTW && var[v] > 0.0)
                    printf("  %5u %-8s / fftw: %.3f\n", cs[i].n, veil_fft_path_name(PATHS[v]),
                           var[v] / fftw_var);
    }
    /* veil's error must be FFTW's or smaller; 15% covers the sampling noise
     * of a variance over 4096 paired values */
    CU_ASSERT_EQUAL(worse, 0);
    if (over) printf("  *** the FFT's error exceeds Concrete's model in %d cases ***\n", over);
    if (worse) printf("  *** veil's FFT error exceeds FFTW's in %d cases ***\n", worse);
}

/* The veil paths do the same operations in the same order: their results
 * agree bit for bit (forward, inverse, rounded inverse, multiply-add), at
 * every size. The product is a 64-bit polynomial's spectrum times a small
 * one's (|b| <= 2^15, a gadget digit's size), as in the PBS, so the rounded
 * inverse keeps low bits to compare (a 64-bit square's inverse is near
 * 2^115, whose rounding mod 2^64 is mostly 0). Each path's accumulator
 * starts from 0. */
static void test_paths_bit_identical(void) {
    uint64_t rs = veil_test_seed() ^ 0x5eed;
    for (uint32_t n = 16; n <= 65536; n *= 2) {
        int64_t *a = malloc(sizeof(int64_t) * n), *b = malloc(sizeof(int64_t) * n);
        double *ref = malloc(sizeof(double) * n * 4), *f = malloc(sizeof(double) * n * 4);
        uint64_t *acc_ref = malloc(sizeof(uint64_t) * n), *acc = malloc(sizeof(uint64_t) * n);
        CU_ASSERT_FATAL(a && b && ref && f && acc_ref && acc);
        for (uint32_t i = 0; i < n; i++) {
            a[i] = (int64_t)next(&rs);
            b[i] = (int64_t)(next(&rs) % 65537) - 32768;
        }
        int first = 1, nonzero = 0;
        for (size_t j = 0; j < N_PATHS; j++) {
            if (PATHS[j] == VEIL_FFT_FFTW || !veil_fft_path_available(PATHS[j])) continue;
            veil_fft *fft = NULL;
            CU_ASSERT_FATAL(veil_fft_new_path(n, PATHS[j], &fft) == VEIL_OK);
            double *out = first ? ref : f;
            uint64_t *ac = first ? acc_ref : acc;
            /* out: a's spectrum, b's, their product, its inverse */
            veil_fft_forward_i64(fft, a, out);
            veil_fft_forward_i64(fft, b, out + n);
            memset(out + 2 * n, 0, sizeof(double) * n);
            veil_fft_mac(out + 2 * n, out, out + n, n);
            memcpy(out + 3 * n, out + 2 * n, sizeof(double) * n);
            memset(ac, 0, sizeof(uint64_t) * n);
            veil_fft_backward_add_torus(fft, out + 3 * n, ac);
            veil_fft_backward_f64(fft, out + 2 * n, out + 3 * n);
            if (!first) {
                const int same = !memcmp(ref, f, sizeof(double) * n * 4) &&
                                 !memcmp(acc_ref, acc, sizeof(uint64_t) * n);
                if (!same) printf("\n  N = %u: path %s differs", n, veil_fft_path_name(PATHS[j]));
                CU_ASSERT(same);
            }
            for (uint32_t i = 0; i < n; i++)
                nonzero += (ac[i] & 0xffffffffull) != 0;
            first = 0;
            veil_fft_free(fft);
        }
        CU_ASSERT(nonzero > 0); /* the rounded inverse has low bits to compare */
        free(a), free(b), free(ref), free(f), free(acc_ref), free(acc);
    }
}

/* The spectrum's order (veil/fft.h: split, permuted): veil_fft_to_natural of
 * a forward transform equals the folded, twisted DFT evaluated directly
 * (long double, O(h^2)), at every size from 16 (the scalar transform) through
 * the tile pass with and without its span-8 stage, on every path; the CUDA
 * tests rely on this order to hand the CPU's key to the kernels. */
static void test_natural_order(void) {
    int sizes = 0;
    for (uint32_t n = 16; n <= 4096; n *= 2, sizes++) {
        const uint32_t h = n / 2;
        int64_t *a = malloc(sizeof(int64_t) * n);
        double *f = malloc(sizeof(double) * n), *nat = malloc(sizeof(double) * n);
        long double *ref = malloc(sizeof(long double) * n);
        CU_ASSERT_FATAL(a && f && nat && ref);
        for (uint32_t i = 0; i < n; i++)
            a[i] = (int64_t)(veil_test_rand() % 2001) - 1000;
        const long double pi = 3.141592653589793238462643383279502884L;
        for (uint32_t k = 0; k < h; k++) {
            long double sr = 0, si = 0;
            for (uint32_t j = 0; j < h; j++) {
                /* z_j = (a_j + i a_{j+h}) exp(i pi j / N), times exp(-2 pi i j k / h) */
                const long double th =
                    pi * (long double)j / n - 2 * pi * (long double)((uint64_t)j * k % h) / h;
                const long double c = cosl(th), sn = sinl(th);
                sr += (long double)a[j] * c - (long double)a[j + h] * sn;
                si += (long double)a[j] * sn + (long double)a[j + h] * c;
            }
            ref[2 * k] = sr, ref[2 * k + 1] = si;
        }
        int paths = 0;
        for (size_t j = 0; j < N_PATHS; j++) {
            if (!veil_fft_path_available(PATHS[j])) continue;
            veil_fft *fft = NULL;
            CU_ASSERT_FATAL(veil_fft_new_path(n, PATHS[j], &fft) == VEIL_OK);
            veil_fft_forward_i64(fft, a, f);
            veil_fft_to_natural(n, f, nat);
            double worst = 0;
            for (uint32_t i = 0; i < n; i++) {
                const double e = fabs((double)(nat[i] - ref[i]));
                if (!(e <= worst)) worst = e;
            }
            /* |z| <= 1500, sums of h terms: an error of 2^-30 of the
             * largest possible value is rounding; a wrong slot is O(1000) */
            if (!(worst <= 1500.0 * h * 0x1p-30))
                printf("\n  N = %u %s: max |error| %.3g", n, veil_fft_path_name(PATHS[j]), worst);
            CU_ASSERT(worst <= 1500.0 * h * 0x1p-30);
            veil_fft_free(fft);
            paths++;
        }
        CU_ASSERT(paths >= 1);
        free(a), free(f), free(nat), free(ref);
    }
    CU_ASSERT_EQUAL(sizes, 9);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("fft_error", NULL, NULL);
    if (!s) {
        CU_cleanup_registry();
        return CU_get_error();
    }
    VEIL_ADD_TEST(s, test_reference_exact_small);
    VEIL_ADD_TEST(s, test_within_model);
    VEIL_ADD_TEST(s, test_paths_bit_identical);
    VEIL_ADD_TEST(s, test_natural_order);
    return veil_test_run();
}
