// LABELS: model crypto
// COST: 120
// LINKS: veil_host
/* WoP-PBS lookups compiled into programs (--wop, veil/program.h "WoP
 * lookups"): a model x [2] -> linear (x * 1 per element) -> a 9-bit lookup
 * with a random 4-bit table per element (a step at nearly every input: what
 * the digits pay most for) -> y.
 *   - compiled with --wop always: one WoP node (its partition a WoP set's,
 *     the program's p_fail under the target) and its refresh; simulate gives
 *     the table on every one of the 512 inputs; --wop off has no WoP node,
 *     and --wop auto takes it where its price is below the digits';
 *   - --wop auto's choice is the method measured cheaper: the WoP-PBS for
 *     random tables at 9 and 12 bits, the digits for few-step tables;
 *   - encrypted on the cpu backend: equal to simulate and to the table;
 *     the plan makes the node's WoP tables once (the backend's tables_new)
 *     and every lookup reads them (wop_plan_common.h);
 *     then with the linear layer calibrated on a quarter of the range and
 *     no margin, inputs to the top: the WoP-PBS reads its index modulo 2^9
 *     (bit extraction has no padding bit) and encrypted still equals
 *     simulate;
 *   - a backend without the op refuses the program at plan time, naming
 *     the layer (the cuda backend has it: test_gpu_ops test_wop_program); --params and --partitions
 * 1 are refused with a WoP lookup, and so is a key budget under its keys (auto: the digits). */
#include "testutil.h"
#include "wide_model.h"
#include "veil/compile_options.h"
#include "veil/exec.h"
#include "veil/program.h"
#include "veil/wop.h"
#include "wop_plan_common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define W 9

static veil_program *compile_wop(const veil_model *m, veil_wop_mode mode, double margin) {
    veil_compile_options o;
    veil_compile_options_default(&o);
    o.wop = mode;
    o.range_margin = margin;
    veil_program *p = NULL;
    const veil_status st = veil_program_compile(m, &o, &p);
    if (st != VEIL_OK) fprintf(stderr, "\n  compile: %s\n", veil_error_message());
    CU_ASSERT_EQUAL(st, VEIL_OK);
    return p;
}

/* The program's WoP nodes (each checked: its partition's set is its
 * width's WoP set). */
static size_t wop_nodes(const veil_program *p) {
    size_t k = 0;
    for (size_t i = 0; i < p->n_nodes; i++) {
        const veil_node *n = &p->nodes[i];
        if (n->kind != VEIL_NODE_LUT || !n->wop) continue;
        k++;
        CU_ASSERT_FATAL(n->partition < p->n_partitions);
        CU_ASSERT_PTR_EQUAL(p->partitions[n->partition].params,
                            &veil_wop_params_for_width(n->in_bits)->pbs);
        /* under the program's target, as every read (finite: it is priced) */
        CU_ASSERT(isfinite(n->read_log2_pfail) && n->read_log2_pfail <= log2(p->options.p_error));
        if (!(n->read_log2_pfail <= log2(p->options.p_error)))
            printf("\n  %s: WoP node at log2 p_fail %.3f, target %.3f", n->layer,
                   n->read_log2_pfail, log2(p->options.p_error));
    }
    return k;
}

static void test_compile_and_simulate(void) {
    veil_model *m = make_wide_random(W, 4, 1, 1);
    veil_program *p = compile_wop(m, VEIL_WOP_ALWAYS, 0.25);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p->params);
    CU_ASSERT_EQUAL(wop_nodes(p), 1);
    CU_ASSERT(p->log2_p_fail_pbs <= log2(p->options.p_error));
    printf("\n  --wop always: %llu PBS a sample, %u partitions, log2 p_fail %.1f, %.0f ms "
           "predicted, keys %.0f MiB",
           (unsigned long long)p->pbs_per_sample, p->n_partitions, p->log2_p_fail_pbs,
           p->cost_per_sample, p->key_bytes / 1048576.0);
    const double always_cost = p->cost_per_sample;
    /* the report names them */
    char *rep = NULL;
    size_t rep_len = 0;
    FILE *mf = open_memstream(&rep, &rep_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mf);
    veil_program_print_report(p, mf);
    fclose(mf);
    CU_ASSERT_PTR_NOT_NULL(strstr(rep, "WoP-PBS (--wop): 2 lookups a sample"));
    CU_ASSERT_PTR_NOT_NULL(strstr(rep, veil_wop_params_for_width(W)->id));
    free(rep);
    /* every input: the table */
    const size_t T = (size_t)1 << W;
    int64_t *x = malloc(2 * T * sizeof *x), *y = malloc(2 * T * sizeof *y);
    for (size_t i = 0; i < T; i++)
        x[2 * i] = x[2 * i + 1] = (int64_t)i;
    CU_ASSERT_EQUAL(veil_program_simulate(p, (const int64_t *const *)&x, T, &y, NULL, NULL),
                    VEIL_OK);
    size_t right = 0;
    for (size_t i = 0; i < 2 * T; i++)
        right += y[i] == m->layers[1].table[(i % 2) * T + (size_t)x[i]];
    CU_ASSERT_EQUAL(right, 2 * T);
    veil_program_free(p);
    /* off: none; auto: the price decides (printed) */
    p = compile_wop(m, VEIL_WOP_OFF, 0.25);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(wop_nodes(p), 0);
    printf("; off: %llu PBS, %.0f ms", (unsigned long long)p->pbs_per_sample, p->cost_per_sample);
    const double off_cost = p->cost_per_sample;
    veil_program_free(p);
    p = compile_wop(m, VEIL_WOP_AUTO, 0.25);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    printf("; auto: %zu WoP, %.0f ms", wop_nodes(p), p->cost_per_sample);
    /* auto takes the cheaper of the two programs (the same prices) */
    const double cheaper = off_cost < always_cost ? off_cost : always_cost;
    CU_ASSERT(p->cost_per_sample <= cheaper * (1 + 1e-9));
    veil_program_free(p);
    free(x);
    free(y);
    veil_model_free(m);
}

