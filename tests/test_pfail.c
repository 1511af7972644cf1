// LABELS: unit crypto
// COST: 80
// LINKS: veil_host
/* Failure probability, measured (issue 15), the CI version: KS-PBS on the
 * weakest test-only set (weak-p1-2m8, modelled p_fail about 2^-8) on the cpu
 * backend, failures counted and compared with the noise model; see
 * pfail_common.h for the experiment and the test. Confidence: the
 * Clopper-Pearson interval is two-sided at 1 - 1e-5, so a correct model
 * fails a count with probability at most 1e-5 per run (the seed is printed
 * for a replay; at 99.9%, 2048 and 3072 PBS, the two counts' false alarm
 * was about 7e-4 a run together, the statistical audit of 2026-12-04).
 * With 4096 counted PBS and p about 2^-8 it expects about 16 failures; the
 * interval then spans roughly a factor 2.3 either way, so it catches a PBS
 * or a model off by more than about that. No slack: the model's
 * band was widened x2 here while the gadget's digits had a mean of -1/2
 * (90 failures in 14 911 PBS against 56 predicted); with zero-mean digits
 * the same key gives 110 in 29 885 against 112 (docs/results/pfail.md).
 * test_ks_ms_error_centred checks the cause directly: the error before the
 * blind rotation is centred for each key. Also: the sets are never reachable
 * through the engine's table, and their recorded p_fail (derive.py) agrees
 * with the C noise model. */
#include "pfail_common.h"

#define VEIL_PFAIL_SANITIZED VEIL_TEST_SANITIZED /* testutil.h */

/* The error of the small LWE ct (dimension n, key bits s) after the
 * modulus switch to 2N, centred in [-N, N), plus 1/2: the position in the
 * table's box, whose centre is at -1/2 (veil_ms_body); ms is n + 1 words of
 * scratch. */
static double ms_error(const veil_params *p, const uint64_t *ct, const uint64_t *s, uint32_t *ms) {
    const uint32_t n = p->lwe_dim, N2 = 2 * p->poly_size;
    veil_modulus_switch(p, ct, ms);
    uint32_t ph = ms[n];
    for (uint32_t i = 0; i < n; i++)
        ph -= ms[i] * (uint32_t)s[i];
    ph &= N2 - 1;
    return (ph >= N2 / 2 ? (double)ph - N2 : (double)ph) + 0.5;
}

static void test_weak_sets_test_only(void) {
    int checked = 0;
    for (size_t i = 0; i < WEAK_SET_COUNT; i++) {
        const veil_params *p = &WEAK_SETS[i];
        CU_ASSERT_PTR_NULL(veil_params_find(p->id));
        CU_ASSERT_EQUAL(p->flags, 0u);
        double lp = veil_noise_log2_p_fail(p, p->precision, veil_noise_pbs_output_variance(p));
        CU_ASSERT(fabs(lp - p->log2_p_fail) < 0.01);
        CU_ASSERT(p->log2_p_fail <= -8.0 + 1e-9 && p->log2_p_fail > -15.0);
        printf("\n  %s: n=%u k=%u N=%u, derive.py 2^%.3f, C model 2^%.3f", p->id, p->lwe_dim,
               p->glwe_dim, p->poly_size, p->log2_p_fail, lp);
        checked++;
    }
    CU_ASSERT_EQUAL(checked, 7);
    printf("\n");
}

/* The per-key model (veil/noise.h veil_noise_*_key): with the expected
 * weights and KSK energy it is the average model; a real key's values lie
 * near them (within 6 standard deviations: binomial weights, and a sum of
 * k N l squared Gaussians, relative sd sqrt(2 / (k N l))); each quantity
 * moves its term the way the model says (more weight, more variance). */
