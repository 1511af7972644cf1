// LABELS: unit model
// COST: 60
// LINKS: veil_loaders
/* --global-p-error (veil_compile_options.global_p_error, compile_params.c
 * choose_params_global): a failure budget per sample that the parameter
 * search spreads over the partitions.
 *  - the option: its parser's values and refusals, and how it combines with
 *    --p-error (both hold where --p-error is given, Concrete's rule);
 *  - sample models at several budgets: the program spends at most the
 *    budget (the union bound over its PBS reads and output decodings,
 *    recomputed here from the nodes' p_fail), every read under the per-PBS
 *    cap, and the report's shares add up to what it spends;
 *  - with the budget the uniform --p-error 2^-40 program spends, the program
 *    costs no more than that one (the budget may only gain);
 *  - a budget no program meets is refused naming the option, as is a forced
 *    --params set that spends more;
 *  - with --partitions, --key-budget-mb and --objective latency the budget
 *    still holds along with the limits, and two compilations agree. */
#include "testutil.h"
#include "load_model.h"
#include "veil/compile_options.h"
#include "veil/loader.h"
#include "veil/program.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static veil_status compile(const veil_model *m, const veil_compile_options *o, veil_program **p) {
    *p = NULL;
    return veil_program_compile(m, o, p);
}

/* The union bound over one sample's PBS reads (each value's worst read,
 * veil_node_results of them) and output decodings, from the nodes; the
 * worst single read's log2 in *worst. */
static double spent_of(const veil_program *p, double *worst) {
    double s = 0;
    *worst = -INFINITY;
    for (size_t i = 0; i < p->n_nodes; i++) {
        const veil_node *n = &p->nodes[i];
        double count;
        if (n->kind == VEIL_NODE_LUT || n->kind == VEIL_NODE_ROUND)
            count = (double)veil_node_results(n);
        else if (n->kind == VEIL_NODE_OUTPUT)
            count = (double)n->size;
        else
            continue;
        s += count * exp2(n->read_log2_pfail);
        if (n->read_log2_pfail > *worst) *worst = n->read_log2_pfail;
    }
    return s;
}

/* The report's shares (partitions and outputs) add up to what p spends. */
static double shares_of(const veil_program *p) {
    double s = p->p_fail_outputs_share;
    for (uint32_t k = 0; k < p->n_partitions; k++)
        s += p->partitions[k].p_fail_share;
    return s;
}

/* The option's text: values in (0, 1) and none; anything else refused
 * naming the option. And the per-PBS cap it leaves. */
