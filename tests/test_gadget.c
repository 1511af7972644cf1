// LABELS: unit crypto
/* The gadget decomposition (veil/gadget.h), the digit step that the CPU
 * keyswitch, the CPU PBS loop (fft_template.h, via test_pbs_loop) and the
 * CUDA kernels (via test_kernels_emu) all use:
 *   - exhaustive: for small bases and level counts, every pattern of the kept
 *     bits and the rounding bit: digits within [-B/2, B/2], the digits
 *     reconstruct the closest representable value exactly (mod 2^64) and
 *     as a balanced signed integer, and every level's digits sum to exactly
 *     0 (zero mean). Before the tie fix every level summed to -1/2 per input;
 *   - antisymmetry: decompose(-x) = -decompose(x), digit by digit, for
 *     random x with forced ties (a digit's low part exactly B/2), at every
 *     (base_log, levels) of the engine's sets and the weak test sets;
 *   - the mean of each level's digits over random 64-bit inputs at those
 *     same pairs, within 6 standard errors of 0 (sd^2 = (B^2+2)/12, the
 *     value the noise model uses; a false alarm about 2e-9 per check, 3e-7
 *     over the 142 levels: at 5 it was 8e-5 a run). It
 *     detects the old mean of -1/2 only for small B (the keyswitch's), which
 *     is why the exhaustive check exists;
 *   - ties to even (veil_gadget_decompose_even, the multi-bit external
 *     product's rule): exhaustively over the kept bits and the rounding
 *     bit with nothing below it (every other input an exact tie), the value
 *     is the closest representable one, ties to the even one, and the
 *     rounding errors sum to exactly 0, where half-up sums to minus half a
 *     step per tie (the bias VEIL_GADGET_INIT_EVEN exists for);
 *   - VEIL_GADGET_SAR's generic arithmetic shift against the signed shift
 *     the vector builds replace it with (test_sar);
 *   - VEIL_GADGET_INIT (a shift and a zero test) against its rule written
 *     out plainly, at every width 1 .. 63, on the top bits around each
 *     tie and edge and on pseudo-random values, scalar and on a vector
 *     (test_init_rule). */
#include "testutil.h"
#include "veil/gadget.h"
#include "veil/params.h"
#include "weak_sets.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the (base_log, levels) pairs in use: keyswitch and PBS of every set */
static size_t pairs_in_use(uint32_t (*out)[2], size_t cap) {
    size_t m = 0, total = veil_params_count() + WEAK_SET_COUNT;
    for (size_t i = 0; i < total; i++) {
        const veil_params *p =
            i < veil_params_count() ? veil_params_at(i) : &WEAK_SETS[i - veil_params_count()];
        const uint32_t two[2][2] = {{p->ks_base_log, p->ks_level}, {p->pbs_base_log, p->pbs_level}};
        for (int t = 0; t < 2; t++) {
            int seen = 0;
            for (size_t j = 0; j < m; j++)
                seen |= out[j][0] == two[t][0] && out[j][1] == two[t][1];
            if (!seen && m < cap) {
                out[m][0] = two[t][0];
                out[m][1] = two[t][1];
                m++;
            }
        }
    }
    return m;
}

