// LABELS: unit crypto
// LINKS: veil_host
/* Failure probability, measured (issue 15), the CI version: KS-PBS on the
 * weakest test-only set (weak-p1-2m8, modelled p_fail about 2^-8) on the cpu
 * backend, failures counted and compared with the noise model; see
 * pfail_common.h for the experiment and the test. Confidence: the
 * Clopper-Pearson interval is two-sided at 99.9%, so a correct model fails
 * this test with probability at most 0.1% per run (the seed is printed for a
 * replay). With 2048 counted PBS and p about 2^-8 it expects about 8 to 12
 * failures; the interval then spans roughly a factor 3 either way. The
 * model's band is widened by a factor 2 here, because the longer run found
 * the model optimistic on this set by about 1.6x (90 failures in 14 911 PBS
 * against 56 predicted, docs/results/pfail.md): strict, this test would
 * fail a few percent of runs. So it catches a PBS or a model off by more
 * than about 2 x 3; test_pfail_slow (10^6 PBS over the three sets) checks
 * the model with no slack. Also: the sets are never reachable
 * through the engine's table, and their recorded p_fail (derive.py) agrees
 * with the C noise model. */
#include "pfail_common.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
#define VEIL_PFAIL_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define VEIL_PFAIL_SANITIZED 1
#endif
#endif
#ifndef VEIL_PFAIL_SANITIZED
#define VEIL_PFAIL_SANITIZED 0
#endif

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
    CU_ASSERT_EQUAL(checked, 3);
    printf("\n");
}

static void test_clopper_pearson(void) {
    /* reference values (R: binom.test(k, n, conf.level = 0.999)$conf.int) */
    double lo, hi;
    clopper_pearson(0, 100, 0.001, &lo, &hi);
    CU_ASSERT_DOUBLE_EQUAL(lo, 0.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(hi, 1 - pow(0.0005, 1.0 / 100), 1e-9); /* exact for k = 0 */
    clopper_pearson(100, 100, 0.001, &lo, &hi);
    CU_ASSERT_DOUBLE_EQUAL(lo, pow(0.0005, 1.0 / 100), 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(hi, 1.0, 1e-12);
    /* symmetry: k of n against n - k of n */
    double lo2, hi2;
    clopper_pearson(8, 2048, 0.001, &lo, &hi);
    clopper_pearson(2040, 2048, 0.001, &lo2, &hi2);
    CU_ASSERT_DOUBLE_EQUAL(lo, 1 - hi2, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(hi, 1 - lo2, 1e-9);
    CU_ASSERT(lo < 8.0 / 2048 && hi > 8.0 / 2048);
    /* the defining equations hold at the ends */
    CU_ASSERT_DOUBLE_EQUAL(exp(binom_log_cdf(8, 2048, hi)), 0.0005, 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(1 - exp(binom_log_cdf(7, 2048, lo)), 0.0005, 1e-7);
}

static void test_pfail_weakest(void) {
    const veil_params *p = weak_set("weak-p1-2m8");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    const size_t batch = VEIL_PFAIL_SANITIZED ? 128 : 256;
    /* Under ASan/UBSan (make sanitize, a Debug build) a PBS costs tens of
     * times more: one round checks the code path, and only a gross error of
     * the rate (a broken PBS) fails it. */
    const long rounds = VEIL_PFAIL_SANITIZED ? 1 : 8;
    if (VEIL_PFAIL_SANITIZED) printf("\n  sanitizer build: %ld round(s) only", rounds);
    pfail_result r;
    printf("\n");
    CU_ASSERT_FATAL(pfail_measure(p, batch, rounds, 0.001, 2.0, NULL, &r) == 0);
    CU_ASSERT_EQUAL(r.pbs + r.skipped, (long)batch * rounds);
    CU_ASSERT(r.pbs >= (long)batch * rounds * 9 / 10);
    CU_ASSERT(r.consistent);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("pfail", NULL, NULL);
    if (!s) return CU_get_error();
    VEIL_ADD_TEST(s, test_weak_sets_test_only);
    VEIL_ADD_TEST(s, test_clopper_pearson);
    VEIL_ADD_TEST(s, test_pfail_weakest);
    return veil_test_run();
}