static void test_per_key_model(void) {
    int checked = 0;
    printf("\n");
    for (size_t i = 0; i < WEAK_SET_COUNT; i++) {
        const veil_params *p = &WEAK_SETS[i];
        veil_noise_key avg;
        veil_noise_key_expected(p, &avg);
        const double v_avg = veil_noise_pbs_output_variance(p);
        CU_ASSERT_DOUBLE_EQUAL(veil_noise_pbs_output_variance_key(p, &avg) / v_avg, 1.0, 1e-12);
        CU_ASSERT_DOUBLE_EQUAL(veil_noise_ks_variance_key(p, &avg) / veil_noise_ks_variance(p), 1.0,
                               1e-12);
        CU_ASSERT_DOUBLE_EQUAL(veil_noise_ms_variance_key(p, &avg) / veil_noise_ms_variance(p), 1.0,
                               1e-12);
        CU_ASSERT_DOUBLE_EQUAL(veil_noise_log2_p_fail_key(p, p->precision, v_avg, &avg),
                               veil_noise_log2_p_fail(p, p->precision, v_avg), 1e-9);
        veil_noise_key more = avg;
        more.small_weight += 10;
        /* the centred switch sees every rounding through s_i - 1/2: no weight */
        const double v_ms_more = veil_noise_ms_variance_key(p, &more) / veil_noise_ms_variance(p);
        CU_ASSERT(p->ms == VEIL_MS_CENTERED ? fabs(v_ms_more - 1) < 1e-12 : v_ms_more > 1);
        CU_ASSERT(veil_noise_pbs_output_variance_key(p, &more) > v_avg);
        more = avg;
        more.big_weight += 10;
        CU_ASSERT(veil_noise_ks_variance_key(p, &more) > veil_noise_ks_variance(p));
        more = avg;
        more.ks_key_variance *= 1.01;
        CU_ASSERT(veil_noise_log2_p_fail_key(p, p->precision, v_avg, &more) >
                  veil_noise_log2_p_fail(p, p->precision, v_avg));

        veil_test_keys f;
        CU_ASSERT_FATAL(veil_test_keys_make(p, 40, &f));
        veil_noise_key key;
        double energy;
        veil_noise_key conc;
        CU_ASSERT_FATAL(pfail_key_noise(f.sk, f.ek, &key, &conc, &energy) == 0);
        const double big = veil_params_big_dim(p), rows = big * p->ks_level;
        CU_ASSERT(fabs(key.small_weight - avg.small_weight) <= 6 * sqrt(p->lwe_dim / 4.0));
        CU_ASSERT(fabs(key.big_weight - avg.big_weight) <= 6 * sqrt(big / 4.0));
        CU_ASSERT(fabs(energy - 1) <= 6 * sqrt(2 / rows));
        CU_ASSERT_DOUBLE_EQUAL(conc.ks_key_variance / avg.ks_key_variance, energy, 1e-9);
        /* the exact digits' term is below Concrete's on average (veil/noise.h:
         * every digit but the least significant has a smaller E[d^2]); for one
         * key the cross terms and the rounding's correlation move it by about
         * 1/sqrt(rows), so at a base where the gap is small (weak-ms-p4-2m8:
         * 1.0010 x Concrete's for one test seed) a key may sit just above */
        static double dd[64 * 64], rd[64];
        CU_ASSERT_FATAL(veil_noise_gadget_moments(p->ks_base_log, p->ks_level, dd, rd) == 0);
        double diag = 0;
        for (uint32_t j = 0; j < p->ks_level; j++)
            diag += dd[j * p->ks_level + j];
        const double b2 = ldexp(1.0, 2 * (int)p->ks_base_log);
        const double conc_diag = p->ks_level * (b2 + 2.0) / 12.0;
        CU_ASSERT(p->ks_level > 1 ? diag < conc_diag : diag <= conc_diag * (1 + 1e-12));
        CU_ASSERT(key.ks_key_variance < conc.ks_key_variance * (1 + 6 / sqrt(rows)));
        const double v_in = veil_noise_pbs_output_variance_key(p, &key);
        const double lp = veil_noise_log2_p_fail_key(p, p->precision, v_in, &key);
        const double lc = veil_noise_log2_p_fail_key(p, p->precision, v_in, &conc);
        printf("  %-15s key 40: weights %.0f / %.0f (mean %.0f / %.0f), KSK noise energy %.4f x "
               "mean, exact digits' term %.4f x Concrete's: p_fail %.4e = 2^%.3f for this key "
               "(Concrete's digits: %.4e = 2^%.3f), %.4e = 2^%.3f on average\n",
               p->id, key.small_weight, key.big_weight, avg.small_weight, avg.big_weight, energy,
               key.ks_key_variance / conc.ks_key_variance, exp2(lp), lp, exp2(lc), lc,
               exp2(p->log2_p_fail), p->log2_p_fail);
        veil_test_keys_free(&f);
        checked++;
    }
    CU_ASSERT_EQUAL(checked, 7);
}

