// LABELS: crypto
/* Measured noise against the noise model (veil/noise.h: Concrete's formulas,
 * TFHE-rs's for the centred modulus switch): fresh encryption, keyswitch,
 * modulus switch (standard and centred) and PBS output.
 *
 * Tolerance: a sample variance over S independent samples has relative
 * standard deviation sqrt((kurtosis - 1) / S): sqrt(2 / S) for a Gaussian,
 * less for uniform-like errors; check() uses the measured kurtosis when it
 * is above 3. Each check accepts measured / model in [1 - 5 sd, 1 + 5 sd]
 * (two-sided p < 6e-7 per check). Fresh, keyswitch and modulus switch: 5000
 * samples each, so +-10% at 5 sd. PBS: 300 samples in the default run
 * (+-41%: a KS-PBS costs tens of ms here and the default run has a budget);
 * test_noise_slow.c (label slow) runs 5000, +-10%.
 *
 * The PBS output's model is Concrete's, whose FFT term is fitted to Zama's
 * FFT and is an upper estimate for veil's; so the PBS check is measured <=
 * model * (1 + 5 sd) and measured >= (the model without its FFT term + the
 * FFT term measured on this machine's FFT path in the external product's
 * shape, fft_measure.h) * (1 - 5 sd). */
#include "fft_measure.h"
#include "testutil.h"
#include "veil/noise.h"
#include "veil/tfhe.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#ifndef NOISE_S_PBS
#define NOISE_S_PBS 300
#endif
#define NOISE_S_FAST 5000

static const char *SETS[] = {"tfhers-1_1-gaussian-2m64", "tfhers-1_1-tuniform-2m128",
                             "tfhers-2_2-gaussian-2m128"};

typedef struct {
    double sum, sum2, sum4;
    int n;
} acc_t;

static void acc_add(acc_t *a, double x) {
    a->sum += x;
    a->sum2 += x * x;
    a->sum4 += x * x * x * x;
    a->n++;
}

/* Kurtosis about 0 (every error here has mean 0: checked for the modulus
 * switch, by construction elsewhere). */
static double acc_kurt(const acc_t *a) {
    double m2 = a->sum2 / a->n;
    return a->sum4 / a->n / (m2 * m2);
}

static double acc_var(const acc_t *a) {
    double m = a->sum / a->n;
    return (a->sum2 - a->n * m * m) / (a->n - 1);
}

/* Accepts measured / model in [lower/model * (1 - Z sd), 1 + Z sd] with
 * sd = sqrt((kurtosis - 1) / S), the kurtosis at least 3 (Gaussian) and at
 * most the measured one when larger. */
#define Z 5.0
static int check(const char *what, const char *id, const acc_t *a, double model,
                 double lower_model) {
    const double measured = acc_var(a), kurt = fmax(acc_kurt(a), 3.0);
    const double sd = sqrt((kurt - 1) / a->n);
    double lo = (lower_model > 0 ? lower_model : model) * (1 - Z * sd);
    double hi = model * (1 + Z * sd);
    int ok = measured >= lo && measured <= hi;
    printf("  %-26s %-12s measured 2^%.3f  model 2^%.3f  ratio %.3f  (%d samples, kurtosis %.2f, "
           "accept [%.3f, %.3f]) %s\n",
           id, what, log2(measured), log2(model), measured / model, a->n, acc_kurt(a), lo / model,
           hi / model, ok ? "ok" : "OUT OF TOLERANCE");
    return ok;
}

/* signed error of a phase around the encoded plaintext 0 */
static double err(uint64_t phase) {
    return (double)(int64_t)phase;
}