static void test_option_parsing(void) {
    veil_compile_options o;
    veil_compile_options_default(&o);
    CU_ASSERT_EQUAL(o.global_p_error, 0);
    CU_ASSERT_EQUAL(veil_compile_options_set(&o, "global-p-error", "1e-5"), VEIL_OK);
    CU_ASSERT_EQUAL(o.global_p_error, 1e-5);
    CU_ASSERT_EQUAL(veil_compile_options_set(&o, "global_p_error", "none"), VEIL_OK);
    CU_ASSERT_EQUAL(o.global_p_error, 0);
    const char *bad[] = {"0", "1", "-1e-5", "nan", "inf", "1e-320", "1e-5x", " 1e-5", "", "NONE"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *argv[] = {"--global-p-error", (char *)bad[i]};
        int k = 0, consumed = 0;
        o.global_p_error = 0.5;
        CU_ASSERT_EQUAL(veil_compile_options_parse_arg(&o, 2, argv, &k, &consumed), VEIL_ERR_ARG);
        CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "--global-p-error"));
        CU_ASSERT_EQUAL(o.global_p_error, 0.5); /* unchanged */
    }
    {
        char *argv[] = {"--global-p-error"};
        int k = 0, consumed = 0;
        CU_ASSERT_EQUAL(veil_compile_options_parse_arg(&o, 1, argv, &k, &consumed), VEIL_ERR_ARG);
        CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "needs a value"));
    }
    /* the per-PBS cap: p_error alone; with a budget, the budget, or an
     * explicit p_error under it (both hold) */
    veil_compile_options_default(&o);
    CU_ASSERT_EQUAL(veil_compile_options_pbs_p_error(&o), VEIL_P_ERROR_DEFAULT);
    o.global_p_error = 1e-5;
    CU_ASSERT_EQUAL(veil_compile_options_pbs_p_error(&o), 1e-5);
    o.p_error = 1e-15;
    CU_ASSERT_EQUAL(veil_compile_options_pbs_p_error(&o), 1e-15);
    o.p_error = 1e-3; /* looser than the budget: the budget */
    CU_ASSERT_EQUAL(veil_compile_options_pbs_p_error(&o), 1e-5);
    o.global_p_error = 0;
    CU_ASSERT_EQUAL(veil_compile_options_pbs_p_error(&o), 1e-3);
    /* --p-error given as its default (2^-40) with a budget reads as not
     * given: the budget is the cap. The help says so (it said "--p-error
     * too when that is given", which a user giving 2^-40 took for a 2^-40
     * cap). */
    veil_compile_options_default(&o);
    CU_ASSERT_EQUAL(veil_compile_options_set(&o, "p-error", "9.094947017729282e-13"), VEIL_OK);
    CU_ASSERT_EQUAL(veil_compile_options_set(&o, "global-p-error", "1e-5"), VEIL_OK);
    CU_ASSERT_EQUAL(veil_compile_options_pbs_p_error(&o), 1e-5);
    char *help = NULL;
    size_t help_len = 0;
    FILE *hf = open_memstream(&help, &help_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(hf);
    veil_compile_options_help(hf);
    fclose(hf);
    const char *gh = strstr(help, "--global-p-error");
    const char *next = gh ? strstr(gh, "\n  --") : NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(next);
    const char *says = strstr(gh, "--p-error 2^-40 with it reads as not given");
    CU_ASSERT(says && says < next);
    free(help);
    /* the canonical form names it, and reads back */
    veil_compile_options_default(&o);
    o.global_p_error = 3e-7;
    char canon[600];
    veil_compile_options_canonical(&o, canon, sizeof canon);
    CU_ASSERT_PTR_NOT_NULL(strstr(canon, "global-p-error=2.9999999999999999e-07"));
    veil_compile_options_default(&o);
    veil_compile_options_canonical(&o, canon, sizeof canon);
    CU_ASSERT_PTR_NOT_NULL(strstr(canon, "global-p-error=none"));
}

/* Sample models at several budgets: within the budget, every read under the
 * cap, the shares add up, the report's per-sample figure under the budget. */
static void test_budget_held(void) {
    static const char *const models[] = {"models/tiny.h5", "models/source_bc.h5",
                                         "models/source16_bc.h5"};
    static const double budgets[] = {1e-3, 1e-6, 1e-9, 1e-12};
    size_t held = 0, refused = 0;
    for (size_t k = 0; k < sizeof models / sizeof *models; k++) {
        veil_model *m = veil_test_load_model(models[k]);
        for (size_t b = 0; b < sizeof budgets / sizeof *budgets; b++) {
            veil_compile_options o;
            veil_compile_options_default(&o);
            o.global_p_error = budgets[b];
            veil_program *p;
            const veil_status st = compile(m, &o, &p);
            if (st != VEIL_OK) {
                /* a budget under what the sets reach: refused, named */
                printf("\n  %-12s P %g refused: %s", m->name, budgets[b], veil_error_message());
                CU_ASSERT_EQUAL(st, VEIL_ERR_UNSUPPORTED);
                CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "--global-p-error"));
                CU_ASSERT_PTR_NULL(p);
                refused++;
                continue;
            }
            double worst;
            const double spent = spent_of(p, &worst);
            printf("\n  %-12s P %-6g: spent %.3g (2^%.1f), worst read 2^%.1f, %u partitions, "
                   "%.5g ms",
                   m->name, budgets[b], spent, log2(spent), worst, p->n_partitions,
                   p->cost_per_sample);
            CU_ASSERT(spent <= budgets[b]);
            CU_ASSERT(worst <= log2(budgets[b]));
            CU_ASSERT(p->log2_p_fail_sample <= log2(budgets[b]));
            CU_ASSERT(fabs(shares_of(p) - spent) <= 1e-9 * spent);
            held++;
            veil_program_free(p);
        }
        veil_model_free(m);
    }
    printf("\n");
    /* the loose budgets fit every model */
    CU_ASSERT(held >= 2 * (sizeof models / sizeof *models));
    CU_ASSERT_EQUAL(held + refused, 12);
}

/* With the budget the uniform 2^-40 program spends, no dearer program: the
 * optimizer may only gain. */
