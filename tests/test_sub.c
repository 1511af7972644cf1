// LABELS: model crypto
// LINKS: veil_host veil_loaders
/* sub (a - b of two tensors of one shape, PyTorch's a - b between two
 * quantized tensors): the model's meaning is the difference
 * (veil_model_forward); compiled, a noiseless negation of b (x * -1) and
 * an ADD (compile.c). A model built here:
 *   a [2,2,2], signed inputs in [-4, 3]
 *     -> 0000_lut (one table per channel: 3x + 1, x * x)
 *     -> 0001_sub a - 0000_lut                       -> output y
 * Checked: the forward pass against a hand count, simulate equal to the
 * forward pass on every input, the encrypted run (cpu backend) equal to
 * simulate, the report's row, the validator's refusals, and the same model
 * read back from an HDF5 file the C loader parses. */
#include "model_encrypted_common.h"
#include "testutil.h"
#include "veil/loader.h"
#include "veil/program.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SZ 8

static char *dup_str(const char *s) {
    char *d = malloc(strlen(s) + 1);
    strcpy(d, s);
    return d;
}

static int64_t table(int c, int64_t x) {
    return c ? x * x : 3 * x + 1;
}

/* 512 samples: element e is digit e mod 3 (base 8) of the sample's index,
 * minus 4, so every element takes every value of [-4, 3] */
static int64_t *every_input(size_t *n) {
    *n = 8 * 8 * 8;
    int64_t *a = malloc(*n * SZ * sizeof *a);
    for (size_t s = 0; s < *n; s++)
        for (size_t e = 0; e < SZ; e++)
            a[s * SZ + e] = (int64_t)((s >> (3 * (e % 3))) & 7) - 4;
    return a;
}

static veil_model *make_model(void) {
    veil_model *m;
    CU_ASSERT_EQUAL_FATAL(veil_model_new(&m), VEIL_OK);
    m->name = dup_str("sub");
    m->n_inputs = 1;
    m->inputs = calloc(1, sizeof *m->inputs);
    m->inputs[0].name = dup_str("a");
    m->inputs[0].shape = (veil_shape){3, {2, 2, 2}};
    m->inputs[0].scale = 1;
    m->inputs[0].n_bits = 3;
    m->inputs[0].is_signed = 1;
    m->inputs[0].range[0] = -4;
    m->inputs[0].range[1] = 3;
    m->n_layers = 2;
    m->layers = calloc(2, sizeof *m->layers);
    veil_model_layer *l = &m->layers[0];
    l->name = dup_str("0000_lut");
    l->op = VEIL_OP_LUT;
    l->n_inputs = 1;
    l->inputs = calloc(1, sizeof(char *));
    l->inputs[0] = dup_str("a");
    l->out_shape = m->inputs[0].shape;
    l->range[0] = -11;
    l->range[1] = 16;
    l->in_min = -4;
    l->in_max = 3;
    l->n_tables = 2;
    l->table = malloc(16 * sizeof *l->table);
    for (int c = 0; c < 2; c++)
        for (int64_t x = -4; x <= 3; x++)
            l->table[c * 8 + x + 4] = table(c, x);
    l = &m->layers[1];
    l->name = dup_str("0001_sub");
    l->op = VEIL_OP_SUB;
    l->n_inputs = 2;
    l->inputs = calloc(2, sizeof(char *));
    l->inputs[0] = dup_str("a");
    l->inputs[1] = dup_str("0000_lut");
    l->out_shape = m->inputs[0].shape;
    l->range[0] = -4 - 16;
    l->range[1] = 3 + 11;
    m->n_outputs = 1;
    m->outputs = calloc(1, sizeof *m->outputs);
    m->outputs[0].name = dup_str("y");
    m->outputs[0].source = dup_str("0001_sub");
    m->outputs[0].shape = m->inputs[0].shape;
    m->outputs[0].n_scale = 1;
    m->outputs[0].scale = malloc(sizeof(double));
    m->outputs[0].scale[0] = 1;
    m->outputs[0].zero_point = calloc(1, sizeof(double));
    /* calibration: every input, so no value leaves its calibrated range */
    m->calibration.inputs = calloc(1, sizeof(int64_t *));
    m->calibration.inputs[0] = every_input(&m->calibration.count);
    if (veil_model_validate(m) != VEIL_OK) fprintf(stderr, "\n  %s\n", veil_error_message());
    CU_ASSERT_EQUAL_FATAL(veil_model_validate(m), VEIL_OK);
    return m;
}

static void test_forward_by_hand(void) {
    veil_model *m = make_model();
    size_t n;
    int64_t *a = every_input(&n), *y = malloc(n * SZ * sizeof *y);
    const int64_t *in[1] = {a};
    int64_t *out[1] = {y};
    CU_ASSERT_EQUAL_FATAL(veil_model_forward(m, in, n, out), VEIL_OK);
    size_t bad = 0;
    for (size_t i = 0; i < n * SZ; i++)
        bad += y[i] != a[i] - table((int)((i % SZ) / 4), a[i]);
    CU_ASSERT_EQUAL(bad, 0);
    free(a);
    free(y);
    veil_model_free(m);
}

