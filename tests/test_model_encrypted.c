// LABELS: model crypto
// LINKS: veil_host veil_loaders
/* The tiny model encrypted on the cpu backend equals simulate compiled with
 * the same options, on golden inputs: the default program (5-bit lookups, no
 * rounding needed), exact rounding to 3 bits (2 rounding PBS per element)
 * and to 1 bit (two chunks), and approximate rounding; plus the plan's and
 * client helpers' argument errors. The bigger models run the same check in
 * test_model_encrypted_slow.c (label slow). */
#include "model_encrypted_common.h"

#include <math.h>

static void check(const char *what, veil_model *m, const veil_compile_options *o, size_t n,
                  size_t batch, double min_agree) {
    veil_program *p = NULL;
    veil_status st = veil_program_compile(m, o, &p);
    if (st) fprintf(stderr, "\n  compile: %s\n", veil_error_message());
    CU_ASSERT_EQUAL_FATAL(st, VEIL_OK);
    enc_result r;
    st = run_encrypted_vs_simulate(m, p, n, batch, &r);
    if (st) fprintf(stderr, "\n  run: %s\n", veil_error_message());
    CU_ASSERT_EQUAL(st, VEIL_OK);
    printf("\n  %-28s %s: %zu/%zu values, %zu/%zu argmax equal to simulate; %.3f s/sample "
           "(batch %zu, %llu PBS/sample)",
           what, p->params->id, r.equal, r.values, r.argmax, r.samples, r.seconds_per_sample, batch,
           (unsigned long long)p->pbs_per_sample);
    if (min_agree >= 1.0) {
        CU_ASSERT_EQUAL(r.equal, r.values);
    } else {
        CU_ASSERT((double)r.equal >= min_agree * (double)r.values);
    }
    CU_ASSERT(r.values > 0);
    veil_program_free(p);
}

static void test_tiny_default(void) {
    veil_model *m = enc_load("models/tiny.h5");
    check("default", m, NULL, 8, 8, 1.0);
    veil_model_free(m);
}

static void test_tiny_exact_rounding(void) {
    veil_model *m = enc_load("models/tiny.h5");
    veil_compile_options o;
    veil_compile_options_default(&o);
    o.rounding_bits = 3;
    check("exact rounding to 3 bits", m, &o, 16, 16, 1.0);
    o.rounding_bits = 1;
    check("exact rounding to 1 bit", m, &o, 8, 8, 1.0);
    veil_model_free(m);
}

/* Inputs drawn from the inputs' whole range make accumulators leave the
 * calibration ranges the program was compiled for: the lookups then read
 * their index mod 2^(p+1) with the negacyclic sign, and simulate must say
 * exactly that (it used to clamp, and disagreed with every encrypted run on
 * such samples). */
static void test_tiny_outside_calibration(void) {
    veil_model *m = enc_load("models/tiny.h5");
    veil_program *p = NULL;
    veil_compile_options o;
    veil_compile_options_default(&o);
    o.range_margin = 0; /* the calibration set's own ranges, so edges leave them */
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, &o, &p), VEIL_OK);
    const size_t n = 16, sz = veil_program_input_size(p, 0);
    CU_ASSERT_FATAL(m->golden.count >= n);
    /* keep random inputs at the edges of the input range until n of them
     * drive some value out of its compiled range */
    const int64_t lo = m->inputs[0].range[0], hi = m->inputs[0].range[1];
    int64_t *x = malloc(sz * 8), *y = malloc(veil_program_output_size(p, 0) * 8);
    size_t kept = 0, tries = 0;
    while (kept < n && tries++ < 100000) {
        for (size_t j = 0; j < sz; j++)
            x[j] = veil_test_rand() & 1 ? hi : lo;
        const int64_t *in = x;
        veil_sim_stats ss;
        CU_ASSERT_EQUAL_FATAL(veil_program_simulate(p, &in, 1, &y, NULL, &ss), VEIL_OK);
        if (ss.range_errors) memcpy(m->golden.inputs[0] + kept++ * sz, x, sz * 8);
    }
    printf("\n  %zu of %zu random edge inputs leave a compiled range", kept, tries);
    CU_ASSERT_EQUAL_FATAL(kept, n); /* or this test checks nothing */
    free(x);
    free(y);
    veil_program_free(p);
    check("outside the calibration", m, NULL, n, n, 1.0);
    veil_model_free(m);
}