static void test_clopper_pearson(void) {
    /* k = 0 and k = n: closed forms */
    double lo, hi;
    clopper_pearson(0, 100, 0.001, &lo, &hi);
    CU_ASSERT_DOUBLE_EQUAL(lo, 0.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(hi, 1 - pow(0.0005, 1.0 / 100), 1e-9); /* exact for k = 0 */
    clopper_pearson(100, 100, 0.001, &lo, &hi);
    CU_ASSERT_DOUBLE_EQUAL(lo, pow(0.0005, 1.0 / 100), 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(hi, 1.0, 1e-12);
    /* Reference intervals at 1 - 0.001, computed outside this code twice,
     * agreeing to 1e-14 (2026-12-04): scipy 1.17 beta.ppf(0.0005, k, n - k + 1)
     * and beta.ppf(0.9995, k + 1, n - k); mpmath 1.3 at 60 digits, bisecting
     * the exact binomial sums P(X >= k; lo) = P(X <= k; hi) = 0.0005. */
    static const struct {
        long k, n;
        double lo, hi;
    } ref[] = {
        {8, 2048, 0.000864338792899547, 0.0108104877389276},
        {3, 1000, 0.00014984252803814, 0.0138580692674063},
        {50, 256, 0.121698695627859, 0.287219812432614},
    };
    for (size_t i = 0; i < sizeof ref / sizeof *ref; i++) {
        clopper_pearson(ref[i].k, ref[i].n, 0.001, &lo, &hi);
        if (fabs(lo - ref[i].lo) > 1e-9 || fabs(hi - ref[i].hi) > 1e-9)
            printf("\n  %ld of %ld: [%.15g, %.15g], reference [%.15g, %.15g]\n", ref[i].k, ref[i].n,
                   lo, hi, ref[i].lo, ref[i].hi);
        CU_ASSERT_DOUBLE_EQUAL(lo, ref[i].lo, 1e-9);
        CU_ASSERT_DOUBLE_EQUAL(hi, ref[i].hi, 1e-9);
    }
    /* symmetry: k of n against n - k of n */
    double lo2, hi2;
    clopper_pearson(8, 2048, 0.001, &lo, &hi);
    clopper_pearson(2040, 2048, 0.001, &lo2, &hi2);
    CU_ASSERT_DOUBLE_EQUAL(lo, 1 - hi2, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(hi, 1 - lo2, 1e-9);
}

/* Counts the failures of `rounds` rounds of 256 KS-PBS on weak set `id`
 * and checks them against its per-key model at 1 - 1e-5. Under ASan/UBSan (make sanitize, a
 * Debug build) a PBS costs tens of times more: one round of 128 checks the
 * code path, and the interval is taken at 1 - 1e-6, so that only a gross
 * error of the rate (a broken PBS) fails it. That build's check once used
 * 99.9%, and CI met its false alarm: 5 failures in 127 PBS at
 * VEIL_TEST_SEED=0xe653b1bfacb3c76a (0.5 expected, about 2e-4 under the
 * model; the same key's next 4973 PBS gave 15, as predicted). The count
 * that tests the model's accuracy is the full one, run by make test. */
static void count_failures(const char *id, long rounds) {
    const veil_params *p = weak_set(id);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    const size_t batch = VEIL_PFAIL_SANITIZED ? 128 : 256;
    const double alpha = VEIL_PFAIL_SANITIZED ? 1e-6 : 1e-5;
    if (VEIL_PFAIL_SANITIZED) rounds = 1;
    if (VEIL_PFAIL_SANITIZED)
        printf("\n  sanitizer build: %ld round(s) only, accepted at 1 - %g", rounds, alpha);
    pfail_result r;
    printf("\n");
    CU_ASSERT_FATAL(pfail_measure(p, batch, rounds, alpha, 1.0, NULL, &r) == 0);
    CU_ASSERT_EQUAL(r.pbs + r.skipped, (long)batch * rounds);
    CU_ASSERT(r.pbs >= (long)batch * rounds * 9 / 10);
    CU_ASSERT(r.consistent);
}

static void test_pfail_weakest(void) {
    count_failures("weak-p1-2m8", 16);
}

/* The same count on weak-ms-p4-2m8, whose noise is almost all the centred
 * modulus switch (99.9% of the variance), what the derived 5- and 6-bit sets
 * spend most of their budget on (docs/PARAMS.md section 5): a check of that
 * term's tail, not only of its variance (test_noise.c). A 4-bit table
 * (reversed values) at N = 256, about 2^-8 per PBS. */
static void test_pfail_centred_switch(void) {
    const veil_params *p = weak_set("weak-ms-p4-2m8");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL_FATAL(p->ms, VEIL_MS_CENTERED);
    count_failures("weak-ms-p4-2m8", 24);
}

/* The error before the blind rotation (keyswitch, then modulus switch to
 * 2N, of fresh encryptions of 0) must be centred for each key, as the noise
 * model assumes. It was not: digits of mean -1/2 (the old gadget tie, see
 * veil/gadget.h) made the keyswitch add -1/2 times the sum of its key's
 * noises, a constant of about 0.2 standard deviations (sd over keys) at
 * these sets; -0.32 sd for the key of the 2^-8 run that failed
 * (docs/results/pfail.md). Per key, the mean of M errors (in positions of
 * 2N) must be within 4.5 standard errors of 0 (false alarm 7e-6 a key).
 * With M = 2000 and 3 keys the old rule fails this with probability about
 * 0.95. Key 0 is the key pfail_measure makes from the same test seed. */
static void test_ks_ms_error_centred(void) {
    const veil_params *p = weak_set("weak-p1-2m8");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    const unsigned nkeys = VEIL_PFAIL_SANITIZED ? 1 : 3;
    const size_t M = VEIL_PFAIL_SANITIZED ? 200 : 2000;
    const uint32_t n = p->lwe_dim;
    const size_t big1 = (size_t)veil_params_big_dim(p) + 1;
    uint64_t *in = calloc(M * big1, 8), *small = calloc(M * (n + 1), 8), *s = calloc(n, 8);
    uint32_t *ms = calloc(n + 1, sizeof *ms);
    CU_ASSERT_FATAL(in && small && s && ms);
    unsigned keys_done = 0;
    printf("\n");
    for (unsigned k = 0; k < nkeys; k++) {
        uint8_t seed[5][32];
        for (unsigned i = 0; i < 5; i++)
            veil_test_seed_bytes(k == 0 ? 40 + i : 100 + 5 * k + i, seed[i]);
        veil_secret_key *sk = NULL;
        veil_eval_key *ek = NULL;
        veil_encryptor *enc = NULL;
        CU_ASSERT_FATAL(veil_secret_key_new(p, seed[0], &sk) == VEIL_OK &&
                        veil_eval_key_new(sk, seed[1], seed[2], &ek) == VEIL_OK &&
                        veil_encryptor_new(seed[3], seed[4], &enc) == VEIL_OK);
        CU_ASSERT_FATAL(veil_test_sk_bits(sk, 0, s) == n);
        for (size_t c = 0; c < M; c++)
            veil_encrypt_big(enc, sk, veil_encode(0, 1), in + c * big1);
        veil_keyswitch_many(veil_eval_key_part(ek, 0), in, M, small);
        double sum = 0, sum2 = 0;
        for (size_t c = 0; c < M; c++) {
            const double e = ms_error(p, small + c * (n + 1), s, ms);
            sum += e;
            sum2 += e * e;
        }
        const double mean = sum / M, sd = sqrt((sum2 - sum * mean) / (M - 1));
        const double z = mean / (sd / sqrt((double)M));
        printf("  key %u: %zu errors before the blind rotation: mean %+.3f sd = %+.2f standard "
               "errors (sd %.2f positions of 2N)\n",
               k, M, mean / sd, z, sd);
        CU_ASSERT(fabs(z) <= 4.5);
        keys_done++;
        veil_encryptor_free(enc);
        veil_eval_key_free(ek);
        veil_secret_key_free(sk);
    }
    CU_ASSERT_EQUAL(keys_done, nkeys);
    free(in);
    free(small);
    free(s);
    free(ms);
}

/* The per-key model's variances against the errors measured with that key
 * (the test that found Concrete's digit moments too high for veil's and
 * TFHE-rs's decomposition, veil/noise.h veil_noise_gadget_moments):
 * fresh encryptions of 0 (noise 2^-40 or less: nothing), keyswitched, then
 * modulus-switched; the keyswitch error (in 2^-64 units) and the total after
 * the switch (in positions of 2N) are compared with
 * veil_noise_ks_variance_key and + veil_noise_ms_variance_key. */
static void test_pre_pbs_variance_per_key(void) {
    static const char *const ids[] = {"weak-p1-2m8", "weak-k1-p1-2m8", "weak-ms-p4-2m8"};
    const size_t M = VEIL_PFAIL_SANITIZED ? 200 : 6000;
    int checked = 0;
    printf("\n");
    for (size_t w = 0; w < sizeof ids / sizeof *ids; w++) {
        const veil_params *p = weak_set(ids[w]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(p);
        const uint32_t n = p->lwe_dim, N2 = 2 * p->poly_size;
        const size_t big1 = (size_t)veil_params_big_dim(p) + 1;
        uint64_t *in = calloc(M * big1, 8), *small = calloc(M * (n + 1), 8), *s = calloc(n, 8);
        uint32_t *ms = calloc(n + 1, sizeof *ms);
        CU_ASSERT_FATAL(in && small && s && ms);
        veil_test_keys f;
        CU_ASSERT_FATAL(veil_test_keys_make(p, 40, &f));
        veil_noise_key key;
        CU_ASSERT_FATAL(pfail_key_noise(f.sk, f.ek, &key, NULL, NULL) == 0);
        CU_ASSERT_FATAL(veil_test_sk_bits(f.sk, 0, s) == n);
        for (size_t c = 0; c < M; c++)
            veil_encrypt_big(f.enc, f.sk, 0, in + c * big1);
        veil_keyswitch_many(veil_eval_key_part(f.ek, 0), in, M, small);
        double ks2 = 0, tot2 = 0, ks1 = 0;
        for (size_t c = 0; c < M; c++) {
            const double e = (double)(int64_t)veil_lwe_phase(s, n, small + c * (n + 1));
            ks1 += e;
            ks2 += e * e;
            const double t = ms_error(p, small + c * (n + 1), s, ms);
            tot2 += t * t;
        }
        const double pos = ldexp(1.0, 64) / N2; /* 2^-64 units per position */
        const double v_ks = veil_noise_ks_variance_key(p, &key);
        const double v_tot = (v_ks + veil_noise_ms_variance_key(p, &key)) / (pos * pos);
        printf("  %-15s %zu errors: keyswitch variance %.4f x the per-key model (mean %+.3f sd), "
               "after the modulus switch %.4f x (sd %.2f positions of 2N)\n",
               p->id, M, ks2 / M / v_ks, ks1 / M / sqrt(ks2 / M), tot2 / M / v_tot, sqrt(tot2 / M));
        /* a sample variance of M near-Gaussian errors: standard error
         * sqrt(2 / M) of the ratio (1.8% at 6000), accepted in the band at
         * 4.5 of them, skew kept (veil_test_variance_band: [0.92, 1.09]
         * at 6000); Concrete's digit moments give 0.90 on weak-k1-p1-2m8,
         * outside */
        double lo, hi;
        veil_test_variance_band((double)M, 3.0, 4.5, &lo, &hi);
        CU_ASSERT(ks2 / M / v_ks >= lo && ks2 / M / v_ks <= hi);
        CU_ASSERT(tot2 / M / v_tot >= lo && tot2 / M / v_tot <= hi);
        veil_test_keys_free(&f);
        memset(s, 0, (size_t)n * 8);
        free(in);
        free(small);
        free(s);
        free(ms);
        checked++;
    }
    CU_ASSERT_EQUAL(checked, (int)(sizeof ids / sizeof *ids));
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("pfail", NULL, NULL);
    if (!s) return CU_get_error();
    VEIL_ADD_TEST(s, test_weak_sets_test_only);
    VEIL_ADD_TEST(s, test_clopper_pearson);
    VEIL_ADD_TEST(s, test_per_key_model);
    VEIL_ADD_TEST(s, test_pre_pbs_variance_per_key);
    VEIL_ADD_TEST(s, test_ks_ms_error_centred);
    VEIL_ADD_TEST(s, test_pfail_weakest);
    VEIL_ADD_TEST(s, test_pfail_centred_switch);
    return veil_test_run();
}
