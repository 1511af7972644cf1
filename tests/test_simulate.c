// LABELS: model
// COST: 190
// LINKS: veil_loaders
/* Every sample model: the program compiled WITHOUT rounding (worst-case
 * bounds) simulates the golden vectors exactly; the default program
 * (calibration bounds, no rounding: wide lookups decomposed exactly, see
 * veil/program.h) also equals every golden value and so has exactly the
 * golden accuracy (the golden samples stay inside the calibration ranges:
 * asserted, zero range reports); its accuracy is printed next to the Brevitas
 * accuracy stored in the file; with calibration bounds, values of golden
 * samples outside the calibration ranges are reported, not wrapped. Lossy
 * options (--rounding-bits) are not scored here: test_compile.c and
 * test_model_encrypted.c check their semantics exactly. */
#include "testutil.h"
#include "load_model.h"
#include "veil/loader.h"
#include "veil/program.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const k_models[] = {"models/tiny.h5",       "models/mlp_digits.h5",
                                       "models/cnn_digits.h5", "models/source_bc.h5",
                                       "models/target_bc.h5",  "models/cnn_maxpool_digits.h5"};
#define N_MODELS (sizeof k_models / sizeof *k_models)

static int64_t **alloc_outputs(const veil_program *p, size_t n) {
    int64_t **o = calloc(p->n_outputs, sizeof *o);
    for (uint32_t i = 0; i < p->n_outputs; i++)
        o[i] = malloc(n * veil_program_output_size(p, i) * sizeof(int64_t));
    return o;
}

static void free_outputs(const veil_program *p, int64_t **o) {
    for (uint32_t i = 0; i < p->n_outputs; i++)
        free(o[i]);
    free(o);
}

/* A class is the largest dequantized value: with per-class zero points (a
 * final linear's float bias) the largest integer can be another class
 * (synthetic rows). On every sample model the golden vectors' classes are
 * Brevitas's own (the argmax of its float outputs, stored beside them; the
 * exporter found no disagreement on any golden sample): the largest integer
 * misses 5 of tiny's 64. */
static void test_class_dequantizes(void) {
    double scale[3] = {0.5, 0.5, 2.0}, zp[3] = {0, -10, 1};
    veil_model_output o = {.shape = {1, {3}}, .n_scale = 3, .scale = scale, .zero_point = zp};
    const int64_t y[3] = {7, 1, 3}; /* dequantized 3.5, 5.5, 4.0 */
    CU_ASSERT_EQUAL(veil_model_class(&o, y), 1);
    const int64_t tie[3] = {8, -2, 3}; /* 4.0, 4.0, 4.0: the first */
    CU_ASSERT_EQUAL(veil_model_class(&o, tie), 0);
    o.n_scale = 1; /* one scale, one zero point: the largest integer */
    CU_ASSERT_EQUAL(veil_model_class(&o, y), 0);
    /* one logit: class 1 when positive once dequantized (zero point 1) */
    veil_model_output one = {
        .shape = {1, {1}}, .n_scale = 1, .scale = scale + 2, .zero_point = zp + 2};
    const int64_t pos = 2, zero = 1, neg = -3;
    CU_ASSERT_EQUAL(veil_model_class(&one, &pos), 1);
    CU_ASSERT_EQUAL(veil_model_class(&one, &zero), 0);
    CU_ASSERT_EQUAL(veil_model_class(&one, &neg), 0);
    static const char *const names[] = {"tiny",        "mlp_digits",        "cnn_digits",
                                        "source_bc",   "target_bc",         "source14_bc",
                                        "source16_bc", "cnn_maxpool_digits"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char rel[64];
        snprintf(rel, sizeof rel, "models/%s.h5", names[i]);
        veil_model *m = veil_test_load_model(rel);
        const size_t sz = veil_shape_size(&m->outputs[0].shape), n = m->golden.count;
        CU_ASSERT_FATAL(n > 0 && m->golden.float_outputs != NULL);
        size_t same = 0;
        for (size_t s = 0; s < n; s++) {
            const double *f = m->golden.float_outputs[0] + s * sz;
            size_t best = 0;
            for (size_t j = 1; j < sz; j++)
                if (f[j] > f[best]) best = j;
            same += veil_model_class(&m->outputs[0], m->golden.outputs[0] + s * sz) == best;
        }
        printf("\n  %-12s %zu/%zu golden classes equal Brevitas's", names[i], same, n);
        CU_ASSERT_EQUAL(same, n);
        veil_model_free(m);
    }
}

static void test_golden_exact(void) {
    for (size_t k = 0; k < N_MODELS; k++) {
        veil_model *m = veil_test_load_model(k_models[k]);
        veil_compile_options o;
        veil_compile_options_default(&o);
        o.rounding_bits = 0;
        o.bounds = VEIL_BOUNDS_WORST_CASE;
        o.simulate_only = 1;
        veil_program *p = NULL;
        CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, &o, &p), VEIL_OK);
        size_t n = m->golden.count;
        int64_t **out = alloc_outputs(p, n);
        veil_sim_stats ss;
        CU_ASSERT_EQUAL(
            veil_program_simulate(p, (const int64_t *const *)m->golden.inputs, n, out, NULL, &ss),
            VEIL_OK);
        CU_ASSERT_EQUAL(ss.range_errors, 0);
        size_t eq = 0, tot = 0;
        for (uint32_t i = 0; i < p->n_outputs; i++) {
            size_t sz = veil_program_output_size(p, i);
            for (size_t j = 0; j < n * sz; j++, tot++)
                eq += out[i][j] == m->golden.outputs[i][j];
        }
        printf("\n  %-12s unrounded, worst case: %zu/%zu golden values equal, width %u", m->name,
               eq, tot, p->width);
        CU_ASSERT_EQUAL(eq, tot);
        free_outputs(p, out);
        veil_program_free(p);
        veil_model_free(m);
    }
    printf("\n");
}