static void test_exhaustive(void) {
    static const uint32_t bl[][2] = {{1, 1}, {1, 6}, {2, 1}, {2, 3}, {3, 3},
                                     {4, 2}, {3, 5}, {5, 3}, {2, 7}, {8, 2}};
    const size_t nb = sizeof bl / sizeof *bl;
    size_t cases = 0, inputs = 0;
    for (size_t c = 0; c < nb; c++) {
        const uint32_t b = bl[c][0], l = bl[c][1], bits = b * l;
        const int64_t half = (int64_t)1 << (b - 1);
        int64_t sum[16] = {0};
        int64_t dg[16];
        int bad_range = 0, bad_rec = 0, bad_signed = 0;
        const uint64_t count = (uint64_t)1 << (bits + 1);
        for (uint64_t y = 0; y < count; y++) {
            /* the kept bits and the rounding bit; the bits below them do not
             * matter (random here) */
            const uint64_t low = veil_test_rand() & (((uint64_t)1 << (63 - bits)) - 1);
            const uint64_t x = (y << (63 - bits)) | low;
            veil_gadget_decompose(x, b, l, dg);
            uint64_t rec = 0;
            int64_t value = 0;
            for (uint32_t j = 0; j < l; j++) {
                bad_range += dg[j] < -half || dg[j] > half;
                rec += (uint64_t)dg[j] << (64 - b * (j + 1));
                value = value * (1 << b) + dg[j];
                sum[j] += dg[j];
            }
            const uint64_t closest = ((y + 1) >> 1) << (64 - bits);
            bad_rec += rec != closest;
            bad_signed += value < -((int64_t)1 << (bits - 1)) || value > ((int64_t)1 << (bits - 1));
            inputs++;
        }
        CU_ASSERT_EQUAL(bad_range, 0);
        CU_ASSERT_EQUAL(bad_rec, 0);
        CU_ASSERT_EQUAL(bad_signed, 0);
        for (uint32_t j = 0; j < l; j++) {
            if (sum[j] != 0)
                printf("\n  B = 2^%u, l = %u: level %u digits sum to %lld over %llu inputs", b, l,
                       j, (long long)sum[j], (unsigned long long)count);
            CU_ASSERT_EQUAL(sum[j], 0);
        }
        cases++;
    }
    CU_ASSERT_EQUAL(cases, nb);
    printf("\n  %zu (base_log, levels) pairs, %zu inputs: every level sums to 0\n", cases, inputs);
}

/* x with, at each level, a low part of exactly B/2 half the time (the
 * tie), the rest random; the rounded-off bits neither 0 nor exactly half,
 * so that -x rounds to minus what x rounds to */
static uint64_t tie_input(uint32_t b, uint32_t l) {
    uint64_t x = veil_test_rand();
    const uint32_t bits = b * l;
    for (uint32_t j = 0; j < l; j++) {
        if (veil_test_rand() & 1) {
            const uint32_t lo = 64 - b * (j + 1); /* level j's lowest bit */
            const uint64_t mask = (((uint64_t)1 << b) - 1) << lo;
            x = (x & ~mask) | ((uint64_t)1 << (lo + b - 1));
        }
    }
    if (bits < 64) {
        const uint64_t u = (uint64_t)1 << (64 - bits), e = x & (u - 1);
        if (e == 0 || e == u / 2) x ^= 1;
    }
    return x;
}