static void test_tiny_approximate(void) {
    veil_model *m = enc_load("models/tiny.h5");
    veil_compile_options o;
    veil_compile_options_default(&o);
    o.rounding_bits = 2;
    o.rounding = VEIL_ROUNDING_APPROXIMATE;
    /* off by one near rounding boundaries is allowed; most values agree */
    check("approximate rounding to 2 bits", m, &o, 32, 32, 0.8);
    /* the rate the simulator's noise model predicts for these lookups */
    veil_program *p = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, &o, &p), VEIL_OK);
    size_t n = m->golden.count, sz = veil_program_output_size(p, 0);
    int64_t *a = malloc(n * sz * 8), *b = malloc(n * sz * 8);
    veil_sim_options so = {1, veil_test_rand()};
    veil_sim_stats ss;
    uint64_t errs = 0, diff = 0;
    CU_ASSERT_EQUAL(
        veil_program_simulate(p, (const int64_t *const *)m->golden.inputs, n, &a, NULL, NULL),
        VEIL_OK);
    for (int rep = 0; rep < 20; rep++) {
        so.seed = veil_test_rand();
        CU_ASSERT_EQUAL(
            veil_program_simulate(p, (const int64_t *const *)m->golden.inputs, n, &b, &so, &ss),
            VEIL_OK);
        errs += ss.pbs_errors;
        for (size_t j = 0; j < n * sz; j++)
            diff += a[j] != b[j];
    }
    printf("\n  modelled: %.2f%% of lookups off by one, %.2f%% of output values differ",
           100.0 * (double)errs / (20.0 * (double)(n * p->pbs_per_sample)),
           100.0 * (double)diff / (20.0 * (double)(n * sz)));
    free(a);
    free(b);
    veil_program_free(p);
    veil_model_free(m);
}

static void test_errors(void) {
    veil_model *m = enc_load("models/tiny.h5");
    veil_program *p = NULL, *q = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, NULL, &p), VEIL_OK);
    veil_compile_options o;
    veil_compile_options_default(&o);
    o.rounding_bits = 3;
    o.max_partitions = 1; /* one evaluation key (key sets: branch keyset) */
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, &o, &q), VEIL_OK);
    CU_ASSERT_FATAL(p->params != q->params);
    uint8_t s[32];
    veil_test_seed_bytes(60, s);
    veil_secret_key *sk = NULL;
    veil_eval_key *ek = NULL;
    veil_backend *be = NULL;
    veil_encryptor *enc = NULL;
    veil_plan *plan = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_secret_key_new(q->params, s, &sk), VEIL_OK);
    CU_ASSERT_EQUAL_FATAL(veil_eval_key_new(sk, s, s, &ek), VEIL_OK);
    CU_ASSERT_EQUAL_FATAL(veil_backend_new(VEIL_BACKEND_CPU, &be), VEIL_OK);
    CU_ASSERT_EQUAL_FATAL(veil_encryptor_new(s, s, &enc), VEIL_OK);
    /* keys of another parameter set */
    CU_ASSERT_EQUAL(veil_plan_new(p, ek, be, 1, &plan), VEIL_ERR_PARAMS);
    CU_ASSERT_PTR_NULL(plan);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), p->params->id));
    /* batch limits */
    CU_ASSERT_EQUAL_FATAL(veil_plan_new(q, ek, be, 2, &plan), VEIL_OK);
    size_t lwe = veil_program_ct_words(q);
    uint64_t *ci = calloc(3 * 3 * lwe, 8), *co = calloc(3 * 2 * lwe, 8);
    const uint64_t *cip = ci;
    CU_ASSERT_EQUAL(veil_plan_execute(plan, &cip, 3, &co), VEIL_ERR_ARG);
    /* values outside the input range are refused by the client */
    int64_t bad[3] = {0, 9, 0};
    CU_ASSERT_EQUAL(veil_program_encrypt(q, enc, sk, 0, bad, 1, ci), VEIL_ERR_RANGE);
    CU_ASSERT_EQUAL(veil_program_encrypt(p, enc, sk, 0, bad, 1, ci), VEIL_ERR_PARAMS);
    /* a simulate-only program cannot be planned */
    veil_compile_options_default(&o);
    o.rounding_bits = 0;
    o.params_id = "tfhers-1_1-gaussian-2m64";
    o.p_error = ldexp(1.0, -200);
    o.simulate_only = 1;
    veil_program *r = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, &o, &r), VEIL_OK);
    CU_ASSERT_PTR_NULL(r->params);
    veil_plan *plan2 = NULL;
    CU_ASSERT_EQUAL(veil_plan_new(r, ek, be, 1, &plan2), VEIL_ERR_PARAMS);
    free(ci);
    free(co);
    veil_program_free(r);
    veil_plan_free(plan);
    veil_encryptor_free(enc);
    veil_backend_free(be);
    veil_eval_key_free(ek);
    veil_secret_key_free(sk);
    veil_program_free(p);
    veil_program_free(q);
    veil_model_free(m);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("model_encrypted", NULL, NULL);
    if (!s) return CU_get_error();
    VEIL_ADD_TEST(s, test_errors);
    VEIL_ADD_TEST(s, test_tiny_default);
    VEIL_ADD_TEST(s, test_tiny_exact_rounding);
    VEIL_ADD_TEST(s, test_tiny_approximate);
    VEIL_ADD_TEST(s, test_tiny_outside_calibration);
    return veil_test_run();
}