/* Where the WoP-PBS cannot run, auto (the default) compiles the digits and
 * always refuses: a random 12-bit table, which auto gives a WoP node
 * (test_auto_follows_measurement), under --partitions 1 and with sets of N
 * <= 512 only; --partitions counts the WoP-PBS's partition. Compiled only. */
static void test_auto_fallbacks(void) {
    veil_model *m = make_wide_random(12, 4, 1, 1);
    veil_program *p = compile_wop(m, VEIL_WOP_AUTO, 0.25);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(wop_nodes(p), 1);
    veil_program_free(p);
    /* one partition: always refuses, auto takes the digits */
    veil_compile_options o;
    veil_compile_options_default(&o);
    o.wop = VEIL_WOP_ALWAYS;
    o.max_partitions = 1;
    CU_ASSERT_EQUAL(veil_program_compile(m, &o, &p), VEIL_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "--partitions 1"));
    /* --partitions counts the WoP-PBS's own: 2 leaves one for the rest */
    veil_compile_options_default(&o);
    o.wop = VEIL_WOP_ALWAYS;
    o.max_partitions = 2;
    p = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, &o, &p), VEIL_OK);
    CU_ASSERT_EQUAL(wop_nodes(p), 1);
    CU_ASSERT_EQUAL(p->n_partitions, 2);
    veil_program_free(p);
    veil_compile_options_default(&o);
    o.max_partitions = 1;
    p = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, &o, &p), VEIL_OK);
    CU_ASSERT_EQUAL(wop_nodes(p), 0);
    CU_ASSERT_EQUAL(p->n_partitions, 1);
    veil_program_free(p);
    /* sets of N <= 512 only: none reads the WoP-PBS's refresh (a 4-bit
     * lookup), so always is refused; auto compiles the digits instead */
    veil_compile_options_default(&o);
    o.max_poly_size = 512;
    o.wop = VEIL_WOP_ALWAYS;
    p = NULL;
    const veil_status small_always = veil_program_compile(m, &o, &p);
    printf("; N <= 512, always: %s", small_always ? veil_error_message() : "compiled");
    CU_ASSERT_EQUAL(small_always, VEIL_ERR_UNSUPPORTED);
    o.wop = VEIL_WOP_AUTO;
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, &o, &p), VEIL_OK);
    CU_ASSERT_EQUAL(wop_nodes(p), 0);
    veil_program_free(p);
    /* a key budget under the WoP-PBS's keys (hundreds of MiB): always is
     * refused naming the budget, auto compiles the digits within it */
    veil_compile_options_default(&o);
    o.key_budget_mb = 200;
    o.wop = VEIL_WOP_ALWAYS;
    p = NULL;
    CU_ASSERT_EQUAL(veil_program_compile(m, &o, &p), VEIL_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "--key-budget-mb 200"));
    o.wop = VEIL_WOP_AUTO;
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, &o, &p), VEIL_OK);
    CU_ASSERT_EQUAL(wop_nodes(p), 0);
    CU_ASSERT(p->key_bytes <= 200 * 1048576.0);
    veil_program_free(p);
    veil_model_free(m);
}

/* --wop auto takes the method measured cheaper (docs/results/MEASURED.md
 * "In compiled programs"; intel-wop-auto.json on an AVX-512 Xeon: on random
 * tables the WoP-PBS from 10 bits, 1.4x to 5.0x, and at 9 bits the two
 * within 1%; on a few-step activation table the digits): random 4-bit
 * tables at 10 and 12 bits get a WoP node, tables of at most 15 steps at 12
 * and 14 bits none. Compiled only. */
