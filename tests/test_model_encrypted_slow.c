// LABELS: model slow
// LINKS: veil_host veil_loaders
/* The bigger sample models encrypted on the cpu backend equal simulate
 * compiled with the same options, on golden inputs: each with 4-bit rounded
 * lookups (exact rounding, worst-case bounds: N = 2048 sets), and source_bc
 * with the default 8-bit program (an N = 32768 set: ~4 GB of keys, minutes
 * per sample on a laptop). VEIL_SLOW_SAMPLES sets the samples per model
 * (default 2; one for cnn_digits and the 8-bit program). */
#include "model_encrypted_common.h"

static size_t n_samples(void) {
    const char *e = getenv("VEIL_SLOW_SAMPLES");
    long n = e ? strtol(e, NULL, 10) : 2;
    return n > 0 ? (size_t)n : 2;
}

static void check(const char *rel, unsigned rounding_bits, size_t max_samples) {
    veil_model *m = veil_test_load_model(rel);
    veil_compile_options o;
    veil_compile_options_default(&o);
    o.rounding_bits = rounding_bits;
    o.bounds = VEIL_BOUNDS_WORST_CASE; /* every golden input inside the ranges */
    veil_program *p = NULL;
    veil_status st = veil_program_compile(m, &o, &p);
    if (st) fprintf(stderr, "\n  compile: %s\n", veil_error_message());
    CU_ASSERT_EQUAL_FATAL(st, VEIL_OK);
    size_t n = n_samples();
    n = n < m->golden.count ? n : m->golden.count;
    n = n < max_samples ? n : max_samples;
    enc_result r;
    st = run_encrypted_vs_simulate(m, p, n, n, &r);
    if (st) fprintf(stderr, "\n  run: %s\n", veil_error_message());
    CU_ASSERT_EQUAL(st, VEIL_OK);
    printf("\n  %-12s %u-bit lookups, %s: %zu/%zu values, %zu/%zu argmax equal to simulate; "
           "%.2f s/sample (%llu PBS/sample)",
           m->name, p->max_lut_bits, p->params->id, r.equal, r.values, r.argmax, r.samples,
           r.seconds_per_sample, (unsigned long long)p->pbs_per_sample);
    CU_ASSERT_EQUAL(r.equal, r.values);
    CU_ASSERT(r.values > 0);
    veil_program_free(p);
    veil_model_free(m);
}

static void test_mlp(void) {
    check("models/mlp_digits.h5", 4, 64);
}
static void test_cnn(void) {
    check("models/cnn_digits.h5", 4, 1); /* 3904 PBS per sample */
}
static void test_source(void) {
    check("models/source_bc.h5", 4, 64);
}
static void test_target(void) {
    check("models/target_bc.h5", 4, 64);
}
static void test_source_default_8bit(void) {
    check("models/source_bc.h5", 8, 1);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("model_encrypted_slow", NULL, NULL);
    if (!s) return CU_get_error();
    VEIL_ADD_TEST(s, test_source);
    VEIL_ADD_TEST(s, test_target);
    VEIL_ADD_TEST(s, test_mlp);
    VEIL_ADD_TEST(s, test_cnn);
    VEIL_ADD_TEST(s, test_source_default_8bit);
    return veil_test_run();
}