static void test_simulate_equals_forward(void) {
    veil_model *m = make_model();
    veil_program *p = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, NULL, &p), VEIL_OK);
    size_t n;
    int64_t *a = every_input(&n), *y = malloc(n * SZ * sizeof *y), *f = malloc(n * SZ * sizeof *f);
    const int64_t *in[1] = {a};
    int64_t *out[1] = {y}, *fw[1] = {f};
    veil_sim_stats ss;
    CU_ASSERT_EQUAL_FATAL(veil_program_simulate(p, in, n, out, NULL, &ss), VEIL_OK);
    CU_ASSERT_EQUAL_FATAL(veil_model_forward(m, in, n, fw), VEIL_OK);
    CU_ASSERT_EQUAL(ss.range_errors, 0);
    CU_ASSERT_EQUAL(memcmp(y, f, n * SZ * sizeof *y), 0);
    /* the report: one row for the layer, op sub, no lookup */
    int rows = 0;
    for (size_t i = 0; i < p->n_report; i++)
        if (!strcmp(p->report[i].layer, "0001_sub")) {
            rows++;
            CU_ASSERT_STRING_EQUAL(p->report[i].op, "sub");
            CU_ASSERT_EQUAL(p->report[i].lookups, 0);
        }
    CU_ASSERT_EQUAL(rows, 1);
    veil_program_free(p);
    free(a);
    free(y);
    free(f);
    veil_model_free(m);
}

static void test_encrypted_equals_simulate(void) {
    veil_model *m = make_model();
    veil_program *p = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, NULL, &p), VEIL_OK);
    const size_t n = VEIL_TEST_SANITIZED ? 1 : 3;
    m->golden.count = n;
    m->golden.inputs = calloc(1, sizeof(int64_t *));
    m->golden.inputs[0] = malloc(n * SZ * sizeof(int64_t));
    for (size_t i = 0; i < n * SZ; i++)
        m->golden.inputs[0][i] = (int64_t)(veil_test_rand() % 8) - 4;
    printf("\n  %s, %llu PBS per sample", p->params->id, (unsigned long long)p->pbs_per_sample);
    enc_result res;
    CU_ASSERT_EQUAL_FATAL(run_encrypted_vs_simulate(m, p, n, n, &res), VEIL_OK);
    CU_ASSERT_EQUAL(res.values, n * SZ);
    CU_ASSERT_EQUAL(res.equal, n * SZ);
    veil_program_free(p);
    veil_model_free(m);
}

static void test_refusals(void) {
    veil_model *m = make_model();
    /* one operand */
    m->layers[1].n_inputs = 1;
    CU_ASSERT_EQUAL(veil_model_validate(m), VEIL_ERR_FORMAT);
    CU_ASSERT(strstr(veil_error_message(),
                     "/layers/0001_sub/inputs: sub takes 2 operand(s), got 1") != NULL);
    m->layers[1].n_inputs = 2;
    /* a declared shape other than the operands' */
    m->layers[1].out_shape = (veil_shape){1, {8}};
    CU_ASSERT_EQUAL(veil_model_validate(m), VEIL_ERR_FORMAT);
    CU_ASSERT(strstr(veil_error_message(), "/layers/0001_sub/shape: [8], expected [2, 2, 2]") !=
              NULL);
    veil_model_free(m);
}

/* The layer as the exporter writes it (op "sub", two inputs), read by the
 * C loader: the same forward pass. */
static void test_loader(void) {
    const char *path = veil_test_path("tests/data/sub.h5");
    if (access(path, R_OK) != 0) {
        CU_FAIL("tests/data/sub.h5 missing");
        return;
    }
    veil_model *m = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_model_load(path, &m), VEIL_OK);
    int found = 0;
    for (uint32_t i = 0; i < m->n_layers; i++)
        found += m->layers[i].op == VEIL_OP_SUB;
    CU_ASSERT_EQUAL(found, 1);
    veil_program *p = NULL;
    CU_ASSERT_EQUAL_FATAL(veil_program_compile(m, NULL, &p), VEIL_OK);
    /* simulate equals the exporter's golden outputs */
    const size_t n = m->golden.count;
    const size_t no = veil_program_output_size(p, 0);
    int64_t *y = malloc(n * no * sizeof *y);
    int64_t *out[1] = {y};
    CU_ASSERT_EQUAL_FATAL(
        veil_program_simulate(p, (const int64_t *const *)m->golden.inputs, n, out, NULL, NULL),
        VEIL_OK);
    CU_ASSERT(n > 0 && memcmp(y, m->golden.outputs[0], n * no * sizeof *y) == 0);
    free(y);
    veil_program_free(p);
    veil_model_free(m);
}

int main(void) {
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("sub", NULL, NULL);
    VEIL_ADD_TEST(s, test_forward_by_hand);
    VEIL_ADD_TEST(s, test_simulate_equals_forward);
    VEIL_ADD_TEST(s, test_refusals);
    VEIL_ADD_TEST(s, test_loader);
    VEIL_ADD_TEST(s, test_encrypted_equals_simulate);
    return veil_test_run();
}