static void test_no_dearer_than_uniform(void) {
    static const char *const models[] = {"models/tiny.h5", "models/source_bc.h5",
                                         "models/source14_bc.h5"};
    static const unsigned rbits[] = {0, 6};
    size_t cases = 0, cheaper = 0;
    for (size_t k = 0; k < sizeof models / sizeof *models; k++) {
        veil_model *m = veil_test_load_model(models[k]);
        for (size_t r = 0; r < sizeof rbits / sizeof *rbits; r++) {
            veil_compile_options o;
            veil_compile_options_default(&o);
            o.rounding_bits = rbits[r];
            veil_program *u, *g;
            CU_ASSERT_EQUAL_FATAL(compile(m, &o, &u), VEIL_OK);
            double wu, wg;
            const double su = spent_of(u, &wu);
            /* the uniform program's figure, its last bits' rounding aside */
            o.global_p_error = su * (1 + 1e-9);
            CU_ASSERT_EQUAL_FATAL(compile(m, &o, &g), VEIL_OK);
            const double sg = spent_of(g, &wg);
            printf("\n  %-12s rb %u: uniform %.5g ms spends %.4g; budget: %.5g ms spends %.4g "
                   "(worst read 2^%.1f)",
                   m->name, rbits[r], u->cost_per_sample, su, g->cost_per_sample, sg, wg);
            CU_ASSERT(g->cost_per_sample <= u->cost_per_sample * (1 + 1e-12));
            CU_ASSERT(sg <= o.global_p_error);
            cheaper += g->cost_per_sample < u->cost_per_sample * (1 - 1e-6);
            cases++;
            veil_program_free(u);
            veil_program_free(g);
        }
        veil_model_free(m);
    }
    printf("\n  %zu of %zu cheaper\n", cheaper, cases);
    CU_ASSERT_EQUAL(cases, 6);
    CU_ASSERT(cheaper >= 1); /* the budget is worth something on some model */
}

/* A budget no program meets (source_bc's 7-bit lookups rounded to 4 bits,
 * sets of N <= 1024: the noise model gives none a read under 1e-300; with
 * N up to 2048 one does), and a forced set whose reads are over the
 * budget: refused, naming the option; nothing returned. */
static void test_refusals(void) {
    veil_model *m = veil_test_load_model("models/source_bc.h5");
    veil_compile_options o;
    veil_compile_options_default(&o);
    o.global_p_error = 1e-300;
    o.rounding_bits = 4;
    o.max_poly_size = 1024;
    veil_program *p;
    CU_ASSERT_EQUAL(compile(m, &o, &p), VEIL_ERR_UNSUPPORTED);
    printf("\n  P 1e-300, N <= 1024: %s", veil_error_message());
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "--global-p-error"));
    CU_ASSERT_PTR_NULL(p);
    o.max_poly_size = 2048;
    double w;
    CU_ASSERT_EQUAL(compile(m, &o, &p), VEIL_OK);
    if (p) {
        CU_ASSERT(spent_of(p, &w) <= o.global_p_error);
        veil_program_free(p);
    }
    /* the default program's set forced: within a budget over what it
     * spends, refused under what its reads reach */
    veil_compile_options_default(&o);
    o.max_partitions = 1;
    veil_program *one;
    CU_ASSERT_EQUAL_FATAL(compile(m, &o, &one), VEIL_OK);
    const double s1 = spent_of(one, &w);
    o.max_partitions = 0;
    o.params_id = one->params->id;
    o.global_p_error = s1 * 2; /* fits */
    CU_ASSERT_EQUAL(compile(m, &o, &p), VEIL_OK);
    if (p) {
        CU_ASSERT_PTR_EQUAL(p->params, one->params);
        CU_ASSERT(spent_of(p, &w) <= o.global_p_error);
        veil_program_free(p);
    }
    o.global_p_error = 1e-30;
    CU_ASSERT_EQUAL(compile(m, &o, &p), VEIL_ERR_UNSUPPORTED);
    printf("\n  --params %s, P %g: %s\n", one->params->id, o.global_p_error, veil_error_message());
    CU_ASSERT_PTR_NOT_NULL(strstr(veil_error_message(), "--global-p-error"));
    CU_ASSERT_PTR_NULL(p);
    veil_program_free(one);
    veil_model_free(m);
}

/* An explicit --p-error with the budget: both hold. The limits with the
 * budget: --partitions, --key-budget-mb (the default program's keys) and
 * --objective latency; the same options twice give the same program, bit
 * for bit (fingerprint, every node's variance and p_fail), also compiled
 * again after the other option sets (two of them): nothing a
 * compilation keeps for the next (the noise terms' table, the search's
 * trial cache, the calibration buffers) changes a program. */