static void test_antisymmetric(void) {
    uint32_t pairs[256][2];
    const size_t np = pairs_in_use(pairs, 256);
    CU_ASSERT_FATAL(np >= 2);
    const int per_pair = 20000;
    size_t checked = 0, ties = 0;
    int bad = 0;
    for (size_t c = 0; c < np; c++) {
        const uint32_t b = pairs[c][0], l = pairs[c][1];
        CU_ASSERT_FATAL(b >= 1 && l >= 1 && b * l < 64 && l <= 64);
        int64_t d[64], e[64];
        for (int i = 0; i < per_pair; i++) {
            const uint64_t x = tie_input(b, l);
            veil_gadget_decompose(x, b, l, d);
            veil_gadget_decompose(0 - x, b, l, e);
            for (uint32_t j = 0; j < l; j++) {
                bad += e[j] != -d[j];
                ties += d[j] == ((int64_t)1 << (b - 1)) || d[j] == -((int64_t)1 << (b - 1));
            }
            checked++;
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(checked, np * per_pair);
    CU_ASSERT(ties > checked / 4); /* the ties were exercised */
    printf("\n  %zu (base_log, levels) pairs, %zu inputs (%zu digits of +-B/2): "
           "decompose(-x) = -decompose(x)\n",
           np, checked, ties);
}

static void test_random_mean(void) {
    uint32_t pairs[256][2];
    const size_t np = pairs_in_use(pairs, 256);
    const long samples = 1L << 17;
    size_t levels_checked = 0;
    double worst = 0;
    for (size_t c = 0; c < np; c++) {
        const uint32_t b = pairs[c][0], l = pairs[c][1];
        double sum[64] = {0};
        int64_t d[64];
        for (long i = 0; i < samples; i++) {
            veil_gadget_decompose(veil_test_rand(), b, l, d);
            for (uint32_t j = 0; j < l; j++)
                sum[j] += (double)d[j];
        }
        const double B = ldexp(1.0, (int)b), sd = sqrt((B * B + 2) / 12);
        const double bound = 6 * sd / sqrt((double)samples);
        for (uint32_t j = 0; j < l; j++) {
            const double mean = sum[j] / samples;
            if (fabs(mean) > bound)
                printf("\n  B = 2^%u, l = %u, level %u: mean %.4f, bound %.4f", b, l, j, mean,
                       bound);
            CU_ASSERT(fabs(mean) <= bound);
            if (fabs(mean) / bound > worst) worst = fabs(mean) / bound;
            levels_checked++;
        }
    }
    CU_ASSERT(levels_checked >= np);
    printf("\n  %zu levels of %zu pairs, %ld random inputs each: |mean| <= 6 standard errors "
           "(largest %.2f of the bound)\n",
           levels_checked, np, samples, worst);
}

static void test_round_even(void) {
    static const uint32_t bl[][2] = {{1, 1}, {2, 1}, {2, 3}, {3, 3}, {4, 2}, {5, 3}, {8, 2}};
    const size_t nb = sizeof bl / sizeof *bl;
    size_t cases = 0, inputs = 0;
    for (size_t c = 0; c < nb; c++) {
        const uint32_t b = bl[c][0], l = bl[c][1], bits = b * l, drop = 64 - bits;
        const int64_t half = (int64_t)1 << (b - 1);
        int64_t dg[16];
        int bad_range = 0, bad_rec = 0;
        int64_t err_even = 0, err_up = 0; /* in units of half a step */
        const uint64_t count = (uint64_t)1 << (bits + 1);
        for (uint64_t y = 0; y < count; y++) {
            const uint64_t x = y << (63 - bits); /* nothing below the rounding bit */
            veil_gadget_decompose_even(x, b, l, dg);
            uint64_t rec = 0;
            for (uint32_t j = 0; j < l; j++) {
                bad_range += dg[j] < -half || dg[j] > half;
                rec += (uint64_t)dg[j] << (64 - b * (j + 1));
            }
            const uint64_t kept = y >> 1, up = (y + 1) >> 1;
            const uint64_t even = (y & 1) ? kept + (kept & 1) : kept; /* every odd y is a tie */
            bad_rec += rec != even << drop;
            err_even += (int64_t)(x - rec) >> (drop - 1);
            err_up += (int64_t)(x - (up << drop)) >> (drop - 1);
            inputs++;
        }
        CU_ASSERT_EQUAL(bad_range, 0);
        CU_ASSERT_EQUAL(bad_rec, 0);
        CU_ASSERT_EQUAL(err_even, 0);
        CU_ASSERT_EQUAL(err_up, -(int64_t)(count / 2)); /* -1/2 step per tie */
        cases++;
    }
    CU_ASSERT_EQUAL(cases, nb);
    printf("\n  %zu (base_log, levels) pairs, %zu inputs (half of them ties): ties to even, "
           "errors sum to 0\n",
           cases, inputs);
}

/* VEIL_GADGET_SAR: the generic form (this file's, the scalar and CUDA code's)
 * against the signed shift the vector builds of fft_template.h put in its
 * place (vpsraq on AVX-512), lane by lane on a GCC vector of 64-bit lanes as
 * there, for every shift 1 .. 63 and edge and pseudo-random values: the
 * override must be the same value for the PBS loop to keep its bits. */
typedef int64_t sar_vi __attribute__((vector_size(32)));
typedef uint64_t sar_vu __attribute__((vector_size(32)));
static void test_sar(void) {
    uint64_t vals[64] = {0,
                         1,
                         2,
                         0x7fffffffffffffffu,
                         0x8000000000000000u,
                         0x8000000000000001u,
                         ~(uint64_t)0,
                         ~(uint64_t)1};
    uint64_t z = 0x9e3779b97f4a7c15u; /* splitmix64 steps for the rest */
    for (size_t i = 8; i < 64; i++) {
        z += 0x9e3779b97f4a7c15u;
        uint64_t y = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
        y = (y ^ (y >> 27)) * 0x94d049bb133111ebu;
        vals[i] = y ^ (y >> 31);
    }
    size_t checked = 0, bad = 0;
    for (unsigned b = 1; b <= 63; b++)
        for (size_t i = 0; i < 64; i += 4) {
            sar_vu v;
            memcpy(&v, vals + i, sizeof v);
            const sar_vu w = (sar_vu)((sar_vi)v >> (int)b);
            for (size_t k = 0; k < 4; k++) {
                const uint64_t r = vals[i + k];
                bad += VEIL_GADGET_SAR(r, b) != w[k];
                bad += VEIL_GADGET_SAR(r, b) != (uint64_t)((int64_t)r >> b);
                checked++;
            }
        }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(checked, 63 * 64);
    printf("\n  %zu (value, shift) pairs: the generic arithmetic shift equals the signed "
           "one\n",
           checked);
}

/* VEIL_GADGET_INIT's rule, written out: the top n + 1 bits T of x, the
 * rounded value r = (T + 1) / 2 mod 2^n, negative (minus 2^n) when above
 * 2^(n-1), or equal to it with T odd (the rounding bit set). */
static uint64_t init_rule(uint64_t x, unsigned n) {
    const uint64_t T = x >> (63 - n), half = (uint64_t)1 << (n - 1);
    const uint64_t r = ((T + 1) >> 1) & (((uint64_t)1 << n) - 1);
    return r > half || (r == half && (T & 1)) ? r - ((uint64_t)1 << n) : r;
}

static void test_init_rule(void) {
    uint64_t z = 0x243f6a8885a308d3u; /* splitmix64 */
    size_t checked = 0, bad = 0;
    for (unsigned n = 1; n <= 63; n++) {
        uint64_t xs[40];
        size_t m = 0;
        const uint64_t tops[] = {0,
                                 1,
                                 ((uint64_t)1 << n) - 1,
                                 (uint64_t)1 << n,
                                 ((uint64_t)1 << n) + 1,
                                 (((uint64_t)1 << n) << 1) - 1};
        const uint64_t low_max = n == 63 ? 0 : ((uint64_t)1 << (63 - n)) - 1;
        for (size_t t = 0; t < sizeof tops / sizeof tops[0]; t++) {
            const uint64_t base = tops[t] << (63 - n);
            xs[m++] = base;
            xs[m++] = base | (low_max & 1);
            xs[m++] = base | low_max;
        }
        while (m < sizeof xs / sizeof xs[0]) {
            z += 0x9e3779b97f4a7c15u;
            uint64_t y = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
            y = (y ^ (y >> 27)) * 0x94d049bb133111ebu;
            xs[m++] = y ^ (y >> 31);
        }
        for (size_t i = 0; i < m; i += 4) {
            sar_vu v, rv;
            memcpy(&v, xs + i, sizeof v);
            VEIL_GADGET_INIT(rv, v, n);
            for (size_t k = 0; k < 4; k++) {
                uint64_t r;
                VEIL_GADGET_INIT(r, xs[i + k], n);
                const uint64_t want = init_rule(xs[i + k], n);
                bad += r != want;
                bad += rv[k] != want;
                checked++;
            }
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(checked, 63 * 40);
    printf("\n  %zu (value, width) pairs: VEIL_GADGET_INIT equals its rule, scalar and vector\n",
           checked);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("gadget", NULL, NULL);
    if (!s) return CU_get_error();
    VEIL_ADD_TEST(s, test_exhaustive);
    VEIL_ADD_TEST(s, test_antisymmetric);
    VEIL_ADD_TEST(s, test_random_mean);
    VEIL_ADD_TEST(s, test_round_even);
    VEIL_ADD_TEST(s, test_sar);
    VEIL_ADD_TEST(s, test_init_rule);
    return veil_test_run();
}