static void test_auto_follows_measurement(void) {
    const struct {
        unsigned w, random;
        size_t wop;
    } cases[] = {{10, 1, 1}, {12, 1, 1}, {12, 0, 0}, {14, 0, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        veil_model *m = cases[i].random ? make_wide_random(cases[i].w, 4, 0, 1)
                                        : make_wide_cal(cases[i].w, 15, 0, 1);
        veil_program *p = compile_wop(m, VEIL_WOP_AUTO, 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(p);
        CU_ASSERT_EQUAL(wop_nodes(p), cases[i].wop);
        veil_program_free(p);
        veil_model_free(m);
    }
}

/* n samples of x, encrypted on the cpu backend (wop_plan_common.h: the
 * WoP tables made once at plan time, the op-less backend refused): *equal
 * values equal to simulate (sim: simulate's). */
static void encrypted_run(const veil_program *p, const int64_t *x, size_t n, int64_t *sim,
                          size_t *equal) {
    double seconds = 0;
    CU_ASSERT_FATAL(wop_plan_run(VEIL_BACKEND_CPU, p, x, n, 1, sim, equal, &seconds));
}

static void test_encrypted(void) {
    veil_model *m = make_wide_random(W, 4, 1, 1);
    veil_program *p = compile_wop(m, VEIL_WOP_ALWAYS, 0.25);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(wop_nodes(p), 1);
    const size_t n = VEIL_TEST_SANITIZED ? 1 : 3, T = (size_t)1 << W;
    int64_t x[6], sim[6];
    for (size_t i = 0; i < 2 * n; i++)
        x[i] = (int64_t)(veil_test_rand() % T);
    x[0] = (int64_t)T - 1; /* the top */
    size_t equal = 0, table = 0;
    encrypted_run(p, x, n, sim, &equal);
    for (size_t i = 0; i < 2 * n; i++)
        table += sim[i] == m->layers[1].table[(i % 2) * T + (size_t)x[i]];
    printf("\n  %zu of %zu values equal to simulate, %zu to the table", equal, 2 * n, table);
    CU_ASSERT_EQUAL(equal, 2 * n);
    CU_ASSERT_EQUAL(table, 2 * n);
    veil_program_free(p);
    veil_model_free(m);
}

/* 10-bit inputs, calibrated on the lower half (margin 0): a 9-bit WoP-PBS
 * whose index leaves its range for the upper half, and its bits wrap
 * modulo 2^9. */
static void test_encrypted_outside(void) {
    veil_model *m = make_wide_random(W + 1, 4, 1, 2);
    veil_program *p = compile_wop(m, VEIL_WOP_ALWAYS, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    size_t wop = 0, wrapped_can = 0;
    for (size_t i = 0; i < p->n_nodes; i++)
        if (p->nodes[i].kind == VEIL_NODE_LUT && p->nodes[i].wop) {
            wop++;
            /* its range is narrower than the inputs reach */
            wrapped_can += p->nodes[i].in_bits == W;
        }
    CU_ASSERT_EQUAL(wop, 1);
    CU_ASSERT_EQUAL(wrapped_can, 1);
    const size_t n = VEIL_TEST_SANITIZED ? 1 : 3, T = (size_t)2 << W;
    int64_t x[6], sim[6];
    for (size_t i = 0; i < 2 * n; i++)
        x[i] = (int64_t)(T / 2 + veil_test_rand() % (T / 2)); /* past the range */
    veil_sim_stats ss;
    const int64_t *xp = x;
    int64_t *sp = sim;
    CU_ASSERT_EQUAL(veil_program_simulate(p, &xp, n, &sp, NULL, &ss), VEIL_OK);
    CU_ASSERT(ss.range_errors > 0);
    size_t equal = 0;
    encrypted_run(p, x, n, sim, &equal);
    printf("\n  past the range: %llu values out, %zu of %zu equal to simulate",
           (unsigned long long)ss.range_errors, equal, 2 * n);
    CU_ASSERT_EQUAL(equal, 2 * n);
    veil_program_free(p);
    veil_model_free(m);
}

static void test_option(void) {
    veil_compile_options o;
    veil_compile_options_default(&o);
    CU_ASSERT_EQUAL(o.wop, VEIL_WOP_AUTO); /* the default */
    char *argv[] = {"x", "--wop", "always", "--wop", "sometimes"};
    int i = 1, used = 0;
    CU_ASSERT_EQUAL(veil_compile_options_parse_arg(&o, 5, argv, &i, &used), VEIL_OK);
    CU_ASSERT_EQUAL(o.wop, VEIL_WOP_ALWAYS);
    char buf[1024];
    veil_compile_options_canonical(&o, buf, sizeof buf);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "wop=always"));
    i = 3;
    CU_ASSERT_EQUAL(veil_compile_options_parse_arg(&o, 5, argv, &i, &used), VEIL_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "--wop sometimes"));
    o.wop = (veil_wop_mode)7;
    CU_ASSERT_EQUAL(veil_compile_options_check(&o), VEIL_ERR_ARG);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("wop_program", NULL, NULL);
    if (!s) return CU_get_error();
    VEIL_ADD_TEST(s, test_option);
    VEIL_ADD_TEST(s, test_compile_and_simulate);
    VEIL_ADD_TEST(s, test_auto_follows_measurement);
    VEIL_ADD_TEST(s, test_auto_fallbacks);
    VEIL_ADD_TEST(s, test_encrypted);
    VEIL_ADD_TEST(s, test_encrypted_outside);
    return veil_test_run();
}