/* a and b the same program bit for bit: fingerprint, sets, cost, every
 * node's variance and p_fail. */
static void same_program(const veil_program *a, const veil_program *b) {
    uint8_t fa[VEIL_PROGRAM_FP_BYTES], fb[VEIL_PROGRAM_FP_BYTES];
    veil_program_fingerprint(a, fa);
    veil_program_fingerprint(b, fb);
    CU_ASSERT_EQUAL(memcmp(fa, fb, sizeof fa), 0);
    CU_ASSERT_EQUAL(a->n_partitions, b->n_partitions);
    for (uint32_t k = 0; k < a->n_partitions && k < b->n_partitions; k++)
        CU_ASSERT_PTR_EQUAL(a->partitions[k].params, b->partitions[k].params);
    CU_ASSERT_EQUAL(memcmp(&a->cost_per_sample, &b->cost_per_sample, sizeof(double)), 0);
    CU_ASSERT_EQUAL_FATAL(a->n_nodes, b->n_nodes);
    size_t diff = 0;
    for (size_t i = 0; i < a->n_nodes; i++)
        diff +=
            memcmp(&a->nodes[i].variance, &b->nodes[i].variance, sizeof(double)) != 0 ||
            memcmp(&a->nodes[i].read_log2_pfail, &b->nodes[i].read_log2_pfail, sizeof(double)) != 0;
    CU_ASSERT_EQUAL(diff, 0);
}

static void test_with_other_options(void) {
    veil_model *m = veil_test_load_model("models/source16_bc.h5");
    veil_compile_options o;
    veil_compile_options_default(&o);
    veil_program *base;
    CU_ASSERT_EQUAL_FATAL(compile(m, &o, &base), VEIL_OK);
    const double budget = 1e-6;
    double w;
    veil_program *progs[5] = {NULL};
    veil_compile_options opts[5];
    for (int c = 0; c < 5; c++) {
        veil_compile_options_default(&o);
        o.global_p_error = budget;
        const char *what = "";
        switch (c) {
        case 0:
            o.p_error = ldexp(1.0, -45);
            what = "--p-error 2^-45";
            break;
        case 1:
            o.max_partitions = 1;
            what = "--partitions 1";
            break;
        case 2:
            o.max_partitions = 2;
            what = "--partitions 2";
            break;
        case 3:
            o.key_budget_mb = (unsigned)ceil(base->key_bytes / 1048576.0);
            what = "--key-budget-mb (default's keys)";
            break;
        case 4:
            o.latency_cores = 4;
            what = "--objective latency:4";
            break;
        }
        veil_program *p, *q;
        CU_ASSERT_EQUAL_FATAL(compile(m, &o, &p), VEIL_OK);
        const double s = spent_of(p, &w);
        printf("\n  %-34s %u partitions, %.5g ms, spends %.3g, worst read 2^%.1f", what,
               p->n_partitions, p->cost_per_sample, s, w);
        CU_ASSERT(s <= budget);
        CU_ASSERT(w <= log2(veil_compile_options_pbs_p_error(&o)));
        if (c == 0) CU_ASSERT(w <= -45);
        if (c == 1) CU_ASSERT_EQUAL(p->n_partitions, 1);
        if (c == 2) CU_ASSERT(p->n_partitions <= 2);
        if (c == 3) CU_ASSERT(p->key_bytes <= 1048576.0 * o.key_budget_mb);
        CU_ASSERT_EQUAL_FATAL(compile(m, &o, &q), VEIL_OK);
        same_program(p, q);
        veil_program_free(q);
        progs[c] = p;
        opts[c] = o;
    }
    for (int c = 4; c >= 0; c--) {
        /* two of them again, after all the others (each compilation costs
         * seconds) */
        if (c == 3 || c == 0) {
            veil_program *q;
            CU_ASSERT_EQUAL_FATAL(compile(m, &opts[c], &q), VEIL_OK);
            same_program(progs[c], q);
            veil_program_free(q);
        }
        veil_program_free(progs[c]);
    }
    printf("\n");
    veil_program_free(base);
    veil_model_free(m);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("global_p_error", NULL, NULL);
    if (!s) return CU_get_error();
    VEIL_ADD_TEST(s, test_option_parsing);
    VEIL_ADD_TEST(s, test_budget_held);
    VEIL_ADD_TEST(s, test_no_dearer_than_uniform);
    VEIL_ADD_TEST(s, test_refusals);
    VEIL_ADD_TEST(s, test_with_other_options);
    return veil_test_run();
}
