// LABELS: model crypto
// LINKS: veil_host veil_loaders
/* A whole program on a multi-bit set (issue 13 part 3): `--params` forces one
 * for every PBS (veil_compile_options.params_id, what `veil run --params`
 * sets; the compiler's search never picks one), and the tiny model's golden
 * samples run encrypted on the cpu backend equal simulate's integers (the
 * key file of a multi-bit set: test_multibit.c, test_key_file); and one the
 * compiler chooses itself under --objective latency. */
#include "model_encrypted_common.h"
#include "veil/compile_options.h"

#define MB_ID "tfhers-mb2-1_1-tuniform-2m128"

/* --params VALUE through the option parser, as the CLI reads it */
static veil_status set_params(veil_compile_options *o, const char *value) {
    char *argv[] = {"--params", (char *)value, NULL};
    int i = 0, consumed = 0;
    veil_status st = veil_compile_options_parse_arg(o, 2, argv, &i, &consumed);
    CU_ASSERT_EQUAL(consumed, st == VEIL_OK);
    return st;
}

static void test_forced_multibit(void) {
    veil_model *m = veil_test_load_model("models/tiny.h5");
    veil_compile_options o;
    veil_compile_options_default(&o);
    CU_ASSERT_EQUAL_FATAL(set_params(&o, MB_ID), VEIL_OK);
    veil_program *p = NULL;
    veil_status st = veil_program_compile(m, &o, &p);
    if (st) printf("\n  compile: %s\n", veil_error_message());
    CU_ASSERT_EQUAL_FATAL(st, VEIL_OK);
    CU_ASSERT_EQUAL(p->n_partitions, 1);
    CU_ASSERT_PTR_EQUAL(p->params, veil_params_multibit_find(MB_ID));
    CU_ASSERT_EQUAL(p->params->grouping, 2);
    /* 2 samples (1 under the sanitizers: tens of times slower) */
#if defined(__SANITIZE_ADDRESS__)
    const size_t n = 1;
#else
    const size_t n = m->golden.count < 2 ? m->golden.count : 2;
#endif
    enc_result r;
    st = run_encrypted_vs_simulate(m, p, n, n, &r);
    if (st) printf("\n  run: %s\n", veil_error_message());
    CU_ASSERT_EQUAL_FATAL(st, VEIL_OK);
    printf("\n  %s: %zu/%zu values equal simulate, %.2f s per sample\n", MB_ID, r.equal, r.values,
           r.seconds_per_sample);
    CU_ASSERT_EQUAL(r.samples, n);
    CU_ASSERT(r.values > 0);
    CU_ASSERT_EQUAL(r.equal, r.values);
    veil_program_free(p);
    veil_model_free(m);
}

/* --objective latency: with many cores a multi-bit set's lone lookups run
 * on teams of cores (veil_pbs_threads), and the compiler takes one for the
 * tiny model at 64 cores (its 4 PBS a sample); the program's modelled
 * latency is below that of the throughput program's set at the same cores,
 * and it runs encrypted equal to simulate on this machine's threads. */
static void test_latency_objective(void) {
    veil_model *m = veil_test_load_model("models/tiny.h5");
    veil_compile_options o;
    veil_compile_options_default(&o);
    veil_program *thr = NULL, *lat = NULL, *forced = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, &o, &thr), VEIL_OK);
    CU_ASSERT_EQUAL(thr->latency_per_sample, 0);
    for (uint32_t k = 0; k < thr->n_partitions; k++)
        CU_ASSERT_EQUAL(thr->partitions[k].params->grouping, 0); /* throughput: classic */
    o.latency_cores = 64;
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, &o, &lat), VEIL_OK);
    uint32_t mb = 0;
    for (uint32_t k = 0; k < lat->n_partitions; k++)
        mb += lat->partitions[k].params->grouping >= 2;
    CU_ASSERT(mb >= 1);
    CU_ASSERT(lat->latency_per_sample > 0);
    CU_ASSERT(strstr(lat->options_canonical, "objective=latency:64") != NULL);
    if (thr->n_partitions == 1) {
        o.params_id = thr->params->id;
        CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, &o, &forced), VEIL_OK);
        printf("\n  latency at 64 cores: %s %.2f ms, %s %.2f ms", lat->params->id,
               lat->latency_per_sample, forced->params->id, forced->latency_per_sample);
        CU_ASSERT(lat->latency_per_sample < forced->latency_per_sample);
    }
    /* a model whose compile tries several programs (widths, selections):
     * the latency compile's is no slower, at 64 cores, than the throughput
     * compile's program (one of those it tried) */
    veil_model *digits = veil_test_load_model("models/mlp_digits.h5");
    veil_program *dt = NULL, *dl = NULL;
    veil_compile_options d;
    veil_compile_options_default(&d);
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(digits, &d, &dt), VEIL_OK);
    d.latency_cores = 64;
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(digits, &d, &dl), VEIL_OK);
    const double dt_ms = veil_program_latency_ms(dt, 64);
    printf("\n  mlp_digits at 64 cores: latency program %.1f ms, throughput program %.1f ms",
           dl->latency_per_sample, dt_ms);
    CU_ASSERT(dl->latency_per_sample <= dt_ms * (1 + 1e-9));
    CU_ASSERT_DOUBLE_EQUAL(veil_program_latency_ms(dl, 64), dl->latency_per_sample,
                           1e-9 * dl->latency_per_sample);
    veil_program_free(dt);
    veil_program_free(dl);
    veil_model_free(digits);
    enc_result r;
    veil_status st = run_encrypted_vs_simulate(m, lat, 1, 1, &r);
    if (st) printf("\n  run: %s\n", veil_error_message());
    CU_ASSERT_EQUAL_FATAL(st, VEIL_OK);
    CU_ASSERT(r.values > 0);
    CU_ASSERT_EQUAL(r.equal, r.values);
    veil_program_free(thr);
    veil_program_free(lat);
    veil_program_free(forced);
    veil_model_free(m);
}

/* An unknown id is still refused, naming it. */
static void test_unknown_params(void) {
    veil_compile_options o;
    veil_compile_options_default(&o);
    CU_ASSERT_EQUAL(set_params(&o, "tfhers-mb9-1_1-tuniform-2m128"), VEIL_ERR_ARG);
    CU_ASSERT(strstr(veil_error_message(), "tfhers-mb9") != NULL);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("multibit_program", NULL, NULL);
    VEIL_ADD_TEST(s, test_unknown_params);
    VEIL_ADD_TEST(s, test_forced_multibit);
    VEIL_ADD_TEST(s, test_latency_objective);
    return veil_test_run();
}