static void test_default_accuracy(void) {
    for (size_t k = 0; k < N_MODELS; k++) {
        veil_model *m = veil_test_load_model(k_models[k]);
        veil_program *p = NULL;
        veil_status st = veil_program_compile(m, NULL, &p);
        if (st) fprintf(stderr, "\n  %s: %s\n", m->name, veil_error_message());
        CU_ASSERT_EQUAL_FATAL(st, VEIL_OK);
        CU_ASSERT_PTR_NOT_NULL(p->params);
        CU_ASSERT(p->max_lut_bits <= 8);
        size_t n = m->golden.count;
        int64_t **out = alloc_outputs(p, n);
        veil_sim_stats ss;
        CU_ASSERT_EQUAL(
            veil_program_simulate(p, (const int64_t *const *)m->golden.inputs, n, out, NULL, &ss),
            VEIL_OK);
        size_t eq = 0, tot = 0;
        for (uint32_t i = 0; i < p->n_outputs; i++) {
            size_t osz = veil_program_output_size(p, i);
            for (size_t j = 0; j < n * osz; j++, tot++)
                eq += out[i][j] == m->golden.outputs[i][j];
        }
        CU_ASSERT_EQUAL(ss.range_errors, 0);
        CU_ASSERT(tot > 0);
        CU_ASSERT_EQUAL(eq, tot);
        size_t sz = veil_program_output_size(p, 0), ok = 0, ok_gold = 0;
        for (size_t s = 0; s < n; s++) {
            ok += (int64_t)veil_model_class(&m->outputs[0], out[0] + s * sz) == m->golden.labels[s];
            ok_gold += (int64_t)veil_model_class(&m->outputs[0], m->golden.outputs[0] + s * sz) ==
                       m->golden.labels[s];
        }
        double acc = (double)ok / (double)n, acc_gold = (double)ok_gold / (double)n;
        printf("\n  %-12s default program (%s, %u-bit lookups, %llu PBS): accuracy %.4f on %zu "
               "golden samples (unrounded integer path %.4f; Brevitas %.4f on its test set); "
               "%llu range reports, %zu/%zu golden values equal",
               m->name, p->params->id, p->max_lut_bits, (unsigned long long)p->pbs_per_sample, acc,
               n, acc_gold, m->brevitas_accuracy, (unsigned long long)ss.range_errors, eq, tot);
        /* exact: the golden accuracy itself */
        CU_ASSERT_EQUAL(ok, ok_gold);
        free_outputs(p, out);
        veil_program_free(p);
        veil_model_free(m);
    }
    printf("\n");
}

static void test_calibration_ranges(void) {
    /* unrounded with calibration bounds: the calibration samples themselves
     * never leave their ranges */
    for (size_t k = 0; k < N_MODELS; k++) {
        veil_model *m = veil_test_load_model(k_models[k]);
        veil_compile_options o;
        veil_compile_options_default(&o);
        o.rounding_bits = 0;
        o.simulate_only = 1;
        o.range_margin = 0; /* the observed ranges themselves */
        veil_program *p = NULL;
        CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, &o, &p), VEIL_OK);
        size_t n = m->calibration.count;
        int64_t **out = alloc_outputs(p, n);
        veil_sim_stats ss;
        CU_ASSERT_EQUAL(veil_program_simulate(p, (const int64_t *const *)m->calibration.inputs, n,
                                              out, NULL, &ss),
                        VEIL_OK);
        CU_ASSERT_EQUAL(ss.range_errors, 0);
        /* the ranges match what the exporter observed (calib_range) */
        for (size_t i = 0; i < p->n_nodes; i++) {
            const veil_node *nd = &p->nodes[i];
            if (nd->kind != VEIL_NODE_LINEAR && nd->kind != VEIL_NODE_ADD) continue;
            int is_in = 0;
            int li = veil_model_find(m, nd->layer, &is_in);
            CU_ASSERT_FATAL(li >= 0 && !is_in);
            /* the additions inside a decomposed wide lookup and a max pool
             * keep the ranges of their construction (compile.c, set_range) */
            if (m->layers[li].op == VEIL_OP_LUT || m->layers[li].op == VEIL_OP_MAXPOOL2D) continue;
            CU_ASSERT_EQUAL(nd->lo, m->layers[li].calib_range[0]);
            CU_ASSERT_EQUAL(nd->hi, m->layers[li].calib_range[1]);
        }
        free_outputs(p, out);
        veil_program_free(p);
        veil_model_free(m);
    }
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("simulate", NULL, NULL);
    if (!s) return CU_get_error();
    VEIL_ADD_TEST(s, test_class_dequantizes);
    VEIL_ADD_TEST(s, test_golden_exact);
    VEIL_ADD_TEST(s, test_default_accuracy);
    VEIL_ADD_TEST(s, test_calibration_ranges);
    return veil_test_run();
}