static void test_noise(void) {
    printf("\n");
    size_t sets = 0;
    for (size_t si = 0; si < sizeof SETS / sizeof *SETS; si++) {
        const veil_params *p = veil_params_find(SETS[si]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(p);
        uint8_t s[5][32];
        for (int i = 0; i < 5; i++)
            veil_test_seed_bytes(10 + i, s[i]);
        veil_secret_key *sk;
        veil_eval_key *ek;
        veil_encryptor *enc;
        veil_pbs_ctx *ctx;
        CU_ASSERT_FATAL(veil_secret_key_new(p, s[0], &sk) == VEIL_OK);
        CU_ASSERT_FATAL(veil_eval_key_new(sk, s[1], s[2], &ek) == VEIL_OK);
        CU_ASSERT_FATAL(veil_encryptor_new(s[3], s[4], &enc) == VEIL_OK);
        CU_ASSERT_FATAL(veil_pbs_ctx_new(p, &ctx) == VEIL_OK);
        const uint32_t big = veil_params_big_dim(p), n = p->lwe_dim, N = p->poly_size;
        uint64_t *ct = malloc(8 * (big + 1)), *sm = malloc(8 * (n + 1)),
                 *out = malloc(8 * (big + 1));
        uint32_t *ms = malloc(4 * (n + 1));
        uint64_t *s_small = malloc(8 * n); /* the small key, from the key's serialized form */
        CU_ASSERT_FATAL(veil_test_sk_bits(sk, 0, s_small) == n);
        const int S_FAST = NOISE_S_FAST, S_PBS = NOISE_S_PBS;
        acc_t fresh = {0}, ks = {0}, msn = {0}, pbs = {0};
        for (int i = 0; i < S_FAST; i++) {
            veil_encrypt_big(enc, sk, 0, ct);
            acc_add(&fresh, err(veil_phase_big(sk, ct)));
            veil_keyswitch(veil_eval_key_part(ek, 0), ct, sm);
            acc_add(&ks, err(veil_phase_small(sk, 0, sm)));
            /* modulus switch: phase in units of 2^64 / 2N, back to 2^-64 */
            veil_modulus_switch(p, sm, ms);
            uint32_t ph = ms[n];
            for (uint32_t t = 0; t < n; t++)
                ph -= ms[t] * (uint32_t)s_small[t];
            ph &= 2 * N - 1;
            int64_t centred = ph >= N ? (int64_t)ph - 2 * (int64_t)N : (int64_t)ph;
            double scaled = (double)centred * (0x1p64 / (2.0 * N));
            acc_add(&msn, scaled - err(veil_phase_small(sk, 0, sm)));
        }
        /* a constant table of 1: a table of zeros would give an exact zero
         * accumulator (the external product of 0 is 0) and no noise at all */
        int64_t one[256];
        for (int i = 0; i < 256; i++)
            one[i] = 1;
        veil_lut *lut;
        CU_ASSERT_FATAL(veil_lut_new(p, one, p->precision, 0, veil_delta(p->precision), &lut) ==
                        VEIL_OK);
        for (int i = 0; i < S_PBS; i++) {
            veil_encrypt_big(enc, sk, veil_encode(i % (1 << p->precision), p->precision), ct);
            veil_ks_pbs(ctx, veil_eval_key_part(ek, 0), lut, ct, out);
            acc_add(&pbs, err(veil_phase_big(sk, out) - veil_delta(p->precision)));
        }
        double v_fresh = veil_noise_fresh_variance(p), v_ks = veil_noise_ks_variance(p);
        double v_ms = veil_noise_ms_variance(p), v_pbs = veil_noise_pbs_output_variance(p);
        double v_fft =
            (double)n * veil_noise_fft_variance(p->glwe_dim, N, p->pbs_base_log, p->pbs_level);
        /* The FFT term of the lower bound, measured: one external product's
         * FFT error per output coefficient (fft_measure.h, 4096 coefficients,
         * taken 5 sd low) enters the phase b - <a, s> as V1 * (1 + |s|^2),
         * |s|^2 the GLWE key's weight, once per CMUX (n of them). */
        config fc = {p->glwe_dim, N, p->pbs_base_log, p->pbs_level};
        double v1 = 0, mx = 0;
        CU_ASSERT_FATAL(measure(&fc, veil_fft_path_default(), 4096, &v1, &mx));
        double weight = 0;
        uint64_t *s_big = malloc(8 * (size_t)big);
        CU_ASSERT_FATAL(s_big && veil_test_sk_bits(sk, VEIL_TEST_MASTER, s_big) == big);
        for (uint32_t t = 0; t < big; t++)
            weight += (double)s_big[t];
        free(s_big);
        const double v_fft_meas = (double)n * v1 * (1 + weight) * (1 - Z * sqrt(2.0 / 4096));
        printf("  %-26s fft          measured 2^%.3f (lower estimate), model 2^%.3f\n", p->id,
               log2(v_fft_meas), log2(v_fft));
        CU_ASSERT(v_fft_meas > 0);
        CU_ASSERT(check("fresh", p->id, &fresh, v_fresh, 0));
        CU_ASSERT(check("keyswitch", p->id, &ks, v_fresh + v_ks, 0));
        CU_ASSERT(
            check(p->ms == VEIL_MS_CENTERED ? "ms-centred" : "ms-standard", p->id, &msn, v_ms, 0));
        /* the modulus switch (both kinds) must also be unbiased: its mean is
         * within 5 standard errors of 0 */
        double ms_mean = msn.sum / msn.n, ms_se = sqrt(acc_var(&msn) / msn.n);
        printf("  %-26s ms mean      %.3f standard errors from 0\n", p->id, ms_mean / ms_se);
        CU_ASSERT(fabs(ms_mean) < 5 * ms_se);
        CU_ASSERT(check("pbs", p->id, &pbs, v_pbs, v_pbs - v_fft + v_fft_meas));
        CU_ASSERT_EQUAL(pbs.n, S_PBS);
        CU_ASSERT_EQUAL(fresh.n, S_FAST);
        sets++;
        veil_lut_free(lut);
        free(ct);
        free(sm);
        free(out);
        free(ms);
        free(s_small);
        veil_pbs_ctx_free(ctx);
        veil_encryptor_free(enc);
        veil_eval_key_free(ek);
        veil_secret_key_free(sk);
    }
    CU_ASSERT_EQUAL(sets, sizeof SETS / sizeof *SETS);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("noise", NULL, NULL);
    VEIL_ADD_TEST(s, test_noise);
    return veil_test_run();
}
